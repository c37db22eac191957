"""The fake classifier: the true class of each image, the model's prediction, and its confidence.

All randomness comes from the `random.Random` passed in, so a seed fixes every outcome.
"""

from __future__ import annotations

import dataclasses
import random
from itertools import accumulate

DRIFT_KINDS = ("class-mix", "confidence", "accuracy")


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """How the model behaves: which classes arrive, how often it is right, how sure it says it is."""

    class_mix: tuple[float, ...]          # probability of each true class (normalised on construction)
    accuracy: tuple[float, ...]           # per true class: the probability that the prediction is right
    confidence_right: float = 0.85        # mean confidence of right predictions
    confidence_wrong: float = 0.55        # mean confidence of wrong predictions
    confidence_concentration: float = 20.0  # Beta concentration: higher is tighter around the mean

    def __post_init__(self) -> None:
        n = len(self.class_mix)
        if n < 1 or any(w < 0 for w in self.class_mix) or sum(self.class_mix) <= 0:
            raise ValueError("class mix: expected non-negative weights, at least one positive")
        if len(self.accuracy) != n:
            raise ValueError(f"accuracy: expected one value per class ({n}), got {len(self.accuracy)}")
        if any(not 0.0 <= a <= 1.0 for a in self.accuracy):
            raise ValueError("accuracy: expected values from 0 to 1")
        for name in ("confidence_right", "confidence_wrong"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name.replace('_', ' ')}: expected a mean strictly between 0 and 1")
        if self.confidence_concentration <= 0:
            raise ValueError("confidence concentration: expected a positive number")
        total = sum(self.class_mix)
        object.__setattr__(self, "class_mix", tuple(w / total for w in self.class_mix))

    @property
    def n_classes(self) -> int:
        return len(self.class_mix)

    def drifted(self, kind: str, strength: float) -> Behaviour:
        """The same model after a drift of `kind`; `strength` in (0, 1) says how far it moves."""
        keep = 1.0 - strength
        if kind == "class-mix":  # move `strength` of the traffic to the rarest class
            rarest = min(range(self.n_classes), key=self.class_mix.__getitem__)
            mix = tuple(keep * w + (strength if i == rarest else 0.0) for i, w in enumerate(self.class_mix))
            return dataclasses.replace(self, class_mix=mix)
        if kind == "confidence":
            return dataclasses.replace(self, confidence_right=self.confidence_right * keep,
                                       confidence_wrong=self.confidence_wrong * keep)
        if kind == "accuracy":
            return dataclasses.replace(self, accuracy=tuple(a * keep for a in self.accuracy))
        raise ValueError(f"unknown drift {kind!r}; expected one of {', '.join(DRIFT_KINDS)}")

    def predict(self, rng: random.Random) -> tuple[int, int, float]:
        """One image: (true class, predicted class, confidence of the prediction)."""
        n = self.n_classes
        truth = rng.choices(range(n), cum_weights=list(accumulate(self.class_mix)))[0]
        right = n == 1 or rng.random() < self.accuracy[truth]
        if right:
            predicted = truth
        else:  # a wrong prediction is any other class, uniformly
            predicted = rng.randrange(n - 1)
            predicted += predicted >= truth
        mean = self.confidence_right if right else self.confidence_wrong
        k = self.confidence_concentration
        return truth, predicted, round(rng.betavariate(mean * k, (1.0 - mean) * k), 6)
