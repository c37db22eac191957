"""--dry-run changes nothing; --profiles re-sends one profile per hour, timestamped with that hour, and with
segments each review's segment profile as it was counted (the same as the hour's first profiles)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd

from clara.db import Collections, ensure_indexes
from clara.rollups import Counted
from clara.segments import OTHER, SEGMENTS_STATE_ID
from consumer.catchup import catch_up
from consumer.sinks import OutboxEntry, build_sinks, deliver_pending
from consumer.sinks.local_store import read_segments
from consumer.sinks.profiles import hour_view
from replay.cli import main
from replay.run import resent_segments
from tests.consumer.test_segments import with_segments
from tests.replay.conftest import snapshot
from tests.replay.test_rebuild_segments import SEGMENTS
from tests.support.documents import predictions
from tests.support.processes import write_config

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


def segment_profiles(directory: Path) -> dict[str, dict[tuple[str, str], pd.DataFrame]]:
    """Every hour file's segment profiles, as whylogs' summary tables (timestamps are not in them)."""
    return {path.name: {key: view.to_pandas().sort_index() for key, view in read_segments(path).items()}
            for path in sorted(directory.rglob("*.bin"))}


def test_resent_profiles_carry_each_reviews_segment_as_counted(mongo_client, make_config, tmp_path, replay_env):
    segmented = make_config(segments=SEGMENTS, profiles={"local_store_interval_seconds": 0.0})
    cols = Collections.of(mongo_client, segmented)
    ensure_indexes(cols)
    docs = with_segments(predictions(90, start=START, step=dt.timedelta(minutes=4), reviewed_fraction=0.8))
    cols.source.insert_many(docs)
    catch_up(mongo_client, cols, segmented, sinks=("local",))
    deliver_pending(cols, segmented, build_sinks(segmented))
    store = Path(segmented.profiles.local_store_dir)
    original = segment_profiles(store)
    assert len(original) == 6 and all(len(hour) > 2 for hour in original.values())
    assert {value for hour in original.values() for _, value in hour} >= {"other", "unknown"}
    shutil.move(store, tmp_path / "lost")                        # the store was lost; its outbox entries are gone
    cols.outbox.delete_many({})
    admitted = cols.state.find_one({"_id": SEGMENTS_STATE_ID})["values"]
    moved = next(doc for doc in docs if doc.get("output_validated") is not None and doc["site"] in admitted["site"])
    cols.source.update_one({"_id": moved["_id"]}, {"$set": {"site": "west"}})   # not counted there (yet): as
    # the configuration would assign it now, the review would be `other` (the cap is reached); it was counted
    # under its first site

    path = write_config(tmp_path / "segments.toml", {"mongodb": {"database": segmented.mongodb.database},
                                                     "profiles": {"local_store_dir": str(store),
                                                                  "local_store_interval_seconds": 0.0},
                                                     "segments": SEGMENTS})
    assert main(["--config", str(path), "--profiles", "local"]) == 0
    assert cols.outbox.count_documents({"columns.segments": {"$exists": True}}) == 6
    deliver_pending(cols, segmented, build_sinks(segmented))
    resent = segment_profiles(store)
    assert resent.keys() == original.keys()
    for hour, profiles in original.items():
        assert resent[hour].keys() == profiles.keys(), hour
        for key, table in profiles.items():
            assert resent[hour][key].equals(table), (hour, key)

    # A review not counted yet (replay's own backfill counts it first): the values admitted so far, none admitted
    new = {"_id": "new", "model_version": "v9", "site": admitted["site"][0]}
    assert resent_segments(None, cols, segmented, {moved["_id"]: moved | {"site": "west"}, "new": new}) == {
        moved["_id"]: Counted.from_doc(cols.counted.find_one({"_id": moved["_id"]})).segment,
        "new": (("model_version", OTHER), ("site", admitted["site"][0]))}
    assert cols.state.find_one({"_id": SEGMENTS_STATE_ID})["values"] == admitted
