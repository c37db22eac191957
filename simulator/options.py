"""Parsing the simulator's option values: class mixes, per-class accuracies, points in time."""

from __future__ import annotations

import argparse
import datetime as dt

UTC = dt.timezone.utc


def fraction(text: str) -> float:
    value = number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to 1, got {text!r}")
    return value


def open_fraction(text: str) -> float:
    value = number(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text!r}")
    return value


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def positive(text: str) -> float:
    value = number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def non_negative(text: str) -> float:
    value = number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected zero or more, got {text!r}")
    return value


def count(text: str) -> int:
    value = whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of zero or more, got {text!r}")
    return value


def when(text: str) -> float | dt.datetime:
    """Seconds from the start (a number) or a moment (ISO 8601; naive means UTC)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seconds from the start or an ISO time such as 2025-01-31T12:00:00Z, got {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def moment(text: str) -> dt.datetime:
    value = when(text)
    if not isinstance(value, dt.datetime):
        raise argparse.ArgumentTypeError(f"expected an ISO time such as 2025-01-31T00:00:00Z, got {text!r}")
    return value


def offset(value: float | dt.datetime | None, start: dt.datetime) -> float | None:
    """A --drift-at/--drift-until value as seconds from `start`."""
    if value is None or isinstance(value, float):
        return value
    return (value - start).total_seconds()


def class_mix(text: str, training_counts: tuple[int, ...]) -> tuple[float, ...]:
    """`training` (the configured training counts), `uniform`, or one weight per class."""
    n = len(training_counts)
    if text == "training":
        return tuple(float(c) for c in training_counts) if sum(training_counts) else (1.0,) * n
    if text == "uniform":
        return (1.0,) * n
    values = per_class(text, n)
    if any(v < 0 for v in values) or not sum(values) > 0:
        raise argparse.ArgumentTypeError(f"expected non-negative weights, at least one positive, got {text!r}")
    return values


def accuracy(text: str, n: int) -> tuple[float, ...]:
    """One accuracy for every class, LOW:HIGH spread evenly from the first class to the last, or one per class."""
    if ":" in text:
        low, high = (fraction(part) for part in text.split(":", 1))
        return tuple(low + (high - low) * i / max(n - 1, 1) for i in range(n))
    if "," in text:
        per_class(text, n)
        return tuple(fraction(part) for part in text.split(","))
    return (fraction(text),) * n


def per_class(text: str, n: int) -> tuple[float, ...]:
    values = tuple(number(part) for part in text.split(","))
    if len(values) != n:
        raise argparse.ArgumentTypeError(f"expected one value per class ({n}), got {len(values)} in {text!r}")
    return values
