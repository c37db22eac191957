"""MongoDB access: clients built from config, CLARA's collections by role, and the indexes they need."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from typing import Any

from bson.codec_options import DatetimeConversion
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from clara.config import Config
from clara.errors import IndexPrivilegeError

log = logging.getLogger(__name__)
# The state document where the consumer keeps its checkpoint and reports its last batch and lag.
CONSUMER_STATE_ID = "consumer"
# The state document of the prediction counting: the cut of the last recount, and the recount under way.
PREDICTIONS_STATE_ID = "predictions"
MAJORITY = WriteConcern("majority")


def client_options(config: Config) -> dict:
    """Options every CLARA client shares: aware UTC datetimes, and dates outside Python's range (year 1 to
    9999: a writer's `new Date(8.64e15)`, seconds stored as milliseconds) decoded as `DatetimeMS` instead of
    raising while a whole batch is read; the record parser sets such a document aside."""
    return {"tz_aware": True, "datetime_conversion": DatetimeConversion.DATETIME_AUTO,
            "serverSelectionTimeoutMS": int(config.mongodb.server_selection_timeout_seconds * 1000),
            "appname": "clara-monitor"}


def connect(config: Config, **overrides) -> MongoClient:
    """A synchronous client with timezone-aware datetimes (naive ones in documents are read as UTC)."""
    return MongoClient(config.mongodb.uri, **(client_options(config) | overrides))


@dataclasses.dataclass(frozen=True)
class Collections:
    """CLARA's collections by role, all in the configured database."""

    db: Database
    source: Collection
    rollups: Collection
    outbox: Collection
    rejects: Collection
    state: Collection
    alerts: Collection
    counted: Collection
    predictions: Collection
    segment_rollups: Collection       # review rollups per period and segment (clara/segment_rollups.py)
    segment_predictions: Collection   # prediction rollups per period and segment
    segment_pending: Collection       # segment increments put off while behind (clara/segment_pending.py)
    create_indexes: bool = True  # mongodb.create_indexes: ensure_indexes may create the missing ones
    segmented: bool = False      # segments.fields is set: the segment collections are in use (and indexed)

    @classmethod
    def of(cls, client: MongoClient, config: Config) -> Collections:
        names = config.mongodb
        db = client.get_database(names.database, write_concern=MAJORITY, read_concern=ReadConcern("majority"))
        return cls(db, db[names.source_collection], db[names.rollups_collection], db[names.outbox_collection],
                   db[names.rejects_collection], db[names.state_collection], db[names.alerts_collection],
                   db[names.counted_collection], db[names.predictions_collection],
                   db[names.segment_rollups_collection], db[names.segment_predictions_collection],
                   db[names.segment_pending_collection], names.create_indexes,
                   config.segments.enabled)


@dataclasses.dataclass(frozen=True)
class WantedIndex:
    """An index CLARA needs: on which of its collections (a Collections field), under which name, for what."""

    role: str
    name: str
    keys: tuple[tuple[str, int], ...]
    purpose: str
    partial: Mapping[str, Any] | None = None
    segments_only: bool = False   # only with segments.fields: without them the collection is not even made

    def options(self) -> dict[str, Any]:
        return {"name": self.name} | ({"partialFilterExpression": self.partial} if self.partial else {})

    def describe(self) -> str:
        partial = f" with partialFilterExpression {json.dumps(self.partial)}" if self.partial else ""
        return f"{self.name} {json.dumps(dict(self.keys))}{partial}"

    def shell_command(self, collection: Collection) -> str:
        """The mongosh command that creates it, for a user who creates indexes themselves."""
        target = f"db.{collection.name}" if collection.name.isidentifier() else \
            f"db.getCollection({json.dumps(collection.name)})"
        return f"{target}.createIndex({json.dumps(dict(self.keys))}, {json.dumps(self.options())})"


