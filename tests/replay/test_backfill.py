"""Backfill after an outage: exactly the missed reviews of the range, through the consumer's batches."""

from __future__ import annotations

import datetime as dt

from consumer.catchup import catch_up
from replay.cli import main
from tests.replay.conftest import recount, rollups, snapshot
from tests.support.audit import assert_exactly_once
from tests.support.documents import predictions

UTC = dt.timezone.utc
START = dt.datetime(2026, 3, 10, tzinfo=UTC)        # Europe/Madrid is UTC+1 in March before the 29th
DAY_11 = (dt.datetime(2026, 3, 10, 23, tzinfo=UTC), dt.datetime(2026, 3, 12, 23, tzinfo=UTC))  # local 11th-12th


def test_backfill_processes_exactly_the_missed_reviews(collections, mongo_client, config, config_file, replay_env,
                                                       capsys):
    collections.source.insert_many(predictions(200, start=START, step=dt.timedelta(minutes=7), seed=1))
    catch_up(mongo_client, collections, config)                      # the consumer ran ...
    processed = {doc["_id"]: doc["logged_at"] for doc in collections.source.find({"logged": True})}
    missed = predictions(400, start=START + dt.timedelta(hours=20), step=dt.timedelta(minutes=11), seed=2,
                         reviewed_fraction=0.8)
    collections.source.insert_many(missed)                           # ... then was down for three days
    in_range = [d for d in missed if "output_validated" in d
                and DAY_11[0] <= d["timestamp"].replace(tzinfo=UTC) < DAY_11[1]]

    code = main(["--config", config_file(catchup_batch_size=37), "--from", "2026-03-11", "--to", "2026-03-12"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"documents: {len(in_range)} " in out
    logged_now = {doc["_id"] for doc in collections.source.find({"logged": True}, {"_id": 1})}
    assert logged_now == set(processed) | {d["_id"] for d in in_range}
    assert all(collections.source.find_one({"_id": i})["logged_at"] == at for i, at in processed.items())
    assert rollups(collections) == recount(collections, config.n_classes, {"logged": True})

    before = snapshot(collections)
    assert main(["--config", config_file(), "--from", "2026-03-11", "--to", "2026-03-12"]) == 0
    assert "documents: 0 " in capsys.readouterr().out
    assert snapshot(collections)["clara_rollups_hourly"] == before["clara_rollups_hourly"]

    assert main(["--config", config_file()]) == 0                     # no range: everything still missed
    assert_exactly_once(collections, config.n_classes)
    assert rollups(collections) == recount(collections, config.n_classes)
