"""Two consumers started by mistake: one is active, the other a standby that takes over; never a double count."""

from __future__ import annotations

import datetime as dt
import signal
import threading

import pytest

from clara.config import config_from_mapping
from clara.db import Collections, connect, ensure_indexes
from clara.embedded_mongo import EmbeddedMongo
from consumer.batch import commit_batch
from consumer.lease import Lease, LeaseLost
from tests.support.audit import assert_exactly_once, rollup_cells, rollup_predictions
from tests.support.documents import predictions
from tests.support.processes import start, write_config
from tests.support.running import wait_for

UTC = dt.timezone.utc
START = dt.datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
DEBUG = {"LOG_LEVEL": "DEBUG"}   # per-batch lines: the standby must have none


def consumer_config(tmp_path, database: str):
    return write_config(tmp_path / "config.toml", {
        "mongodb": {"database": database},
        "consumer": {"batch_max_seconds": 0.05, "poll_interval_seconds": 0.2, "lease_seconds": 2.0},
        "profiles": {"local_store_dir": str(tmp_path / "profiles")},
    })


def holder_pid(cols) -> int | None:
    doc = cols.state.find_one({"_id": {"$regex": "^lease:"}})
    return doc and doc.get("pid")


class Writer:
    """Inserts reviewed predictions in rounds; `total` is how many were written."""

    def __init__(self, cols):
        self.cols, self.total, self.round = cols, 0, 0

    def write(self, n: int) -> int:
        self.round += 1
        self.cols.source.insert_many(predictions(n, start=START + dt.timedelta(hours=self.round), seed=self.round))
        self.total += n
        return self.total


def counted(cols, total: int) -> bool:
    """Every review written so far counted, and every prediction (each of them is reviewed)."""
    return rollup_cells(cols)[2] == total and rollup_predictions(cols)[2] == total


def run_two_consumers(tmp_path, uri: str, cols, *, pause_the_active: bool) -> None:
    path = consumer_config(tmp_path, cols.db.name)
    writer = Writer(cols)
    writer.write(40)
    first = start("consumer", path, uri, log_path=tmp_path / "first.log", env=DEBUG)
    second = None
    try:
        wait_for(lambda: holder_pid(cols) == first.pid, timeout=30, what="the first consumer's lease")
        second = start("consumer", path, uri, log_path=tmp_path / "second.log", env=DEBUG)
        wait_for(lambda: "standby" in (tmp_path / "second.log").read_text(), timeout=30, what="the standby")
        total = writer.write(60)
        wait_for(lambda: counted(cols, total), timeout=30, what="reviews counted by the active consumer")
        assert " batch " not in (tmp_path / "second.log").read_text()
        if pause_the_active:
            # Alive but frozen (a long GC pause, a stopped VM): the lease expires and the standby takes over.
            first.send_signal(signal.SIGSTOP)
            total = writer.write(30)
            wait_for(lambda: counted(cols, total), timeout=30, what="the standby taking over")
            assert holder_pid(cols) == second.pid
            first.send_signal(signal.SIGCONT)   # it must notice it lost the lease, and commit nothing
            wait_for(lambda: "lost the consumer lease" in (tmp_path / "first.log").read_text(), timeout=30,
                     what="the old consumer standing by")
            total = writer.write(20)
            wait_for(lambda: counted(cols, total), timeout=30)
            first, second = second, first
        first.kill()   # kill -9 of the active one: the standby takes over at once (same machine, pid gone)
        first.wait(timeout=30)
        total = writer.write(25)
        wait_for(lambda: counted(cols, total), timeout=30, what="the standby after kill -9")
        assert "took over the consumer lease" in (tmp_path / "second.log").read_text() + \
            (tmp_path / "first.log").read_text()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
    assert_exactly_once(cols, 7)
    assert cols.counted.count_documents({}) == writer.total


@pytest.mark.slow
def test_two_consumers_on_a_replica_set_count_each_review_once(tmp_path, mongo_uri, collections):
    run_two_consumers(tmp_path, mongo_uri, collections, pause_the_active=True)


@pytest.mark.slow
def test_two_consumers_on_a_standalone_server_count_each_review_once(tmp_path):
    with EmbeddedMongo(tmp_path / "standalone", replica_set=None) as mongo:
        config = config_from_mapping({"mongodb": {"database": "leased"}}, {"MONGODB_URI": mongo.uri}, source="test")
        client = connect(config)
        try:
            cols = Collections.of(client, config)
            run_two_consumers(tmp_path, mongo.uri, cols, pause_the_active=False)
        finally:
            client.close()


def test_a_batch_commits_nothing_once_another_consumer_holds_the_lease(collections, mongo_client, config):
    ensure_indexes(collections)
    mine = Lease(collections.state, f"lease:{config.mongodb.source_collection}", 60)
    theirs = Lease(collections.state, f"lease:{config.mongodb.source_collection}", 60)
    assert mine.try_acquire() and not theirs.try_acquire()
    collections.source.insert_many(predictions(5, start=START))
    ids = collections.source.distinct("_id")
    commit_batch(mongo_client, collections, config, ids[:2], sinks=(), lease=mine)
    collections.state.update_one({"_id": mine.id}, {"$set": {"expires_at": START}})   # expired: theirs now
    assert theirs.try_acquire()
    with pytest.raises(LeaseLost):
        commit_batch(mongo_client, collections, config, ids[2:], sinks=(), lease=mine)
    assert rollup_cells(collections)[2] == 2 and collections.counted.count_documents({}) == 2


def test_a_standby_waits_until_the_lease_is_released(collections, config):
    first = Lease(collections.state, f"lease:{config.mongodb.source_collection}", 60)
    second = Lease(collections.state, f"lease:{config.mongodb.source_collection}", 60)
    assert first.try_acquire()
    stop, got = threading.Event(), []
    waiter = threading.Thread(target=lambda: got.append(second.wait_for(stop)))
    waiter.start()
    try:
        assert not got
        first.release()   # a clean stop gives the lease up at once
        waiter.join(timeout=10)
        assert got == [True]
    finally:
        stop.set()
        waiter.join(timeout=10)
