"""whylogs classification profiles, one per dataset hour, from reviewed records.

Only reviewed rows with a known true class go into the classification metrics (null labels break
whylogs' confusion matrix, whylogs issue 1373); reviews rejected without a class still appear in
the target (null), prediction and score columns. The bytes use the format whylogs uploads (v0
delimited), which keeps the model performance metrics; the local store converts them to v1 for
`whylogs.read`.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from whylogs.core import DatasetProfile, DatasetSchema
from whylogs.core.metrics.metrics import DistributionMetric
from whylogs.core.model_performance_metrics.confusion_matrix import ConfusionMatrix
from whylogs.core.model_performance_metrics.model_performance_metrics import ModelPerformanceMetrics
from whylogs.core.preprocessing import PreprocessedColumn

from clara.records import Record
from clara.rollups import hour_of

# whylogs logs at INFO on every profile; keep the consumer's log about batches.
logging.getLogger("whylogs").setLevel(logging.WARNING)
# Resolving metrics per column is most of a small profile's cost; one schema object caches it.
_SCHEMA = DatasetSchema()


class ArrayConfusionMatrix(ConfusionMatrix):
    """whylogs' ConfusionMatrix, fed each cell's scores as one float array.

    whylogs' own `add` hands every cell a Python list, which it splits by type through pandas:
    about 1 ms per cell, 49 cells for 7 classes, most of an hour profile's cost. The same scores as
    a float array take its numpy path; the sketches come out the same (tests compare the bytes).
    Labels here are never None: only rows with a known true class are logged.
    """

    def add(self, predictions: list, targets: list, scores: list | None) -> None:
        if len(targets) != len(predictions):
            raise ValueError("both targets and predictions need to have the same length")
        scores = [1.0] * len(targets) if scores is None else scores
        index = {label: i for i, label in enumerate(self.labels)}
        cells: dict[tuple[int, int], list[float]] = {}
        for predicted, target, score in zip(predictions, targets, scores):
            cells.setdefault((index[predicted], index[target]), []).append(score)
        for cell, values in cells.items():
            if cell not in self.confusion_matrix:
                self.confusion_matrix[cell] = DistributionMetric.zero(self.default_config)
            self.confusion_matrix[cell].columnar_update(PreprocessedColumn.apply(np.asarray(values, dtype=float)))


def profiles_by_hour(records: Iterable[Record], classes: Sequence[str]) -> dict[dt.datetime, tuple[bytes, int]]:
    """(serialized profile, rows) per prediction hour, with the hour as the dataset timestamp."""
    by_hour: dict[dt.datetime, list[Record]] = defaultdict(list)
    for record in records:
        if record.reviewed:
            by_hour[hour_of(record.timestamp)].append(record)
    return {hour: (profile_bytes(rows, hour, classes), len(rows)) for hour, rows in sorted(by_hour.items())}


def profile_bytes(records: Sequence[Record], hour: dt.datetime, classes: Sequence[str],
                  created: dt.datetime | None = None) -> bytes:
    """One hour's profile, serialized; `created` fixes the creation time (else now)."""
    profile = DatasetProfile(schema=_SCHEMA, creation_timestamp=created)
    profile.track(pandas=pd.DataFrame({
        "target": [None if r.truth is None else classes[r.truth] for r in records],
        "prediction": [classes[r.predicted] for r in records],
        "score": [r.confidence for r in records],
        "review_latency_seconds": [r.latency_seconds for r in records],
    }))
    labelled = [r for r in records if r.truth is not None]
    if labelled:
        # What why.log_classification_metrics computes, without its second pass over the columns.
        predictions = [classes[r.predicted] for r in labelled]
        targets = [classes[r.truth] for r in labelled]
        matrix = ArrayConfusionMatrix(labels=sorted(set(targets + predictions)))
        matrix.add(predictions, targets, [1.0 if r.confidence is None else r.confidence for r in labelled])
        profile.add_model_performance_metrics(ModelPerformanceMetrics(confusion_matrix=matrix))
    profile.set_dataset_timestamp(hour)
    view = profile.view()
    buffer = io.BytesIO()
    buffer.name = "profile.bin"  # whylogs' writer reports the target's name
    view._write(file=buffer, use_v0=view.model_performance_metrics is not None)
    return buffer.getvalue()
