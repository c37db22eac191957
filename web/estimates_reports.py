"""Bodies of the estimate endpoints, pure functions of per-day rollup totals (run in an executor).

Two populations, never confused: the reviewed predictions (review rollups, `Totals`) and all
predictions (prediction rollups, `PredictionTotals`). Per calibration bin (clara.rollups'
calibration maps) a bin's unreviewed count is its predictions less its reviews, never below zero: a
review can be counted for a prediction its writer moved or fixed after the insert. Predictions and
reviews without a confidence are in no bin, so every estimate by bin leaves them out.

A day whose calibration counters do not hold all of its confident reviews or predictions (hours
written before the calibration maps existed; `python -m replay --rebuild` fills them) is marked
`complete: false`, never silently mixed in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Mapping

from clara.config import Config
from clara.predictions import PredictionTotals
from clara.rollups import CONFIDENCE_BINS, Totals
from clara.settings import EstimateSettings
from estimates import unreviewed
from estimates.calibration import bin_edges, reliability
from estimates.intervals import f1_bootstrap, proportion
from estimates.label_shift import label_shift, unreviewed_mix
from estimates.results import Estimate, undefined
from estimates.review_hints import HALF_WIDTH, SIMPLE, STRATIFIED, ReviewsNeeded, bin_hints, class_hints
from estimates.review_hints import reviews_needed, reviews_needed_stratified
from web import estimates_json as js
from web.hours import Span
from web.params import DateRange

MICROS = 1_000_000
UNREVIEWED_METHODS = ("post_stratified", "average_confidence", "doc", "atc", "atc_weighted")
EDGES = bin_edges(CONFIDENCE_BINS)


@dataclasses.dataclass(frozen=True)
class Bins:
    """One period's counts per calibration bin, of every predicted class or of one."""

    reviewed: list[int]
    correct: list[int]
    reviewed_micros: list[int]
    traffic: list[int]               # all predictions
    traffic_micros: list[int]
    complete: bool

    @classmethod
    def of(cls, reviews: Totals | None, predictions: PredictionTotals | None, predicted: int | None = None) -> Bins:
        reviews, predictions = reviews or Totals(), predictions or PredictionTotals()
        reviewed, correct, micros = reviews.calibration(predicted)
        traffic, traffic_micros = predictions.calibration_counts(predicted)
        every = (reviewed, traffic) if predicted is None else (reviews.calibration()[0], predictions.calibration_counts()[0])
        complete = (sum(every[0]) == reviews.confidence_count
                    and sum(every[1]) == sum(predictions.confidence.values()))
        # Below zero only where a correction took back a review counted before the calibration maps existed.
        valid = [max(r, 0) for r in reviewed]
        correct = [min(max(c, 0), r) for c, r in zip(correct, valid)]
        complete = complete and valid == reviewed
        return cls(valid, correct, [max(m, 0) for m in micros], traffic, traffic_micros, complete)

    @property
    def unreviewed(self) -> list[int]:
        return [max(t - r, 0) for t, r in zip(self.traffic, self.reviewed)]

    @property
    def unreviewed_micros(self) -> list[int]:
        return [max(t - r, 0) for t, r in zip(self.traffic_micros, self.reviewed_micros)]


def _range(days: Span, config: Config) -> dict:
    return {"range": days.to_json(), "classes": list(config.model.classes)}


def _period(span: Span, period, min_reviews: int, reviews: int) -> dict:
    """A row's period ({"day": ...}, or {"hour": ...} for an HourRange) and whether its reviews are too few."""
    return {span.unit: span.label(period), "uncertain": reviews < min_reviews}


# -- intervals -------------------------------------------------------------------------------------

def intervals(by_day: Mapping, days: Span, config: Config, min_reviews: int) -> dict:
    """Over the range, and per local day (`days`) or per local hour of an HourRange (`hours`)."""
    k, draws, seed = config.n_classes, config.estimates.f1_draws, config.estimates.seed
    total = figures(Totals.sum(by_day.values()), k, draws, seed)
    rows = [figures(by_day.get(day) or Totals(), k, draws, seed) for day in days.periods]
    return {**_range(days, config), "min_reviews": min_reviews,
            "total": {**total, "uncertain": total["reviews"] < min_reviews},
            f"{days.unit}s": [{**_period(days, day, min_reviews, row["reviews"]), **row}
                              for day, row in zip(days.periods, rows)]}


