"""Classification metrics from rollup counts, computed by scikit-learn with sample weights.

Each confusion cell becomes one (true, predicted) pair weighted by its count, so the results are
the ones scikit-learn gives on the raw documents. A review rejected without a class is the pair
(REJECTED, predicted): wrong for accuracy and for the predicted class's precision, and outside
`labels`, so it counts towards no class's recall.

One `precision_recall_fscore_support` call gives the per-class scores; the macro and weighted
averages are scikit-learn's own last step of that function applied to them (`_nanaverage`, weighted
by the per-class support for "weighted"), so they are bit-identical to calling it again with
`average=`, at a third of the cost. Parameter validation is skipped: the inputs are built here.
Many Totals (the days of a range) share one call: see classification_metrics_each.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np
import sklearn
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import precision_recall_fscore_support
from sklearn.utils.extmath import _nanaverage  # the averaging step of precision_recall_fscore_support

from clara.rollups import Totals

REJECTED = -1
AVERAGES = ("macro", "weighted")


@dataclasses.dataclass(frozen=True)
class ClassificationMetrics:
    reviews: int
    accuracy: float | None
    per_class: dict[str, list[float]]       # precision/recall/f1/support, one entry per class
    averaged: dict[str, dict[str, float]]   # average -> precision/recall/f1
    confusion: list[list[int]]              # rows: true class, columns: predicted class
    rejected: list[int]                     # rejected without a class, by predicted class


def weighted_pairs(totals: Totals) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y_true, y_pred, sample_weight) arrays with one entry per non-empty cell."""
    pairs = [(t, p, n) for (t, p), n in sorted(totals.cells.items()) if n]
    pairs += [(REJECTED, p, n) for p, n in sorted(totals.rejected.items()) if n]
    if not pairs:
        empty = np.array([], dtype=np.int64)
        return empty, empty, empty
    y_true, y_pred, weight = (np.array(column, dtype=np.int64) for column in zip(*pairs))
    return y_true, y_pred, weight


def classification_metrics(totals: Totals, n_classes: int) -> ClassificationMetrics:
    """Accuracy, per-class and averaged precision/recall/F1 and the confusion matrix; None where undefined."""
    return classification_metrics_each([totals], n_classes)[0]


def classification_metrics_each(totals: Sequence[Totals], n_classes: int) -> list[ClassificationMetrics]:
    """classification_metrics of each Totals (one per day, say), from one scikit-learn call for them all.

    scikit-learn's fixed cost per call (milliseconds) dominates with a handful of cells, so Totals i
    gets labels of its own: class c is i * (n_classes + 1) + c and a rejection the label after its
    classes, outside `labels` like REJECTED. A label's counts are then exactly its Totals' (integer
    weights sum exactly in floating point), so every per-class score, and each Totals' averages over
    its slice, are bit for bit what a call per Totals gives. Accuracy is accuracy_score's weighted
    mean of correct pairs, the same exact sums divided once.
    """
    pairs = [weighted_pairs(one) for one in totals]
    rejected_label = max([n_classes, *(int(a.max()) + 1 for y_true, y_pred, _ in pairs for a in (y_true, y_pred)
                                       if len(a))])
    labels_each = rejected_label + 1
    rows, empty = [], []
    for i, (y_true, y_pred, weight) in enumerate(pairs):
        if weight.sum() == 0:
            empty.append(i)
            continue
        offset = i * labels_each
        y_true = np.where(y_true == REJECTED, rejected_label, y_true)
        rows.append((i, y_true + offset, y_pred + offset, weight))
    results: list[ClassificationMetrics | None] = [None] * len(totals)
    for i in empty:
        results[i] = ClassificationMetrics(0, None, {k: [None] * n_classes for k in ("precision", "recall", "f1")}
                                           | {"support": [0] * n_classes}, {}, *_matrices(totals[i], n_classes))
    if rows:
        index = np.concatenate([np.full(len(w), i, dtype=np.int64) for i, _, _, w in rows])
        y_true, y_pred, weight = (np.concatenate([row[k] for row in rows]) for k in (1, 2, 3))
        labels = [i * labels_each + c for i, *_ in rows for c in range(n_classes)]
        with warnings.catch_warnings(), sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            precision, recall, f1, support = precision_recall_fscore_support(
                y_true, y_pred, labels=labels, sample_weight=weight, zero_division=np.nan)
            correct = np.bincount(index, weights=weight * (y_true == y_pred), minlength=len(totals))
            total = np.bincount(index, weights=weight, minlength=len(totals))
            for k, (i, *_) in enumerate(rows):
                part = slice(k * n_classes, (k + 1) * n_classes)
                results[i] = _scores(totals[i], n_classes, int(total[i]), float(correct[i] / total[i]),
                                     precision[part], recall[part], f1[part], support[part])
    return results  # type: ignore[return-value]  # every index is filled above


def _scores(totals: Totals, n_classes: int, reviews: int, accuracy: float, precision, recall, f1,
            support) -> ClassificationMetrics:
    averaged = {}
    for average in AVERAGES:
        weights = support if average == "weighted" else None
        averaged[average] = {name: _number(_nanaverage(values, weights=weights))
                             for name, values in (("precision", precision), ("recall", recall), ("f1", f1))}
    per_class = {"precision": [_number(v) for v in precision], "recall": [_number(v) for v in recall],
                 "f1": [_number(v) for v in f1], "support": [int(v) for v in support]}
    return ClassificationMetrics(reviews, accuracy, per_class, averaged, *_matrices(totals, n_classes))


def _matrices(totals: Totals, n_classes: int) -> tuple[list[list[int]], list[int]]:
    labels = range(n_classes)
    return ([[totals.cells.get((t, p), 0) for p in labels] for t in labels],
            [totals.rejected.get(p, 0) for p in labels])


def _number(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value
