"""Segments: which value of each configured field (`segments.fields`) a source document counts under.

Each field is a segmentation of its own: a review or prediction counts once overall and once per field,
under that field's value, so the segments of one field add up to the overall figures exactly (fields are not
crossed: `model_version` x `site` would multiply the rollups; a combined field in the document does that).

A value's canonical form is a string:

- a missing field, null, an empty string, NaN or an infinity: `unknown`;
- strings as they are (at most MAX_VALUE_LENGTH characters); booleans `true`/`false`; integers in decimal;
  a float that is a whole number as that integer (`2.0` is `2`, the segment of `2`), others by `repr`;
  ObjectIds in hex; dates in ISO 8601 (UTC);
- anything else (documents, arrays, binary data) and strings longer than MAX_VALUE_LENGTH: `other`, with a
  warning, never admitted (they would make every document a segment of its own).

At most `segments.max_values` distinct values per field are admitted, first come first served; beyond the cap a
value counts under `other`, with a warning logged once per value (for the first WARNED_PER_FIELD values of a
field, then once that more are capped). `unknown` and `other` do not count against the cap, and a document
whose value is literally the string "unknown" or "other" joins that bucket.

The cap is exact across processes, restarts and retries: the admitted values live in MongoDB (the state
document `{_id: "segments"}`, `values.<field>`: a list in order of admission) and a transaction that counts
reads them (`read_admission`) and records what it admits (`save_admission`) in the same transaction, so a
retry, or a second process admitting at the same time, meets a write conflict and decides again from what
the other committed. Values once admitted stay admitted (a lower cap admits no more, but keeps those it
has); to admit afresh, stop the consumer, delete that state document and run `python -m replay --rebuild`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from bson import ObjectId
from pymongo.client_session import ClientSession
from pymongo.collection import Collection

from clara.settings import SegmentSettings

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
UNKNOWN = "unknown"
OTHER = "other"
BUCKETS = (UNKNOWN, OTHER)
MAX_VALUE_LENGTH = 100
WARNED_PER_FIELD = 100
SEGMENTS_STATE_ID = "segments"
# A segment: (field, value) pairs sorted by field, so the same document always gives the same tuple.
Segment = tuple[tuple[str, str], ...]


def canonical(value: Any) -> str:
    """A field's value as the string its segment is named by (before the cap); see the module docstring."""
    if value is None:
        return UNKNOWN
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return UNKNOWN
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        if not value:
            return UNKNOWN
        return value if len(value) <= MAX_VALUE_LENGTH else OTHER
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dt.datetime):
        return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)).isoformat()
    return OTHER


class _Warnings:
    """Capped values already warned about in this process, bounded per field."""

    def __init__(self) -> None:
        self.seen: dict[str, set[str]] = {}

    def capped(self, field: str, value: str, cap: int) -> None:
        seen = self.seen.setdefault(field, set())
        if value in seen or len(seen) > WARNED_PER_FIELD:
            return
        seen.add(value)
        if len(seen) > WARNED_PER_FIELD:
            log.warning("segment field %r: more values beyond segments.max_values = %d; they count under %r "
                        "and are no longer logged one by one", field, cap, OTHER)
            return
        log.warning("segment field %r has more than segments.max_values = %d distinct values: %r counts under "
                    "%r (raise the cap and run `python -m replay --rebuild` to give it a segment of its own)",
                    field, cap, value, OTHER)

    def unsegmentable(self, field: str, value: Any) -> None:
        kind = f"<{type(value).__name__}>"
        seen = self.seen.setdefault(field, set())
        if kind not in seen and len(seen) <= WARNED_PER_FIELD:
            seen.add(kind)
            log.warning("segment field %r holds a %s that cannot name a segment (%s): it counts under %r",
                        field, type(value).__name__, "longer than %d characters" % MAX_VALUE_LENGTH
                        if isinstance(value, str) else "not a string, number, boolean, ObjectId or date", OTHER)


WARNINGS = _Warnings()


