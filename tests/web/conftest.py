"""Fixtures for the web tests: a config, source documents, rollups from them, and the app on a free port.

Rollups come from the consumer's `catch_up` when it is importable; until then from a small stand-in
that applies clara.rollups increments per hour exactly as the consumer documents them.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Mapping

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from clara.config import Config
from clara.db import Collections
from clara.metrics import REJECTED
from clara.records import Record, Review, parse_document
from clara.rollups import Counted, RollupDelta
from web.app import create_app

try:
    from consumer.catchup import catch_up
except ImportError:  # the consumer is not there yet
    catch_up = None

UTC = dt.timezone.utc


@pytest.fixture
def web_config(make_config) -> Config:
    return make_config(web={"sse_heartbeat_seconds": 0.5, "sse_max_updates_per_second": 10.0},
                       consumer={"batch_max_seconds": 0.05})


@pytest.fixture
def web_collections(mongo_client, web_config) -> Collections:
    from clara.db import ensure_indexes

    cols = Collections.of(mongo_client, web_config)
    ensure_indexes(cols)
    return cols


@pytest.fixture
async def client(aiohttp_client, web_config, web_collections):
    """A test client for the app, served on 127.0.0.1 at a free port; closed after the test."""
    return await aiohttp_client(create_app(web_config))


@pytest.fixture
def process(mongo_client, web_collections, web_config):
    """Turn every reviewed, unlogged source document into rollups (synchronously)."""
    def run() -> None:
        if catch_up is not None:
            catch_up(mongo_client, web_collections, web_config)
        else:
            roll_up(web_collections, web_config)
    return run


def roll_up(collections: Collections, config: Config) -> None:
    """Stand-in for the consumer: $inc the hourly rollups, keep what was counted in the counted collection
    (keyed by the document's _id, as consumer/batch.py does) and mark the documents logged."""
    delta = RollupDelta()
    now = dt.datetime.now(UTC)
    for doc in collections.source.find({"logged": {"$ne": True}, "output_validated": {"$ne": None}}):
        record = parse_document(doc, config.n_classes)
        if isinstance(record, Record):
            counted = Counted.of(record, config.model.rollup_period)
            delta.add(counted)
            collections.counted.replace_one({"_id": doc["_id"]}, counted.to_doc() | {"_id": doc["_id"], "at": now},
                                            upsert=True)
            collections.source.update_one({"_id": doc["_id"]}, {"$set": {"logged": True, "logged_at": now}})
    for hour, inc in delta.updates():
        collections.rollups.update_one({"_id": hour}, {"$inc": inc}, upsert=True)


def make_documents(rng: random.Random, start: dt.datetime, hours: int, per_hour: int, n_classes: int,
                   first_id: int = 0) -> list[dict]:
    """Source documents spread over `hours` hours from `start`: reviewed (int or legacy bool) and pending."""
    docs = []
    for n in range(hours * per_hour):
        timestamp = start + dt.timedelta(hours=n // per_hour, minutes=rng.randrange(60), seconds=rng.randrange(60))
        predicted = rng.randrange(n_classes)
        doc = {"_id": first_id + n, "filename": f"img_{first_id + n}.jpg", "output_prediction": predicted,
               "output_confidence": round(rng.random(), 6), "timestamp": timestamp}
        kind = rng.random()
        if kind < 0.15:
            pass  # pending
        elif kind < 0.22:
            doc["output_validated"] = False
        elif kind < 0.3:
            doc["output_validated"] = True
        else:
            doc["output_validated"] = predicted if rng.random() < 0.6 else rng.randrange(n_classes)
        if "output_validated" in doc:
            doc["timestamp_validated"] = timestamp + dt.timedelta(seconds=rng.randrange(1, 200_000))
        docs.append(doc)
    return docs


def expected_metrics(docs: Iterable[Mapping], n_classes: int) -> dict:
    """scikit-learn on the raw documents: accuracy and precision/recall/F1 per class and averaged."""
    records = [r for r in (parse_document(doc, n_classes) for doc in docs)
               if isinstance(r, Record) and r.review is not Review.PENDING]
    if not records:
        return {"reviews": 0, "accuracy": None}
    y_true = np.array([REJECTED if r.truth is None else r.truth for r in records])
    y_pred = np.array([r.predicted for r in records])
    labels = list(range(n_classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=np.nan)
    result = {"reviews": len(records), "accuracy": float(accuracy_score(y_true, y_pred)),
              "precision": _numbers(precision), "recall": _numbers(recall), "f1": _numbers(f1),
              "support": [int(s) for s in support]}
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                                     zero_division=np.nan)
        result[average] = {"precision": _number(p), "recall": _number(r), "f1": _number(f)}
    return result


def local_day(doc: Mapping, zone) -> dt.date:
    timestamp = doc["timestamp"]
    timestamp = timestamp.replace(tzinfo=UTC) if timestamp.tzinfo is None else timestamp
    return timestamp.astimezone(zone).date()


def _number(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def _numbers(values) -> list[float | None]:
    return [_number(v) for v in values]
