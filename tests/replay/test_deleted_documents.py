"""Deleted documents (a TTL index, a user): their reviews happened and stay counted, through a rebuild too."""

from __future__ import annotations

import datetime as dt

from consumer.catchup import catch_up
from replay.cli import main
from tests.replay.conftest import rollups
from tests.support.documents import predictions

UTC = dt.timezone.utc
STEP = dt.timedelta(minutes=10)


def test_a_rebuild_keeps_the_counts_of_deleted_documents(collections, mongo_client, config, config_file, replay_env,
                                                        capsys):
    start_at = dt.datetime(2026, 3, 9, 23, tzinfo=UTC)
    collections.source.insert_many(predictions(300, start=start_at, step=STEP))
    catch_up(mongo_client, collections, config, sinks=())
    original = rollups(collections)
    gone = list(collections.source.find({"timestamp": {"$lt": start_at + dt.timedelta(hours=5)}}))
    collections.source.delete_many({"_id": {"$in": [doc["_id"] for doc in gone]}})
    assert main(["--config", config_file(local_store=False), "--rebuild"]) == 0
    assert f"documents gone: {len(gone)} counts kept" in capsys.readouterr().out
    assert rollups(collections) == original
    assert collections.counted.count_documents({}) == 300
