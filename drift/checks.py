"""The checks: a window against its reference becomes findings, each firing, clear, or without a verdict.

A finding fires only when the test is significant (p < drift.alpha) AND the effect is large enough
(a Jensen-Shannon distance or an accuracy drop at least the configured minimum), so that a tiny shift on
a huge window pages nobody and a large shift on a handful of reviews neither. A window or reference
with too few reviews (or predictions) gives no verdict (`firing` None): an open alert then stays as it is.

Two populations, never mixed: the predicted-class mix and the confidence are checked on ALL predictions
(the prediction rollups: label-free, no review delay); the true-class mix, accuracy and recall on the
REVIEWED ones. Every sentence names the population it used.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from scipy.stats import false_discovery_control

from clara.config import Config
from drift import detectors
from drift.outbox import OutboxStatus
from drift.windows import ALL, REVIEWED, Window
from estimates.intervals import proportion

DRIFT, PERFORMANCE, OPERATIONAL = "drift", "performance", "operational"
PROPORTION_METHOD = "one-sided pooled two-proportion z-test; 95% Wilson intervals (scipy)"
PROPORTION_ASSUMPTIONS = ("reviews are independent draws from the predictions they stand for (binomial); the "
                          "reviewed sample is compared as reviewed (no correction for which predictions were chosen)")
MIX_METHOD = "chi-square test of homogeneity of the 2 x k counts (scipy); Jensen-Shannon distance (base 2)"
MIX_ASSUMPTIONS = "each side is an independent sample of its population (multinomial counts)"
CORRECTIONS = {"holm": "Holm", "bh": "Benjamini-Hochberg"}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One detector's verdict on one subject (a window kind, maybe a class) at one evaluation."""

    detector: str
    subject: str
    type: str
    firing: bool | None
    severity: str
    window: dict[str, Any]
    statistic: dict[str, Any]
    threshold: dict[str, Any]
    message: str
    population: str = ""     # "all predictions" or "reviewed predictions"; "" for operational checks
    alerting: bool = True    # False: computed and shown, never opens an alert (drift.class_reference)
    segment: str = ""        # "field=value" for a segment's own check (drift/segment_checks.py); "" overall

    @property
    def key(self) -> str:
        """What makes an ongoing condition the same condition: one open alert per key at most."""
        return f"{self.detector}:{self.subject}"

    def to_doc(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"key": self.key}


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def alerting_references(config: Config) -> set[str]:
    """Which class-mix comparisons alert ("baseline", "training"); the other is computed and shown beside.

    By default the recent past of production (the reference period): production priors are rarely training
    priors, and a training comparison alerting from day one would stay open for good.
    """
    choice = config.drift.class_reference
    if choice == "auto":
        choice = "training" if sum(config.model.training_counts) else "baseline"
    return {"baseline", "training"} if choice == "both" else {choice}


def prediction_checks(window: Window, reference: Window, config: Config) -> list[Finding]:
    """Checks on ALL predictions (label-free, no review delay): the predicted-class mix and the confidence."""
    drift, n = config.drift, config.n_classes
    findings: list[Finding] = []
    if drift.prediction_drift:
        findings += _class_mixes("prediction_drift", "predicted-class mix", window, reference,
                                 detectors.prediction_class_counts(window.totals, n),
                                 detectors.prediction_class_counts(reference.totals, n), config)
    if drift.confidence_drift:
        findings.append(_confidence(window, reference, config))
    return findings


def window_checks(window: Window, reference: Window, config: Config) -> list[Finding]:
    """Checks on REVIEWED predictions (they need the true class): the true-class mix and performance."""
    drift = config.drift
    findings: list[Finding] = []
    n = config.n_classes
    if drift.label_drift:
        findings += _class_mixes("label_drift", "true-class mix", window, reference,
                                 detectors.true_counts(window.totals, n), detectors.true_counts(reference.totals, n),
                                 config)
    if drift.performance:
        findings.append(_accuracy(window, reference, config))
        findings += corrected([_recall(window, reference, config, cls) for cls in range(n)], config)
    return findings


def interval_text(k: int, n: int) -> str:
    """"0.87 (95% Wilson interval 0.85 to 0.89, 2,013 reviews)": a proportion with what it rests on."""
    found = proportion(k, n)
    return f"{found.value:.2f} (95% Wilson interval {found.interval.low:.2f} to {found.interval.high:.2f}, {n:,} reviews)"


def _wilson(k: int, n: int) -> list[float] | None:
    found = proportion(k, n)
    return None if found.interval is None else [found.interval.low, found.interval.high]


