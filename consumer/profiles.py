"""whylogs classification profiles of one dataset hour, from the outbox's profile rows.

Built by the outbox drain, never inside a batch's transaction. Only rows with a known true class go
into the classification metrics (null labels break whylogs' confusion matrix, whylogs issue 1373);
reviews rejected without a class still appear in the target (null), prediction and score columns.
Both sinks get the model performance metrics: WhyLabs in whylogs' v0 upload, the local store in the
metadata of its v1 files (which have no place of their own for them; consumer.sinks.local_store).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from whylogs.core import DatasetProfile, DatasetProfileView, DatasetSchema
from whylogs.core.configs import track_unicode_ranges
from whylogs.core.metrics.metrics import DistributionMetric
from whylogs.core.metrics.unicode_range import UnicodeRangeMetric
from whylogs.core.model_performance_metrics.confusion_matrix import ConfusionMatrix
from whylogs.core.model_performance_metrics.model_performance_metrics import ModelPerformanceMetrics
from whylogs.core.preprocessing import PreprocessedColumn
from whylogs.core.resolvers import DEFAULT_RESOLVER, DeclarativeResolver

from consumer.outbox_queue import HourRows

# whylogs logs at INFO on every profile; keep the consumer's log about batches.
logging.getLogger("whylogs").setLevel(logging.WARNING)


def default_schema() -> DatasetSchema:
    """whylogs' default schema, less the unicode-range metric that its default config (track_unicode_ranges
    off) leaves out anyway: to learn that metric's name before leaving it out, whylogs builds one, 45
    sketches deep-copied, for every string column of every new profile. That was 26 ms a column, most of
    a segmented hour's profiling; the profiles come out the same (tests compare them with whylogs' own)."""
    if track_unicode_ranges:
        return DatasetSchema()
    specs = [dataclasses.replace(spec, metrics=[m for m in spec.metrics if m.metric is not UnicodeRangeMetric])
             for spec in DEFAULT_RESOLVER]
    return DatasetSchema(resolvers=DeclarativeResolver(specs))


# Resolving metrics per column is most of a small profile's cost; one schema object caches it.
_SCHEMA = default_schema()


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


def profile_view(rows: HourRows, hour: dt.datetime, classes: Sequence[str], *, performance: bool = True,
                 created: dt.datetime | None = None) -> DatasetProfileView:
    """One hour's profile of `rows`, dataset timestamp = `hour`; `performance` adds the model performance
    metrics (the confusion matrix of the rows with a known true class); `created` fixes the creation time."""
    profile = DatasetProfile(schema=_SCHEMA, creation_timestamp=created)
    predictions = [classes[p] for p in rows.predicted]
    targets = [None if t is None else classes[t] for t in rows.truth]
    profile.track(pandas=pd.DataFrame({
        "target": targets, "prediction": predictions, "score": rows.confidence,
        "review_latency_seconds": rows.latency_seconds,
    }))
    labelled = [i for i, t in enumerate(rows.truth) if t is not None]
    if performance and labelled:
        # What why.log_classification_metrics computes, without its second pass over the columns.
        labelled_predictions = [predictions[i] for i in labelled]
        labelled_targets = [targets[i] for i in labelled]
        scores = [1.0 if rows.confidence[i] is None else rows.confidence[i] for i in labelled]
        matrix = ArrayConfusionMatrix(labels=sorted(set(labelled_targets + labelled_predictions)))
        matrix.add(labelled_predictions, labelled_targets, scores)
        profile.add_model_performance_metrics(ModelPerformanceMetrics(confusion_matrix=matrix))
    profile.set_dataset_timestamp(hour)
    return profile.view()


def segment_views(rows: HourRows, hour: dt.datetime, classes: Sequence[str], *,
                  performance: bool = True) -> dict[tuple[str, str], DatasetProfileView]:
    """One profile per (segment field, value) of the rows' segment columns: the rows of that value alone,
    like profile_view's (whylogs' segmented profiles carry them to WhyLabs: consumer.sinks.whylabs)."""
    views = {}
    for field, values in sorted(rows.segments.items()):
        positions: dict[str, list[int]] = {}
        for i, value in enumerate(values):
            positions.setdefault(value, []).append(i)
        for value, chosen in sorted(positions.items()):
            views[(field, value)] = profile_view(rows.select(chosen), hour, classes, performance=performance)
    return views


def profile_bytes(rows: HourRows, hour: dt.datetime, classes: Sequence[str],
                  created: dt.datetime | None = None) -> bytes:
    """One hour's profile with its performance metrics, serialized as whylogs uploads it (v0 delimited;
    v1 when no row has a known true class)."""
    view = profile_view(rows, hour, classes, created=created)
    buffer = io.BytesIO()
    buffer.name = "profile.bin"  # whylogs' writer reports the target's name
    view._write(file=buffer, use_v0=view.model_performance_metrics is not None)
    return buffer.getvalue()
