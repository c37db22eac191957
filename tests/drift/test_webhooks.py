"""Webhook deliveries reach a local HTTP server exactly once per alert transition, also through failures."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from clara.db import Collections
from clara.errors import ConfigError
from drift import webhooks
from drift.alerts import apply_findings, ensure_alert_indexes
from tests.drift.test_alerts import T0, finding
from tests.drift.webhook_server import WebhookServer, free_port

FAST_RETRY = {"attempts": 2, "backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.02,
              "attempt_timeout_seconds": 2.0, "redeliver_initial_seconds": 0.05, "redeliver_max_seconds": 0.2}


def hooks_config(make_config, **alerts):
    webhook_list = [{"name": "ops", "format": "json", "url_env": "CLARA_OPS_URL"},
                    {"name": "chat", "format": "slack", "url_env": "CLARA_CHAT_URL"}]
    return make_config(alerts=FAST_RETRY | {"cooldown_seconds": 0, "webhooks": webhook_list} | alerts)


def open_and_resolve(cols, config, cycles: int = 1) -> int:
    """Each cycle opens and resolves one alert: two transitions."""
    for cycle in range(cycles):
        start = T0 + dt.timedelta(hours=cycle)
        apply_findings(cols, config, [finding(True)], start)
        apply_findings(cols, config, [finding(False, 0.95)], start + dt.timedelta(minutes=30))
    return 2 * cycles


def drain_until(cols, config, hooks, done, timeout: float = 15.0) -> webhooks.DrainResult:
    total = webhooks.DrainResult()
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "deliveries did not arrive in time"
        result = webhooks.drain(cols, config, hooks)
        total.delivered += result.delivered
        total.failed += result.failed
        total.dead += result.dead
        time.sleep(0.02)
    return total


def expected_ids(cols) -> set[str]:
    return {d["id"] for alert in cols.alerts.find() for d in alert["deliveries"]}


@pytest.fixture
def server():
    receiver = WebhookServer().start()
    try:
        yield receiver
    finally:
        receiver.stop()


def test_each_transition_arrives_once_per_webhook_in_both_formats(mongo_client, make_config, server):
    config = hooks_config(make_config)
    cols = Collections.of(mongo_client, config)
    ensure_alert_indexes(cols)
    transitions = open_and_resolve(cols, config, cycles=2)
    hooks = webhooks.targets(config, {"CLARA_OPS_URL": server.url, "CLARA_CHAT_URL": server.url})
    result = drain_until(cols, config, hooks, lambda: len(server.accepted) == 2 * transitions)
    assert result.delivered == 2 * transitions and result.failed == result.dead == 0
    assert set(server.accepted) == expected_ids(cols) and set(server.accepted.values()) == {1}
    assert webhooks.drain(cols, config, hooks).delivered == 0   # nothing left to send
    ops = [body for key, body in server.bodies.items() if key.endswith(":ops")]
    assert {body["event"] for body in ops} == {"alert.opened", "alert.resolved"}
    assert all(body["alert"]["detector"] == "accuracy" and body["message"] for body in ops)
    slack = [body for key, body in server.bodies.items() if key.endswith(":chat")]
    assert all(set(body) == {"text"} and "accuracy" in body["text"] for body in slack)
    assert cols.alerts.count_documents({"delivery_due_at": {"$ne": None}}) == 0
    assert all(d["state"] == "delivered" for a in cols.alerts.find() for d in a["deliveries"])


def test_server_errors_for_a_while_still_deliver_exactly_once(mongo_client, make_config, server):
    config = hooks_config(make_config)
    cols = Collections.of(mongo_client, config)
    ensure_alert_indexes(cols)
    transitions = open_and_resolve(cols, config)
    server.fail_next = 7   # more than one drain's attempts: some deliveries wait for a later drain
    hooks = webhooks.targets(config, {"CLARA_OPS_URL": server.url, "CLARA_CHAT_URL": server.url})
    result = drain_until(cols, config, hooks, lambda: len(server.accepted) == 2 * transitions)
    assert result.failed >= 1 and result.dead == 0
    assert set(server.accepted) == expected_ids(cols) and set(server.accepted.values()) == {1}
    # The opened transition reached each webhook before its resolution.
    order = [key.split(":")[1] for key in server.accepted if key.endswith(":ops")]
    assert order == ["opened", "resolved"]


def test_refused_connections_wait_for_a_later_drain_without_blocking(mongo_client, make_config):
    config = hooks_config(make_config)
    cols = Collections.of(mongo_client, config)
    ensure_alert_indexes(cols)
    transitions = open_and_resolve(cols, config)
    receiver = WebhookServer(free_port())   # nothing listens there yet
    hooks = webhooks.targets(config, {"CLARA_OPS_URL": receiver.url, "CLARA_CHAT_URL": receiver.url})
    started = time.monotonic()
    first = webhooks.drain(cols, config, hooks)
    assert time.monotonic() - started < 5
    assert first.delivered == 0 and first.failed == 2 and first.dead == 0   # one per webhook; the rest wait
    pending = [d for a in cols.alerts.find() for d in a["deliveries"]]
    assert all(d["state"] == "pending" and "ConnectionError" in (d["last_error"] or "ConnectionError")
               for d in pending)
    receiver.start()
    try:
        drain_until(cols, config, hooks, lambda: len(receiver.accepted) == 2 * transitions)
        assert set(receiver.accepted) == expected_ids(cols) and set(receiver.accepted.values()) == {1}
    finally:
        receiver.stop()


def test_a_permanent_refusal_is_dead_not_retried(mongo_client, make_config):
    config = hooks_config(make_config, webhooks=[{"name": "ops", "format": "json", "url_env": "CLARA_OPS_URL"}])
    cols = Collections.of(mongo_client, config)
    ensure_alert_indexes(cols)
    open_and_resolve(cols, config)
    receiver = WebhookServer().start()
    try:
        hooks = webhooks.targets(config, {"CLARA_OPS_URL": receiver.url.replace("/hook", "/missing")})
        result = webhooks.drain(cols, config, hooks)
        assert result.dead == 2 and receiver.requests == 0
        assert all("HTTP 404" in d["last_error"] for a in cols.alerts.find() for d in a["deliveries"])
    finally:
        receiver.stop()


def test_missing_webhook_url_is_a_config_error_naming_the_variable(make_config):
    config = hooks_config(make_config)
    with pytest.raises(ConfigError, match="CLARA_CHAT_URL"):
        webhooks.targets(config, {"CLARA_OPS_URL": "http://127.0.0.1:9/hook"})
