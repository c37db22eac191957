"""MongoDB's own fault injection against the consumer: fail points, step-downs, restarts, a lost oplog."""

from __future__ import annotations

import datetime as dt
import signal
import time

import pytest
from bson import Timestamp
from pymongo.errors import OperationFailure, PyMongoError

from clara.db import Collections, connect
from consumer.batch import CONSUMER_STATE_ID
from tests.faults.conftest import ReviewWriter
from tests.support.audit import assert_exactly_once, everything_counted, rollup_cells
from tests.support.documents import predictions
from tests.support.processes import start, write_config
from tests.support.running import running_follower, wait_for

UTC = dt.timezone.utc
START = dt.datetime(2026, 7, 1, tzinfo=UTC)
UNDER_TEST = "consumer-under-test"

# (commands, error code, labels): resumable, transient and plain failures for the consumer's client only.
FAULTS = [
    (["getMore"], 91, []),                                   # ShutdownInProgress: resumable
    (["getMore"], 2, []),                                    # BadValue: not resumable, reconnect loop
    (["aggregate"], 2, []),                                  # opening the stream fails
    (["commitTransaction"], 91, ["UnknownTransactionCommitResult"]),
    (["commitTransaction"], 112, ["TransientTransactionError"]),  # WriteConflict
    (["update"], 112, ["TransientTransactionError"]),
    (["find"], 91, []),
    (["insert"], 262, ["TransientTransactionError"]),          # ExceededTimeLimit on the outbox
]


def fail(client, commands, code, labels, times=2):
    client.admin.command("configureFailPoint", "failCommand", mode={"times": times},
                         data={"failCommands": commands, "errorCode": code, "errorLabels": labels,
                               "appName": UNDER_TEST})


def test_fail_points_and_step_downs_lose_and_double_nothing(own_mongo, own_setup):
    config, client, cols = own_setup
    consumer_client = connect(config, appname=UNDER_TEST, serverSelectionTimeoutMS=30000)
    writer = ReviewWriter(cols, START)
    writer.start()
    try:
        with running_follower(consumer_client, Collections.of(consumer_client, config), config):
            for commands, code, labels in FAULTS:
                fail(client, commands, code, labels)
                time.sleep(0.6)
            for _ in range(2):
                try:
                    client.admin.command("replSetStepDown", 1, force=True)
                except PyMongoError:
                    pass  # the step-down closes our own connection too
                time.sleep(1.5)
            writer.stop()
            wait_for(lambda: everything_counted(cols, config.n_classes), timeout=60,
                     what="every review")
    finally:
        writer.stop()
        client.admin.command("configureFailPoint", "failCommand", mode="off")
        consumer_client.close()
    assert writer.valid_reviews() > 100
    assert_exactly_once(cols, config.n_classes)


def test_mongod_restart_under_a_running_consumer(own_mongo, own_setup, tmp_path):
    config, client, cols = own_setup
    path = write_config(tmp_path / "config.toml", {"consumer": {"reconnect_max_seconds": 1.0, "batch_max_seconds": 0.05},
                                                   "profiles": {"local_store_dir": str(tmp_path / "profiles")}})
    process = start("consumer", path, own_mongo.uri, log_path=tmp_path / "consumer.log")
    writer = ReviewWriter(cols, START, seed=50)
    writer.start()
    try:
        wait_for(lambda: rollup_cells(cols)[2] > 20, timeout=30, what="first reviews")
        for _ in range(2):
            own_mongo.stop()
            time.sleep(1.0)
            own_mongo.start()
            wait_for(lambda: rollup_cells(cols)[2] > 0, timeout=30)
            time.sleep(1.0)
        own_mongo.kill()  # and once as a crash
        own_mongo.start()
        time.sleep(1.0)
        writer.stop()
        wait_for(lambda: everything_counted(cols, config.n_classes), timeout=90,
                 what="every review")
    finally:
        writer.stop()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    log = (tmp_path / "consumer.log").read_text()
    assert code == 0, log[-3000:]
    assert_exactly_once(cols, config.n_classes)


def oldest_oplog_time(client) -> Timestamp:
    """The oldest oplog entry's time; a scan the oplog's truncation overtakes (CappedPositionLost) is redone."""
    while True:
        try:
            return client.local["oplog.rs"].find_one(sort=[("$natural", 1)])["ts"]
        except OperationFailure as exc:
            if exc.code != 136:
                raise


@pytest.mark.slow
def test_resume_token_falls_out_of_the_oplog_while_the_consumer_is_stopped(own_mongo, own_setup, tmp_path):
    config, client, cols = own_setup
    path = write_config(tmp_path / "config.toml", {"consumer": {"batch_max_seconds": 0.05},
                                                   "profiles": {"local_store_dir": str(tmp_path / "profiles")}})
    cols.source.insert_many(predictions(30, start=START))
    process = start("consumer", path, own_mongo.uri, log_path=tmp_path / "consumer.log")
    wait_for(lambda: rollup_cells(cols)[2] == 30, timeout=30)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    token_time: Timestamp = client.local["oplog.rs"].find_one(sort=[("$natural", -1)])["ts"]
    # Reviews written while the consumer is down, then enough other writes to roll the oplog past them.
    cols.source.insert_many(predictions(25, start=START, seed=77))
    doc_id = cols.source.find_one({"logged": True})["_id"]
    cols.source.update_one({"_id": doc_id}, {"$set": {"output_validated": 6}})  # a correction, also lost
    pad = "x" * (1 << 20)
    while oldest_oplog_time(client) <= token_time:
        client.scratch.pad.insert_many([{"p": pad} for _ in range(50)])
    process = start("consumer", path, own_mongo.uri, log_path=tmp_path / "consumer.log")
    try:
        wait_for(lambda: rollup_cells(cols)[2] == 55, timeout=60, what="the re-scan")
        wait_for(lambda: cols.counted.find_one({"_id": doc_id})["truth"] == 6, timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert "history lost" in (tmp_path / "consumer.log").read_text()
    assert cols.state.find_one({"_id": CONSUMER_STATE_ID})["resume_token"]
    assert_exactly_once(cols, config.n_classes)


def test_a_flood_of_malformed_documents_is_set_aside_and_the_rest_counted(own_setup):
    config, client, cols = own_setup
    # Live-like prediction times (seconds apart), so the flood's cost is the documents, not hundreds of hours of profiles.
    writer = ReviewWriter(cols, START, batch=20, pause=0.0, bad_every=1, seed=900, step=dt.timedelta(seconds=1))
    with running_follower(client, cols, config):
        writer.start()
        time.sleep(1.5)
        writer.stop()
        wait_for(lambda: everything_counted(cols, config.n_classes), timeout=120,
                 what="every good review")
    bad = len(writer.written) // 20 * 2
    assert cols.rejects.count_documents({}) == bad > 50
    assert {d["field"] for d in cols.rejects.find()} == {"output_prediction", "timestamp"}
    assert_exactly_once(cols, config.n_classes)
