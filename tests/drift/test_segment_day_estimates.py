"""Day windows, calibration and label shift per segment: a camera whose prediction mix drifts today alerts on its own
while the overall day stays quiet; a camera whose calibration drifts, or whose true-class mix shifts, alerts; without
segments the findings are the overall ones; and a segment's findings are the overall checks run on its documents
alone (counted into a database of their own, and recomputed with scipy from the raw documents)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections import Counter

import pytest
from pymongo import monitoring
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

from clara.db import Collections, connect, ensure_indexes
from consumer.catchup import catch_up
from drift.evaluate import evaluate
from tests.support.inserts import count_inserts

UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)
TODAY = dt.datetime(2025, 3, 5, tzinfo=UTC)
NOW = TODAY + 10 * HOUR + dt.timedelta(minutes=30)   # ten whole hours of today, and half of the eleventh
CAMERAS = [f"c{n}" for n in range(6)]
CLASSES = ["paper", "glass", "metal"]
EVEN = (1 / 3, 1 / 3, 1 / 3)


def documents(drifting: dict[str, str], seed: int = 18) -> list[dict]:
    """Per camera, 300 predictions a day over the three days before today and 200 over today's ten hours, every one
    reviewed: the true class from an even mix, predicted right 80 % of the time, right with a probability equal to
    the confidence. Today, a camera drifting by "mix" predicts the first class nine times in ten; by "calibration"
    is right 30 points less often than its confidence says; by "shift" sees the first class 90 % of the time."""
    rng = random.Random(seed)
    docs = []
    for start, hours, count in ((TODAY - 72 * HOUR, 72, 900), (TODAY, 10, 200)):
        for camera in CAMERAS:
            drift = drifting.get(camera) if start == TODAY else None
            for _ in range(count):
                at = start + dt.timedelta(seconds=rng.randrange(hours * 3600))
                mix = (0.9, 0.05, 0.05) if drift == "shift" else EVEN
                truth = rng.choices(range(3), mix)[0]
                confidence = round(rng.uniform(0.5, 1.0), 4)
                right = rng.random() < confidence - (0.3 if drift == "calibration" else 0.0)
                predicted = truth if right else rng.choice([c for c in range(3) if c != truth])
                if drift == "mix" and rng.random() < 0.9:
                    predicted = 0
                docs.append({"_id": len(docs), "filename": f"img_{len(docs)}.jpg", "timestamp": at,
                             "output_prediction": predicted, "output_confidence": confidence,
                             "output_validated": truth, "timestamp_validated": at + dt.timedelta(minutes=5),
                             "camera": camera})
    return docs


def settings(**drift) -> dict:
    """Last-N windows longer than everything there is (so they span all history and have no reference to compare
    with: no verdict), so only today's windows decide; a rolling reference of the three days before."""
    return {"model": {"timezone": "UTC", "classes": CLASSES, "colors": ["blue", "green", "grey"],
                      "training_counts": [0, 0, 0]},
            "profiles": {"local_store": False},
            "drift": {"window_predictions": 100_000, "window_reviews": 100_000, "min_predictions": 150,
                      "min_reviews": 150, "min_reference_predictions": 500, "min_reference_reviews": 500,
                      "baseline_days": 3, "calibration_min_bin_reviews": 10, "evaluate_interval_seconds": 0} | drift,
            "alerts": {"cooldown_seconds": 0, "max_per_evaluation": 1000}}


def counted(mongo_client, make_config, docs: list[dict], fields=("camera",), database: str = "", **drift):
    config = make_config(**settings(**drift), segments={"fields": list(fields)},
                         **({"mongodb": {"database": database}} if database else {}))
    cols = Collections.of(mongo_client, config)
    ensure_indexes(cols)
    cols.source.insert_many(docs)
    count_inserts(mongo_client, cols, config, docs)
    catch_up(mongo_client, cols, config, sinks=())
    return config, cols


def by_key(evaluation) -> dict:
    return {finding.key: finding for finding in evaluation.findings}


def opened(evaluation) -> set[str]:
    return {t.key for t in evaluation.transitions if t.kind == "opened"}


