"""Evaluate every enabled check from the rollups and move the alerts; called by the consumer after batches.

`evaluate_after_batch` is cheap enough for every batch: one read of the throttle state answers "not yet"
until `drift.evaluate_interval_seconds` have passed, and only one evaluator wins each turn (an atomic
claim on the state document {_id: "drift"}, so several consumer processes do not evaluate twice). An
evaluation reads a few hundred rollup documents of each kind (the windows and their reference periods:
prediction rollups for all predictions and the volume check, review rollups for the reviewed ones), with
segments each field's segment rollups once per kind (drift/segment_windows.py), and, when enabled, counts
pending reviews (capped), reads the consumer's state document and the outbox.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

import bson
from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError, OperationFailure

from clara.config import Config
from clara.db import CONSUMER_STATE_ID, PREDICTIONS_STATE_ID, Collections
from drift import checks, estimate_checks, outbox, segment_checks, volume, windows
from drift.alerts import Transition, apply_findings, ensure_alert_indexes
from drift.checks import Finding

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
DRIFT_STATE_ID = "drift"
MAX_KEPT_FINDINGS_BYTES = 8 * 2**20   # the latest findings' share of their 16 MiB state document
# The backlog count stops at this many times the threshold: past it the exact number changes nothing.
BAD_VALUE = 2
BACKLOG_COUNT_CAP = 10


@dataclasses.dataclass(frozen=True)
class Evaluation:
    at: dt.datetime
    findings: list[Finding]
    transitions: list[Transition]


def evaluate_after_batch(client: MongoClient, cols: Collections, config: Config,
                         now: dt.datetime | None = None) -> Evaluation | None:
    """Evaluate when this turn is due (throttled); never raises: a failed evaluation is logged and skipped."""
    if not config.drift.enabled:
        return None
    now = now or dt.datetime.now(UTC)
    try:
        if not _claim_turn(cols, config, now):
            return None
        return evaluate(cols, config, now)
    except Exception:  # noqa: BLE001 - a failing check must never stop ingestion; the next turn tries again
        log.exception("drift evaluation failed; the next turn tries again")
        return None


def evaluate(cols: Collections, config: Config, now: dt.datetime) -> Evaluation:
    """Every enabled check now, alerts opened/updated/resolved, the findings kept as the latest snapshot."""
    ensure_alert_indexes(cols)
    findings = findings_at(cols, config, now)
    transitions = apply_findings(cols, config, findings, now)
    kept, left_out = kept_findings(findings)
    if left_out:
        log.warning("drift: %d of %d per-segment findings left out of the latest findings (/api/drift), which must "
                    "fit one MongoDB document; their alerts open and resolve as usual. Fewer segment values "
                    "(segments.max_values) or drift.segments = false keep them all", left_out,
                    sum(1 for finding in findings if finding.segment))
    cols.state.update_one({"_id": DRIFT_STATE_ID}, {"$set": {
        "evaluated_at": now, "findings": kept, "segment_findings_left_out": left_out}}, upsert=True)
    return Evaluation(now, findings, transitions)


def kept_findings(findings: Sequence[Finding], limit_bytes: int | None = None) -> tuple[list[dict], int]:
    """The findings as stored in the state document, and how many per-segment ones did not fit: every overall
    finding, then segment findings in order while the document stays under `limit_bytes` (MongoDB refuses a
    document over 16 MiB, which would stop every evaluation; about 30 findings per segment value, more with
    many classes, reach it at a few hundred values)."""
    limit_bytes = MAX_KEPT_FINDINGS_BYTES if limit_bytes is None else limit_bytes
    docs = [finding.to_doc() for finding in findings]
    kept = [doc for finding, doc in zip(findings, docs) if not finding.segment]
    size = len(bson.encode({"findings": kept}))
    left_out = 0
    for finding, doc in zip(findings, docs):
        if not finding.segment:
            continue
        grown = len(bson.encode(doc)) + 16   # the array index and type byte, with room to spare
        if size + grown > limit_bytes:
            left_out += 1
            continue
        kept.append(doc)
        size += grown
    return kept, left_out


def _chosen(config: Config, last_n: windows.Window, day: Callable[[], windows.Window]) -> list[windows.Window]:
    """The live windows checked: the last N, and today when drift.day_window is on (read only then)."""
    return [last_n, day()] if config.drift.day_window else [last_n]


def findings_at(cols: Collections, config: Config, now: dt.datetime) -> list[Finding]:
    drift = config.drift
    found: list[Finding] = []
    # All predictions (prediction rollups): known at once, so checked without waiting for reviewers.
    on_predictions: list[Finding] = []
    if drift.prediction_drift or drift.confidence_drift or drift.label_shift:
        for window in _chosen(config, windows.last_n_predictions(cols.predictions, drift.window_predictions, now),
                              lambda: windows.prediction_day_window(cols.predictions, config, now)):
            reference = windows.reference_window(cols.predictions, config, window)
            on_predictions += checks.prediction_checks(window, reference, config)
            if drift.label_shift:   # the reference's reviews calibrate the estimate of all traffic's true mix
                start, end, _ = windows.reference_bounds(config, window.start)
                on_predictions.append(estimate_checks.label_shift_finding(
                    window, reference, windows.totals_between(cols.rollups, start, end), config))
    if drift.volume:
        on_predictions.append(volume.volume_finding(cols.predictions, config, now))
    by_segment = segment_checks.segment_findings(cols, config, now)
    on_predictions += [finding for finding in by_segment if finding.population == windows.ALL]
    if on_predictions and _recounting(cols):
        # Recounted hours are emptied, then filled a day at a time: partial counts decide nothing.
        on_predictions = checks.without_verdict(on_predictions, "the consumer is recounting prediction hours")
    found += on_predictions
    found += [finding for finding in by_segment if finding.population != windows.ALL]
    # Reviewed predictions (review rollups): what needs the true class.
    for window in _chosen(config, windows.last_n_window(cols.rollups, drift.window_reviews, now),
                          lambda: windows.day_window(cols.rollups, config, now)):
        reference = windows.reference_window(cols.rollups, config, window)
        found += checks.window_checks(window, reference, config)
        if drift.calibration_drift:
            found.append(estimate_checks.calibration_finding(window, reference, config))
    if drift.backlog_max_pending:
        cap = drift.backlog_max_pending * BACKLOG_COUNT_CAP + 1
        pending = count_pending(cols, cap)
        found.append(checks.backlog_finding(pending, pending == cap, config))
    if drift.lag_max_seconds:
        found.append(checks.lag_finding(cols.state.find_one({"_id": CONSUMER_STATE_ID}), config))
    if drift.outbox_max_entries or drift.outbox_max_age_seconds:
        found.append(checks.outbox_finding(outbox.outbox_status(cols, outbox.count_cap(drift)), config, now))
    return found


def _recounting(cols: Collections) -> bool:
    recount = (cols.state.find_one({"_id": PREDICTIONS_STATE_ID}, {"recount": 1}) or {}).get("recount") or {}
    return bool(recount) and not recount.get("done_at")


def _claim_turn(cols: Collections, config: Config, now: dt.datetime) -> bool:
    """True for the one caller whose turn it is: nobody evaluated within the interval."""
    interval = dt.timedelta(seconds=config.drift.evaluate_interval_seconds)
    state: dict[str, Any] = cols.state.find_one({"_id": DRIFT_STATE_ID}, {"claimed_at": 1}) or {}
    last = state.get("claimed_at")
    if last is not None and _utc(last) + interval > now and _utc(last) <= now:
        return False
    due = {"$or": [{"claimed_at": {"$exists": False}}, {"claimed_at": {"$lte": now - interval}},
                   {"claimed_at": {"$gt": now}}]}
    try:
        cols.state.update_one({"_id": DRIFT_STATE_ID, **due}, {"$set": {"claimed_at": now}}, upsert=True)
    except DuplicateKeyError:  # someone else claimed this turn
        return False
    return True


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def count_pending(cols: Collections, cap: int) -> int:
    """Unreviewed documents, at most `cap`, through the {output_validated, timestamp} index whatever its name
    (an equivalent index of the user's may stand in for CLARA's); without one, MongoDB picks a plan."""
    query = {"output_validated": None}
    try:
        return cols.source.count_documents(query, limit=cap, hint=[("output_validated", 1), ("timestamp", 1)])
    except OperationFailure as exc:
        if exc.code != BAD_VALUE:   # "hint provided does not correspond to an existing index"
            raise
        return cols.source.count_documents(query, limit=cap)
