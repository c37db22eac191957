"""--dry-run changes nothing; --profiles re-sends one profile per hour, timestamped with that hour."""

from __future__ import annotations

import datetime as dt

from consumer.catchup import catch_up
from consumer.sinks import OutboxEntry
from consumer.sinks.profiles import hour_view
from replay.cli import main
from tests.replay.conftest import snapshot
from tests.support.documents import predictions

UTC = dt.timezone.utc
START = dt.datetime(2026, 3, 9, 23, tzinfo=UTC)   # local midnight of 2026-03-10 in Europe/Madrid


def test_dry_run_reports_documents_hours_days_and_sinks_and_changes_nothing(collections, mongo_client, config,
                                                                            config_file, replay_env, capsys):
    collections.source.insert_many(predictions(100, start=START, step=dt.timedelta(minutes=30)))
    catch_up(mongo_client, collections, config)
    collections.source.insert_many(predictions(48, start=START, step=dt.timedelta(hours=1), seed=4))
    before = snapshot(collections)
    for argv in ([], ["--from", "2026-03-10", "--to", "2026-03-11"], ["--rebuild", "--profiles", "local"],
                 ["--rebuild", "--from", "2026-03-10T12:30"], ["--profiles", "local", "--to", "2026-03-10"]):
        assert main(["--config", config_file(), "--dry-run", *argv]) == 0
        assert snapshot(collections) == before, argv
    out = capsys.readouterr().out
    assert "backfill: 48 reviewed documents not yet logged, 48 hours from 2026-03-09 23:00 to 2026-03-11 22:00 UTC; " \
           "profiles to: local" in out
    assert "rebuild: 50 rollup hours replaced" in out and "re-send: one profile per hour with reviews (50 hours) to: " \
           "local" in out
    assert "days (Europe/Madrid): 2\n  2026-03-10: 24 documents\n  2026-03-11: 24 documents" in out
    assert "backfill (the range's partial hours): 0 reviewed documents not yet logged, no hours" in out


def test_resent_profiles_carry_their_hour_as_dataset_timestamp(collections, mongo_client, config, config_file,
                                                               replay_env):
    collections.source.insert_many(predictions(120, start=START, step=dt.timedelta(minutes=13), reviewed_fraction=0.7))
    catch_up(mongo_client, collections, config)
    collections.outbox.delete_many({})                       # delivered long ago; the store was lost
    reviews = {doc["_id"]: doc["reviews"] for doc in collections.rollups.find()}
    for argv in (["--profiles", "local"], ["--rebuild", "--profiles", "local"]):
        assert main(["--config", config_file(), "--from", "2026-03-10", *argv]) == 0
        entries = list(collections.outbox.find({"batch_id": {"$regex": "^replay-"}}))
        assert sorted(entry["hour"] for entry in entries) == sorted(reviews)
        for entry in entries:
            assert entry["pending"] == ["local"] and entry["rows"] == reviews[entry["hour"]]
            view = hour_view([OutboxEntry.from_document(entry)], entry["hour"], config.model.classes,
                             performance=True).view
            assert view.dataset_timestamp == entry["hour"]
        collections.outbox.delete_many({})