def test_a_camera_whose_prediction_mix_drifts_today_alerts_on_its_own_while_the_day_overall_stays_quiet(
        mongo_client, make_config):
    config, cols = counted(mongo_client, make_config, documents({"c3": "mix"}))
    evaluation = evaluate(cols, config, NOW)
    found = by_key(evaluation)
    mine = found["prediction_drift:day@camera=c3"]
    assert mine.firing is True and "prediction_drift:day@camera=c3" in opened(evaluation), mine.message
    assert mine.segment == "camera=c3" and mine.population == "all predictions"
    assert mine.message.startswith("segment camera = c3: predicted-class mix of all predictions over 2025-03-05 "
                                   "differs from the 3 days before")
    assert mine.window["kind"] == "day" and mine.window["predictions"] == 200
    assert mine.statistic["reference_predictions"] == 900
    overall = found["prediction_drift:day"]
    assert overall.firing is False and overall.statistic["p_value"] < config.drift.alpha, overall.message
    for camera in CAMERAS:   # each camera's day against its own three days
        assert found[f"prediction_drift:day@camera={camera}"].firing is (camera == "c3")
    assert found["prediction_drift:last_n@camera=c3"].firing is None   # the long window has no reference
    alert = cols.alerts.find_one({"key": "prediction_drift:day@camera=c3", "status": "open"})
    assert alert["segment"] == "camera=c3" and alert["message"] == mine.message


def fires_alone(mongo_client, make_config, camera: str, drift: str, detector: str):
    """The day finding of `detector` for the one camera drifting by `drift`: firing, its alert opened, every other
    camera's quiet."""
    config, cols = counted(mongo_client, make_config, documents({camera: drift}))
    evaluation = evaluate(cols, config, NOW)
    found = by_key(evaluation)
    key = f"{detector}:day@camera={camera}"
    assert found[key].firing is True and key in opened(evaluation), found[key].message
    quiet = [f"{detector}:day@camera={other}" for other in CAMERAS if other != camera]
    assert [found[other].firing for other in quiet] == [False] * len(quiet)
    return found[key]


def test_a_camera_whose_calibration_drifts_opens_its_calibration_alert(mongo_client, make_config):
    mine = fires_alone(mongo_client, make_config, "c1", "calibration", "calibration_drift")
    assert mine.population == "reviewed predictions" and mine.message.startswith(
        "segment camera = c1: calibration of reviewed predictions over 2025-03-05 differs from the 3 days before")
    assert mine.statistic["signed_gap"] < mine.statistic["reference_signed_gap"] - 0.2   # over-confident now
    assert mine.statistic["reviews"] == 200 and mine.statistic["reference_reviews"] == 900
    assert "(over-confident)" in mine.message


def test_a_camera_whose_class_mix_shifts_opens_a_label_shift_alert(mongo_client, make_config):
    mine = fires_alone(mongo_client, make_config, "c4", "shift", "label_shift")
    assert mine.population == "all predictions" and mine.message.startswith(
        "segment camera = c4: true-class mix of all predictions over 2025-03-05, estimated by BBSE (bin-weighted)")
    assert mine.statistic["reference_reviews"] == 900   # calibrated on the camera's own reference reviews
    assert mine.statistic["mix"][0] > mine.statistic["reference_mix"][0] + 0.2
    low, high = mine.statistic["intervals"][0]
    assert low <= mine.statistic["mix"][0] <= high


def test_without_segments_the_findings_are_the_overall_ones(mongo_client, make_config):
    docs = documents({"c3": "mix", "c1": "calibration", "c4": "shift"})
    config, cols = counted(mongo_client, make_config, docs)
    plain = dataclasses.replace(config, segments=dataclasses.replace(config.segments, fields=()))
    off = dataclasses.replace(config, drift=dataclasses.replace(config.drift, segments=False))
    segmented = evaluate(cols, config, NOW).findings
    for unsegmented in (plain, off):
        findings = evaluate(cols, unsegmented, NOW).findings
        assert findings == [finding for finding in segmented if not finding.segment]
        assert not any(finding.segment for finding in findings)
    # With segments, every overall live-window check of both populations (the volume check aside) has its twin
    # per camera.
    overall = {finding.key for finding in segmented
               if not finding.segment and finding.population and finding.detector != "volume"}
    assert {key.split(":")[0] for key in overall} >= {"prediction_drift", "confidence_drift", "label_drift",
                                                       "accuracy", "recall", "calibration_drift", "label_shift"}
    for camera in CAMERAS:
        assert {finding.key.removesuffix(f"@camera={camera}") for finding in segmented
                if finding.segment == f"camera={camera}"} == overall


def findings_of(evaluation, segment: str = "") -> dict:
    """Findings by overall key (the segment's suffix taken off), with what depends on naming alone left out."""
    suffix = f"@{segment}" if segment else ""
    return {f.key.removesuffix(suffix): dataclasses.replace(f, subject=f.subject.removesuffix(suffix), segment="",
                                                            message=f.message.removeprefix(f"segment {segment.replace('=', ' = ')}: "))
            for f in evaluation.findings if f.segment == segment and f.population and f.detector != "volume"}


