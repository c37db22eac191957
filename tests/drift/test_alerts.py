"""The alert lifecycle: open once, update while it holds, resolve, cooldown, one open alert per key."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from pymongo.errors import DuplicateKeyError

from clara.db import Collections
from drift import alerts, queries
from drift.alerts import apply_findings, ensure_alert_indexes
from drift.checks import Finding

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 3, 1, 12, tzinfo=UTC)
HOOKS = [{"name": "ops", "format": "json", "url_env": "CLARA_OPS_URL"},
         {"name": "chat", "format": "slack", "url_env": "CLARA_CHAT_URL"}]


def finding(firing: bool | None, value: float = 0.69) -> Finding:
    return Finding("accuracy", "last_n", "performance", firing, "warning",
                   {"kind": "last_n", "label": "the last 2,000 reviews", "reviews": 2000},
                   {"name": "accuracy", "value": value, "p_value": 1e-9}, {"alpha": 0.001, "min_drop": 0.05},
                   f"accuracy {value:.2f} over the last 2,000 reviews, down from 0.96; p < 0.001")


@pytest.fixture
def alert_config(make_config):
    return make_config(alerts={"cooldown_seconds": 600, "webhooks": HOOKS})


def test_open_update_resolve_without_duplicates(mongo_client, alert_config):
    cols = Collections.of(mongo_client, alert_config)
    ensure_alert_indexes(cols)
    opened = apply_findings(cols, alert_config, [finding(True)], T0)
    assert [t.kind for t in opened] == ["opened"]
    for minutes in (1, 2, 3):
        assert apply_findings(cols, alert_config, [finding(True, 0.6 + minutes / 100)],
                              T0 + dt.timedelta(minutes=minutes)) == []
    assert apply_findings(cols, alert_config, [finding(None)], T0 + dt.timedelta(minutes=4)) == []
    alert = cols.alerts.find_one()
    assert cols.alerts.count_documents({}) == 1
    assert alert["status"] == "open" and alert["evaluations"] == 4 and alert["statistic"]["value"] == 0.63
    assert alert["message"].startswith("accuracy 0.63")
    assert [d["id"] for d in alert["deliveries"]] == [f"{alert['_id']}:opened:ops", f"{alert['_id']}:opened:chat"]
    resolved = apply_findings(cols, alert_config, [finding(False, 0.95)], T0 + dt.timedelta(minutes=5))
    assert [t.kind for t in resolved] == ["resolved"]
    assert apply_findings(cols, alert_config, [finding(False, 0.95)], T0 + dt.timedelta(minutes=6)) == []
    alert = cols.alerts.find_one()
    assert alert["status"] == "resolved" and alert["resolved_at"] == T0 + dt.timedelta(minutes=5)
    assert [t["kind"] for t in alert["transitions"]] == ["opened", "resolved"]
    assert len(alert["deliveries"]) == 4 and {d["state"] for d in alert["deliveries"]} == {"pending"}
    past = queries.past_alerts(cols)
    assert [a["id"] for a in past] == [alert["_id"]] and "deliveries" not in past[0]
    assert queries.open_alerts(cols) == []
    detail = queries.alert_detail(cols, alert["_id"])
    assert detail["resolved_at"] == (T0 + dt.timedelta(minutes=5)).isoformat()
    assert len(detail["transitions"]) == 2


def test_cooldown_before_reopening(mongo_client, alert_config):
    cols = Collections.of(mongo_client, alert_config)
    ensure_alert_indexes(cols)
    apply_findings(cols, alert_config, [finding(True)], T0)
    apply_findings(cols, alert_config, [finding(False)], T0 + dt.timedelta(minutes=1))
    # The condition holds again within the 10-minute cooldown: no new alert.
    assert apply_findings(cols, alert_config, [finding(True)], T0 + dt.timedelta(minutes=5)) == []
    assert cols.alerts.count_documents({"status": "open"}) == 0
    reopened = apply_findings(cols, alert_config, [finding(True)], T0 + dt.timedelta(minutes=12))
    assert [t.kind for t in reopened] == ["opened"]
    assert cols.alerts.count_documents({}) == 2
    assert [a["status"] for a in queries.open_alerts(cols)] == ["open"]


def test_one_open_alert_per_key_even_when_evaluators_race(mongo_client, alert_config):
    cols = Collections.of(mongo_client, alert_config)
    ensure_alert_indexes(cols)
    apply_findings(cols, alert_config, [finding(True)], T0)
    existing = cols.alerts.find_one()
    with pytest.raises(DuplicateKeyError):
        cols.alerts.insert_one(existing | {"_id": "another"})
    # A racing evaluator that did not see the open alert loses the insert and opens nothing.
    assert alerts._open(cols, alert_config, finding(True), T0) is None
    other = dataclasses.replace(finding(True), subject="day")
    assert [t.key for t in apply_findings(cols, alert_config, [other], T0)] == ["accuracy:day"]
