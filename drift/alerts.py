"""The alert lifecycle in MongoDB: open once, update while the condition holds, resolve when it clears.

One document per alert in the alerts collection. At most one alert per key (detector + subject) is open:
a unique partial index enforces it, so two evaluators racing cannot open the same condition twice.
After an alert resolves, the same key stays quiet for `alerts.cooldown_seconds`. Each transition
(opened, resolved) is pushed onto the alert together with one pending delivery per configured webhook,
in the same single-document write, so a transition is never recorded without its deliveries (and works
without transactions, on standalone servers too). One evaluation opens at most alerts.max_per_evaluation
alerts; segment alerts (drift/segment_checks.py) of one detector and field opened or resolved together are
delivered as one message, carried by the first of them (`grouped_with` on the others).

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
from collections import Counter
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
    """Open, update or resolve the alert of every finding that has a verdict; returns the transitions.

    At most alerts.max_per_evaluation alerts open per call (overall conditions first, critical ones first): the
    rest are logged and open at a later evaluation if they still hold. Segment alerts opened (or resolved) together
    for the same detector and field are one webhook message: the first of them carries the deliveries, with a
    message listing every segment; the others none (`grouped_with` names the alert that carries them)."""
    decided = [finding for finding in findings if finding.firing is not None]
    open_ids = {doc["key"]: doc["_id"] for doc in cols.alerts.find(
        {"status": "open", "key": {"$in": [finding.key for finding in decided]}}, {"key": 1})}
    opening, resolving = [], []
    for finding in decided:
        current = open_ids.get(finding.key)
        firing = finding.firing and finding.alerting  # a comparison shown beside never alerts (and resolves)
        if firing and current is not None:
            _update(cols, current, finding, now)
        elif firing and not _cooling(cols, config, finding, now):
            opening.append(finding)
        elif not firing and current is not None:
            resolving.append((current, finding))
    opening.sort(key=lambda finding: (bool(finding.segment), finding.severity != "critical"))
    cap = config.alerts.max_per_evaluation
    held = opening[cap:]
    if held:
        log.warning("alerts.max_per_evaluation = %d: %d more conditions hold and are not opened by this evaluation "
                    "(the next ones open them while they hold): %s", cap, len(held),
                    ", ".join(finding.key for finding in held[:20]) + (", ..." if len(held) > 20 else ""))
    held_back = Counter(_group_key(finding) for finding in held)
    transitions = []
    for group in _groups([(None, finding) for finding in opening[:cap]]):
        transitions += _grouped(cols, config, group, now, OPENED, held_back[_group_key(group[0][1])])
    for group in _groups(resolving):
        transitions += _grouped(cols, config, group, now, RESOLVED, 0)
    return transitions


def _group_key(finding: Finding) -> tuple[str, str] | None:
    """Segment findings of one detector and field go out as one message; other findings alone (None)."""
    return (finding.detector, finding.segment.partition("=")[0]) if finding.segment else None


def _groups(items: list[tuple[str | None, Finding]]) -> list[list[tuple[str | None, Finding]]]:
    groups: dict[tuple[str, str], list] = {}
    alone = []
    for item in items:
        key = _group_key(item[1])
        if key is None:
            alone.append([item])
        else:
            groups.setdefault(key, []).append(item)
    return alone + list(groups.values())


def _grouped(cols: Collections, config: Config, group: list[tuple[str | None, Finding]], now: dt.datetime,
             kind: str, held_back: int) -> list[Transition]:
    """Open (or resolve) a group's alerts; the first to succeed carries the deliveries and the group's message."""
    message = _group_message(group, kind, held_back, config) if len(group) > 1 or held_back else None
    lead, transitions = None, []
    for alert_id, finding in group:
        grouping = {"message": message, "deliver": lead is None, "grouped_with": lead}
        transition = (_open(cols, config, finding, now, **grouping) if kind == OPENED else
                      _resolve(cols, config, alert_id, finding, now, **grouping))
        if transition is not None:
            transitions.append(transition)
            lead = lead or transition.alert_id
    return transitions


def _group_message(group: list[tuple[str | None, Finding]], kind: str, held_back: int, config: Config) -> str:
    first = group[0][1]
    field = first.segment.partition("=")[0]
    values = [finding.segment.partition("=")[2] for _, finding in group]
    more = (f"; {held_back} more segments hold and wait for the next evaluation (alerts.max_per_evaluation = "
            f"{config.alerts.max_per_evaluation})") if held_back else ""
    return (f"{first.detector} {kind} for {len(group)} segment{'s' if len(group) > 1 else ''} of {field} "
            f"({', '.join(values)}){more}: " + " | ".join(finding.message for _, finding in group))


def _transition(alert_id: str, kind: str, finding: Finding, now: dt.datetime, config: Config,
                message: str | None = None, deliver: bool = True) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A transition's entry (its message: the finding's, or its group's) and its deliveries (none when another
    alert of its group carries them)."""
    transition_id = f"{alert_id}:{kind}"
    queued = dt.datetime.now(dt.timezone.utc)  # deliveries run on the wall clock, whatever `now` evaluated
    entry = {"id": transition_id, "kind": kind, "at": now, "message": message or finding.message,
             "severity": finding.severity, "statistic": finding.statistic, "window": finding.window}
    deliveries = [{"id": f"{transition_id}:{hook.name}", "transition": transition_id, "webhook": hook.name,
                   "state": "pending", "attempts": 0, "next_attempt_at": queued, "created_at": queued,
                   "delivered_at": None, "last_error": None} for hook in config.alerts.webhooks] if deliver else []
    return entry, deliveries


def _cooling(cols: Collections, config: Config, finding: Finding, now: dt.datetime) -> bool:
    """Whether the finding's key resolved within alerts.cooldown_seconds (it is not re-opened then)."""
    last = cols.alerts.find_one({"key": finding.key, "status": "resolved"}, {"resolved_at": 1},
                                sort=[("resolved_at", DESCENDING)])
    cooldown = dt.timedelta(seconds=config.alerts.cooldown_seconds)
    if last is not None and _utc(last["resolved_at"]) + cooldown > now:
        log.debug("alert %s holds again within its cooldown; not re-opened", finding.key)
        return True
    return False


def _open(cols: Collections, config: Config, finding: Finding, now: dt.datetime, message: str | None = None,
          deliver: bool = True, grouped_with: str | None = None) -> Transition | None:
    alert_id = str(ObjectId())
    entry, deliveries = _transition(alert_id, OPENED, finding, now, config, message, deliver)
    doc = finding.to_doc() | {
        "_id": alert_id, "status": "open", "opened_at": now, "updated_at": now, "resolved_at": None,
        "evaluations": 1, "transitions": [entry], "deliveries": deliveries,
        "delivery_due_at": deliveries[0]["created_at"] if deliveries else None, "delivery_lease": None,
        **({"grouped_with": grouped_with} if grouped_with else {})}
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


def _resolve(cols: Collections, config: Config, alert_id: str, finding: Finding, now: dt.datetime,
             message: str | None = None, deliver: bool = True, grouped_with: str | None = None) -> Transition | None:
    entry, deliveries = _transition(alert_id, RESOLVED, finding, now, config, message, deliver)
    update: dict[str, Any] = {
        "$set": {"status": "resolved", "resolved_at": now, "updated_at": now, "resolution": finding.message,
                 "resolved_statistic": finding.statistic, **({"grouped_with": grouped_with} if grouped_with else {})},
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
