"""The local profile store: one whylogs v1 file per outbox entry, written atomically.

Layout: `<local_store_dir>/<YYYY-MM-DD>/<batch id>_<YYYYMMDDTHH>.bin` (UTC date of the dataset hour).
A file's name comes from its outbox entry alone, so delivering an entry again replaces the same file:
each entry is in the store exactly once. v1 serialization (what `whylogs.read` reads) drops the model
performance metrics that the v0 bytes in the outbox carry; the upload to WhyLabs keeps them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from consumer.sinks.base import Delivered, OutboxEntry, TransientSinkError
from consumer.sinks.profiles import view_of


class LocalProfileStore:
    name = "local"

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def path_for(self, entry: OutboxEntry) -> Path:
        batch, _, hour = entry.id.rpartition(":")
        # '_' is escaped in the batch part too, so the last '_' always separates it from the hour.
        name = f"{quote(batch, safe='-.').replace('_', '%5F')}_{hour}.bin"
        return self.directory / f"{entry.hour:%Y-%m-%d}" / name

    def retry_delay(self, attempts: int) -> float:
        return 0.0  # a disk error is retried at the next drain

    def deliver(self, entry: OutboxEntry) -> Delivered:
        """Write the entry's profile (v1, dataset timestamp = its hour) in place of any earlier copy."""
        data = view_of(entry.profile, entry.hour).serialize()
        path = self.path_for(entry)
        try:
            write_atomically(path, data)
        except OSError as exc:
            raise TransientSinkError(f"cannot write {path}: {exc}") from exc
        return Delivered(detail=str(path))


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
