"""The embedded mongod: a replica set with change streams, and no orphan when its parent dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from pymongo import MongoClient

from clara import embedded_mongo
from clara.embedded_mongo import EmbeddedMongo
from clara.errors import EmbeddedMongoError
from tests.support.processes import REPO


def test_change_streams_work_on_the_session_replica_set(mongo_uri):
    with MongoClient(mongo_uri) as client:
        collection = client.get_database("t_stream").probe
        with collection.watch() as stream:
            collection.insert_one({"x": 1})
            event = None
            deadline = time.monotonic() + 10
            while event is None and time.monotonic() < deadline:
                event = stream.try_next()
        client.drop_database("t_stream")
    assert event is not None and event["operationType"] == "insert"


def test_mongod_dies_with_a_killed_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
sys.path.insert(0, {str(REPO)!r})
from clara.embedded_mongo import EmbeddedMongo
mongo = EmbeddedMongo({str(tmp_path / 'data')!r}).start()
print(mongo.process.pid, flush=True)
time.sleep(120)
"""], stdout=subprocess.PIPE)
    try:
        mongod_pid = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    finally:
        parent.stdout.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(mongod_pid):
        time.sleep(0.2)
    assert not _alive(mongod_pid), "mongod outlived its killed parent"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_platform_without_the_wheel_gets_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(embedded_mongo.platform, "machine", lambda: "aarch64")
    with pytest.raises(EmbeddedMongoError, match="Linux x86-64 only.*MONGODB_URI.*Docker"):
        EmbeddedMongo(tmp_path).start()


def test_a_standalone_server_starts_without_a_replica_set(tmp_path):
    with EmbeddedMongo(tmp_path, replica_set=None) as mongo, MongoClient(mongo.uri) as client:
        assert "setName" not in client.admin.command("hello")


def test_on_ctrl_c_it_keeps_serving_clara_while_its_processes_finish_then_stops(tmp_path):
    """Ctrl-C under scripts/run reaches every process at once: mongod must outlive the consumer's last batch."""
    from clara.embedded_mongo import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "clara.embedded_mongo", "--data", str(tmp_path / "data"),
                               "--port", str(port)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        assert server.stdout.readline().startswith("mongod ready"), "the embedded mongod did not start"
        client = MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=2000,
                             appname="clara-consumer:db.image_logs")   # as the consumer names its client
        client.t.probe.insert_one({"before": True})
        os.killpg(server.pid, signal.SIGINT)   # as the terminal's Ctrl-C does
        time.sleep(1.0)
        client.t.probe.insert_one({"after": True})   # a CLARA process finishing its work still gets answers
        assert server.poll() is None
        client.close()   # the last CLARA process exits: mongod stops, well before its grace runs out
        assert server.wait(timeout=embedded_mongo.STOP_GRACE_SECONDS + 10) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stdout.close()
