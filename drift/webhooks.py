"""Webhook delivery of alert transitions: queued on the alert document, drained beside the consumer.

Each transition carries one delivery per webhook. The drain leases one alert at a time, sends its due
deliveries in order per webhook (an opened transition before its resolution), and records each outcome
on the delivery. One try is a `tenacity.Retrying` built from [alerts]: bounded attempts, exponential
backoff with full jitter, retrying only transient failures (refused, timed out, 5xx, 408, 429). A
delivery whose try fails waits (redeliver_initial_seconds, doubling up to redeliver_max_seconds) for a
later drain, so a webhook that stays down never blocks the consumer; after give_up_hours it is dead.

Every request carries the delivery's id in `Idempotency-Key` (and `X-Clara-Delivery`): the same id on
every retry, so a receiver can drop a repeat whose first answer was lost. A 2xx marks it delivered.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import requests
import tenacity
from pymongo import ReturnDocument

from clara.config import Config
from clara.db import Collections
from clara.errors import ConfigError
from drift.errors import TransientWebhookError, WebhookError

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
TRANSIENT_STATUS = {408, 425, 429}


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    format: str
    url: str = dataclasses.field(repr=False)


@dataclasses.dataclass
class DrainResult:
    delivered: int = 0
    failed: int = 0
    dead: int = 0


def targets(config: Config, environ: Mapping[str, str]) -> dict[str, Target]:
    """The configured webhooks with their URLs from the environment; a missing URL is a ConfigError."""
    found = {}
    for i, hook in enumerate(config.alerts.webhooks):
        url = environ.get(hook.url_env, "")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"alerts.webhooks[{i}].url_env = {hook.url_env!r}: expected the environment variable "
                              f"{hook.url_env} to hold an http(s) URL; it is {'unset' if not url else 'not one'}")
        found[hook.name] = Target(hook.name, hook.format, url)
    return found


def payload(target: Target, alert: Mapping[str, Any], transition: Mapping[str, Any], delivery_id: str) -> dict:
    """The JSON body: the generic shape, or Slack's incoming-webhook shape ({"text": ...})."""
    kind = transition["kind"]
    if target.format == "slack":
        icon = ":rotating_light:" if kind == "opened" else ":white_check_mark:"
        return {"text": f"{icon} CLARA Monitor {alert['severity']} alert {kind}: *{alert['detector']}* "
                        f"({alert['subject']})\n{transition['message']}"}
    return {"delivery_id": delivery_id, "event": f"alert.{kind}", "at": _iso(transition["at"]),
            "message": transition["message"],
            "alert": {"id": alert["_id"], "key": alert["key"], "type": alert["type"], "detector": alert["detector"],
                      "subject": alert["subject"], "severity": transition["severity"],
                      "opened_at": _iso(alert["opened_at"]), "window": transition["window"],
                      "statistic": transition["statistic"], "threshold": alert["threshold"]}}


def retrying(config: Config, sleep: Callable[[float], None] = tenacity.nap.sleep) -> tenacity.Retrying:
    """One delivery try's retry budget, from [alerts]."""
    s = config.alerts
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(s.attempts),
        wait=tenacity.wait_random_exponential(multiplier=s.backoff_initial_seconds, max=s.backoff_max_seconds),
        retry=tenacity.retry_if_exception_type(TransientWebhookError), sleep=sleep, reraise=True)