WANTED_INDEXES = (
    WantedIndex("source", "clara_unlogged", (("logged", 1), ("_id", 1)),
                "the catch-up scan of reviewed documents not yet logged",
                {"output_validated": {"$exists": True}}),
    WantedIndex("source", "clara_timestamp", (("timestamp", 1),), "replay's selection by prediction time"),
    WantedIndex("source", "clara_review_timestamp", (("output_validated", 1), ("timestamp", 1)),
                "pending-review counts by prediction time"),
    # The dashboard's rollup cache lists (_id, updated_at) for a range on every request: covered by this index.
    WantedIndex("rollups", "clara_hour_updated", (("_id", 1), ("updated_at", 1)),
                "the dashboard's look-up of changed hours"),
    WantedIndex("rejects", "clara_reason", (("reason", 1),), "the listing of rejects by reason"),
    WantedIndex("outbox", "clara_pending", (("pending", 1), ("created_at", 1)), "the queue of undelivered profiles"),
    WantedIndex("counted", "clara_counted_hour", (("hour", 1),), "replay --rebuild's selection of counted reviews"),
    # A field's segment rollups of a range (clara.segments.field_range): the _id index, ordered by period
    # first, would fetch every field's documents of the range to keep one field's.
    *(WantedIndex(role, "clara_segment_field_hour", (("_id.field", 1), ("_id.hour", 1)),
                  "the dashboard's reads of one segment field's rollups over a range", segments_only=True)
      for role in ("segment_rollups", "segment_predictions")),
)
UNAUTHORIZED = 13
CONFLICTS = {85: "IndexOptionsConflict", 86: "IndexKeySpecsConflict"}


def wanted_indexes(collections: Collections) -> tuple[WantedIndex, ...]:
    """The indexes CLARA needs on these collections: the segment collections' only with segments."""
    return tuple(wanted for wanted in WANTED_INDEXES if collections.segmented or not wanted.segments_only)


def ensure_indexes(collections: Collections, *, create: bool | None = None) -> None:
    """Make sure the indexes CLARA needs exist: an equivalent existing one is used whatever its name, only
    missing ones are created; with mongodb.create_indexes = false, each missing one is logged with its
    createIndex command instead. A refused privilege raises IndexPrivilegeError, saying the way out."""
    create = collections.create_indexes if create is None else create
    listed: dict[str, list[Mapping[str, Any]] | None] = {}
    for wanted in wanted_indexes(collections):
        collection: Collection = getattr(collections, wanted.role)
        if wanted.role not in listed:
            listed[wanted.role] = _list_indexes(collection, wanted, create)
        existing = listed[wanted.role]
        ns = collection.full_name
        if existing is None:
            log.warning("cannot check whether index %s exists on %s (no listIndexes privilege; it serves %s): "
                        "if it is missing, create it with %s", wanted.describe(), ns, wanted.purpose,
                        wanted.shell_command(collection))
            continue
        found = next((index for index in existing if _equivalent(index, wanted)), None)
        if found is not None:
            level = logging.DEBUG if found["name"] == wanted.name else logging.INFO
            log.log(level, "using the existing index %s %s on %s for %s, in place of CLARA's %s", found["name"],
                    _describe_existing(found), ns, wanted.purpose, wanted.name)
        elif create:
            _create_index(collection, wanted, existing)
        else:
            log.warning("index %s is missing on %s and mongodb.create_indexes = false (it serves %s; without it "
                        "those queries scan the collection): create it with %s", wanted.describe(), ns,
                        wanted.purpose, wanted.shell_command(collection))


def _list_indexes(collection: Collection, wanted: WantedIndex, create: bool) -> list[Mapping[str, Any]] | None:
    """The collection's indexes ([] while it does not exist); None when listing is refused and CLARA is
    not to create indexes anyway."""
    try:
        return list(collection.list_indexes())
    except OperationFailure as exc:
        if exc.code != UNAUTHORIZED:
            raise
        if not create:
            return None
        ns = collection.full_name
        raise IndexPrivilegeError(
            f"the MongoDB user lacks the listIndexes privilege on {ns}, needed to find or create index "
            f"{wanted.describe()} (it serves {wanted.purpose}): grant listIndexes on {ns}, "
            f"or set mongodb.create_indexes = false and create it yourself: {wanted.shell_command(collection)}"
        ) from exc


