"""The local profile store: one whylogs v1 file per prediction hour, with its classification metrics, merged
into and replaced atomically.

Layout: `<local_store_dir>/<YYYY-MM-DD>/<YYYYMMDDTHH>.bin` (UTC date and hour of the predictions); each
file is one `DatasetProfileView` (dataset timestamp = its hour) that `whylogs.read` reads. A delivery
merges the hour's new rows into the file with whylogs' view merge and renames the result over it.

Classification metrics: whylogs' v1 format has no place for model performance metrics, and its v0 format
(which has one, and is what WhyLabs gets) loses the columns' null counts (the rejections without a class)
and cannot be opened with `whylogs.read`. So the file stays v1 and carries the metrics in its metadata key
`clara.model_performance`: the base64 of whylogs' `ModelProfileMessage`, the very message WhyLabs gets in
its upload's `modeProfile`, i.e. the confusion matrix of the rows with a known true class. `read_hour`
(and the README's snippet, which does the same in plain whylogs) gives the view with the metrics back.
Files written before the key existed are merged into as they are: their columns keep every row, the
key covers the rows delivered since.

Segments (segments.fields configured): the hour's profile per segment field and value travels in the same
file, under the metadata key `clara.segments` (a JSON list of [field, value, base64 of that segment's v1 view,
its own classification metrics in its metadata as above]); `read_segments` gives them back as views. One file
keeps one rename, so the segment profiles are exactly once with the rest.

Exactly once: the file's metadata key `clara.merged_entries` lists the outbox entries its last write
merged. Before the file is written again, the drain acknowledges those entries in MongoDB (`held`), so
an entry is either acknowledged or named in the file, never both unknown: after a kill between the
rename and the acknowledgement, the next drain finds the entries named in the file, acknowledges them
and does not merge them again. Columns, classification metrics and bookkeeping are one file, one rename.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from google.protobuf.message import DecodeError
from whylogs.core import DatasetProfileView
from whylogs.core.model_performance_metrics import ModelPerformanceMetrics
from whylogs.core.proto.v0 import ModelProfileMessage

from consumer.sinks.base import Delivered, PermanentSinkError, TransientSinkError

MERGED_KEY = "clara.merged_entries"
PERFORMANCE_KEY = "clara.model_performance"
SEGMENTS_KEY = "clara.segments"


class LocalProfileStore:
    name = "local"
    performance = True
    exclusive = True   # two drainers merging into one file could lose each other's rows

    def __init__(self, directory: str | os.PathLike, interval_seconds: float = 0.0):
        self.directory = Path(directory)
        self.interval_seconds = interval_seconds
        self._cached: tuple[Path, tuple[int, int, int], DatasetProfileView] | None = None

    def path_for(self, hour: dt.datetime) -> Path:
        hour = hour.astimezone(dt.timezone.utc)
        return self.directory / f"{hour:%Y-%m-%d}" / f"{hour:%Y%m%dT%H}.bin"

    def retry_delay(self, attempts: int) -> float:
        return 0.0  # a disk error is retried at the next drain

    def held(self, hour: dt.datetime) -> frozenset[str]:
        """The entries the hour's file says its last write merged (they may not be acknowledged yet)."""
        view = self._read(self.path_for(hour))
        listed = view.metadata.get(MERGED_KEY, "") if view is not None else ""
        return frozenset(filter(None, listed.split("\n")))

    def deliver(self, hour: dt.datetime, view: DatasetProfileView, entry_ids: Sequence[str],
                segments: Mapping[tuple[str, str], DatasetProfileView] | None = None) -> Delivered:
        """Merge `view` (and each segment's view) into the hour's file, naming `entry_ids` as its last merge, and
        replace it atomically."""
        path = self.path_for(hour)
        base = self._read(path)
        self._cached = None  # a merge changes the views it reads: never reuse them
        try:
            stored = {} if base is None else pop_segments(base)
            merged = merge_into(base, view, hour)
        except ValueError as exc:
            raise PermanentSinkError(f"the profile file {path} has unreadable classification metrics or segments "
                                     f"({exc}); move it aside, then requeue the dead entries") from exc
        merged.metadata[MERGED_KEY] = "\n".join(entry_ids)
        if stored or segments:
            for key, segment_view in (segments or {}).items():
                stored[key] = merge_into(stored.get(key), segment_view, hour)
            merged.metadata[SEGMENTS_KEY] = json.dumps([[field, value, base64.b64encode(v.serialize()).decode("ascii")]
                                                        for (field, value), v in sorted(stored.items())])
        try:
            write_atomically(path, merged.serialize())
        except OSError as exc:
            raise TransientSinkError(f"cannot write {path}: {exc}") from exc
        return Delivered(detail=str(path))

    def _read(self, path: Path) -> DatasetProfileView | None:
        """The hour's file as a view (None when there is none yet); read once for `held` and `deliver`."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TransientSinkError(f"cannot read {path}: {exc}") from exc
        key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._cached is not None and self._cached[:2] == (path, key):
            return self._cached[2]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TransientSinkError(f"cannot read {path}: {exc}") from exc
        try:
            view = DatasetProfileView.deserialize(data)
        except Exception as exc:  # noqa: BLE001 - whylogs raises assorted errors on corrupt bytes
            raise PermanentSinkError(f"the profile file {path} is unreadable ({exc}); move it aside, "
                                     "then requeue the dead entries") from exc
        self._cached = (path, key, view)
        return view


def merge_into(base: DatasetProfileView | None, view: DatasetProfileView, hour: dt.datetime) -> DatasetProfileView:
    """`view` merged into `base` (its classification metrics restored from its metadata), dataset timestamp
    `hour`, the result's metrics kept in its metadata again (PERFORMANCE_KEY); ValueError when base's are
    unreadable."""
    if view.model_performance_metrics is not None:
        # As the file will hold it: every cell of the matrix present. whylogs 1.6.4 cannot merge a matrix
        # into one with cells missing that the other has (None.kll), and the drain's matrices are sparse.
        view.add_model_performance_metrics(dense(view.model_performance_metrics))
    if base is not None:
        restore_performance(base)
    merged = view if base is None else base.merge(view)
    merged.set_dataset_timestamp(hour)
    if merged.model_performance_metrics is not None:
        merged.metadata[PERFORMANCE_KEY] = encode_performance(merged.model_performance_metrics)
    return merged


def pop_segments(view: DatasetProfileView) -> dict[tuple[str, str], DatasetProfileView]:
    """Take the segment views kept under SEGMENTS_KEY out of the hour view's metadata (their classification
    metrics still in their metadata); ValueError when they are unreadable."""
    encoded = view.metadata.pop(SEGMENTS_KEY, None)
    if not encoded:
        return {}
    try:
        return {(field, value): DatasetProfileView.deserialize(base64.b64decode(data, validate=True))
                for field, value, data in json.loads(encoded)}
    except Exception as exc:  # noqa: BLE001 - json, base64 and whylogs raise assorted errors on corrupt bytes
        raise ValueError(f"unreadable {SEGMENTS_KEY}: {exc!r}") from exc


def read_segments(path: str | os.PathLike) -> dict[tuple[str, str], DatasetProfileView]:
    """The segment profiles of an hour file, (field, value) -> view with its classification metrics."""
    return {key: restore_performance(view) for key, view in pop_segments(DatasetProfileView.read(str(path))).items()}


def read_hour(path: str | os.PathLike) -> DatasetProfileView:
    """An hour file of the store as a whylogs view with its classification metrics (none in a file of an hour
    without a known true class, or written before they were kept); what the README's snippet does."""
    return restore_performance(DatasetProfileView.read(str(path)))


