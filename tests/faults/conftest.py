"""Fault-suite fixtures: a mongod of the test's own (to stop, restart or fill), and a review writer."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest

from clara.config import config_from_mapping
from clara.db import Collections, connect, ensure_indexes
from clara.embedded_mongo import EmbeddedMongo
from tests.support.documents import predictions

UTC = dt.timezone.utc


@pytest.fixture
def own_mongo(tmp_path) -> Iterator[EmbeddedMongo]:
    mongo = EmbeddedMongo(tmp_path / "mongod", test_commands=True, oplog_size_mb=990).start()
    try:
        yield mongo
    finally:
        mongo.stop()


@pytest.fixture
def own_setup(own_mongo, tmp_path):
    config = config_from_mapping({"consumer": {"batch_size": 50, "batch_max_seconds": 0.05, "catchup_batch_size": 40,
                                               "reconnect_max_seconds": 1.0},
                                  "profiles": {"local_store_dir": str(tmp_path / "profiles")}},
                                 {"MONGODB_URI": own_mongo.uri}, source="test")
    client = connect(config, serverSelectionTimeoutMS=30000)
    cols = Collections.of(client, config)
    ensure_indexes(cols)
    yield config, client, cols
    client.close()


class ReviewWriter(threading.Thread):
    """Writes batches of predictions (most of them reviewed) until stopped; remembers what it wrote."""

    def __init__(self, cols: Collections, start: dt.datetime, batch: int = 10, pause: float = 0.02,
                 bad_every: int = 0, seed: int = 0, step: dt.timedelta = dt.timedelta(minutes=7)):
        super().__init__(daemon=True)
        self.cols, self.start_at, self.batch, self.pause, self.bad_every, self.seed = cols, start, batch, pause, bad_every, seed
        self.step = step  # prediction time between documents: it sets how many hours (profiles) a batch spans
        self.stopping = threading.Event()
        self.written: list[dict] = []
        self.failures = 0

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            docs = predictions(self.batch, start=self.start_at + dt.timedelta(seconds=20 * i), seed=self.seed + i,
                               legacy_fraction=0.2, step=self.step)
            if self.bad_every and i % self.bad_every == 0:
                docs[0]["output_prediction"] = 99
                docs[1]["timestamp"] = "not a date"
            try:
                self.cols.source.insert_many(docs)
                self.written.extend(docs)
            except Exception:  # noqa: BLE001 - the server is being faulted on purpose; try again
                self.failures += 1
                time.sleep(0.2)
            i += 1
            time.sleep(self.pause)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)

    def valid_reviews(self) -> int:
        return sum(1 for d in self.written if d.get("output_validated") is not None
                   and isinstance(d.get("timestamp"), dt.datetime) and d.get("output_prediction") != 99)