@pytest.mark.parametrize("reference", ["rolling", "fixed"])
def test_a_segments_findings_are_the_overall_checks_on_its_own_documents(mongo_client, make_config, reference):
    docs = documents({"c3": "mix", "c1": "calibration", "c4": "shift"})
    drift = {"window_predictions": 1000, "window_reviews": 1000}   # last-N windows with a reference, too
    if reference == "fixed":
        drift |= {"reference_start": "2025-03-02", "reference_end": "2025-03-03"}
    config, cols = counted(mongo_client, make_config, docs, fields=("camera", "lens"), **drift)
    segmented = evaluate(cols, config, NOW)
    first, last = (TODAY - 72 * HOUR, TODAY) if reference == "rolling" else (TODAY - 72 * HOUR, TODAY - 24 * HOUR)
    for camera in ("c3", "c1", "c4", "c0"):
        mine = [doc for doc in docs if doc["camera"] == camera]
        database = f"{config.mongodb.database}_{camera}"
        try:
            alone_config, alone = counted(mongo_client, make_config, mine, fields=(), database=database, **drift)
            oracle = findings_of(evaluate(alone, alone_config, NOW))
        finally:
            mongo_client.drop_database(database)
        assert findings_of(segmented, f"camera={camera}") == oracle
        # And from the raw documents with scipy: today's predicted-class mix against the reference period.
        today = Counter(doc["output_prediction"] for doc in mine if doc["timestamp"] >= TODAY)
        before = Counter(doc["output_prediction"] for doc in mine if first <= doc["timestamp"] < last)
        table = [[today[c] for c in range(3)], [before[c] for c in range(3)]]
        statistic = oracle["prediction_drift:day"].statistic
        assert statistic["chi2"] == pytest.approx(chi2_contingency(table, correction=False)[0], rel=1e-9)
        shares = [[n / sum(row) for n in row] for row in table]
        assert statistic["value"] == pytest.approx(jensenshannon(*shares, base=2), rel=1e-9)
        right = sum(doc["output_prediction"] == doc["output_validated"] for doc in mine if doc["timestamp"] >= TODAY)
        assert oracle["accuracy:day"].statistic["value"] == right / 200
    # A field every document lacks: one value, `unknown`, whose findings are the overall ones.
    assert findings_of(segmented, "lens=unknown") == findings_of(segmented)


class Finds(monitoring.CommandListener):
    """The find commands sent to each collection (a real server's command monitoring)."""

    def __init__(self) -> None:
        self.finds: Counter = Counter()

    def started(self, event) -> None:
        if event.command_name == "find":
            self.finds[event.command["find"]] += 1

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


@pytest.mark.parametrize("reference", ["rolling", "fixed"])
def test_an_evaluation_reads_each_fields_segment_rollups_once_per_kind_whatever_the_number_of_values(
        mongo_client, make_config, reference):
    fixed = {"reference_start": "2025-03-02", "reference_end": "2025-03-03"} if reference == "fixed" else {}
    config, cols = counted(mongo_client, make_config, documents({"c3": "mix"}), fields=("camera", "lens"),
                           window_predictions=1000, window_reviews=1000, **fixed)
    listener = Finds()
    client = connect(config, event_listeners=[listener])
    try:
        findings = evaluate(Collections.of(client, config), config, NOW).findings
    finally:
        client.close()
    assert {f.segment for f in findings} == {"", "lens=unknown", *(f"camera={camera}" for camera in CAMERAS)}
    # One walk per field and kind, and with fixed dates at most one read more: the part of the reference the walk
    # did not reach (the reviews' walk goes back to the label-shift reference, so it reads none).
    if reference == "rolling":
        assert listener.finds[config.mongodb.segment_predictions_collection] == 2
        assert listener.finds[config.mongodb.segment_rollups_collection] == 2
    else:
        assert listener.finds[config.mongodb.segment_predictions_collection] == 4
        assert listener.finds[config.mongodb.segment_rollups_collection] in (2, 3, 4)


def test_at_most_max_values_named_values_are_checked_the_rest_folded_into_other(mongo_client, make_config):
    docs = documents({"c3": "mix"})
    for doc in docs[::7]:
        doc["camera"] = "other"   # the bucket has values of its own, too
    config, cols = counted(mongo_client, make_config, docs)
    capped = dataclasses.replace(config, segments=dataclasses.replace(config.segments, max_values=2))
    findings = {f.key: f for f in evaluate(cols, capped, NOW).findings}
    busiest = sorted(CAMERAS, key=lambda camera: (-sum(doc["camera"] == camera for doc in docs), camera))[:2]
    assert {f.segment for f in findings.values() if f.segment} == {f"camera={value}" for value in [*busiest, "other"]}
    folded = [doc for doc in docs if doc["camera"] not in busiest and doc["timestamp"] >= TODAY]
    assert findings["prediction_drift:day@camera=other"].window["predictions"] == len(folded)
    day = [findings[f"prediction_drift:day@camera={value}"].window["predictions"] for value in [*busiest, "other"]]
    assert sum(day) == findings["prediction_drift:day"].window["predictions"]   # still adding up to the overall