def restore_performance(view: DatasetProfileView) -> DatasetProfileView:
    """Move the metrics kept under PERFORMANCE_KEY from the view's metadata into its model performance metrics."""
    encoded = view.metadata.pop(PERFORMANCE_KEY, None)
    if encoded:
        view.add_model_performance_metrics(decode_performance(encoded))
    return view


def encode_performance(metrics: ModelPerformanceMetrics) -> str:
    """The metrics as whylogs serializes them for WhyLabs (the v0 `ModelProfileMessage`), in base64."""
    return base64.b64encode(metrics.to_protobuf().SerializeToString()).decode("ascii")


def decode_performance(encoded: str) -> ModelPerformanceMetrics:
    """The inverse of `encode_performance`; ValueError when the text is not such a message."""
    try:
        message = ModelProfileMessage.FromString(base64.b64decode(encoded, validate=True))
        return ModelPerformanceMetrics.from_protobuf(message)
    except (binascii.Error, DecodeError, IndexError) as exc:  # IndexError: a matrix short of cells
        raise ValueError(f"not a base64 whylogs ModelProfileMessage: {exc}") from exc


def dense(metrics: ModelPerformanceMetrics) -> ModelPerformanceMetrics:
    """The same metrics with every cell of the confusion matrix present (whylogs fills them when it reads)."""
    return ModelPerformanceMetrics.from_protobuf(metrics.to_protobuf())


def write_atomically(path: Path, data: bytes) -> None:
    """tmp file in the same directory, fsync, rename over `path`, fsync the directory: all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
