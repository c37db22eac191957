"""Reading the outbox's profile bytes (whylogs v0 delimited format) back into a whylogs view."""

from __future__ import annotations

import datetime as dt
import os
import tempfile

from whylogs.core import DatasetProfileView
from whylogs.migration.converters import read_v0_to_view

from consumer.sinks.base import PermanentSinkError


def view_of(profile: bytes, hour: dt.datetime) -> DatasetProfileView:
    """The profile as a view whose dataset timestamp is `hour`; unreadable bytes are a permanent error."""
    # read_v0_to_view only reads from a path.
    handle, path = tempfile.mkstemp(prefix="clara-profile-", suffix=".bin")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(profile)
        view = read_v0_to_view(path)
    except Exception as exc:  # noqa: BLE001 - whylogs raises assorted errors on corrupt bytes
        raise PermanentSinkError(f"unreadable whylogs profile ({len(profile)} bytes): {exc}") from exc
    finally:
        os.unlink(path)
    view.set_dataset_timestamp(hour)
    return view