class Admission:
    """The values admitted per field, as read in one transaction, and those this transaction admits."""

    def __init__(self, settings: SegmentSettings, stored: Mapping[str, Sequence[str]] | None = None):
        self.fields = tuple(sorted(settings.fields))
        self.cap = settings.max_values
        stored = stored or {}
        self.admitted = {field: set(stored.get(field, ())) for field in self.fields}
        # As read: two admissions of equal `stored` give every document the same segment.
        self.stored = {field: frozenset(values) for field, values in self.admitted.items()}
        self.new: dict[str, list[str]] = {field: [] for field in self.fields}
        # Segments already given, by the documents' raw values when all are strings or missing (1, 1.0 and
        # True are equal keys but different values): a value once admitted or capped stays so in this
        # transaction, so the answer holds, and most of a batch repeats a few segments.
        self._given: dict[tuple[str | None, ...], Segment] = {}

    def segment_of(self, doc: Mapping[str, Any]) -> Segment:
        """The document's value of every segment field, admitting new values while the cap allows."""
        raw = tuple(map(doc.get, self.fields))
        try:
            segment = self._given.get(raw)   # only all-string keys are kept, and no other value equals one
        except TypeError:   # unhashable (a list, a document)
            segment = None
        if segment is None:
            segment = tuple((field, self.value(field, value)) for field, value in zip(self.fields, raw))
            if all(value is None or type(value) is str for value in raw):
                self._given[raw] = segment
        return segment

    def value(self, field: str, raw: Any) -> str:
        value = canonical(raw)
        if value in BUCKETS:
            if value == OTHER and raw != OTHER:
                WARNINGS.unsegmentable(field, raw)
            return value
        admitted = self.admitted[field]
        if value in admitted:
            return value
        if len(admitted) < self.cap:
            admitted.add(value)
            self.new[field].append(value)
            return value
        WARNINGS.capped(field, value, self.cap)
        return OTHER

    def admitted_segment_of(self, doc: Mapping[str, Any]) -> Segment:
        """The document's segment under the values admitted so far, admitting none: a value not admitted is
        `other` (for what is not being counted, such as a profile re-sent by replay)."""
        values = ((field, canonical(doc.get(field))) for field in self.fields)
        return tuple((field, value if value in BUCKETS or value in self.admitted[field] else OTHER)
                     for field, value in values)

    def pending(self) -> dict[str, list[str]]:
        return {field: values for field, values in self.new.items() if values}


def read_admission(state: Collection, settings: SegmentSettings, session: ClientSession | None = None) -> Admission:
    """What the state collection holds, inside the caller's transaction."""
    doc = state.find_one({"_id": SEGMENTS_STATE_ID}, session=session) or {}
    return Admission(settings, doc.get("values"))


def save_admission(state: Collection, admission: Admission, session: ClientSession | None = None) -> None:
    """Record the values this transaction admitted, in it; nothing when it admitted none."""
    pending = admission.pending()
    if not pending:
        return
    state.update_one({"_id": SEGMENTS_STATE_ID},
                     {"$push": {f"values.{field}": {"$each": values} for field, values in pending.items()},
                      "$set": {"updated_at": dt.datetime.now(UTC)}}, upsert=True, session=session)
    for values in admission.new.values():
        values.clear()


def segment_id(hour: dt.datetime, field: str) -> dict[str, Any]:
    """A segment rollup's _id: one document per period and field, holding every value's counters. Key order
    matters: BSON compares embedded documents pair by pair, so `{_id: {$gte: {hour: a}, $lt: {hour: b}}}`
    is every segment rollup of the periods in [a, b), by the _id index."""
    return {"hour": hour, "field": field}


_ESCAPES = {"%": "%25", ".": "%2E", "$": "%24", "\x00": "%00"}
_UNESCAPES = {escaped: raw for raw, escaped in _ESCAPES.items()}
_UNESCAPE = re.compile("|".join(_UNESCAPES))


def value_key(value: str) -> str:
    """A segment value as a field name of its rollup's `values` (no '.', '$' or NUL: percent-escaped)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in value) if any(ch in _ESCAPES for ch in value) else value


def key_value(key: str) -> str:
    """The inverse of value_key."""
    return _UNESCAPE.sub(lambda match: _UNESCAPES[match.group(0)], key) if "%" in key else key


def hour_range(start: dt.datetime | None, end: dt.datetime | None) -> dict[str, Any]:
    """The filter of the segment rollups of periods in [start, end) (either open)."""
    bounds = {}
    if start is not None:
        bounds["$gte"] = {"hour": start}
    if end is not None:
        bounds["$lt"] = {"hour": end}
    return {"_id": bounds} if bounds else {}


def field_range(field: str, start: dt.datetime | None, end: dt.datetime | None) -> dict[str, Any]:
    """The filter of one field's segment rollups of periods in [start, end) (either open): the _id range
    (hour_range), and the same on `_id.field` and `_id.hour`, which the index clara_segment_field_hour serves
    exactly (clara.db); where it is missing, the _id range still bounds the read."""
    hours = {bound: moment for bound, moment in (("$gte", start), ("$lt", end)) if moment is not None}
    return hour_range(start, end) | {"_id.field": field} | ({"_id.hour": hours} if hours else {})