def corrected(family: list[Finding], config: Config) -> list[Finding]:
    """A family of tests run together (per-class recall), with drift.multiple_testing's correction: Holm's
    step-down (family-wise error at most alpha) or Benjamini-Hochberg (false discovery rate at most alpha,
    scipy.stats.false_discovery_control). Tests without a verdict are not in the family."""
    drift = config.drift
    tested = [i for i, f in enumerate(family) if f.firing is not None and "p_value" in f.statistic]
    if drift.multiple_testing == "none" or not tested:
        return family
    p_values = [family[i].statistic["p_value"] for i in tested]
    adjusted = detectors.holm(p_values) if drift.multiple_testing == "holm" else \
        [float(p) for p in false_discovery_control(p_values, method="bh")]
    name = CORRECTIONS[drift.multiple_testing]
    result = list(family)
    for i, p in zip(tested, adjusted):
        f = family[i]
        firing = p < drift.alpha and f.statistic["drop"] >= f.threshold["min_drop"]
        result[i] = dataclasses.replace(
            f, firing=firing, statistic=f.statistic | {"p_adjusted": p, "correction": drift.multiple_testing,
                                                       "family_size": len(tested)},
            threshold=f.threshold | {"correction": drift.multiple_testing},
            message=f"{f.message}; {name}-adjusted over {len(tested)} classes: {p_text(p)}")
    return result


def without_verdict(findings: list[Finding], reason: str) -> list[Finding]:
    """The same findings with no verdict (open alerts stay as they are), saying why."""
    return [dataclasses.replace(f, firing=None, message=f"{f.message}; no verdict: {reason}") for f in findings]


def _enough(window_n: int, reference_n: int, config: Config, population: str) -> bool:
    drift = config.drift
    if population == ALL:
        return window_n >= drift.min_predictions and reference_n >= drift.min_reference_predictions
    return window_n >= drift.min_reviews and reference_n >= drift.min_reference_reviews


def _class_mixes(detector: str, what: str, window: Window, reference: Window, observed: Sequence[int],
                 baseline: Sequence[int], config: Config) -> list[Finding]:
    """The class mix against the reference period (subject: the window kind) and, when the training set's
    counts are known, against them (subject `<kind>:training`); only the comparisons asked for alert."""
    alerting = alerting_references(config)
    findings = [_class_mix(detector, window.kind, what, window, observed, baseline, reference.label,
                           "baseline" in alerting, config)]
    if sum(config.model.training_counts):
        findings.append(_class_mix(detector, f"{window.kind}:training", what, window, observed,
                                   list(config.model.training_counts), "the training set", "training" in alerting,
                                   config))
    return findings


def _class_mix(detector: str, subject: str, what: str, window: Window, observed: Sequence[int],
               reference: Sequence[int], reference_label: str, alerting: bool, config: Config) -> Finding:
    test = detectors.compare_distributions(observed, reference)
    drift, classes = config.drift, config.model.classes
    firing = None
    if _enough(test.window_n, test.reference_n, config, window.population):
        firing = test.p_value < drift.alpha and test.js_distance >= drift.class_mix_min_distance
    shares_w = [c / test.window_n if test.window_n else 0.0 for c in observed]
    shares_r = [c / test.reference_n if test.reference_n else 0.0 for c in reference]
    moved = max(range(len(classes)), key=lambda c: abs(shares_w[c] - shares_r[c]))
    message = (f"{what} of {window.population} over {window.label} "
               f"{'differs from' if firing else 'against'} {reference_label}: "
               f"JS distance {test.js_distance:.3f} (alert at {drift.class_mix_min_distance:g}), "
               f"{p_text(test.p_value)}; largest change: {classes[moved]} {shares_w[moved]:.1%} vs "
               f"{shares_r[moved]:.1%}")
    if not alerting:
        message += " (shown beside, not alerted on: drift.class_reference)"
    statistic = {"name": "js_distance", "value": test.js_distance, "p_value": test.p_value, "chi2": test.chi2,
                 "dof": test.dof, "psi": test.psi, "window_shares": shares_w, "reference_shares": shares_r,
                 "reference": reference_label, _reference_n(window): test.reference_n, "method": MIX_METHOD,
                 "assumptions": MIX_ASSUMPTIONS}
    threshold = {"alpha": drift.alpha, "min_distance": drift.class_mix_min_distance}
    return Finding(detector, subject, DRIFT, firing, "warning", window.describe(), statistic, threshold, message,
                   window.population, alerting)


def _reference_n(window: Window) -> str:
    return "reference_predictions" if window.population == ALL else "reference_reviews"


