"""Reading the outbox's profile bytes back into a whylogs view.

The consumer writes v0 (delimited) bytes when a profile carries model performance metrics and whylogs'
v1 format (magic header `WHY1`) when it does not (an hour whose reviews were all rejected without a
class); both are read here.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile

from whylogs.core import DatasetProfileView
from whylogs.core.view.dataset_profile_view import WHYLOGS_MAGIC_HEADER_BYTES
from whylogs.migration.converters import read_v0_to_view

from consumer.sinks.base import PermanentSinkError

# Reading v0 KLL sketches, whylogs first tries the old float layout and logs a WARNING each time
# before it falls back to the doubles layout that succeeds: noise on every delivery, not a problem.
logging.getLogger("whylogs.migration.converters").setLevel(logging.ERROR)


def view_of(profile: bytes, hour: dt.datetime) -> DatasetProfileView:
    """The profile as a view whose dataset timestamp is `hour`; unreadable bytes are a permanent error."""
    if profile.startswith(WHYLOGS_MAGIC_HEADER_BYTES):
        try:
            view = DatasetProfileView.deserialize(profile)
        except Exception as exc:  # noqa: BLE001 - whylogs raises assorted errors on corrupt bytes
            raise PermanentSinkError(f"unreadable whylogs v1 profile ({len(profile)} bytes): {exc}") from exc
        view.set_dataset_timestamp(hour)
        return view
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
