"""Checks that lean on the estimates package: calibration drift (reviewed) and label shift (all predictions).

- Calibration drift: the window's reliability (estimates.calibration.reliability on Totals.calibration():
  ECE, signed gap = accuracy − confidence) against the reference's. The test compares each confidence
  bin's accuracy with the reference's (detectors.binned_accuracy_test); it fires when p < drift.alpha AND
  the ECE or the signed gap moved by at least drift.calibration_min_change. ECE alone is no test statistic:
  it is biased upwards by sampling noise (by more for fewer reviews), so window and reference ECEs of
  different sizes differ even when nothing changed; the per-bin comparison has no such bias.
- Label shift: BBSE (or RLLS), bin-weighted (each confidence bin's reviews weighted by the reference's
  traffic / reviews, which undoes reviewers' preference for some confidences), estimates the true-class
  mix of all predictions in the window from their predicted-class mix and the reference's reviewed
  confusion. Under label shift with an invertible confusion matrix the true mix changed exactly when the
  predicted mix did (Lipton et al. 2018, BBSD), so the test is the chi-square of the predicted-class
  mixes; the effect is the Jensen-Shannon distance between the estimated true-class mixes of window and
  reference. When the estimator refuses (too few reference reviews, a thin class, an ill-conditioned
  matrix) there is no verdict, and the finding says why.
"""

from __future__ import annotations

from typing import Any

from scipy.spatial.distance import jensenshannon

from clara.config import Config
from clara.rollups import Totals
from drift import detectors
from drift.checks import DRIFT, Finding, p_text
from drift.windows import ALL, REVIEWED, Window, valid_predictions
from estimates.calibration import reliability
from estimates.label_shift import label_shift

MICROS = 1_000_000
INCOMPLETE = "its calibration counters do not hold all its reviews (python -m replay --rebuild fills them)"
LABEL_SHIFT_METHODS = {"bbse": "BBSE", "rlls": "RLLS"}


def calibration_counts(totals: Totals) -> tuple[list[int], list[int], list[int], bool]:
    """Reviewed, correct and confidence micros per calibration bin, and whether they hold every confident review."""
    reviewed, correct, micros = totals.calibration()
    complete = sum(reviewed) == totals.confidence_count and min(reviewed, default=0) >= 0
    reviewed = [max(r, 0) for r in reviewed]   # below zero only where a correction took back an uncounted review
    return reviewed, [min(max(c, 0), r) for c, r in zip(correct, reviewed)], [max(m, 0) for m in micros], complete


def calibration_finding(window: Window, reference: Window, config: Config) -> Finding:
    """The window's calibration (reviewed predictions) against the reference period's."""
    drift, within = config.drift, config.estimates.calibrated_within
    r_w, c_w, s_w, complete_w = calibration_counts(window.totals)
    r_r, c_r, s_r, complete_r = calibration_counts(reference.totals)
    found_w = reliability(r_w, c_w, s_w, confidence_scale=MICROS, tolerance=within)
    found_r = reliability(r_r, c_r, s_r, confidence_scale=MICROS, tolerance=within)
    test = detectors.binned_accuracy_test(r_w, c_w, r_r, c_r, drift.calibration_min_bin_reviews)
    threshold = {"alpha": drift.alpha, "min_change": drift.calibration_min_change,
                 "min_bin_reviews": drift.calibration_min_bin_reviews, "min_reviews": drift.min_reviews,
                 "min_reference_reviews": drift.min_reference_reviews}
    statistic: dict[str, Any] = {
        "name": "calibration_change", "value": None, "ece": found_w.ece, "reference_ece": found_r.ece,
        "signed_gap": found_w.signed_gap, "reference_signed_gap": found_r.signed_gap,
        "direction": found_w.direction, "reference_direction": found_r.direction, "mce": found_w.mce,
        "reviews": found_w.n, "reference_reviews": found_r.n, "reference": reference.label,
        "chi2": test.chi2, "dof": test.dof, "bins_compared": list(test.bins), "p_value": test.p_value,
        "method": f"{found_w.method} reliability; {test.method}",
        "assumptions": f"{test.assumptions}; {found_w.assumption}"}
    head = f"calibration of {REVIEWED} over {window.label}"
    reason = None
    if not complete_w or not complete_r:
        reason = f"{'the window' if not complete_w else reference.label}: {INCOMPLETE}"
    elif found_w.n < drift.min_reviews or found_r.n < drift.min_reference_reviews:
        reason = (f"too few reviews with a confidence ({found_w.n:,} in the window, at least {drift.min_reviews:,}; "
                  f"{found_r.n:,} in {reference.label}, at least {drift.min_reference_reviews:,})")
    elif not test.dof:
        reason = f"no confidence bin with {drift.calibration_min_bin_reviews} reviews or more on both sides"
    if reason is not None:
        return Finding("calibration_drift", window.kind, DRIFT, None, "warning", window.describe(), statistic,
                       threshold, f"{head}: no verdict: {reason}", REVIEWED)
    change = max(abs(found_w.ece - found_r.ece), abs(found_w.signed_gap - found_r.signed_gap))
    statistic["value"] = change
    firing = test.p_value < drift.alpha and change >= drift.calibration_min_change
    message = (f"{head} {'differs from' if firing else 'against'} {reference.label}: ECE {found_w.ece:.3f} vs "
               f"{found_r.ece:.3f}, accuracy − confidence {found_w.signed_gap:+.3f} ({found_w.direction}) vs "
               f"{found_r.signed_gap:+.3f} ({found_r.direction}); change {change:.3f} (alert at "
               f"{drift.calibration_min_change:g}); per-bin accuracy over {test.dof} bins, {p_text(test.p_value)}")
    return Finding("calibration_drift", window.kind, DRIFT, firing, "warning", window.describe(), statistic,
                   threshold, message, REVIEWED)


