"""Drift per segment: a camera whose prediction mix drifts alerts on its own, named; a bad deploy that moves every
camera opens at most alerts.max_per_evaluation alerts per evaluation, and its segment alerts go out as one webhook
message listing them."""

from __future__ import annotations

import datetime as dt
import logging
import random

import bson
import pytest

from clara.config import config_from_mapping
from clara.db import Collections, ensure_indexes
from clara.errors import ConfigError
from drift.evaluate import evaluate
from tests.support.inserts import count_inserts

UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)
REFERENCE = dt.datetime(2025, 3, 1, tzinfo=UTC)   # three days of the usual mix
WINDOW = dt.datetime(2025, 3, 5, tzinfo=UTC)      # then six hours, drifted or not
NOW = WINDOW + 6 * HOUR
CAMERAS = [f"c{n}" for n in range(12)]
HOOKS = [{"name": "ops", "format": "json", "url_env": "CLARA_OPS_URL"}]


def documents(drifting: set[str], seed: int = 18) -> list[dict]:
    """Per camera: 5 predictions an hour over the reference days and 60 an hour in the window, each class as likely
    as the others, but class 0 nine times in ten for the drifting cameras' window predictions."""
    rng = random.Random(seed)
    docs = []
    for start, hours, per_hour in ((REFERENCE, 72, 5), (WINDOW, 6, 60)):
        for hour in range(hours):
            for camera in CAMERAS:
                for _ in range(per_hour):
                    at = start + hour * HOUR + dt.timedelta(seconds=rng.randrange(3600))
                    drifted = start == WINDOW and camera in drifting and rng.random() < 0.9
                    docs.append({"_id": len(docs), "filename": f"img_{len(docs)}.jpg", "timestamp": at,
                                 "output_prediction": 0 if drifted else rng.randrange(7),
                                 "output_confidence": round(rng.uniform(0.5, 1.0), 4), "camera": camera})
    return docs


@pytest.fixture
def segmented(mongo_client, make_config):
    def build(drifting: set[str], **alerts):
        config = make_config(model={"timezone": "UTC"}, profiles={"local_store": False},
                             segments={"fields": ["camera"]},
                             drift={"window_predictions": 300, "min_predictions": 200, "min_reference_predictions": 200,
                                    "reference_start": "2025-03-01", "reference_end": "2025-03-03",
                                    "evaluate_interval_seconds": 0, "day_window": False},
                             alerts={"cooldown_seconds": 0} | alerts)
        cols = Collections.of(mongo_client, config)
        ensure_indexes(cols)
        docs = documents(drifting)
        cols.source.insert_many(docs)
        count_inserts(mongo_client, cols, config, docs)
        return config, cols
    return build


def test_a_camera_whose_prediction_mix_drifts_alerts_on_its_own_with_its_segment_named(segmented):
    config, cols = segmented({"c7"})
    evaluation = evaluate(cols, config, NOW)
    findings = {f.key: f for f in evaluation.findings}
    opened = {t.key for t in evaluation.transitions if t.kind == "opened"}
    assert "prediction_drift:last_n@camera=c7" in opened, findings["prediction_drift:last_n@camera=c7"].message
    assert {key for key in opened if "@" in key} == {"prediction_drift:last_n@camera=c7"}
    mine = findings["prediction_drift:last_n@camera=c7"]
    assert mine.segment == "camera=c7" and mine.population == "all predictions"
    assert mine.message.startswith("segment camera = c7: predicted-class mix of all predictions over the last 300")
    assert mine.window["predictions"] == 300 and mine.statistic["reference_predictions"] == 72 * 5
    for camera in CAMERAS:   # every camera was checked, each against its own reference
        assert findings[f"prediction_drift:last_n@camera={camera}"].firing is (camera == "c7")
    alert = cols.alerts.find_one({"key": "prediction_drift:last_n@camera=c7"})
    assert alert["segment"] == "camera=c7" and alert["message"] == mine.message


