"""Every live-window check once more per segment value: a camera whose prediction mix drifts alerts on its own.

With `segments.fields` configured and `drift.segments` on, every value of every field seen in the segment
rollups gets the overall checks of its own live windows against the same segment's reference period: its last
N (drift.window_predictions of its predictions, drift.window_reviews of its reviews) and, with
drift.day_window, today so far when it has any. On all its predictions: predicted-class mix and confidence
(drift/checks.py) and the label-shift estimate of its true-class mix, calibrated on the segment's own reference
reviews (drift/estimate_checks.py); on its reviewed ones: true-class mix, accuracy, recall and calibration. The
checks are the overall ones, unchanged, fed with the segment's counters.

Cost: drift/segment_windows.py reads each field's segment rollups once per kind (one walk back from now, and
with fixed reference dates the rest of that period), whatever the number of values, and checks at most
segments.max_values named values per field beside `unknown` and `other`.

A segment's finding is the overall finding with `segment` = "field=value", its subject suffixed with
"@field=value" (so each segment's condition is an alert of its own, one open at most) and its message
starting with "segment field = value: ". How many alerts one evaluation may open, and how a burst of them
is delivered as one message, is drift/alerts.py's (alerts.max_per_evaluation, grouping).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from clara.config import Config
from clara.db import Collections
from clara.predictions import PredictionTotals
from clara.rollups import Totals
from drift import checks, estimate_checks
from drift.checks import Finding
from drift.segment_windows import live_windows, read_field


def segment_findings(cols: Collections, config: Config, now: dt.datetime) -> list[Finding]:
    """Every segment value's live-window findings of both populations (none without segments or drift.segments)."""
    if not (config.segments.fields and config.drift.segments):
        return []
    return [finding for field in config.segments.fields for finding in field_findings(cols, config, field, now)]


def field_findings(cols: Collections, config: Config, field: str, now: dt.datetime) -> list[Finding]:
    """One field's values' findings, from one read of its segment rollups per kind."""
    drift = config.drift
    found: list[tuple[str, Finding]] = []
    predicted: dict = {}
    back_to, keep = None, None
    if drift.prediction_drift or drift.confidence_drift or drift.label_shift:
        hours = read_field(cols.segment_predictions, field, PredictionTotals, drift.window_predictions, now, config)
        predicted = live_windows(hours, drift.window_predictions, now, config)
        found += [(value, finding) for value, pairs in predicted.items() for window, reference in pairs
                  for finding in checks.prediction_checks(window, reference, config)]
        starts = [reference.start for pairs in predicted.values() for _, reference in pairs]
        back_to = min(starts) if drift.label_shift and starts else None
        keep = hours.named
    reviews = read_field(cols.segment_rollups, field, Totals, drift.window_reviews, now, config, back_to, keep)
    for value, pairs in live_windows(reviews, drift.window_reviews, now, config).items():
        for window, reference in pairs:
            found += [(value, finding) for finding in checks.window_checks(window, reference, config)]
            if drift.calibration_drift:
                found.append((value, estimate_checks.calibration_finding(window, reference, config)))
    if drift.label_shift:   # the segment's reference reviews calibrate the estimate of its traffic's true mix
        found += [(value, estimate_checks.label_shift_finding(
            window, reference, reviews.between(value, reference.start, reference.end), config))
            for value, pairs in predicted.items() for window, reference in pairs]
    return [tagged(finding, field, value) for value, finding in found]


def tagged(finding: Finding, field: str, value: str) -> Finding:
    return dataclasses.replace(finding, subject=f"{finding.subject}@{field}={value}", segment=f"{field}={value}",
                               message=f"segment {field} = {value}: {finding.message}")