def post(session: requests.Session, target: Target, body: dict, delivery_id: str, timeout: float) -> None:
    """One POST; raises TransientWebhookError or WebhookError unless the answer is 2xx."""
    headers = {"Idempotency-Key": delivery_id, "X-Clara-Delivery": delivery_id, "User-Agent": "clara-monitor"}
    try:
        response = session.post(target.url, json=body, headers=headers, timeout=timeout)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientWebhookError(f"{type(exc).__name__}: {exc}") from exc
    except requests.RequestException as exc:
        raise WebhookError(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 500 or response.status_code in TRANSIENT_STATUS:
        raise TransientWebhookError(f"HTTP {response.status_code}")
    if not 200 <= response.status_code < 300:
        raise WebhookError(f"HTTP {response.status_code}: {response.text[:200]}")


def drain(cols: Collections, config: Config, hooks: Mapping[str, Target], *,
          session: requests.Session | None = None, sleep: Callable[[float], None] = tenacity.nap.sleep) -> DrainResult:
    """Send every due delivery once (with its retry budget); returns what happened."""
    result = DrainResult()
    own_session = session is None
    session = session or requests.Session()
    seen: list[str] = []  # each alert at most once per drain
    try:
        while (leased := _lease(cols, config, dt.datetime.now(UTC), seen)) is not None:
            alert, token = leased
            seen.append(alert["_id"])
            try:
                _deliver_alert(cols, config, hooks, alert, session, sleep, result)
            finally:
                _release(cols, alert["_id"], token)
    finally:
        if own_session:
            session.close()
    return result


def _lease(cols: Collections, config: Config, now: dt.datetime, seen: list[str]) -> tuple[dict, str] | None:
    token = uuid.uuid4().hex
    s = config.alerts
    lease_seconds = s.attempts * (s.attempt_timeout_seconds + s.backoff_max_seconds) * 8 + 60
    alert = cols.alerts.find_one_and_update(
        {"_id": {"$nin": seen}, "delivery_due_at": {"$lte": now},
         "$or": [{"delivery_lease": None}, {"delivery_lease.until": {"$lte": now}}]},
        {"$set": {"delivery_lease": {"token": token, "until": now + dt.timedelta(seconds=lease_seconds)}}},
        sort=[("delivery_due_at", 1)], return_document=ReturnDocument.AFTER)
    return None if alert is None else (alert, token)


def _deliver_alert(cols: Collections, config: Config, hooks: Mapping[str, Target], alert: dict,
                   session: requests.Session, sleep: Callable[[float], None], result: DrainResult) -> None:
    transitions = {t["id"]: t for t in alert.get("transitions", [])}
    # Webhook -> when its earliest waiting delivery is next tried: later ones wait for it, to keep the order.
    blocked: dict[str, dt.datetime] = {}
    for delivery in alert.get("deliveries", []):
        name = delivery["webhook"]
        if delivery["state"] != "pending":
            continue
        if name in blocked:
            _not_before(cols, alert["_id"], delivery, blocked[name])
            continue
        now = dt.datetime.now(UTC)
        if _utc(delivery["next_attempt_at"]) > now:
            blocked[name] = _utc(delivery["next_attempt_at"])
            continue
        target = hooks.get(name)
        if target is None:
            _finish(cols, alert["_id"], delivery, "dead", f"webhook {name!r} is no longer configured")
            result.dead += 1
            continue
        body = payload(target, alert, transitions[delivery["transition"]], delivery["id"])
        try:
            retrying(config, sleep)(post, session, target, body, delivery["id"], config.alerts.attempt_timeout_seconds)
        except TransientWebhookError as exc:
            if _failed_for_good(config, delivery, now):
                _finish(cols, alert["_id"], delivery, "dead", f"gave up after {config.alerts.give_up_hours:g} h: {exc}")
                result.dead += 1
            else:
                blocked[name] = _retry_later(cols, config, alert["_id"], delivery, str(exc), now)
                result.failed += 1
        except WebhookError as exc:
            _finish(cols, alert["_id"], delivery, "dead", str(exc))
            result.dead += 1
        else:
            _finish(cols, alert["_id"], delivery, "delivered", None)
            result.delivered += 1


def _failed_for_good(config: Config, delivery: Mapping, now: dt.datetime) -> bool:
    return now - _utc(delivery["created_at"]) >= dt.timedelta(hours=config.alerts.give_up_hours)


def _finish(cols: Collections, alert_id: str, delivery: Mapping, state: str, error: str | None) -> None:
    if state == "dead":
        log.error("webhook delivery %s is dead: %s", delivery["id"], error)
    else:
        log.info("webhook delivery %s delivered", delivery["id"])
    cols.alerts.update_one({"_id": alert_id}, {"$set": {
        "deliveries.$[d].state": state, "deliveries.$[d].last_error": error,
        "deliveries.$[d].delivered_at": dt.datetime.now(UTC) if state == "delivered" else None},
        "$inc": {"deliveries.$[d].attempts": 1}}, array_filters=[{"d.id": delivery["id"]}])


def _retry_later(cols: Collections, config: Config, alert_id: str, delivery: Mapping, error: str,
                 now: dt.datetime) -> dt.datetime:
    s = config.alerts
    attempts = delivery["attempts"] + 1
    wait = min(s.redeliver_initial_seconds * 2 ** (attempts - 1), s.redeliver_max_seconds)
    log.warning("webhook delivery %s failed (%s); retrying in %.1f s", delivery["id"], error, wait)
    when = now + dt.timedelta(seconds=wait)
    cols.alerts.update_one({"_id": alert_id}, {"$set": {
        "deliveries.$[d].last_error": error, "deliveries.$[d].next_attempt_at": when},
        "$inc": {"deliveries.$[d].attempts": 1}}, array_filters=[{"d.id": delivery["id"]}])
    return when


def _not_before(cols: Collections, alert_id: str, delivery: Mapping, when: dt.datetime) -> None:
    """A delivery behind a waiting one of the same webhook is due no earlier than it."""
    if _utc(delivery["next_attempt_at"]) < when:
        cols.alerts.update_one({"_id": alert_id}, {"$set": {"deliveries.$[d].next_attempt_at": when}},
                               array_filters=[{"d.id": delivery["id"]}])


def _release(cols: Collections, alert_id: str, token: str) -> None:
    """Drop the lease and set delivery_due_at to the earliest pending delivery, atomically on the server
    (a transition pushed meanwhile is seen)."""
    pending = {"$filter": {"input": {"$ifNull": ["$deliveries", []]}, "cond": {"$eq": ["$$this.state", "pending"]}}}
    cols.alerts.update_one({"_id": alert_id, "delivery_lease.token": token}, [{"$set": {
        "delivery_lease": None, "delivery_due_at": {"$min": {"$map": {"input": pending, "in": "$$this.next_attempt_at"}}}}}])


def _iso(moment: dt.datetime) -> str:
    return _utc(moment).isoformat()


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
