"""--rebuild recounts the prediction rollups of its whole hours too: by itself when no consumer runs, by the
running consumer (asked through the state collection) when one does, never counting a prediction twice."""

from __future__ import annotations

import datetime as dt
import threading

from consumer.predictions import STATE_ID
from replay.cli import main
from tests.support.audit import assert_predictions_exact, rollup_predictions
from tests.support.documents import predictions
from tests.support.inserts import count_inserts
from tests.support.running import running_follower, wait_for

UTC = dt.timezone.utc
START = dt.datetime(2026, 3, 9, 23, tzinfo=UTC)   # local midnight of 2026-03-10 in Europe/Madrid
DAY_2 = ["--from", "2026-03-11", "--to", "2026-03-11"]


def at(doc) -> dt.datetime:
    return doc["timestamp"].replace(tzinfo=UTC)


def corrupt(collections, hour: dt.datetime, by: int = 4) -> None:
    collections.predictions.update_one({"_id": hour}, {"$inc": {"predictions": by, "classes.1": by}}, upsert=True)


def test_a_rebuild_without_a_consumer_recounts_the_prediction_rollups_of_its_hours(
        collections, mongo_client, config, config_file, replay_env, capsys):
    docs = predictions(900, start=START, step=dt.timedelta(minutes=5), reviewed_fraction=0.3)
    collections.source.insert_many(docs)
    count_inserts(mongo_client, collections, config, docs)
    inside, outside = START + dt.timedelta(days=1, hours=5), START + dt.timedelta(hours=5)
    corrupt(collections, inside)
    corrupt(collections, START + dt.timedelta(days=1, hours=23))   # the day's last hour
    corrupt(collections, outside)
    in_day_2 = sum(START + dt.timedelta(days=1) <= at(doc) < START + dt.timedelta(days=2) for doc in docs)

    assert main(["--config", config_file(), "--rebuild", *DAY_2, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"predictions: {in_day_2} in 24 hours recounted into the prediction rollups" in out
    assert "predictions gone: 8 counted in the range are no longer in the source there: the rebuild refuses" in out
    assert main(["--config", config_file(), "--rebuild", *DAY_2]) == 2   # raised counts look like deleted documents
    assert "rebuild would lower the prediction counts of its range by 8 predictions" in capsys.readouterr().err
    assert main(["--config", config_file(), "--rebuild", *DAY_2, "--allow-shrink"]) == 0
    assert f"predictions recounted by this replay: {in_day_2} in 24 hours" in capsys.readouterr().out
    stored = {doc["_id"].replace(tzinfo=UTC): doc["predictions"] for doc in collections.predictions.find()}
    assert stored[outside] == sum(outside <= at(doc) < outside + dt.timedelta(hours=1) for doc in docs) + 4
    assert main(["--config", config_file(), "--rebuild", "--allow-shrink"]) == 0   # everything: the outside hour too
    assert_predictions_exact(collections, config.n_classes)
    assert rollup_predictions(collections)[2] == len(docs)


def test_a_rebuild_beside_a_running_consumer_is_recounted_by_it_while_the_model_inserts(
        collections, mongo_client, config, config_file, replay_env, capsys):
    collections.source.insert_many(predictions(600, start=START, step=dt.timedelta(minutes=5), reviewed_fraction=0.3))
    stop, written = threading.Event(), [600]

    def write() -> None:   # the model service goes on inserting into the rebuilt day while the rebuild runs
        i = 0
        while not stop.is_set():
            collections.source.insert_many(predictions(10, start=START + dt.timedelta(days=1, minutes=i), seed=500 + i,
                                                       reviewed_fraction=0.0))
            written[0] += 10
            i += 1

    with running_follower(mongo_client, collections, config):
        wait_for(lambda: rollup_predictions(collections)[2] == 600, timeout=30, what="the first count")
        collections.predictions.delete_one({"_id": START + dt.timedelta(days=1, hours=3)})   # too low: no shrink
        writer = threading.Thread(target=write)
        writer.start()
        try:
            assert main(["--config", config_file(), "--rebuild", *DAY_2]) == 0
        finally:
            stop.set()
            writer.join()
        assert "predictions recounted by the running consumer" in capsys.readouterr().out
        wait_for(lambda: rollup_predictions(collections)[2] == written[0], timeout=30, what="every insert")
    state = collections.state.find_one({"_id": STATE_ID})
    assert state["recount"]["reason"] == "replay --rebuild" and state["recount"]["request_id"]
    assert "recount_request" not in state
    assert_predictions_exact(collections, config.n_classes)
