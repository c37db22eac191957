"""MongoDB access: clients built from config, CLARA's collections by role, and the indexes they need."""

from __future__ import annotations

import dataclasses
import logging

from bson.codec_options import DatetimeConversion
from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from clara.config import Config

log = logging.getLogger(__name__)
# The state document where the consumer keeps its checkpoint and reports its last batch and lag.
CONSUMER_STATE_ID = "consumer"
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

    @classmethod
    def of(cls, client: MongoClient, config: Config) -> Collections:
        names = config.mongodb
        db = client.get_database(names.database, write_concern=MAJORITY, read_concern=ReadConcern("majority"))
        return cls(db, db[names.source_collection], db[names.rollups_collection], db[names.outbox_collection],
                   db[names.rejects_collection], db[names.state_collection], db[names.alerts_collection],
                   db[names.counted_collection])


def ensure_indexes(collections: Collections) -> None:
    """Create the indexes CLARA needs, idempotently (create_index is a no-op when one exists)."""
    # Catch-up scan: reviewed documents not yet logged, in _id order.
    collections.source.create_index(
        [("logged", ASCENDING), ("_id", ASCENDING)], name="clara_unlogged",
        partialFilterExpression={"output_validated": {"$exists": True}})
    # Replay and pending counts select by prediction time.
    collections.source.create_index([("timestamp", ASCENDING)], name="clara_timestamp")
    collections.source.create_index([("output_validated", ASCENDING), ("timestamp", ASCENDING)],
                                    name="clara_review_timestamp")
    # The dashboard's rollup cache lists (_id, updated_at) for a range on every request: covered by this index.
    collections.rollups.create_index([("_id", ASCENDING), ("updated_at", ASCENDING)], name="clara_hour_updated")
    collections.rejects.create_index([("reason", ASCENDING)], name="clara_reason")
    collections.outbox.create_index([("pending", ASCENDING), ("created_at", ASCENDING)], name="clara_pending")


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
