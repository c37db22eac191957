"""The pure document generator: a seeded stream of prediction documents and the reviews they will get.

Nothing here touches MongoDB or the clock: callers pass each document's timestamp and its offset from
the start of the simulation (which decides whether a drift is on), so the same seed gives the same
documents whatever the wall clock says.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Any

from simulator.model import DRIFT_KINDS, Behaviour

BAD_KINDS = ("missing-field", "unknown-class", "confidence-out-of-range", "string-timestamp")
REQUIRED_FIELDS = ("filename", "output_prediction", "timestamp")


@dataclasses.dataclass(frozen=True)
class Drift:
    """A drift of `kind`, on from `start` to `end` (seconds from the start of the simulation)."""

    kind: str
    start: float = 0.0
    end: float | None = None
    strength: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in DRIFT_KINDS:
            raise ValueError(f"unknown drift {self.kind!r}; expected one of {', '.join(DRIFT_KINDS)}")
        if not 0.0 < self.strength < 1.0:
            raise ValueError("drift strength: expected a number strictly between 0 and 1")
        if self.end is not None and self.end <= self.start:
            raise ValueError("expected the drift to end after it starts")

    def active(self, offset: float) -> bool:
        return offset >= self.start and (self.end is None or offset < self.end)


@dataclasses.dataclass(frozen=True)
class Settings:
    behaviour: Behaviour
    review_fraction: float = 0.8      # share of predictions a reviewer gets to
    review_delay: float = 5.0         # mean seconds from prediction to review (exponential)
    legacy_fraction: float = 0.02     # share of reviews written in the older bool form
    bad_fraction: float = 0.0         # share of malformed documents
    drift: Drift | None = None
    filename_prefix: str = "img"

    def __post_init__(self) -> None:
        for name in ("review_fraction", "legacy_fraction", "bad_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name.replace('_', ' ')}: expected a fraction from 0 to 1")
        if self.review_delay <= 0:
            raise ValueError("review delay: expected a positive number of seconds")


@dataclasses.dataclass(frozen=True)
class Simulated:
    """One prediction: the document to insert and, if it will be reviewed, what the reviewer writes."""

    index: int
    document: dict[str, Any]
    truth: int
    review: dict[str, Any] | None     # {"output_validated": int or bool}; None: never reviewed
    review_delay: float | None        # seconds after the prediction
    drifted: bool
    bad: str | None                   # the kind of malformation, None for a good document


class PredictionStream:
    """Successive simulated predictions from one seed; `next` is the only thing that moves it."""

    def __init__(self, settings: Settings, seed: int | str):
        self.settings = settings
        self._rng = random.Random(seed)
        self._index = 0
        drift = settings.drift
        self._drifted = settings.behaviour.drifted(drift.kind, drift.strength) if drift else None

    def next(self, timestamp: dt.datetime, offset: float) -> Simulated:
        """The next prediction, made at `timestamp`, `offset` seconds after the simulation started."""
        settings, rng, index = self.settings, self._rng, self._index
        self._index += 1
        drifted = settings.drift is not None and settings.drift.active(offset)
        behaviour = self._drifted if drifted else settings.behaviour
        truth, predicted, confidence = behaviour.predict(rng)
        document: dict[str, Any] = {"filename": f"{settings.filename_prefix}_{index:08d}.jpg",
                                    "output_prediction": predicted, "output_confidence": confidence,
                                    "timestamp": timestamp}
        review = delay = None
        if rng.random() < settings.review_fraction:
            delay = rng.expovariate(1.0 / settings.review_delay)
            legacy = rng.random() < settings.legacy_fraction
            review = {"output_validated": (predicted == truth) if legacy else truth}
        bad = None
        if rng.random() < settings.bad_fraction:
            bad = rng.choice(BAD_KINDS)
            _spoil(document, bad, rng, behaviour.n_classes)
        return Simulated(index, document, truth, review, delay, drifted, bad)


def _spoil(document: dict[str, Any], kind: str, rng: random.Random, n_classes: int) -> None:
    if kind == "missing-field":
        del document[rng.choice(REQUIRED_FIELDS)]
    elif kind == "unknown-class":
        document["output_prediction"] = rng.choice((-1, n_classes + rng.randrange(5)))
    elif kind == "confidence-out-of-range":
        excess = rng.uniform(0.01, 1.0)
        document["output_confidence"] = -excess if rng.random() < 0.5 else 1.0 + excess
    else:  # string-timestamp
        document["timestamp"] = document["timestamp"].isoformat()
