"""Bulk mode: the pure history generator, and the writer against the real mongod."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from clara.records import Rejection, parse_document
from simulator.cli import main
from simulator.generator import Settings
from simulator.history import history_documents, write_history
from simulator.model import Behaviour
from tests.support.processes import write_config

UTC = dt.timezone.utc
END = dt.datetime(2025, 3, 10, tzinfo=UTC)
SETTINGS = Settings(Behaviour((1.0,) * 7, (0.9,) * 7), review_fraction=0.8, review_delay=7200.0)


def test_history_is_identical_for_the_same_arguments_and_spans_the_days():
    docs = list(history_documents(SETTINGS, 5, END, days=3, per_day=400))
    assert docs == list(history_documents(SETTINGS, 5, END, days=3, per_day=400))
    timestamps = [d["timestamp"] for d in docs]
    assert timestamps == sorted(timestamps)
    assert all(END - dt.timedelta(days=3) <= t < END for t in timestamps)
    assert Counter((END - t).days for t in timestamps) == {0: 400, 1: 400, 2: 400}
    assert all(t.microsecond % 1000 == 0 for t in timestamps)


def test_reviewed_history_carries_its_review_and_some_stays_pending():
    docs = list(history_documents(SETTINGS, 5, END, days=2, per_day=1000))
    reviewed = [d for d in docs if "output_validated" in d]
    assert 0.7 < len(reviewed) / len(docs) < 0.8   # 80 % reviewed, less those not due before END
    for i, doc in enumerate(docs):
        assert not isinstance(parse_document(doc | {"_id": i}, 7), Rejection)
        if "output_validated" in doc:
            assert doc["timestamp"] <= doc["timestamp_validated"] <= END
        else:
            assert "timestamp_validated" not in doc
    late = [d for d in docs if d["timestamp"] > END - dt.timedelta(hours=1)]
    assert sum("output_validated" in d for d in late) < 0.4 * len(late)  # most reviews of the last hour are to come


def test_write_history_inserts_in_chunks_and_round_trips(collections):
    docs = list(history_documents(SETTINGS, 9, END, days=2, per_day=250))
    seen = []
    assert write_history(collections.source, [dict(d) for d in docs], chunk_size=200, progress=seen.append) == 500
    assert seen == [200, 400, 500]
    stored = list(collections.source.find({}, {"_id": 0}).sort("timestamp", 1))
    assert stored == docs


def _history_cli(tmp_path, monkeypatch, mongo_uri, database: str, *args: str) -> int:
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    config = write_config(tmp_path / f"{database}.toml", {"mongodb": {"database": database}})
    return main(["history", "--config", str(config), "--end", "2025-03-10T00:00:00Z", *args])


def test_history_command_is_repeatable(tmp_path, monkeypatch, mongo_uri, mongo_client, config, capsys):
    other = config.mongodb.database + "_b"
    try:
        for database in (config.mongodb.database, other):
            assert _history_cli(tmp_path, monkeypatch, mongo_uri, database, "--days", "2", "--per-day", "300",
                                "--seed", "11", "--bad-fraction", "0.05", "--chunk", "250") == 0
        first, second = (list(mongo_client[name].image_logs.find({}, {"_id": 0}).sort("filename", 1))
                         for name in (config.mongodb.database, other))
    finally:
        mongo_client.drop_database(other)
    assert len(first) == 600 and first == second
    out = capsys.readouterr().out
    assert "history: 250/600 (42%)" in out and "history: wrote 600 documents" in out
    assert sum(isinstance(parse_document(d | {"_id": 1}, 7), Rejection) for d in first) > 10
