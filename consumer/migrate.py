"""One-time migration: `logged_as` snapshots on source documents become entries of the counted collection.

Earlier versions kept what a review added to the rollups on the model's own document, where a writer's
replace could erase it (and the review was then counted again). The first start of this version copies
every snapshot into CLARA's counted collection (never over an entry that exists) and, with
consumer.mark_source, removes the field from the source; batches of `catchup_batch_size` in _id order,
each in one transaction, so an interrupted migration resumes where it stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from pymongo import MongoClient, UpdateOne
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from clara.config import Config
from clara.db import Collections
from clara.rollups import Counted

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
MIGRATIONS_ID = "migrations"
STEP = "counted_from_logged_as"


def migrate_logged_as(client: MongoClient, cols: Collections, config: Config, *, transactions: bool = True) -> int:
    """Copy `logged_as` snapshots into the counted collection, once; returns how many were copied."""
    state = cols.state.find_one({"_id": MIGRATIONS_ID}) or {}
    if state.get(STEP):
        return 0
    copied, after = 0, state.get(f"{STEP}_after")
    while True:
        selector = {"logged_as": {"$exists": True}} | ({} if after is None else {"_id": {"$gt": after}})
        docs = list(cols.source.find(selector, {"logged": 1, "logged_as": 1}).sort("_id", 1)
                    .limit(config.consumer.catchup_batch_size))
        if not docs:
            break
        after = docs[-1]["_id"]
        copied += _copy(client, cols, config, docs, after, transactions)
        log.info("migrating logged_as snapshots into %s: %d copied so far", cols.counted.name, copied)
    cols.state.update_one({"_id": MIGRATIONS_ID}, {"$set": {STEP: dt.datetime.now(UTC)}}, upsert=True)
    if copied:
        log.info("migration done: %d counted reviews now live in %s", copied, cols.counted.name)
    return copied


def _copy(client: MongoClient, cols: Collections, config: Config, docs: list[Mapping], after, transactions: bool) -> int:
    now = dt.datetime.now(UTC)
    entries = []
    for doc in docs:
        counted = _snapshot(doc)
        if counted is not None:
            entries.append(UpdateOne({"_id": doc["_id"]}, {"$setOnInsert": counted.to_doc() | {"at": now}}, upsert=True))
    unset = [UpdateOne({"_id": doc["_id"]}, {"$unset": {"logged_as": ""}}) for doc in docs]

    def write(session=None) -> None:
        if entries:
            cols.counted.bulk_write(entries, ordered=False, session=session)
        if config.consumer.mark_source:
            cols.source.bulk_write(unset, ordered=False, session=session)
        cols.state.update_one({"_id": MIGRATIONS_ID}, {"$set": {f"{STEP}_after": after}}, upsert=True, session=session)

    if not transactions:
        write()   # each write is idempotent: a crash midway is finished by the next start
        return len(entries)
    with client.start_session() as session:
        session.with_transaction(write, read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority"))
    return len(entries)


def _snapshot(doc: Mapping) -> Counted | None:
    logged_as = doc.get("logged_as")
    if doc.get("logged") is not True or not isinstance(logged_as, Mapping):
        return None
    try:
        return Counted.from_doc(logged_as)
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