def _confidence(window: Window, reference: Window, config: Config) -> Finding:
    """The 20-bin confidence histogram of all predictions against the reference period's."""
    drift = config.drift
    w = detectors.prediction_confidence_counts(window.totals)
    r = detectors.prediction_confidence_counts(reference.totals)
    test = detectors.compare_distributions(w, r)
    mean_w, mean_r = detectors.binned_mean(w), detectors.binned_mean(r)
    firing = None
    if _enough(test.window_n, test.reference_n, config, window.population):
        firing = test.p_value < drift.alpha and test.js_distance >= drift.confidence_min_distance
    means = f"binned mean {mean_w:.2f} vs {mean_r:.2f}, " if mean_w is not None and mean_r is not None else ""
    message = (f"confidence of {window.population} over {window.label} "
               f"{'differs from' if firing else 'against'} {reference.label}: "
               f"{means}JS distance {test.js_distance:.3f} (alert at {drift.confidence_min_distance:g}), "
               f"{p_text(test.p_value)}")
    statistic = {"name": "js_distance", "value": test.js_distance, "p_value": test.p_value, "chi2": test.chi2,
                 "dof": test.dof, "psi": test.psi, "ks_binned": detectors.binned_ks(w, r), "binned_mean": mean_w,
                 "reference_binned_mean": mean_r, "reference": reference.label, _reference_n(window): test.reference_n,
                 "method": MIX_METHOD.replace("2 x k", "2 x 20 confidence-bin"), "assumptions": MIX_ASSUMPTIONS}
    threshold = {"alpha": drift.alpha, "min_distance": drift.confidence_min_distance}
    return Finding("confidence_drift", window.kind, DRIFT, firing, "warning", window.describe(), statistic,
                   threshold, message, window.population)


def _accuracy(window: Window, reference: Window, config: Config) -> Finding:
    """Fires on a significant drop of at least accuracy_min_drop, or below accuracy_floor (no reference needed)."""
    drift = config.drift
    right_w, n_w = detectors.accuracy_counts(window.totals)
    right_r, n_r = detectors.accuracy_counts(reference.totals)
    threshold = {"alpha": drift.alpha, "min_drop": drift.accuracy_min_drop, "floor": drift.accuracy_floor}
    accuracy = right_w / n_w if n_w else None
    below = accuracy is not None and accuracy < drift.accuracy_floor
    statistic: dict[str, Any] = {"name": "accuracy", "value": accuracy, "interval": _wilson(right_w, n_w),
                                 "reviews": n_w, "reference": reference.label, "reference_reviews": n_r,
                                 "method": PROPORTION_METHOD, "assumptions": PROPORTION_ASSUMPTIONS}
    if n_w < drift.min_reviews:
        firing = None
        shown = f" {interval_text(right_w, n_w)}" if n_w else ""
        message = f"accuracy{shown} of {REVIEWED} over {window.label}: too few reviews for a verdict"
    elif n_r < drift.min_reference_reviews:
        firing = True if below else None
        message = (f"accuracy {interval_text(right_w, n_w)} of {REVIEWED} over {window.label}; too few reviews in "
                   f"{reference.label} to compare")
    else:
        test = detectors.proportion_drop(right_w, n_w, right_r, n_r)
        firing = below or (test.p_value < drift.alpha and test.drop >= drift.accuracy_min_drop)
        direction = "down from" if test.drop > 0 else "reference"
        message = (f"accuracy {interval_text(right_w, n_w)} of {REVIEWED} over {window.label}, {direction} "
                   f"{interval_text(right_r, n_r)} in {reference.label}; {p_text(test.p_value)}")
        statistic["reference_interval"] = _wilson(right_r, n_r)
        statistic |= {"reference_value": test.reference, "drop": test.drop, "z": test.z, "p_value": test.p_value}
    if below:
        message += f"; below the floor {drift.accuracy_floor:g}"
    return Finding("accuracy", window.kind, PERFORMANCE, firing, "critical" if below else "warning",
                   window.describe(), statistic, threshold, message, REVIEWED)