def test_a_bad_deploy_opens_at_most_the_cap_and_sends_one_message_listing_the_segments(segmented):
    config, cols = segmented(set(CAMERAS), max_per_evaluation=4, webhooks=HOOKS)
    first = evaluate(cols, config, NOW)
    opened = [t.key for t in first.transitions if t.kind == "opened"]
    assert len(opened) == 4 and opened[0] == "prediction_drift:last_n"   # the overall condition first
    segment_alerts = list(cols.alerts.find({"segment": {"$ne": ""}, "status": "open"}))
    assert len(segment_alerts) == 3
    carrying = [alert for alert in segment_alerts if alert["deliveries"]]
    assert len(carrying) == 1   # one message for the three
    lead = carrying[0]
    message = lead["transitions"][0]["message"]
    values = [alert["segment"].partition("=")[2] for alert in segment_alerts]
    assert message.startswith(f"prediction_drift opened for 3 segments of camera ({', '.join(values)}); 9 more "
                              "segments hold and wait for the next evaluation (alerts.max_per_evaluation = 4): ")
    assert all(f"segment camera = {value}: predicted-class mix" in message for value in values)
    assert {alert["grouped_with"] for alert in segment_alerts if alert is not lead} == {lead["_id"]}
    assert cols.alerts.find_one({"key": "prediction_drift:last_n"})["deliveries"]   # overall: its own message

    second = evaluate(cols, config, NOW + dt.timedelta(minutes=1))
    assert len([t for t in second.transitions if t.kind == "opened"]) == 4   # four more segments, the rest later
    assert cols.alerts.count_documents({"segment": {"$ne": ""}, "status": "open"}) == 7
    pending = [d for alert in cols.alerts.find() for d in alert["deliveries"]]
    assert len(pending) == 3   # overall, the first group, the second group: not one message per segment


def test_segment_findings_that_would_overflow_the_state_document_are_left_out_of_it_but_still_alert(
        segmented, monkeypatch, caplog):
    """The latest findings live in one state document (16 MiB at most, or every evaluation fails): past the budget,
    segment findings are left out of it, counted and warned about; overall ones never, and alerts still open."""
    config, cols = segmented({"c3"})
    full = evaluate(cols, config, NOW)
    stored = cols.state.find_one({"_id": "drift"})
    assert stored["segment_findings_left_out"] == 0 and len(stored["findings"]) == len(full.findings)
    overall = [finding.to_doc() for finding in full.findings if not finding.segment]
    budget = len(bson.encode({"findings": overall})) + 3 * len(bson.encode(overall[0])) + 100
    monkeypatch.setattr("drift.evaluate.MAX_KEPT_FINDINGS_BYTES", budget)
    cols.alerts.delete_many({})
    caplog.set_level(logging.WARNING, logger="drift.evaluate")
    squeezed = evaluate(cols, config, NOW + HOUR)
    stored = cols.state.find_one({"_id": "drift"})
    segment_findings = [finding for finding in squeezed.findings if finding.segment]
    kept_segments = [doc for doc in stored["findings"] if doc["segment"]]
    assert 0 < len(kept_segments) < len(segment_findings)
    assert stored["segment_findings_left_out"] == len(segment_findings) - len(kept_segments)
    assert [doc["key"] for doc in stored["findings"] if not doc["segment"]] == [doc["key"] for doc in overall]
    assert len(bson.encode({"findings": stored["findings"]})) <= budget
    assert any(f"{stored['segment_findings_left_out']} of {len(segment_findings)} per-segment findings left out"
               in record.getMessage() for record in caplog.records)
    assert any(alert["key"].endswith("@camera=c3") for alert in cols.alerts.find({"status": "open"}))


@pytest.mark.parametrize("value", [0, -1, 1001, "5", 2.5])
def test_max_per_evaluation_is_checked_naming_the_key(value):
    with pytest.raises(ConfigError, match=r"alerts\.max_per_evaluation"):
        config_from_mapping({"alerts": {"max_per_evaluation": value}})
    assert config_from_mapping({}).alerts.max_per_evaluation == 20
