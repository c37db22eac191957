"""Live mode: in-process determinism, and `python -m simulator` as a real process against the test mongod."""

from __future__ import annotations

import threading

from clara.records import Record, parse_document
from simulator.generator import Settings
from simulator.model import Behaviour
from simulator.traffic import LiveTraffic
from tests.support.processes import start, write_config
from tests.support.running import wait_for

SETTINGS = Settings(Behaviour((1.0,) * 7, (0.8,) * 7), review_fraction=0.7, review_delay=0.05,
                    legacy_fraction=0.2, filename_prefix="live")
CONTENT = {"_id": 0, "filename": 1, "output_prediction": 1, "output_confidence": 1, "output_validated": 1}


def _run(source, seed: int, duration: float = 0.6):
    return LiveTraffic(source, SETTINGS, seed, rate=200.0).run(threading.Event(), duration)


def test_same_seed_same_documents_apart_from_wall_clock_times(collections, mongo_client):
    other = mongo_client[collections.db.name + "_b"].image_logs
    try:
        first, second = _run(collections.source, 3), _run(other, 3)
        assert first.predictions > 50 and second.predictions > 50
        assert first.reviews > 20
        docs = [{d["filename"]: d for d in source.find({}, CONTENT)} for source in (collections.source, other)]
    finally:
        mongo_client.drop_database(collections.db.name + "_b")
    common = docs[0].keys() & docs[1].keys()
    assert len(common) >= min(first.predictions, second.predictions)
    for name in common:
        a, b = docs[0][name], docs[1][name]
        if "output_validated" in a and "output_validated" in b:
            assert a == b
        else:
            assert {k: v for k, v in a.items() if k != "output_validated"} == \
                   {k: v for k, v in b.items() if k != "output_validated"}


def test_reviews_follow_their_predictions(collections):
    stats = _run(collections.source, 4, duration=0.8)
    docs = list(collections.source.find())
    assert len(docs) == stats.predictions
    reviewed = [d for d in docs if "output_validated" in d]
    assert len(reviewed) == stats.reviews > 0
    for doc in reviewed:
        record = parse_document(doc, 7)
        assert isinstance(record, Record)
        assert doc["timestamp"] <= doc["timestamp_validated"]


def test_python_m_simulator_writes_history_then_live_traffic(tmp_path, mongo_uri, config, collections):
    path = write_config(tmp_path / "config.toml", {"mongodb": {"database": config.mongodb.database}})
    process = start("simulator", path, mongo_uri, "--seed", "1", "--rate", "50", "--duration", "2",
                    "--review-delay", "0.2", "--history-days", "1", "--history-per-day", "40",
                    log_path=tmp_path / "simulator.log")
    try:
        wait_for(lambda: collections.source.count_documents({"filename": {"$regex": "^live_"}}) > 0,
                 timeout=20, what="live predictions")
        wait_for(lambda: collections.source.count_documents(
            {"filename": {"$regex": "^live_"}, "output_validated": {"$exists": True}}) > 0,
            timeout=10, what="live reviews")
        assert process.wait(timeout=30) == 0, (tmp_path / "simulator.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert collections.source.count_documents({"filename": {"$regex": "^hist_"}}) == 40
    live = collections.source.count_documents({"filename": {"$regex": "^live_"}})
    assert 80 <= live <= 101
    assert "stopped: " in (tmp_path / "simulator.log").read_text()


def test_python_m_simulator_stops_cleanly_on_sigterm(tmp_path, mongo_uri, config, collections):
    path = write_config(tmp_path / "config.toml", {"mongodb": {"database": config.mongodb.database}})
    process = start("simulator", path, mongo_uri, "--rate", "20", log_path=tmp_path / "simulator.log")
    try:
        wait_for(lambda: collections.source.count_documents({}) > 0, timeout=20, what="predictions")
        process.terminate()
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = (tmp_path / "simulator.log").read_text()
    assert "seed " in log and "stopped: " in log
