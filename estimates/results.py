"""The result types every estimator returns: a value, its interval, its method and its assumption."""

from __future__ import annotations

import dataclasses

LEVEL = 0.95


@dataclasses.dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float
    level: float
    method: str                  # "wilson", "exact", "bootstrap", "delta"

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclasses.dataclass(frozen=True, slots=True)
class Estimate:
    """One number. `value` and `interval` are None when it is undefined, and `reason` says why."""

    method: str
    assumption: str
    value: float | None
    interval: Interval | None
    n: int                       # the reviewed predictions it rests on
    reason: str | None = None
    notes: tuple[str, ...] = ()  # what was done to the input on the way (merged bins, clipped weights)

    @property
    def defined(self) -> bool:
        return self.value is not None


def undefined(method: str, assumption: str, n: int, reason: str) -> Estimate:
    return Estimate(method, assumption, None, None, n, reason)


class EstimateError(ValueError):
    """Counts that no estimator can take (negative, mismatched lengths, more correct than reviewed)."""