def _recall(window: Window, reference: Window, config: Config, cls: int) -> Finding:
    drift, name = config.drift, config.model.classes[cls]
    found_w, n_w = detectors.recall_counts(window.totals, cls)
    found_r, n_r = detectors.recall_counts(reference.totals, cls)
    subject = f"{window.kind}:{name}"
    threshold = {"alpha": drift.alpha, "min_drop": drift.recall_min_drop, "min_reviews": drift.recall_min_reviews}
    if n_w < drift.recall_min_reviews or n_r < drift.recall_min_reviews:
        return Finding("recall", subject, PERFORMANCE, None, "warning", window.describe(),
                       {"name": "recall", "value": found_w / n_w if n_w else None, "class": name}, threshold,
                       f"recall of {name} ({REVIEWED}) over {window.label}: too few reviews of the class "
                       f"({n_w}, {n_r})", REVIEWED)
    test = detectors.proportion_drop(found_w, n_w, found_r, n_r)
    firing = test.p_value < drift.alpha and test.drop >= drift.recall_min_drop
    direction = "down from" if test.drop > 0 else "reference"
    message = (f"recall of {name} {interval_text(found_w, n_w).replace(' reviews)', ' reviews of the class)')} "
               f"({REVIEWED}) over {window.label}, {direction} {test.reference:.2f} in {reference.label}; "
               f"{p_text(test.p_value)}")
    statistic = {"name": "recall", "class": name, "value": test.window, "reference_value": test.reference,
                 "interval": _wilson(found_w, n_w), "reference_interval": _wilson(found_r, n_r),
                 "drop": test.drop, "z": test.z, "p_value": test.p_value, "support": n_w,
                 "reference": reference.label, "reference_reviews": n_r, "method": PROPORTION_METHOD,
                 "assumptions": PROPORTION_ASSUMPTIONS}
    return Finding("recall", subject, PERFORMANCE, firing, "warning", window.describe(), statistic, threshold,
                   message, REVIEWED)


def backlog_finding(pending: int, capped: bool, config: Config) -> Finding:
    limit = config.drift.backlog_max_pending
    shown = f"more than {pending - 1:,}" if capped else f"{pending:,}"
    return Finding("backlog", "pending", OPERATIONAL, pending > limit, "warning", {"kind": "now"},
                   {"name": "pending_reviews", "value": pending, "capped": capped}, {"max": limit},
                   f"{shown} predictions waiting for review (alert above {limit:,})")


def lag_finding(state: dict[str, Any] | None, config: Config) -> Finding:
    limit = config.drift.lag_max_seconds
    lag = (state or {}).get("lag_seconds")
    last = (state or {}).get("last_batch_at")
    firing = None if lag is None else lag > limit
    message = "consumer lag unknown (no batch yet)" if lag is None else \
        f"consumer lag {lag:,.1f} s at its last batch (alert above {limit:g} s)"
    return Finding("lag", "consumer", OPERATIONAL, firing, "warning",
                   {"kind": "now", "last_batch_at": last.isoformat() if last else None},
                   {"name": "lag_seconds", "value": lag}, {"max": limit}, message)


def outbox_finding(status: OutboxStatus, config: Config, now: dt.datetime) -> Finding:
    """Fires when a sink has more entries waiting than drift.outbox_max_entries, its oldest waits longer than
    drift.outbox_max_age_seconds (either 0: not checked), or any entry is dead-lettered (it is deleted after
    profiles.dead_retention_days unless requeued)."""
    limit, max_age = config.drift.outbox_max_entries, config.drift.outbox_max_age_seconds
    ages = {sink: max(0.0, (now - at).total_seconds()) for sink, at in status.oldest.items()}
    problems = []
    for sink in sorted(status.waiting):
        waiting, age = status.waiting[sink], ages.get(sink, 0.0)
        if limit and waiting > limit:
            problems.append(f"{status.shown(waiting)} entries waiting for {sink} (alert above {limit:,})")
        if max_age and age > max_age:
            problems.append(f"the oldest entry for {sink} has waited {age:,.0f} s (alert above {max_age:g} s)")
    if status.dead:
        days = config.profiles.dead_retention_days
        deadline = f" within {days:g} days of their refusal or they are deleted" if days > 0 else ""
        problems.append(f"{status.shown(status.dead)} dead-lettered entries (a sink refused them for good): "
                        f"fix the cause and requeue them{deadline}")
    if problems:
        message = "profile outbox: " + "; ".join(problems)
    else:
        waiting = ", ".join(f"{status.shown(n)} for {sink}" for sink, n in sorted(status.waiting.items())) or "none"
        message = f"profile outbox: entries waiting: {waiting}; none dead"
    statistic = {"name": "outbox_entries", "value": max(status.waiting.values(), default=0),
                 "waiting": status.waiting, "oldest_age_seconds": ages, "dead": status.dead,
                 "dead_expired": status.dead_expired, "count_cap": status.cap}
    return Finding("outbox", "sinks", OPERATIONAL, bool(problems), "critical" if status.dead else "warning",
                   {"kind": "now"}, statistic, {"max_entries": limit, "max_age_seconds": max_age}, message)
