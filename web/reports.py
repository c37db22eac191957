"""Pure functions from rollup totals to the API's JSON bodies; every metric comes from clara.metrics.

scikit-learn is slow to start per call (milliseconds), so metrics are cached by the exact counters
they are computed from: a past day's numbers are computed once, yet any change to its counters is a
new key and is computed afresh. The handlers call these functions in an executor.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping

from clara.config import Config
from clara.metrics import AVERAGES, ClassificationMetrics, classification_metrics
from clara.rollups import LATENCY_EDGES, Totals, totals_by_day
from web.params import DateRange

SCORES = ("precision", "recall", "f1")


def from_docs(function, docs, *args):
    """`function(totals, *args)` over the summed rollup documents (summing is work too: off the loop)."""
    return function(Totals.of(docs), *args)


def metrics_of(totals: Totals, n_classes: int) -> ClassificationMetrics:
    return _cached_metrics(n_classes, tuple(sorted(totals.cells.items())), tuple(sorted(totals.rejected.items())))


@functools.lru_cache(maxsize=8192)
def _cached_metrics(n_classes: int, cells: tuple, rejected: tuple) -> ClassificationMetrics:
    totals = Totals(cells=Counter(dict(cells)), rejected=Counter(dict(rejected)))
    return classification_metrics(totals, n_classes)


def averaged(metrics: ClassificationMetrics) -> dict[str, dict[str, float | None]]:
    """Macro and weighted precision/recall/F1; every value null when there is nothing to average."""
    return {average: metrics.averaged.get(average, dict.fromkeys(SCORES)) for average in AVERAGES}


def predicted_by_class(totals: Totals, n_classes: int) -> list[int]:
    """Reviewed predictions per predicted class, rejected-without-class ones included."""
    return [sum(n for (_, pred), n in totals.cells.items() if pred == c) + totals.rejected.get(c, 0)
            for c in range(n_classes)]


def latency(totals: Totals) -> dict:
    """Review latency: mean and histogram (bins by upper edge in seconds; the last bin is open)."""
    edges = [*LATENCY_EDGES, None]
    return {"count": totals.latency_count,
            "mean_seconds": totals.latency_ms / totals.latency_count / 1000 if totals.latency_count else None,
            "histogram": [{"upper_seconds": edge, "count": totals.latency_hist.get(i, 0)}
                          for i, edge in enumerate(edges)]}


def summary(totals: Totals, pending: int, days: DateRange, config: Config) -> dict:
    n = config.n_classes
    metrics = metrics_of(totals, n)
    return {"range": days.to_json(), "reviews": totals.reviews, "pending": pending,
            "rejected_without_class": sum(totals.rejected.values()), "accuracy": metrics.accuracy,
            "averages": averaged(metrics), "classes": list(config.model.classes),
            "colors": list(config.model.colors), "samples_by_class": metrics.per_class["support"],
            "predicted_by_class": predicted_by_class(totals, n),
            "mean_confidence": (totals.confidence_micros / totals.confidence_count / 1_000_000
                                if totals.confidence_count else None),
            "mean_latency_seconds": latency(totals)["mean_seconds"]}


def daily(docs: Iterable[Mapping], days: DateRange, config: Config) -> dict:
    """One value per local day of the range; a day without reviews is null (a gap), never zero."""
    by_day = totals_by_day(docs, config.model.zone)
    body: dict = {"range": days.to_json(), "days": [], "reviews": [], "accuracy": [],
                  **{score: {average: [] for average in AVERAGES} for score in SCORES}}
    for day in days.days:
        totals = by_day.get(day, Totals())
        metrics = metrics_of(totals, config.n_classes)
        body["days"].append(day.isoformat())
        body["reviews"].append(totals.reviews)
        body["accuracy"].append(metrics.accuracy)
        for average, scores in averaged(metrics).items():
            for score in SCORES:
                body[score][average].append(scores[score])
    return body


def classes(totals: Totals, days: DateRange, config: Config) -> dict:
    metrics = metrics_of(totals, config.n_classes)
    return {"range": days.to_json(), "classes": list(config.model.classes), "colors": list(config.model.colors),
            **{score: metrics.per_class[score] for score in (*SCORES, "support")},
            "predicted": predicted_by_class(totals, config.n_classes)}


def confusion(totals: Totals, days: DateRange, config: Config) -> dict:
    """Counts (rows: true class, columns: predicted class) and rates normalised by row."""
    matrix = metrics_of(totals, config.n_classes).confusion
    rates = [[cell / sum(row) for cell in row] if sum(row) else [None] * len(row) for row in matrix]
    return {"range": days.to_json(), "classes": list(config.model.classes), "matrix": matrix, "rates": rates,
            "rejected": [totals.rejected.get(c, 0) for c in range(config.n_classes)]}


def training(totals: Totals, days: DateRange, config: Config) -> dict:
    return {"range": days.to_json(), "classes": list(config.model.classes), "colors": list(config.model.colors),
            "training_counts": list(config.model.training_counts),
            "predicted": predicted_by_class(totals, config.n_classes)}
