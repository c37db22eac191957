"""The alert lifecycle in MongoDB: open once, update while the condition holds, resolve when it clears.

One document per alert in the alerts collection. At most one alert per key (detector + subject) is open:
a unique partial index enforces it, so two evaluators racing cannot open the same condition twice.
After an alert resolves, the same key stays quiet for `alerts.cooldown_seconds`. Each transition
(opened, resolved) is pushed onto the alert together with one pending delivery per configured webhook,
in the same single-document write, so a transition is never recorded without its deliveries (and works
without transactions, on standalone servers too).

    {_id, key, detector, subject, type, severity, status: "open"|"resolved", message, window, statistic,
     threshold, opened_at, updated_at, resolved_at, evaluations, resolution, resolved_statistic,
     transitions: [{id, kind, at, message, severity, statistic, window}],
     deliveries: [{id, transition, webhook, state: "pending"|"delivered"|"dead", attempts,
                   next_attempt_at, created_at, delivered_at, last_error}],
     delivery_due_at, delivery_lease}
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from clara.config import Config
from clara.db import Collections
from drift.checks import Finding

log = logging.getLogger(__name__)
OPENED, RESOLVED = "opened", "resolved"


@dataclasses.dataclass(frozen=True)
class Transition:
    alert_id: str
    key: str
    kind: str
    message: str


def ensure_alert_indexes(cols: Collections) -> None:
    """The alert collection's indexes; with mongodb.create_indexes = false, none (see the README's MongoDB section)."""
    if not cols.create_indexes:
        return
    alerts = cols.alerts
    alerts.create_index([("key", ASCENDING)], name="clara_open_key", unique=True,
                        partialFilterExpression={"status": "open"})
    alerts.create_index([("key", ASCENDING), ("resolved_at", DESCENDING)], name="clara_key_resolved")
    alerts.create_index([("status", ASCENDING), ("opened_at", DESCENDING)], name="clara_status_opened")
    alerts.create_index([("delivery_due_at", ASCENDING)], name="clara_delivery_due",
                        partialFilterExpression={"delivery_due_at": {"$type": "date"}})


def apply_findings(cols: Collections, config: Config, findings: Iterable[Finding],
                   now: dt.datetime) -> list[Transition]:
    """Open, update or resolve the alert of every finding that has a verdict; returns the transitions."""
    transitions = []
    decided = [finding for finding in findings if finding.firing is not None]
    open_ids = {doc["key"]: doc["_id"] for doc in cols.alerts.find(
        {"status": "open", "key": {"$in": [finding.key for finding in decided]}}, {"key": 1})}
    for finding in decided:
        current = open_ids.get(finding.key)
        firing = finding.firing and finding.alerting  # a comparison shown beside never alerts (and resolves)
        if firing and current is not None:
            _update(cols, current, finding, now)
        elif firing:
            transition = _open(cols, config, finding, now)
            if transition is not None:
                transitions.append(transition)
        elif current is not None:
            transition = _resolve(cols, config, current, finding, now)
            if transition is not None:
                transitions.append(transition)
    return transitions


def _transition(alert_id: str, kind: str, finding: Finding, now: dt.datetime,
                config: Config) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    transition_id = f"{alert_id}:{kind}"
    queued = dt.datetime.now(dt.timezone.utc)  # deliveries run on the wall clock, whatever `now` evaluated
    entry = {"id": transition_id, "kind": kind, "at": now, "message": finding.message,
             "severity": finding.severity, "statistic": finding.statistic, "window": finding.window}
    deliveries = [{"id": f"{transition_id}:{hook.name}", "transition": transition_id, "webhook": hook.name,
                   "state": "pending", "attempts": 0, "next_attempt_at": queued, "created_at": queued,
                   "delivered_at": None, "last_error": None} for hook in config.alerts.webhooks]
    return entry, deliveries


def _open(cols: Collections, config: Config, finding: Finding, now: dt.datetime) -> Transition | None:
    last = cols.alerts.find_one({"key": finding.key, "status": "resolved"}, {"resolved_at": 1},
                                sort=[("resolved_at", DESCENDING)])
    cooldown = dt.timedelta(seconds=config.alerts.cooldown_seconds)
    if last is not None and _utc(last["resolved_at"]) + cooldown > now:
        log.debug("alert %s holds again within its cooldown; not re-opened", finding.key)
        return None
    alert_id = str(ObjectId())
    entry, deliveries = _transition(alert_id, OPENED, finding, now, config)
    doc = finding.to_doc() | {
        "_id": alert_id, "status": "open", "opened_at": now, "updated_at": now, "resolved_at": None,
        "evaluations": 1, "transitions": [entry], "deliveries": deliveries,
        "delivery_due_at": deliveries[0]["created_at"] if deliveries else None, "delivery_lease": None}
    doc.pop("firing")
    try:
        cols.alerts.insert_one(doc)
    except DuplicateKeyError:  # another evaluator opened it a moment ago: this is the same condition
        return None
    log.warning("alert opened: %s: %s", finding.key, finding.message)
    return Transition(alert_id, finding.key, OPENED, finding.message)


def _update(cols: Collections, alert_id: str, finding: Finding, now: dt.datetime) -> None:
    cols.alerts.update_one({"_id": alert_id, "status": "open"}, {
        "$set": {"message": finding.message, "statistic": finding.statistic, "window": finding.window,
                 "severity": finding.severity, "threshold": finding.threshold, "updated_at": now},
        "$inc": {"evaluations": 1}})


def _resolve(cols: Collections, config: Config, alert_id: str, finding: Finding,
             now: dt.datetime) -> Transition | None:
    entry, deliveries = _transition(alert_id, RESOLVED, finding, now, config)
    update: dict[str, Any] = {
        "$set": {"status": "resolved", "resolved_at": now, "updated_at": now, "resolution": finding.message,
                 "resolved_statistic": finding.statistic},
        "$push": {"transitions": entry, "deliveries": {"$each": deliveries}}}
    if deliveries:
        update["$set"]["delivery_due_at"] = deliveries[0]["created_at"]
    done = cols.alerts.find_one_and_update({"_id": alert_id, "status": "open"}, update, {"_id": 1},
                                           return_document=ReturnDocument.AFTER)
    if done is None:  # resolved by another evaluator meanwhile
        return None
    log.warning("alert resolved: %s: %s", finding.key, finding.message)
    return Transition(alert_id, finding.key, RESOLVED, finding.message)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment
