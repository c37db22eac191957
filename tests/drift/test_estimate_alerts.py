"""The alerts that lean on the estimates package, on simulated weeks counted by the consumer: calibration drift
fires under a confidence drift and stays quiet on stable traffic; label shift fires under a class-mix shift of
all traffic and refuses, saying why, when reviews are too few; accuracy and recall sentences quote their
Wilson interval; the per-class recall family takes Holm's or Benjamini-Hochberg's correction when asked."""

from __future__ import annotations

import dataclasses
import re

import pytest
from scipy.stats import binomtest

from drift.evaluate import evaluate
from simulator.generator import Drift
from tests.drift.scenario import END, TRAINING, at_day, drift_settings, load_history, run_hourly
from tests.drift.test_scenarios import DRIFT_OFF, DRIFT_ON, TWO_HOURS, opened_keys

ESTIMATE_KEYS = {"calibration_drift:last_n", "calibration_drift:day", "label_shift:last_n", "label_shift:day"}


def findings_of(evaluations, key):
    return [f for e in evaluations for f in e.findings if f.key == key]


def drifted_once(mongo_client, collections, config, kind: str, strength: float, key: str):
    """Weeks with a drift of `kind` from DRIFT_ON to DRIFT_OFF, evaluated every two hours: the one alert `key`
    opened (after the drift began) and every evaluation."""
    load_history(mongo_client, collections, config,
                 Drift(kind, start=DRIFT_ON * 86400.0, end=DRIFT_OFF * 86400.0, strength=strength))
    evaluations = run_hourly(collections, config, at_day(DRIFT_ON - 1), at_day(DRIFT_OFF + 2), step=TWO_HOURS)
    opened = [(e.at, t) for e in evaluations for t in e.transitions if t.key == key and t.kind == "opened"]
    assert len(opened) == 1, opened
    at, transition = opened[0]
    assert at > at_day(DRIFT_ON)
    return collections.alerts.find_one({"_id": transition.alert_id}), evaluations


def test_stable_traffic_opens_no_calibration_or_label_shift_alert(mongo_client, collections, config):
    load_history(mongo_client, collections, config)
    evaluations = run_hourly(collections, config, at_day(7), END, step=4 * TWO_HOURS)
    assert not ESTIMATE_KEYS & set(opened_keys(evaluations))
    for key in ("calibration_drift:last_n", "label_shift:last_n"):
        found = findings_of(evaluations, key)
        assert found and all(f.firing is False for f in found), [f.message for f in found if f.firing is not False]
    calibration = findings_of(evaluations, "calibration_drift:last_n")[-1]
    assert calibration.population == "reviewed predictions" and calibration.message.startswith(
        "calibration of reviewed predictions over the last ")
    assert calibration.statistic["dof"] >= 3 and "per confidence bin" in calibration.statistic["method"]
    assert calibration.statistic["assumptions"]
    shift = findings_of(evaluations, "label_shift:last_n")[-1]
    assert shift.population == "all predictions" and "estimated by BBSE (bin-weighted)" in shift.message
    assert shift.statistic["assumptions"].startswith("label shift only") and len(shift.statistic["mix"]) == 7


def test_a_confidence_drift_opens_the_calibration_alert_and_it_resolves(mongo_client, collections, config):
    alert, evaluations = drifted_once(mongo_client, collections, config, "confidence", 0.3, "calibration_drift:last_n")
    assert alert["population"] == "reviewed predictions" and "differs from" in alert["message"]
    # Confidences fell by 30 % while accuracy held: the model became (more) under-confident.
    assert alert["statistic"]["signed_gap"] > alert["statistic"]["reference_signed_gap"]
    assert alert["statistic"]["value"] >= config.drift.calibration_min_change
    assert "(under-confident)" in alert["message"] and alert["statistic"]["p_value"] < config.drift.alpha
    assert alert["status"] == "resolved" and alert["resolved_at"] > at_day(DRIFT_OFF)
    # What the class mix says: nothing moved (the predicted-class mix is the same).
    assert "label_shift:last_n" not in opened_keys(evaluations)


def test_a_class_mix_shift_opens_the_label_shift_alert_on_all_predictions(mongo_client, collections, config):
    alert, evaluations = drifted_once(mongo_client, collections, config, "class-mix", 0.3, "label_shift:last_n")
    assert alert["population"] == "all predictions" and alert["message"].startswith(
        "true-class mix of all predictions over the last ")
    rarest = min(range(len(TRAINING)), key=TRAINING.__getitem__)   # the simulator's drift feeds the rarest class
    statistic = alert["statistic"]
    moved = [q - p for q, p in zip(statistic["mix"], statistic["reference_mix"])]
    assert max(range(len(moved)), key=moved.__getitem__) == rarest and moved[rarest] > 0.05
    low, high = statistic["intervals"][rarest]
    assert low <= statistic["mix"][rarest] <= high and low > statistic["reference_mix"][rarest]
    assert "95% interval" in alert["message"] and statistic["condition"] < 1000
    assert alert["status"] == "resolved"
    assert "calibration_drift:last_n" not in opened_keys(evaluations)   # every class is as often right as before


def test_label_shift_refuses_with_its_reason_when_reviews_are_too_few(mongo_client, collections, config):
    load_history(mongo_client, collections, config, Drift("class-mix", start=DRIFT_ON * 86400.0, strength=0.3),
                 review_fraction=0.02)
    evaluation = evaluate(collections, config, at_day(DRIFT_ON + 2))
    found = {f.key: f for f in evaluation.findings}
    shift = found["label_shift:last_n"]
    assert shift.firing is None and "label_shift:last_n" not in {t.key for t in evaluation.transitions}
    assert re.search(r"no verdict: too few reference reviews \(\d+ < 1000\)", shift.message), shift.message
    assert shift.statistic["reason"].startswith("too few reference reviews") and shift.statistic["mix"] is None
    assert found["prediction_drift:last_n"].firing is True   # all predictions still see the predicted mix move
    assert found["calibration_drift:last_n"].firing is None and "too few reviews" in found[
        "calibration_drift:last_n"].message


def wilson(k: int, n: int) -> str:
    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    return f"{k / n:.2f} (95% Wilson interval {ci.low:.2f} to {ci.high:.2f}, {n:,} reviews"


@pytest.mark.parametrize("correction, name", [("none", None), ("holm", "Holm"), ("bh", "Benjamini-Hochberg")])
def test_accuracy_and_recall_sentences_quote_the_wilson_interval(mongo_client, collections, config, correction, name):
    load_history(mongo_client, collections, config, Drift("accuracy", start=DRIFT_ON * 86400.0, strength=0.3))
    config = dataclasses.replace(config, drift=dataclasses.replace(config.drift, multiple_testing=correction))
    evaluation = evaluate(collections, config, at_day(DRIFT_ON + 2))
    found = {f.key: f for f in evaluation.findings}
    accuracy = found["accuracy:last_n"]
    assert accuracy.firing is True and "accuracy:last_n" in {t.key for t in evaluation.transitions}
    n = accuracy.statistic["reviews"]
    right = round(accuracy.statistic["value"] * n)
    assert accuracy.message.startswith(f"accuracy {wilson(right, n)}) of reviewed predictions over the last ")
    assert "down from" in accuracy.message and accuracy.message.count("95% Wilson interval") == 2
    assert accuracy.statistic["interval"][0] < accuracy.statistic["value"] < accuracy.statistic["interval"][1]
    assert "Wilson" in accuracy.statistic["method"] and accuracy.statistic["assumptions"]
    recalls = [f for f in evaluation.findings if f.detector == "recall" and f.subject.startswith("last_n:")]
    assert len(recalls) == len(TRAINING)
    tested = [recall for recall in recalls if recall.firing is not None]
    assert len(tested) >= 4
    for recall in tested:
        assert "95% Wilson interval" in recall.message and "reviews of the class)" in recall.message
        assert "reviewed predictions" in recall.message
        if name is None:
            assert "p_adjusted" not in recall.statistic
        else:
            assert f"{name}-adjusted over {len(tested)} classes" in recall.message
            assert recall.statistic["p_adjusted"] >= recall.statistic["p_value"]
            assert recall.firing == (recall.statistic["p_adjusted"] < config.drift.alpha
                                     and recall.statistic["drop"] >= config.drift.recall_min_drop)