def _create_index(collection: Collection, wanted: WantedIndex, existing: list[Mapping[str, Any]]) -> None:
    ns = collection.full_name
    try:
        collection.create_index(list(wanted.keys), **wanted.options())
    except OperationFailure as exc:
        if exc.code == UNAUTHORIZED:
            raise IndexPrivilegeError(
                f"the MongoDB user lacks the createIndex privilege on {ns}, needed for index {wanted.describe()} "
                f"(it serves {wanted.purpose}): grant createIndex on {ns}, create it yourself: "
                f"{wanted.shell_command(collection)}, or set mongodb.create_indexes = false") from exc
        if exc.code not in CONFLICTS:
            raise
        rival = next((index for index in existing if _same_keys(index, wanted)), None) or \
            next((index for index in existing if index["name"] == wanted.name), None)
        rival_text = f"the existing index {rival['name']} {_describe_existing(rival)}" if rival else "an existing index"
        log.warning("MongoDB refused to create CLARA's index %s on %s beside %s (%s: %s); carrying on without "
                    "it (it serves %s; those queries may scan the collection)", wanted.describe(), ns, rival_text,
                    CONFLICTS[exc.code], (exc.details or {}).get("errmsg", exc), wanted.purpose)
        return
    log.info("created index %s on %s for %s", wanted.describe(), ns, wanted.purpose)


def _same_keys(index: Mapping[str, Any], wanted: WantedIndex) -> bool:
    """Same fields in the same order, each in the same direction (any positive number is ascending)."""
    keys = list(index["key"].items())
    return len(keys) == len(wanted.keys) and all(
        field == want_field and isinstance(direction, (int, float)) and not isinstance(direction, bool)
        and (direction > 0) == (want_direction > 0)
        for (field, direction), (want_field, want_direction) in zip(keys, wanted.keys))


def _equivalent(index: Mapping[str, Any], wanted: WantedIndex) -> bool:
    """Serves CLARA's queries as well as its own would: same keys, same partial filter (none for none), and
    not sparse, hidden or with a collation other than the simple one (the planner would pass it over)."""
    collation = index.get("collation")
    return (_same_keys(index, wanted) and _plain(index.get("partialFilterExpression")) == _plain(wanted.partial)
            and not index.get("sparse") and not index.get("hidden")
            and (not collation or collation.get("locale") == "simple"))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _describe_existing(index: Mapping[str, Any]) -> str:
    options = {key: value for key, value in index.items() if key not in ("v", "key", "name", "ns")}
    return json.dumps(_plain(index["key"])) + (f" {json.dumps(_plain(options), default=str)}" if options else "")


def end_orphaned_transactions(client: MongoClient, app_name: str) -> int:
    """Abort transactions left open by a killed process of ours (same app name), which MongoDB would
    otherwise keep for transactionLifetimeLimitSeconds, holding the locks of the documents they touched."""
    try:
        idle = client.admin.aggregate([
            {"$currentOp": {"idleSessions": True, "allUsers": True}},
            {"$match": {"type": "idleSession", "appName": app_name, "transaction": {"$exists": True}}},
        ])
        sessions = [{"id": op["lsid"]["id"]} for op in idle if op.get("lsid")]
        if sessions:
            client.admin.command("killSessions", sessions)
    except OperationFailure as exc:  # e.g. a user without the inprog/killAnySession privileges
        log.warning("cannot look for transactions a killed process left open (%s); MongoDB aborts them "
                    "within transactionLifetimeLimitSeconds", exc)
        return 0
    return len(sessions)
