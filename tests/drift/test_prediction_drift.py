"""Prediction drift on ALL predictions: the simulator's class-mix drift, inserted while the consumer's follower
runs, opens the prediction-drift alert before any shifted prediction is reviewed; the training comparison is
shown beside the baseline one and alerts only when asked; every sentence names its population."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from drift.checks import DRIFT, PERFORMANCE
from drift.evaluate import evaluate
from simulator.generator import Drift, PredictionStream, Settings
from simulator.history import history_documents, write_history
from simulator.model import Behaviour
from tests.drift.scenario import TRAINING, drift_settings
from tests.support.running import running_follower, wait_for

UTC = dt.timezone.utc
END = dt.datetime(2025, 3, 15, tzinfo=UTC)   # the drift starts here
HOUR = dt.timedelta(hours=1)
DRIFTED_HOURS, PER_HOUR = 12, 80   # the history's rate: the volume stays usual
POPULATIONS = {"all predictions", "reviewed predictions"}


def counted_predictions(cols) -> int:
    return sum(doc.get("predictions", 0) for doc in cols.predictions.find({}, {"predictions": 1}))


def counted_reviews(cols) -> int:
    return sum(doc.get("reviews", 0) for doc in cols.rollups.find({}, {"reviews": 1}))


def drifted_documents(behaviour: Behaviour) -> list[dict]:
    """The simulator's class-mix drift from END on; reviewers have not reached any of these yet."""
    stream = PredictionStream(Settings(behaviour, review_fraction=0.0, drift=Drift("class-mix", strength=0.3)),
                              "drifted")
    times = random.Random("drifted/times")
    moments = sorted(END + DRIFTED_HOURS * HOUR * times.random() for _ in range(DRIFTED_HOURS * PER_HOUR))
    return [stream.next(at, (at - END).total_seconds()).document for at in moments]


def test_class_mix_drift_alerts_on_all_predictions_before_any_is_reviewed(mongo_client, collections, make_config):
    config = make_config(**drift_settings(reference_start="", reference_end="", baseline_days=7,
                                          window_predictions=800, min_predictions=400,
                                          min_reference_predictions=1000),
                         consumer={"batch_max_seconds": 0.05, "checkpoint_idle_seconds": 1.0})
    behaviour = Behaviour(class_mix=tuple(float(c) for c in TRAINING), accuracy=(0.9,) * len(TRAINING))
    history = list(history_documents(Settings(behaviour, review_fraction=0.8, review_delay=600.0), "stable", END,
                                     8, 24 * PER_HOUR))
    write_history(collections.source, history)
    reviewed = sum(doc.get("output_validated") is not None for doc in history)
    drifted = drifted_documents(behaviour)
    with running_follower(mongo_client, collections, config):
        # A collection new to CLARA: the follower recounts its predictions and catches up on its reviews ...
        wait_for(lambda: counted_predictions(collections) == len(history) and counted_reviews(collections) == reviewed,
                 timeout=60, what="the history counted")
        # ... then the model service inserts the drifted predictions, which it counts as they arrive.
        collections.source.insert_many(drifted)
        wait_for(lambda: counted_predictions(collections) == len(history) + len(drifted), timeout=60,
                 what="the drifted predictions counted")
    assert collections.rollups.count_documents({"_id": {"$gte": END}, "reviews": {"$gt": 0}}) == 0  # none reviewed

    evaluation = evaluate(collections, config, END + DRIFTED_HOURS * HOUR)
    findings = {f.key: f for f in evaluation.findings}
    opened = {t.key for t in evaluation.transitions if t.kind == "opened"}
    assert "prediction_drift:last_n" in opened, findings["prediction_drift:last_n"].message
    prediction = findings["prediction_drift:last_n"]
    assert prediction.population == "all predictions" and prediction.window["predictions"] >= 800
    assert prediction.message.startswith("predicted-class mix of all predictions over the last ")
    assert "differs from the 7 days before" in prediction.message
    # The reviews know nothing of it yet: label drift has no verdict (no review since the drift began).
    assert findings["label_drift:last_n"].population == "reviewed predictions"
    assert "label_drift:last_n" not in opened and "accuracy:last_n" not in opened
    assert findings["volume:last_hour"].firing is False          # the usual number, only a different mix
    # The training comparison is computed and shown beside it, and does not alert by default.
    training = findings["prediction_drift:last_n:training"]
    assert training.firing is True and training.alerting is False
    assert "differs from the training set" in training.message and "not alerted on" in training.message
    assert collections.alerts.count_documents({"key": "prediction_drift:last_n:training"}) == 0
    # Every drift, performance and volume sentence names the population it used.
    for finding in evaluation.findings:
        if finding.type in (DRIFT, PERFORMANCE) or finding.detector == "volume":
            assert finding.population in POPULATIONS and finding.population in finding.message, finding.message
    stored = collections.alerts.find_one({"key": "prediction_drift:last_n"})
    assert stored["population"] == "all predictions" and "all predictions" in stored["message"]

    # Asked to, the training comparison alerts too.
    both = dataclasses.replace(config, drift=dataclasses.replace(config.drift, class_reference="both"))
    again = evaluate(collections, both, END + DRIFTED_HOURS * HOUR + dt.timedelta(minutes=1))
    assert "prediction_drift:last_n:training" in {t.key for t in again.transitions if t.kind == "opened"}
