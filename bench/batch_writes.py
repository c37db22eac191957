"""MongoDB's own rate for exactly the reads and writes of the consumer's batch transactions, with no Python
work between them: the bound a consumer that keeps exactly-once can approach on the same server.

Every payload (counted entries, rollup increments, outbox rows) is computed before the clock starts, from
the same code the consumer runs, on a scratch database of reviewed documents like the bench's own, so the
timed loop is one transaction per batch of: the lease renewal, the read of the documents and of what was
counted for them, the counted inserts, the `logged` marks (optional: consumer.mark_source), the rollup
increments, the outbox entries and the checkpoint.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time
import uuid

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import InsertOne, MongoClient, UpdateOne
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from clara.config import Config
from clara.db import CONSUMER_STATE_ID, Collections, ensure_indexes
from clara.records import parse_document
from consumer.batch import BatchPlan, counted_writes, mark_writes, plan_batch
from consumer.outbox_queue import outbox_documents, sink_names

UTC = dt.timezone.utc
RAW = CodecOptions(document_class=RawBSONDocument)


@dataclasses.dataclass
class _Batch:
    ids: list
    plan: BatchPlan
    outbox: list[dict]


def writes_alone_rate(client: MongoClient, config: Config, documents: list[dict], batch_size: int, *,
                      mark: bool = True) -> dict:
    """Reviews per second for the batch transactions' server work alone, on a scratch copy of `documents`
    (reviewed, with _ids) in a database of its own, dropped afterwards."""
    scratch = f"{config.mongodb.database}_writes_alone"
    scratch_config = dataclasses.replace(config, mongodb=dataclasses.replace(config.mongodb, database=scratch))
    cols = Collections.of(client, scratch_config)
    client.drop_database(scratch)
    try:
        ensure_indexes(cols)
        cols.source.insert_many([dict(doc) for doc in documents], ordered=False)
        sinks = sink_names(config)
        now = dt.datetime.now(UTC)
        batches = []
        for start in range(0, len(documents), batch_size):
            docs = documents[start:start + batch_size]
            plan = plan_batch(docs, config.n_classes, config.model.rollup_period, uuid.uuid4().hex[:16])
            records = [parse_document(doc, config.n_classes) for doc in docs]
            batches.append(_Batch([doc["_id"] for doc in docs], plan,
                                  outbox_documents(config, plan.batch_id, records, sinks, now)))
        source_raw = cols.source.with_options(codec_options=RAW)
        counted_raw = cols.counted.with_options(codec_options=RAW)
        started = time.perf_counter()
        for batch in batches:
            with client.start_session() as session:
                def transaction(session, batch=batch) -> None:
                    at = dt.datetime.now(UTC)
                    cols.state.update_one({"_id": "lease"}, {"$set": {"expires_at": at}}, upsert=True, session=session)
                    list(source_raw.find({"_id": {"$in": batch.ids}}, session=session))
                    list(counted_raw.find({"_id": {"$in": batch.ids}}, session=session))
                    cols.counted.bulk_write(counted_writes(batch.plan, at), ordered=False, session=session)
                    if mark:
                        cols.source.bulk_write(mark_writes(batch.plan, at), ordered=False, session=session)
                    cols.rollups.bulk_write([UpdateOne({"_id": hour}, {"$inc": inc, "$set": {"updated_at": at}},
                                                       upsert=True) for hour, inc in batch.plan.delta.updates()],
                                            ordered=False, session=session)
                    if batch.outbox:
                        cols.outbox.bulk_write([InsertOne(doc) for doc in batch.outbox], ordered=False,
                                               session=session)
                    cols.state.update_one({"_id": CONSUMER_STATE_ID}, {"$set": {"last_batch_at": at}},
                                          upsert=True, session=session)

                session.with_transaction(transaction, read_concern=ReadConcern("snapshot"),
                                         write_concern=WriteConcern("majority"))
        seconds = time.perf_counter() - started
    finally:
        client.drop_database(scratch)
    return {"reviews": len(documents), "batch_size": batch_size, "mark_source": mark, "seconds": round(seconds, 2),
            "reviews_per_second": round(len(documents) / seconds)}


def reviewed(documents: list[dict], n_classes: int, seed: int = 5) -> list[dict]:
    """Copies of prediction documents with a review each (80% agreeing with the model), as the bench's writers make."""
    rng = random.Random(seed)
    now = dt.datetime.now(UTC)
    return [dict(doc, output_validated=doc["output_prediction"] if rng.random() < 0.8 else rng.randrange(n_classes),
                 timestamp_validated=now) for doc in documents]
