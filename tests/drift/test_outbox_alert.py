"""The outbox alert: entries waiting too long or too many for a sink, or dead-lettered, open an operational
alert that goes through the usual lifecycle and webhooks; a drained outbox resolves it."""

from __future__ import annotations

import datetime as dt

import pytest

from consumer.sinks import build_sinks, deliver_pending
from drift.evaluate import evaluate
from drift.webhooks import drain, targets
from tests.drift.webhook_server import WebhookServer
from tests.whylabs_fixture import outbox_document

UTC = dt.timezone.utc
HOUR = dt.datetime(2026, 5, 1, 9, tzinfo=UTC)
HOOK = {"name": "ops", "format": "json", "url_env": "CLARA_OPS_URL"}


@pytest.fixture
def outbox_config(make_config):
    return make_config(drift={"outbox_max_entries": 5, "outbox_max_age_seconds": 600, "evaluate_interval_seconds": 0},
                       profiles={"local_store_interval_seconds": 0.0}, alerts={"webhooks": [HOOK]})


def outbox_alert(collections):
    return collections.alerts.find_one({"key": "outbox:sinks"})


def test_entries_waiting_too_long_open_the_alert_and_a_drain_resolves_it(collections, outbox_config):
    now = dt.datetime.now(UTC)
    collections.outbox.insert_many([outbox_document(f"b{i}", HOUR, rows=2, pending=("local",),
                                                    created_at=now - dt.timedelta(minutes=30)) for i in range(3)])
    server = WebhookServer().start()
    try:
        evaluation = evaluate(collections, outbox_config, now)
        [finding] = [f for f in evaluation.findings if f.detector == "outbox"]
        assert finding.firing and finding.statistic["waiting"] == {"local": 3}
        assert "the oldest entry for local has waited 1,800 s (alert above 600 s)" in finding.message
        assert [(t.key, t.kind) for t in evaluation.transitions] == [("outbox:sinks", "opened")]
        drain(collections, outbox_config, targets(outbox_config, {"CLARA_OPS_URL": server.url}))
        [opened] = server.bodies.values()
        assert opened["event"] == "alert.opened" and opened["alert"]["key"] == "outbox:sinks"
        assert opened["message"].startswith("profile outbox: the oldest entry for local has waited")

        assert deliver_pending(collections, outbox_config, build_sinks(outbox_config)).delivered == {"local": 3}
        later = evaluate(collections, outbox_config, now + dt.timedelta(minutes=1))
        assert [(t.key, t.kind) for t in later.transitions] == [("outbox:sinks", "resolved")]
        drain(collections, outbox_config, targets(outbox_config, {"CLARA_OPS_URL": server.url}))
        assert sorted(body["event"] for body in server.bodies.values()) == ["alert.opened", "alert.resolved"]
        assert set(server.accepted.values()) == {1}   # each delivered once
    finally:
        server.stop()
    alert = outbox_alert(collections)
    assert alert["status"] == "resolved" and alert["type"] == "operational"
    assert "entries waiting: none" in alert["resolution"]


def test_too_many_entries_or_a_dead_one_fire_it(collections, outbox_config):
    now = dt.datetime.now(UTC)
    collections.outbox.insert_many([outbox_document(f"b{i}", HOUR, pending=("local", "whylabs"), created_at=now)
                                    for i in range(6)])
    [finding] = [f for f in evaluate(collections, outbox_config, now).findings if f.detector == "outbox"]
    assert finding.firing and finding.severity == "warning"
    assert finding.message == ("profile outbox: 6 entries waiting for local (alert above 5); "
                               "6 entries waiting for whylabs (alert above 5)")

    collections.outbox.delete_many({})
    collections.outbox.insert_one(outbox_document("dead", HOUR, pending=(), created_at=now)
                                  | {"dead": {"whylabs": {"reason": "HTTP 403", "at": now}}})
    [finding] = [f for f in evaluate(collections, outbox_config, now).findings if f.detector == "outbox"]
    assert finding.firing and finding.severity == "critical" and finding.statistic["dead"] == 1
    assert "1 dead-lettered entries" in finding.message and "within 14 days" in finding.message
    assert outbox_alert(collections)["severity"] == "critical"


def test_off_by_default(collections, make_config):
    collections.outbox.insert_many([outbox_document(f"b{i}", HOUR, created_at=HOUR) for i in range(50)])
    config = make_config(drift={"evaluate_interval_seconds": 0})
    assert not [f for f in evaluate(collections, config, dt.datetime.now(UTC)).findings if f.detector == "outbox"]
