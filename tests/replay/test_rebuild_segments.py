"""Changing the segment configuration is a rebuild: afterwards the rollups are what counting from scratch gives."""

from __future__ import annotations

import datetime as dt

from clara.db import Collections, ensure_indexes
from clara.segment_pending import fold_all
from consumer.predictions import STATE_ID
from consumer.catchup import catch_up
from replay.cli import main
from tests.consumer.test_segment_pending import count, deferring, with_ids
from tests.consumer.test_segments import FIELDS, with_segments
from tests.support.documents import predictions
from tests.support.snapshots import stored
from tests.support.inserts import count_inserts
from tests.support.processes import write_config

UTC = dt.timezone.utc
START = dt.datetime(2026, 3, 9, 23, tzinfo=UTC)
SEGMENTS = {"fields": list(FIELDS), "max_values": 3}   # model_version has 3 values and unknown; site 4: one capped
PENDING_SEGMENTS = {"fields": list(FIELDS), "max_values": 20}


def count_from_scratch(client, cols: Collections, config, docs) -> None:
    for name in ("rollups", "predictions", "segment_rollups", "segment_predictions", "counted", "state", "rejects"):
        getattr(cols, name).drop()
    cols.source.update_many({}, {"$unset": {"logged": "", "logged_at": ""}})
    ensure_indexes(cols)
    count_inserts(client, cols, config, docs)
    catch_up(client, cols, config)


def test_a_rebuild_after_a_segment_change_gives_the_rollups_of_counting_from_scratch(
        collections, mongo_client, config, make_config, tmp_path, replay_env, capsys):
    docs = with_segments(predictions(700, start=START, step=dt.timedelta(minutes=6), reviewed_fraction=0.7))
    collections.source.insert_many(docs)
    segmented = make_config(segments=SEGMENTS)
    count_from_scratch(mongo_client, collections, segmented, docs)
    expected = stored(collections)
    assert expected["segment_rollups"] and expected["segment_predictions"]
    assert {value for doc in expected["segment_rollups"] for value in doc["values"]} >= {"other", "unknown"}

    count_from_scratch(mongo_client, collections, config, docs)   # counted before segments were configured
    before = stored(collections)
    assert not before["segment_rollups"] and before["rollups"] == expected["rollups"]
    assert before["counted"] != expected["counted"]   # no segment in the entries yet

    path = write_config(tmp_path / "segments.toml", {"mongodb": {"database": config.mongodb.database},
                                                     "profiles": {"local_store": False},
                                                     "segments": SEGMENTS})
    assert main(["--config", str(path), "--rebuild", "--dry-run"]) == 0
    assert (f"segments (model_version, site; at most 3 values each): at most {len(expected['segment_rollups'])} "
            f"review and {len(expected['segment_predictions'])} prediction segment rollups written"
            in capsys.readouterr().out)
    assert stored(collections) == before   # a dry run changes nothing
    assert main(["--config", str(path), "--rebuild"]) == 0
    assert stored(collections) == expected


def test_a_rebuild_folds_what_was_put_off_before_recounting(make_config, mongo_client, tmp_path, replay_env):
    """Increments put off before a rebuild are of reviews it counts again from their entries: applied first
    and emptied with the rest, not added afterwards."""
    docs = with_ids(with_segments(predictions(300, start=START, step=dt.timedelta(minutes=3), reviewed_fraction=0.7)))
    expected = None
    for folding in (None, deferring()):
        config = make_config(segments=PENDING_SEGMENTS)
        cols = Collections.of(mongo_client, config)
        ensure_indexes(cols)
        cols.source.insert_many([dict(doc) for doc in docs])
        cols.state.insert_one({"_id": STATE_ID})
        count(mongo_client, cols, config, docs, folding, full=True)
        if folding is None:
            expected = stored(cols)
            mongo_client.drop_database(config.mongodb.database)   # make_config's database is the test's
            continue
        assert cols.segment_pending.count_documents({}) > 0
        path = write_config(tmp_path / "rebuild.toml", {"mongodb": {"database": config.mongodb.database},
                                                        "profiles": {"local_store": False},
                                                        "segments": PENDING_SEGMENTS})
        assert main(["--config", str(path), "--rebuild"]) == 0
        fold_all(mongo_client, cols)   # whatever is left: nothing the rebuild counted may be added again
        after = stored(cols)
        assert after["segment_rollups"] == expected["segment_rollups"]
        assert after["rollups"] == expected["rollups"] and after["counted"] == expected["counted"]
