"""Source documents in the contract's shape, for tests."""

from __future__ import annotations

import datetime as dt
import random

UTC = dt.timezone.utc


def prediction(i: int, *, at: dt.datetime, n_classes: int = 7, rng: random.Random | None = None,
               reviewed: bool = True, legacy: bool = False) -> dict:
    rng = rng or random.Random(i)
    pred = rng.randrange(n_classes)
    doc = {"filename": f"img_{i:06d}.jpg", "output_prediction": pred,
           "output_confidence": round(rng.uniform(0.3, 1.0), 4), "timestamp": at.replace(tzinfo=None)}
    if reviewed:
        truth = pred if rng.random() < 0.8 else rng.randrange(n_classes)
        doc["output_validated"] = (truth == pred if rng.random() < 0.5 else truth) if legacy else truth
        doc["timestamp_validated"] = (at + dt.timedelta(minutes=rng.randint(1, 600))).replace(tzinfo=None)
    return doc


def predictions(n: int, *, start: dt.datetime, step: dt.timedelta = dt.timedelta(minutes=7), seed: int = 1,
                reviewed_fraction: float = 1.0, legacy_fraction: float = 0.1) -> list[dict]:
    rng = random.Random(seed)
    return [prediction(i, at=start + i * step, rng=rng, reviewed=rng.random() < reviewed_fraction,
                       legacy=rng.random() < legacy_fraction) for i in range(n)]
