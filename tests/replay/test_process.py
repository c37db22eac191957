"""`python -m replay` as a real process: SIGKILL half-way or Ctrl-C, then the same command again, exactly once."""

from __future__ import annotations

import datetime as dt
import signal
from collections import Counter

from consumer.catchup import catch_up
from tests.replay.conftest import recount, rollups
from tests.support.audit import assert_exactly_once
from tests.support.documents import predictions
from tests.support.processes import start
from tests.support.running import wait_for

UTC = dt.timezone.utc
START = dt.datetime(2026, 3, 9, 23, tzinfo=UTC)
RANGE = ["--from", "2026-03-10", "--to", "2026-03-16"]


def run_to_end(config_path, mongo_uri, log_path, *args) -> int:
    process = start("replay", config_path, mongo_uri, *RANGE, *args, log_path=log_path)
    return process.wait(timeout=240)


def test_a_backfill_killed_half_way_finishes_exactly_once_when_run_again(tmp_path, mongo_uri, collections, config,
                                                                         config_file):
    collections.source.insert_many(predictions(5000, start=START, step=dt.timedelta(minutes=1), reviewed_fraction=0.9))
    path, log = config_file(local_store=False, catchup_batch_size=5), tmp_path / "replay.log"
    process = start("replay", path, mongo_uri, *RANGE, log_path=log)
    wait_for(lambda: collections.source.count_documents({"logged": True}) >= 300, timeout=60, what="300 reviews")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    reviewed = collections.source.count_documents({"output_validated": {"$ne": None}})
    assert 300 <= collections.source.count_documents({"logged": True}) < reviewed, "killed too late to prove anything"
    assert run_to_end(path, mongo_uri, log) == 0, log.read_text()
    assert assert_exactly_once(collections, config.n_classes) == reviewed
    assert rollups(collections) == recount(collections, config.n_classes)


def test_ctrl_c_finishes_the_current_batch_and_exits_130(tmp_path, mongo_uri, collections, config, config_file):
    collections.source.insert_many(predictions(2000, start=START, step=dt.timedelta(minutes=3)))
    path, log = config_file(local_store=False, catchup_batch_size=5), tmp_path / "replay.log"
    process = start("replay", path, mongo_uri, *RANGE, log_path=log)
    wait_for(lambda: collections.source.count_documents({"logged": True}) >= 100, timeout=60, what="100 reviews")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    text = log.read_text()
    assert "SIGINT received: finishing the current batch" in text and "replay interrupted" in text
    logged = collections.source.count_documents({"logged": True})
    assert logged % 5 == 0 and logged < 2000                 # whole batches only
    assert rollups(collections) == recount(collections, config.n_classes, {"logged": True})
    assert run_to_end(path, mongo_uri, log) == 0
    assert assert_exactly_once(collections, config.n_classes) == 2000


def test_a_rebuild_killed_half_way_resumes_and_resends_each_hour_once(tmp_path, mongo_uri, mongo_client, collections,
                                                                       config, config_file):
    collections.source.insert_many(predictions(600, start=START, step=dt.timedelta(minutes=4), reviewed_fraction=0.9))
    catch_up(mongo_client, collections, config, sinks=())
    collections.rollups.update_many({}, {"$inc": {"reviews": 5}})          # wrong everywhere: the rebuild fixes it
    path, log = config_file(), tmp_path / "replay.log"
    process = start("replay", path, mongo_uri, *RANGE, "--rebuild", "--profiles", "local", "--batch-size", "30",
                    log_path=log)   # two hours per transaction
    wait_for(lambda: collections.outbox.count_documents({}) >= 5, timeout=60, what="5 hours rebuilt")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    hours = collections.rollups.count_documents({})
    assert collections.outbox.count_documents({}) < hours, "killed too late to prove anything"
    assert run_to_end(path, mongo_uri, log, "--rebuild", "--profiles", "local", "--batch-size", "30") == 0, \
        log.read_text()
    assert rollups(collections) == recount(collections, config.n_classes)
    assert_exactly_once(collections, config.n_classes)
    per_hour = Counter(entry["hour"] for entry in collections.outbox.find({}, {"hour": 1}))
    assert len(per_hour) == hours and set(per_hour.values()) == {1}
    assert len({entry["batch_id"].split("-")[1] for entry in collections.outbox.find()}) == 1   # one run, resumed
