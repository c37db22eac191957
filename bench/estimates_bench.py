"""Estimates for the unreviewed traffic, measured against what the simulator knows.

The simulator's model (simulator.model.Behaviour, its defaults: the training class mix, accuracy 0.70
to 0.95 by class, confidence means 0.85 right / 0.55 wrong) writes `--per-day` predictions a day; each
prediction's true class is kept. Reviewers review 20% of each day, preferring low confidence
(probability ∝ (1 − confidence)^power, `--preference-power`, scaled each day to 20%). Phases, each built from the simulator's
drift switches (`Behaviour.drifted`):

- reference: the labelled period AC, DoC, ATC and BBSE are calibrated on (its reviews only);
- stable: the reference's behaviour;
- confidence drop: `confidence` drift (every confidence × (1 − s)) together with an `accuracy` drift
  (each class's accuracy × (1 − a)): the model becomes less sure and less often right;
- label shift: `class-mix` drift (a share of the traffic moves to the rarest class); p(x | y) unchanged.

Per day: the absolute error, in accuracy points, of each estimator of the accuracy of that day's
unreviewed predictions (the truth is the simulator's), the coverage of our 95% interval (and of the
all-traffic combined interval), and under label shift the class-mix error (total variation, points) of
BBSE and RLLS against the naive predicted mix. Prints a table; writes bench/results/estimates.json.

    python -m bench estimates [--quick]      python -m bench.estimates_bench [--per-day 5000]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.stats import write_result  # noqa: E402
from estimates.calibration import bin_edges, calibration_bin  # noqa: E402
from estimates.calibration import reliability  # noqa: E402
from estimates.intervals import f1_bootstrap, proportion  # noqa: E402
from estimates.label_shift import label_shift  # noqa: E402
from estimates.unreviewed import (atc, average_confidence, combined_accuracy, difference_of_confidences,  # noqa: E402
                                  post_stratified, reference_summary)
from simulator.model import Behaviour  # noqa: E402
from simulator.options import accuracy as accuracy_option  # noqa: E402

TRAINING_COUNTS = (1200, 3400, 2100, 2900, 800, 2600, 1500)   # config.toml's model.training_counts
BINS = len(bin_edges()) - 1
ESTIMATORS = ("naive", "ac", "doc", "doc_weighted", "atc", "atc_weighted", "ours")


@dataclasses.dataclass
class Day:
    phase: str
    truth: np.ndarray        # true class per prediction
    predicted: np.ndarray
    confidence: np.ndarray
    reviewed: np.ndarray     # bool
    bins: np.ndarray

    def counts(self, mask: np.ndarray) -> np.ndarray:
        return np.bincount(self.bins[mask], minlength=BINS)

    @property
    def correct(self) -> np.ndarray:
        return self.truth == self.predicted


def behaviours(args) -> dict[str, Behaviour]:
    base = Behaviour(class_mix=tuple(float(c) for c in TRAINING_COUNTS),
                     accuracy=accuracy_option("0.7:0.95", len(TRAINING_COUNTS)))
    return {"reference": base, "stable": base,
            "confidence drop": base.drifted("confidence", args.confidence_drop).drifted("accuracy", args.accuracy_drop),
            "label shift": base.drifted("class-mix", args.label_shift)}


def simulate_day(phase: str, behaviour: Behaviour, per_day: int, review_share: float, power: float,
                 seed: str) -> Day:
    rng = random.Random(seed)
    rows = np.array([behaviour.predict(rng) for _ in range(per_day)])
    truth, predicted, confidence = rows[:, 0].astype(int), rows[:, 1].astype(int), rows[:, 2]
    preference = (1.0 - confidence) ** power
    low, high = 0.0, 1e6   # the scale that makes the day's expected review share `review_share`
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if np.minimum(1.0, middle * preference).mean() < review_share else (low, middle)
    draws = np.random.default_rng(random.Random(f"{seed}/reviews").getrandbits(64)).random(per_day)
    reviewed = draws < np.minimum(1.0, high * preference)
    bins = np.array([calibration_bin(float(c)) for c in confidence])
    return Day(phase, truth, predicted, confidence, reviewed, bins)


def reference_counts(days: list[Day], k: int) -> dict:
    r = sum(d.counts(d.reviewed) for d in days)
    c = sum(d.counts(d.reviewed & d.correct) for d in days)
    u = sum(d.counts(~d.reviewed) for d in days)
    s = sum(np.bincount(d.bins[d.reviewed], weights=d.confidence[d.reviewed], minlength=BINS) for d in days)
    confusion = np.zeros((BINS, k, k), dtype=np.int64)
    for d in days:
        np.add.at(confusion, (d.bins[d.reviewed], d.truth[d.reviewed], d.predicted[d.reviewed]), 1)
    return {"r": r, "c": c, "u": u, "s": s, "confusion": confusion, "traffic": r + u}


def evaluate_day(day: Day, ref: dict, k: int, seed: int) -> dict:
    rev, unrev = day.reviewed, ~day.reviewed
    r, c, u = day.counts(rev), day.counts(rev & day.correct), day.counts(unrev)
    truth_unreviewed = float(day.correct[unrev].mean())
    plain = reference_summary(ref["r"], ref["c"], ref["s"])
    weighted = reference_summary(ref["r"], ref["c"], ref["s"], ref["u"])
    target_conf = average_confidence(u, np.bincount(day.bins[unrev], weights=day.confidence[unrev], minlength=BINS))
    n_ref = int(ref["r"].sum())
    ours = post_stratified(r, c, u)
    estimates = {
        "naive": proportion(int(c.sum()), int(r.sum())).value,
        "ac": target_conf.value,
        "doc": difference_of_confidences(*plain, target_conf.value, n=n_ref).value,
        "doc_weighted": difference_of_confidences(*weighted, target_conf.value, n=n_ref).value,
        "atc": atc(ref["r"], ref["c"], u).value,
        "atc_weighted": atc(ref["r"], ref["c"], u, reference_unreviewed=ref["u"]).value,
        "ours": ours.value,
    }
    combined = combined_accuracy(int(r.sum()), int(c.sum()), int(u.sum()), ours)
    truth_all = float(day.correct.mean())
    true_mix = np.bincount(day.truth, minlength=k) / len(day.truth)
    predicted = np.bincount(day.predicted, minlength=k)
    mixes = {"naive_predicted": predicted / predicted.sum()}
    for name, kwargs in (("bbse", {"confusion": ref["confusion"].sum(axis=0)}),
                         ("bbse_weighted", {"confusion": ref["confusion"], "bin_traffic": ref["traffic"]}),
                         ("rlls_weighted", {"confusion": ref["confusion"], "bin_traffic": ref["traffic"],
                                            "method": "rlls", "draws": 50})):
        shift = label_shift(target_predicted=predicted, seed=seed, **kwargs)
        mixes[name] = None if shift.mix is None else np.array(shift.mix)
        if name == "bbse_weighted":
            implied = shift.accuracy
    return {
        "phase": day.phase, "reviews": int(r.sum()), "unreviewed": int(u.sum()), "truth": truth_unreviewed,
        "errors": {name: abs(value - truth_unreviewed) * 100 for name, value in estimates.items()},
        "covered": ours.interval.contains(truth_unreviewed), "half_width": ours.interval.width / 2 * 100,
        "merged": len(ours.notes), "combined_covered": combined.interval.contains(truth_all),
        "combined_error": abs(combined.value - truth_all) * 100,
        "mix_errors": {name: None if mix is None else float(np.abs(mix - true_mix).sum() / 2 * 100)
                       for name, mix in mixes.items()},
        "implied_accuracy_error": None if implied.value is None else abs(implied.value - truth_all) * 100,
    }


def summarise(days: list[dict]) -> dict:
    phases = {}
    for phase in dict.fromkeys(d["phase"] for d in days):
        rows = [d for d in days if d["phase"] == phase]
        phases[phase] = {
            "days": len(rows), "reviews_per_day": round(float(np.mean([d["reviews"] for d in rows]))),
            "true_accuracy_unreviewed": round(float(np.mean([d["truth"] for d in rows])) * 100, 2),
            "mae_points": {name: round(float(np.mean([d["errors"][name] for d in rows])), 2) for name in ESTIMATORS},
            "coverage": round(float(np.mean([d["covered"] for d in rows])), 3),
            "combined_coverage": round(float(np.mean([d["combined_covered"] for d in rows])), 3),
            "mean_half_width_points": round(float(np.mean([d["half_width"] for d in rows])), 2),
            "mix_error_points": {name: _mean([d["mix_errors"][name] for d in rows]) for name in rows[0]["mix_errors"]},
            "implied_accuracy_error_points": _mean([d["implied_accuracy_error"] for d in rows]),
        }
    return phases


def goals(phases: dict, days: list[dict]) -> list[dict]:
    out = []
    for phase, p in phases.items():
        mae = p["mae_points"]
        out.append({"goal": f"{phase}: ours <= half the naive error", "value": mae["ours"],
                    "target": round(mae["naive"] / 2, 2), "met": mae["ours"] <= mae["naive"] / 2})
    for phase in ("confidence drop", "label shift"):
        mae = phases[phase]["mae_points"]
        best = min(mae["atc"], mae["atc_weighted"])
        out.append({"goal": f"{phase}: ours no worse than ATC (best variant)", "value": mae["ours"], "target": best,
                    "met": mae["ours"] <= best})
    coverage = float(np.mean([d["covered"] for d in days]))
    out.append({"goal": "95% interval covers the truth on 90-98% of days", "value": round(coverage, 3),
                "target": "0.90-0.98", "met": 0.90 <= coverage <= 0.98})
    mix = phases["label shift"]["mix_error_points"]
    for name in ("bbse", "bbse_weighted"):
        out.append({"goal": f"label shift: {name} class-mix error below the naive predicted mix's",
                    "value": mix[name], "target": mix["naive_predicted"],
                    "met": mix[name] is not None and mix[name] < mix["naive_predicted"]})
    return out


def dashboard_timings(ref: dict, k: int, reference_days: int, days: int = 90) -> dict:
    """Milliseconds to compute what a 90-day dashboard shows, from one day's counts (one thread)."""
    r, c, u, s = (np.round(ref[name] / reference_days).astype(np.int64) for name in ("r", "c", "u", "s"))
    confusion = np.round(ref["confusion"].sum(axis=0) / reference_days).astype(np.int64)
    per_class = confusion.sum(axis=1)
    timings = {}

    def timed(name, work):
        started = time.perf_counter()
        work()
        timings[name] = round((time.perf_counter() - started) * 1000, 1)

    timed(f"wilson: accuracy + precision/recall per class, {days} days",
          lambda: [proportion(int(np.trace(confusion)), int(confusion.sum())) for _ in range(days)
                   for _ in range(1 + 2 * k)])
    timed(f"bootstrap F1 macro + weighted (1000 draws), {days} days",
          lambda: [f1_bootstrap(confusion, average=a) for _ in range(days) for a in ("macro", "weighted")])
    timed(f"reliability + post-stratified + ATC, {days} days",
          lambda: [(reliability(r, c, s), post_stratified(r, c, u), atc(r, c, u)) for _ in range(days)])
    timed("BBSE, bin-weighted, 500 draws", lambda: label_shift(ref["confusion"], per_class, bin_traffic=ref["traffic"]))
    timed("RLLS, bin-weighted, 500 draws",
          lambda: label_shift(ref["confusion"], per_class, bin_traffic=ref["traffic"], method="rlls"))
    return timings


