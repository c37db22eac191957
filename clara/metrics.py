"""Classification metrics from rollup counts, computed by scikit-learn with sample weights.

Each confusion cell becomes one (true, predicted) pair weighted by its count, so the results are
the ones scikit-learn gives on the raw documents. A review rejected without a class is the pair
(REJECTED, predicted): wrong for accuracy and for the predicted class's precision, and outside
`labels`, so it counts towards no class's recall.

One `precision_recall_fscore_support` call gives the per-class scores; the macro and weighted
averages are scikit-learn's own last step of that function applied to them (`_nanaverage`, weighted
by the per-class support for "weighted"), so they are bit-identical to calling it again with
`average=`, at a third of the cost. Parameter validation is skipped: the inputs are built here.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import sklearn
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
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
    labels = list(range(n_classes))
    y_true, y_pred, weight = weighted_pairs(totals)
    confusion = [[totals.cells.get((t, p), 0) for p in labels] for t in labels]
    rejected = [totals.rejected.get(p, 0) for p in labels]
    if weight.sum() == 0:
        return ClassificationMetrics(0, None, {k: [None] * n_classes for k in ("precision", "recall", "f1")}
                                     | {"support": [0] * n_classes}, {}, confusion, rejected)
    with warnings.catch_warnings(), sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        accuracy = float(accuracy_score(y_true, y_pred, sample_weight=weight))
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, sample_weight=weight, zero_division=np.nan)
        averaged = {}
        for average in AVERAGES:
            weights = support if average == "weighted" else None
            averaged[average] = {name: _number(_nanaverage(values, weights=weights))
                                 for name, values in (("precision", precision), ("recall", recall), ("f1", f1))}
    per_class = {"precision": [_number(v) for v in precision], "recall": [_number(v) for v in recall],
                 "f1": [_number(v) for v in f1], "support": [int(v) for v in support]}
    return ClassificationMetrics(int(weight.sum()), accuracy, per_class, averaged, confusion, rejected)


def check_confusion(totals: Totals, n_classes: int) -> list[list[int]]:
    """The confusion matrix by scikit-learn, for cross-checks in tests and audits."""
    y_true, y_pred, weight = weighted_pairs(totals)
    keep = y_true != REJECTED
    return confusion_matrix(y_true[keep], y_pred[keep], labels=list(range(n_classes)),
                            sample_weight=weight[keep]).astype(int).tolist()


def _number(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value
