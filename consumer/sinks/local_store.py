"""The local profile store: one whylogs v1 file per prediction hour, merged into and replaced atomically.

Layout: `<local_store_dir>/<YYYY-MM-DD>/<YYYYMMDDTHH>.bin` (UTC date and hour of the predictions); each
file is one `DatasetProfileView` (dataset timestamp = its hour) that `whylogs.read` reads. A delivery
merges the hour's new rows into the file with whylogs' view merge and renames the result over it.

Exactly once: the file's metadata key `clara.merged_entries` lists the outbox entries its last write
merged. Before the file is written again, the drain acknowledges those entries in MongoDB (`held`), so
an entry is either acknowledged or named in the file, never both unknown: after a kill between the
rename and the acknowledgement, the next drain finds the entries named in the file, acknowledges them
and does not merge them again. v1 files cannot hold model performance metrics; WhyLabs gets those.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from whylogs.core import DatasetProfileView

from consumer.sinks.base import Delivered, PermanentSinkError, TransientSinkError

MERGED_KEY = "clara.merged_entries"


class LocalProfileStore:
    name = "local"
    performance = False
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

    def deliver(self, hour: dt.datetime, view: DatasetProfileView, entry_ids: Sequence[str]) -> Delivered:
        """Merge `view` into the hour's file, naming `entry_ids` as its last merge, and replace it atomically."""
        path = self.path_for(hour)
        base = self._read(path)
        self._cached = None  # a merge changes the views it reads: never reuse them
        merged = view if base is None else base.merge(view)
        merged.set_dataset_timestamp(hour)
        merged.metadata[MERGED_KEY] = "\n".join(entry_ids)
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