def table_rows(phases: dict, days: list[dict]) -> list[list]:
    """Rows for `python -m bench`'s table: (benchmark, measure, value, baseline, ratio)."""
    rows = []
    for phase, p in phases.items():
        mae = p["mae_points"]
        atc_best = min(mae["atc"], mae["atc_weighted"])
        rows.append(["estimates", f"{phase}: unreviewed-accuracy MAE pts, ours vs naive reviewed", mae["ours"],
                     mae["naive"], _ratio(mae["ours"], mae["naive"])])
        rows.append(["estimates", f"{phase}: MAE pts, ours vs ATC (best of plain/weighted)", mae["ours"], atc_best,
                     _ratio(mae["ours"], atc_best)])
    coverage = round(float(np.mean([d["covered"] for d in days])), 3)
    rows.append(["estimates", f"95% interval coverage over {len(days)} days (goal 0.90-0.98)", coverage, "", ""])
    mix = phases["label shift"]["mix_error_points"]
    for name in ("bbse", "bbse_weighted"):
        rows.append(["estimates", f"label shift: class-mix TV error pts, {name} vs naive predicted mix", mix[name],
                     mix["naive_predicted"], _ratio(mix[name], mix["naive_predicted"])])
    return rows


def print_tables(phases: dict, checks: list[dict]) -> None:
    header = ["phase", "days", "reviews/day", "true acc %", *ESTIMATORS, "coverage", "±pts", "combined cov"]
    rows = [header] + [[phase, p["days"], p["reviews_per_day"], p["true_accuracy_unreviewed"],
                        *(p["mae_points"][e] for e in ESTIMATORS), p["coverage"], p["mean_half_width_points"],
                        p["combined_coverage"]] for phase, p in phases.items()]
    print("Mean absolute error, accuracy points, of the accuracy of the unreviewed predictions, per day")
    _print(rows)
    names = list(next(iter(phases.values()))["mix_error_points"])
    print("\nTrue-class mix of all traffic: total-variation error, points (and BBSE-weighted implied accuracy error)")
    _print([["phase", *names, "implied acc"]] + [[phase, *(p["mix_error_points"][n] for n in names),
                                                   p["implied_accuracy_error_points"]] for phase, p in phases.items()])
    print("\nGoals")
    _print([["goal", "value", "target", "met"]] + [[g["goal"], g["value"], g["target"], "yes" if g["met"] else "MISSED"]
                                                    for g in checks])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=5000, help="predictions a day (default 5000)")
    parser.add_argument("--days", type=int, default=20, help="days in each phase after the reference (default 20)")
    parser.add_argument("--reference-days", type=int, default=7)
    parser.add_argument("--review-share", type=float, default=0.2)
    parser.add_argument("--preference-power", type=float, default=1.0,
                        help="reviewers pick a prediction with probability ∝ (1 - confidence)^power (default 1)")
    parser.add_argument("--confidence-drop", type=float, default=0.15, help="simulator confidence drift strength")
    parser.add_argument("--accuracy-drop", type=float, default=0.1, help="simulator accuracy drift strength")
    parser.add_argument("--label-shift", type=float, default=0.5, help="simulator class-mix drift strength")
    parser.add_argument("--seed", default="estimates")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "estimates.json"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    models = behaviours(args)
    k = models["stable"].n_classes
    reference = [simulate_day("reference", models["reference"], args.per_day, args.review_share, args.preference_power,
                              f"{args.seed}/reference/{i}") for i in range(args.reference_days)]
    ref = reference_counts(reference, k)
    days = []
    for phase in ("stable", "confidence drop", "label shift"):
        for i in range(args.days):
            day = simulate_day(phase, models[phase], args.per_day, args.review_share, args.preference_power,
                               f"{args.seed}/{phase}/{i}")
            days.append(evaluate_day(day, ref, k, seed=i))
    phases = summarise(days)
    checks = goals(phases, days)
    timings = dashboard_timings(ref, k, args.reference_days)
    print_tables(phases, checks)
    print("\nDashboard cost, ms (one thread)")
    _print([["computation", "ms"]] + [[name, ms] for name, ms in timings.items()])
    rows = table_rows(phases, days) + [["estimates", f"{name} (ms)", ms, "", ""] for name, ms in timings.items()]
    write_result(args.output, {"settings": vars(args) | {"output": None}, "phases": phases, "goals": checks,
                               "timings_ms": timings, "rows": rows,
                               "seconds": round(time.monotonic() - started, 1)})
    return 0


def _ratio(value, baseline) -> float | str:
    return round(value / baseline, 2) if value is not None and baseline else ""


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 2) if values else None


def _print(rows) -> None:
    table = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    sys.exit(main())
