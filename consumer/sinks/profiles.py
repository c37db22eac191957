"""One hour's outbox entries as one whylogs view: their rows profiled together, older entries' bytes merged in.

Entries hold profile rows; the drain profiles all the rows of an hour at once (`hour_view`). Entries
written before rows hold serialized profiles: v0 (delimited) bytes when the profile carries model
performance metrics, whylogs' v1 format (magic header `WHY1`) when it does not (an hour whose reviews
were all rejected without a class); both are read here and merged with whylogs' own view merge.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import tempfile
from collections.abc import Sequence

from whylogs.core import DatasetProfileView
from whylogs.core.view.dataset_profile_view import WHYLOGS_MAGIC_HEADER_BYTES
from whylogs.migration.converters import read_v0_to_view

from consumer.outbox_queue import HourRows
from consumer.profiles import profile_view, segment_views
from consumer.sinks.base import OutboxEntry, PermanentSinkError

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


@dataclasses.dataclass
class HourView:
    """The profile of an hour's entries, and the entries that could not be profiled, with the reason; with
    segments, one profile per (segment field, value) of the entries whose rows carry segment columns."""

    view: DatasetProfileView | None
    entries: list[OutboxEntry]
    refused: list[tuple[OutboxEntry, str]]
    segments: dict[tuple[str, str], DatasetProfileView] = dataclasses.field(default_factory=dict)


def hour_view(entries: Sequence[OutboxEntry], hour: dt.datetime, classes: Sequence[str], *,
              performance: bool) -> HourView:
    """One view of every entry of `hour` (dataset timestamp = `hour`); an unreadable entry is refused alone."""
    rows, segmented, views, used, refused = HourRows(), HourRows(), [], [], []
    for entry in entries:
        try:
            if entry.columns is not None:
                checked = checked_rows(entry, len(classes))
                if checked.segments and (not len(segmented) or segmented.segments.keys() == checked.segments.keys()):
                    segmented.extend(checked)   # entries of an earlier segment configuration: overall only
                checked.segments = {}
                rows.extend(checked)
            elif entry.profile is not None:
                views.append(view_of(entry.profile, hour))
            else:
                raise PermanentSinkError("the entry holds neither profile rows nor a profile")
        except PermanentSinkError as exc:
            refused.append((entry, exc.reason))
            continue
        used.append(entry)
    if len(rows):
        views.insert(0, profile_view(rows, hour, classes, performance=performance))
    merged = None
    for view in views:
        merged = view if merged is None else merged.merge(view)
    if merged is not None:
        merged.set_dataset_timestamp(hour)
    segments = segment_views(segmented, hour, classes, performance=performance) if len(segmented) else {}
    return HourView(merged, used, refused, segments)


def checked_rows(entry: OutboxEntry, n_classes: int) -> HourRows:
    """The entry's rows, once every class id is known to the configuration."""
    try:
        rows = HourRows.from_doc(entry.columns or {})
        ids = rows.predicted + [t for t in rows.truth if t is not None]
        if ids and (min(ids) < 0 or max(ids) >= n_classes or not all(type(i) is int for i in ids)):
            raise ValueError(f"class ids {min(ids)}..{max(ids)} outside model.classes (0..{n_classes - 1}); "
                             "was the class list changed?")
    except (ValueError, TypeError) as exc:
        raise PermanentSinkError(f"unusable profile rows: {exc}") from exc
    return rows