def figures(totals: Totals, k: int, draws: int = EstimateSettings().f1_draws,
            seed: int = EstimateSettings().seed) -> dict:
    """Accuracy, per-class precision and recall (Wilson) and macro/weighted F1 (seeded bootstrap) of reviews."""
    cells = tuple(tuple(totals.cells.get((t, p), 0) for p in range(k)) for t in range(k))
    rejected = tuple(totals.rejected.get(p, 0) for p in range(k))
    reviews = sum(map(sum, cells)) + sum(rejected)
    return {"reviews": reviews, "accuracy": js.estimate(proportion(sum(cells[i][i] for i in range(k)), reviews)),
            "precision": [js.estimate(proportion(cells[p][p], sum(row[p] for row in cells) + rejected[p]))
                          for p in range(k)],
            "recall": [js.estimate(proportion(cells[t][t], sum(cells[t]))) for t in range(k)],
            "f1": {average: js.estimate(_f1(cells, rejected, average, draws, seed)) for average in ("macro", "weighted")}}


@functools.lru_cache(maxsize=4096)
def _f1(cells: tuple, rejected: tuple, average: str, draws: int, seed: int) -> Estimate:
    """Same counts and seed, same interval: past days are bootstrapped once per process."""
    return f1_bootstrap(cells, rejected=rejected, average=average, draws=draws, seed=seed)


# -- calibration -----------------------------------------------------------------------------------

def reliability_of(totals: Totals, predicted: int | None = None, *, within: float) -> dict:
    """The reliability of reviewed predictions (of one predicted class, or all) as JSON, with `complete`."""
    bins = Bins.of(totals, None, predicted)
    found = reliability(bins.reviewed, bins.correct, bins.reviewed_micros, confidence_scale=MICROS, tolerance=within)
    return {"complete": bins.complete, **js.reliability(found)}


def calibration(by_day: Mapping, days: Span, config: Config, min_reviews: int) -> dict:
    total = Totals.sum(by_day.values())
    within = config.estimates.calibrated_within
    curve = functools.partial(reliability_of, within=within)

    def day_row(day) -> dict:
        found = curve(by_day.get(day) or Totals())
        return {**_period(days, day, min_reviews, found["n"]), **found}

    complete = all(Bins.of(totals, None).complete for totals in by_day.values())
    return {**_range(days, config), "bins": CONFIDENCE_BINS, "edges": list(EDGES), "min_reviews": min_reviews,
            "calibrated_within": within, "total": {**curve(total), "complete": complete},
            "by_class": [curve(total, p) for p in range(config.n_classes)],
            f"{days.unit}s": [day_row(day) for day in days.periods]}


# -- accuracy of the unreviewed predictions ---------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Reference:
    days: Span
    bins: Bins


def unreviewed_accuracy(reviews: Mapping, predictions: Mapping, reference: Reference, days: Span, config: Config,
                        method: str, min_bin_reviews: int) -> dict:
    ref = reference.bins
    summary = unreviewed.reference_summary(ref.reviewed, ref.correct, ref.reviewed_micros, confidence_scale=MICROS)
    total = Bins.of(Totals.sum(reviews.values()), PredictionTotals.sum(predictions.values()))
    rows = [Bins.of(reviews.get(day), predictions.get(day)) for day in days.periods]
    row = functools.partial(_unreviewed_row, ref=ref, summary=summary, method=method, min_bin_reviews=min_bin_reviews)
    return {**_range(days, config), "method": method, "min_bin_reviews": min_bin_reviews,
            "reference": {"range": reference.days.to_json(), "reviews": sum(ref.reviewed), "complete": ref.complete,
                          "accuracy": js.estimate(proportion(sum(ref.correct), sum(ref.reviewed))),
                          "mean_confidence": None if summary is None else summary[1]},
            "total": row(total),
            f"{days.unit}s": [{days.unit: days.label(day), **row(bins)} for day, bins in zip(days.periods, rows)]}


def _unreviewed_row(bins: Bins, *, ref: Bins, summary: tuple[float, float] | None, method: str,
                    min_bin_reviews: int) -> dict:
    target = bins.unreviewed
    reviewed, correct = sum(bins.reviewed), sum(bins.correct)
    found = {
        "post_stratified": unreviewed.post_stratified(bins.reviewed, bins.correct, target, min_reviews=min_bin_reviews),
        "average_confidence": unreviewed.average_confidence(target, bins.unreviewed_micros, confidence_scale=MICROS),
        "atc": unreviewed.atc(ref.reviewed, ref.correct, target, min_reviews=min_bin_reviews),
        "atc_weighted": unreviewed.atc(ref.reviewed, ref.correct, target, reference_unreviewed=ref.unreviewed,
                                       min_reviews=min_bin_reviews),
    }
    found["doc"] = _doc(summary, sum(ref.reviewed), found["average_confidence"])
    chosen = found[method]
    return {"predictions": sum(bins.traffic), "reviewed": reviewed, "unreviewed": sum(target),
            "complete": bins.complete, "realized": js.estimate(proportion(correct, reviewed)),
            "estimate": js.estimate(chosen),
            "estimates": {name: js.estimate(found[name]) for name in UNREVIEWED_METHODS},
            "combined": js.estimate(unreviewed.combined_accuracy(reviewed, correct, sum(target), chosen))}


