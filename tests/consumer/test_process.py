"""`python -m consumer` as a real process: it follows reviews, stops cleanly on SIGTERM, survives SIGKILL."""

from __future__ import annotations

import datetime as dt
import random
import signal
import threading
import time

from tests.support.audit import assert_exactly_once, everything_counted, rollup_cells
from tests.support.documents import predictions
from tests.support.processes import start, write_config
from tests.support.running import wait_for

UTC = dt.timezone.utc
START = dt.datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def consumer_config(tmp_path, config):
    return write_config(tmp_path / "config.toml", {
        "mongodb": {"database": config.mongodb.database},
        "consumer": {"batch_size": 50, "batch_max_seconds": 0.05, "catchup_batch_size": 40},
        "profiles": {"local_store_dir": str(tmp_path / "profiles")},
    })


def test_follows_reviews_and_exits_zero_on_sigterm(tmp_path, mongo_uri, collections, config):
    collections.source.insert_many(predictions(30, start=START))
    process = start("consumer", consumer_config(tmp_path, config), mongo_uri, log_path=tmp_path / "consumer.log")
    try:
        wait_for(lambda: rollup_cells(collections)[2] == 30, what="the backlog")
        collections.source.insert_many(predictions(20, start=START, seed=5))
        wait_for(lambda: rollup_cells(collections)[2] == 50, what="live reviews")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    log = (tmp_path / "consumer.log").read_text()
    assert code == 0, log
    assert "SIGTERM received" in log and "consumer stopped" in log
    assert_exactly_once(collections, config.n_classes)


def test_bad_config_stops_start_up_with_the_key(tmp_path, mongo_uri):
    path = write_config(tmp_path / "bad.toml", {"consumer": {"batch_size": "many"}})
    process = start("consumer", path, mongo_uri, log_path=tmp_path / "out.log")
    assert process.wait(timeout=60) == 2
    assert "consumer.batch_size = 'many': expected an integer" in (tmp_path / "out.log").read_text()


def test_sigkill_at_random_moments_never_loses_or_doubles_a_review(tmp_path, mongo_uri, collections, config):
    rng = random.Random(7)
    path = consumer_config(tmp_path, config)
    writing = threading.Event()
    written = []

    def write_reviews() -> None:
        i = 0
        while not writing.is_set():
            docs = predictions(15, start=START + dt.timedelta(hours=i), seed=100 + i, legacy_fraction=0.2)
            collections.source.insert_many(docs)
            written.extend(docs)
            i += 1
            time.sleep(0.02)

    writer = threading.Thread(target=write_reviews, daemon=True)
    writer.start()
    kills = 0
    try:
        for _ in range(8):
            process = start("consumer", path, mongo_uri, log_path=tmp_path / "consumer.log")
            time.sleep(rng.uniform(0.8, 2.5))
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
    finally:
        writing.set()
        writer.join()
    process = start("consumer", path, mongo_uri, log_path=tmp_path / "consumer.log")
    try:
        expected = sum(1 for doc in written if doc.get("output_validated") is not None)
        wait_for(lambda: rollup_cells(collections)[2] == expected and everything_counted(collections, config.n_classes),
                 timeout=90, what="every review and prediction")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert kills == 8
    assert_exactly_once(collections, config.n_classes)


def test_a_restarted_consumer_ends_the_transaction_a_killed_one_left_open(tmp_path, mongo_uri, collections, config):
    """Without this, the killed consumer's locks stay for MongoDB's 60 s transaction lifetime."""
    import subprocess
    import sys

    doc_id = collections.source.insert_one(predictions(1, start=START)[0]).inserted_id
    app_name = f"clara-consumer:{config.mongodb.database}.{config.mongodb.source_collection}"
    holder = subprocess.Popen([sys.executable, "-c", f"""
from pymongo import MongoClient
import time
client = MongoClient({mongo_uri!r}, appname={app_name!r})
session = client.start_session()
session.start_transaction()
client[{config.mongodb.database!r}][{config.mongodb.source_collection!r}].update_one(
    {{"_id": __import__("bson").ObjectId({str(doc_id)!r})}}, {{"$set": {{"probe": 1}}}}, session=session)
print("holding", flush=True)
time.sleep(300)
"""], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"holding"
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    process = start("consumer", consumer_config(tmp_path, config), mongo_uri, log_path=tmp_path / "consumer.log")
    try:
        wait_for(lambda: rollup_cells(collections)[2] == 1, timeout=20, what="the locked review")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert "ended 1 transaction(s) a killed consumer left open" in (tmp_path / "consumer.log").read_text()
    assert "probe" not in collections.source.find_one({"_id": doc_id})  # the orphan was aborted, not committed


def workers_pid(log_path) -> int:
    """The workers' process id, as the consumer logs it at start."""
    def logged() -> int | None:
        for line in log_path.read_text().splitlines():
            if "outbox delivery and alerts run in process" in line:
                return int(line.rsplit(" ", 1)[1])
        return None
    wait_for(lambda: logged() is not None, what="the workers' process")
    return logged()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"   # a zombie has exited
    except FileNotFoundError:
        return False


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def test_profiles_are_delivered_from_a_process_of_their_own_that_stops_with_the_consumer(
        tmp_path, mongo_uri, collections, config):
    collections.source.insert_many(predictions(30, start=START))
    log_path = tmp_path / "consumer.log"
    process = start("consumer", consumer_config(tmp_path, config), mongo_uri, log_path=log_path)
    try:
        pid = workers_pid(log_path)
        assert pid != process.pid and parent_of(pid) == process.pid
        wait_for(lambda: rollup_cells(collections)[2] == 30, what="the backlog")
        wait_for(lambda: collections.outbox.count_documents({}) == 0 and any((tmp_path / "profiles").rglob("*.bin")),
                 what="the profiles delivered")
    finally:
        process.send_signal(signal.SIGTERM)   # the consumer alone: it stops its workers itself
        code = process.wait(timeout=60)
    assert code == 0, log_path.read_text()
    wait_for(lambda: not alive(pid), what="the workers' process to exit")


def test_the_workers_process_does_not_outlive_a_killed_consumer(tmp_path, mongo_uri, collections, config):
    log_path = tmp_path / "consumer.log"
    process = start("consumer", consumer_config(tmp_path, config), mongo_uri, log_path=log_path)
    pid = workers_pid(log_path)
    process.kill()
    process.wait(timeout=30)
    wait_for(lambda: not alive(pid), timeout=15, what="the orphaned workers' process to exit")
    assert "is gone: its workers stop" in log_path.read_text()