def label_shift_finding(window: Window, reference: Window, reference_reviews: Totals, config: Config) -> Finding:
    """The true-class mix of ALL predictions in `window` (estimated) against the reference period's (estimated).

    `window` and `reference` hold all predictions (PredictionTotals); `reference_reviews` the reference
    period's reviews, whose confusion per confidence bin the estimate is calibrated on.
    """
    drift, estimates, classes = config.drift, config.estimates, config.model.classes
    k, method = config.n_classes, drift.label_shift_method
    target = detectors.prediction_class_counts(window.totals, k)
    baseline = detectors.prediction_class_counts(reference.totals, k)
    cells = [[[max(n, 0) for n in row] for row in matrix] for matrix in reference_reviews.calibration_confusion(k)]
    traffic = reference.totals.calibration_counts()[0]
    draws = estimates.rlls_draws if method == "rlls" else estimates.bbse_draws
    shift = label_shift(cells, target, method=method, bin_traffic=traffic, min_reviews=drift.min_reference_reviews,
                        draws=draws, seed=estimates.seed)
    named = f"{LABEL_SHIFT_METHODS[method]} (bin-weighted)"
    head = (f"true-class mix of {ALL} over {window.label}, estimated by {named} from their predicted-class mix and "
            f"the reviewed confusion of {reference.label}")
    threshold = {"alpha": drift.alpha, "min_distance": drift.label_shift_min_distance,
                 "min_predictions": drift.min_predictions, "min_reference_predictions": drift.min_reference_predictions,
                 "min_reference_reviews": drift.min_reference_reviews}
    statistic: dict[str, Any] = {
        "name": "js_distance", "value": None, "method": f"{method}, bin-weighted; chi-square test of homogeneity of "
        "the predicted-class mixes (BBSD)", "assumptions": shift.assumption, "reason": shift.reason,
        "mix": shift.mix, "intervals": None if shift.intervals is None else [[i.low, i.high] for i in shift.intervals],
        "reference_mix": shift.reference_mix, "predicted_mix": shift.predicted_mix, "condition": shift.condition,
        "smallest_singular_value": shift.smallest_singular_value, "notes": list(shift.notes), "draws": draws,
        "reference": reference.label, "reference_reviews": shift.n, "reference_predictions": sum(baseline)}
    complete = calibration_counts(reference_reviews)[3]
    reason = None
    if not complete:
        reason = f"{reference.label}: {INCOMPLETE}"
    elif valid_predictions(window.totals) < drift.min_predictions or sum(baseline) < drift.min_reference_predictions:
        reason = (f"too few predictions ({valid_predictions(window.totals):,} in the window, at least "
                  f"{drift.min_predictions:,}; {sum(baseline):,} in {reference.label}, at least "
                  f"{drift.min_reference_predictions:,})")
    elif not shift.defined:
        reason = shift.reason
    if reason is not None:
        statistic["reason"] = reason
        return Finding("label_shift", window.kind, DRIFT, None, "warning", window.describe(), statistic, threshold,
                       f"{head}: no verdict: {reason}", ALL)
    test = detectors.compare_distributions(target, baseline)
    distance = float(jensenshannon(shift.mix, shift.reference_mix, base=2))
    statistic |= {"value": distance, "p_value": test.p_value, "chi2": test.chi2, "dof": test.dof}
    firing = test.p_value < drift.alpha and distance >= drift.label_shift_min_distance
    moved = max(range(k), key=lambda c: abs(shift.mix[c] - shift.reference_mix[c]))
    interval = shift.intervals[moved]
    message = (f"{head}, {'differs from' if firing else 'against'} the reference's: JS distance {distance:.3f} "
               f"(alert at {drift.label_shift_min_distance:g}); predicted-class mix {p_text(test.p_value)}; largest "
               f"change: {classes[moved]} {shift.mix[moved]:.1%} (95% interval {interval.low:.1%} to "
               f"{interval.high:.1%}) vs {shift.reference_mix[moved]:.1%}; condition number {shift.condition:.3g}")
    return Finding("label_shift", window.kind, DRIFT, firing, "warning", window.describe(), statistic, threshold,
                   message, ALL)