def _doc(summary: tuple[float, float] | None, n: int, target_confidence: Estimate) -> Estimate:
    """DoC from the reference's (accuracy, mean confidence) and the target's average confidence."""
    if summary is None:
        return undefined("doc", unreviewed.DOC, n, "no reference reviews")
    if not target_confidence.defined:
        return undefined("doc", unreviewed.DOC, n, target_confidence.reason)
    return unreviewed.difference_of_confidences(*summary, target_confidence.value, n=n)


# -- label shift -------------------------------------------------------------------------------------

def label_shift_draws(config: Config, method: str) -> int:
    """Bootstrap draws of a label-shift interval: RLLS solves an SLSQP problem per draw, so it has its own."""
    return config.estimates.rlls_draws if method == "rlls" else config.estimates.bbse_draws


def label_shift_mix(target_reviews: Totals, target_predictions: PredictionTotals, reference: Reference,
                    ref_reviews: Totals, days: Span, config: Config, method: str, weighting: str) -> dict:
    k = config.n_classes
    predicted = [target_predictions.classes.get(p, 0) for p in range(k)]
    if weighting == "confidence_bins":
        cells = [[[max(n, 0) for n in row] for row in matrix] for matrix in ref_reviews.calibration_confusion(k)]
        kwargs = {"confusion": cells, "bin_traffic": reference.bins.traffic}
    else:
        kwargs = {"confusion": [[ref_reviews.cells.get((t, p), 0) for p in range(k)] for t in range(k)]}
    draws = label_shift_draws(config, method)
    shift = label_shift(target_predicted=predicted, method=method, draws=draws, seed=config.estimates.seed, **kwargs)
    reviewed_true = [sum(target_reviews.cells.get((t, p), 0) for p in range(k)) for t in range(k)]
    return {**_range(days, config), "method": method, "weighting": weighting, "draws": draws,
            "reference": {"range": reference.days.to_json(), "reviews": shift.n, "complete": reference.bins.complete},
            "estimate": js.label_shift(shift),
            "unreviewed_mix": js.numbers(unreviewed_mix(shift.mix, sum(predicted), reviewed_true))}


# -- review hints -------------------------------------------------------------------------------------

def review_hints(reviews: Mapping[dt.date, Totals], predictions: Mapping[dt.date, PredictionTotals],
                 days: DateRange, config: Config) -> dict:
    k, names = config.n_classes, config.model.classes
    totals, traffic = Totals.sum(reviews.values()), PredictionTotals.sum(predictions.values())
    bins = Bins.of(totals, traffic)
    predicted = [sum(totals.cells.get((t, p), 0) for t in range(k)) + totals.rejected.get(p, 0) for p in range(k)]
    right = [totals.cells.get((p, p), 0) for p in range(k)]
    by_bin = bin_hints(bins.reviewed, bins.correct, bins.traffic)
    by_class = class_hints(predicted, right, [traffic.classes.get(p, 0) for p in range(k)])
    reviewed_days = [day for day in days.days if day in reviews and sum(reviews[day].calibration()[0])]
    last = reviewed_days[-1] if reviewed_days else None
    day = Bins.of(reviews.get(last), predictions.get(last)) if last else None
    if day is None:
        needed = [ReviewsNeeded("wilson", SIMPLE, None, 0, HALF_WIDTH, "no reviews in the range"),
                  ReviewsNeeded("post_stratified", STRATIFIED, None, 0, HALF_WIDTH, "no reviews in the range")]
    else:
        n = sum(day.reviewed)
        needed = [reviews_needed(sum(day.correct) / n, n),
                  reviews_needed_stratified(day.reviewed, day.correct, day.unreviewed)]
    return {**_range(days, config), "half_width": HALF_WIDTH,
            "bins": [js.hint(h, f"{EDGES[h.index]:.2f}-{EDGES[h.index + 1]:.2f}") for h in by_bin],
            "by_class": [js.hint(h, names[h.index]) for h in by_class],
            "day": None if last is None else last.isoformat(),
            "reviews_needed": {value.method: js.reviews_needed(value) for value in needed}}
