"""Helpers for replay tests: rollups recounted straight from the documents, and collection snapshots."""

from __future__ import annotations

import datetime as dt

import pytest

from clara.db import Collections
from clara.periods import HOUR
from clara.records import Record, parse_document
from clara.rollups import Counted, RollupDelta
from tests.support.processes import write_config

UTC = dt.timezone.utc


def recount(cols: Collections, n_classes: int, query: dict | None = None,
            period: dt.timedelta = HOUR) -> dict[dt.datetime, dict[str, int]]:
    """What every hour's rollup must hold, from the raw documents alone: {hour: {"cells.1_1": n, ...}}."""
    delta = RollupDelta()
    for doc in cols.source.find({"output_validated": {"$ne": None}} | (query or {})):
        record = parse_document(doc, n_classes)
        if isinstance(record, Record) and record.reviewed:
            delta.add(Counted.of(record, period))
    return dict(delta.updates())


def rollups(cols: Collections, query: dict | None = None) -> dict[dt.datetime, dict[str, int]]:
    """The rollup documents flattened to the same shape, zero counters dropped."""
    result = {}
    for doc in cols.rollups.find(query or {}):
        flat = {}
        for key, value in doc.items():
            if isinstance(value, dict):
                flat |= {f"{key}.{inner}": n for inner, n in value.items() if n}
            elif key not in ("_id", "updated_at") and value:
                flat[key] = value
        if flat:
            result[doc["_id"]] = flat
    return result


def snapshot(cols: Collections) -> dict[str, list]:
    return {name: list(cols.db[name].find({}, sort=[("_id", 1)])) for name in sorted(cols.db.list_collection_names())}


@pytest.fixture
def config_file(tmp_path, config):
    """A config file for `python -m replay` on this test's database (MONGODB_URI comes from the environment)."""
    def build(local_store: bool = True, **consumer) -> str:
        return str(write_config(tmp_path / "replay.toml", {
            "mongodb": {"database": config.mongodb.database},
            "consumer": {"catchup_batch_size": 1000} | consumer,
            "profiles": {"local_store": local_store, "local_store_dir": str(tmp_path / "profiles")},
        }))
    return build


@pytest.fixture
def replay_env(monkeypatch, mongo_uri):
    """In-process `main()` reads the same environment as the real process."""
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    for var in ("WHYLABS_API_KEY", "WHYLABS_DEFAULT_ORG_ID", "WHYLABS_DEFAULT_DATASET_ID"):
        monkeypatch.delenv(var, raising=False)
