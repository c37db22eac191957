"""The false alarms per week that follow from the configuration, when nothing changes (every null hypothesis true).

Each alerting test is one look at p < drift.alpha. An evaluation repeats the same window many times
(every drift.evaluate_interval_seconds), so looks are counted per fresh window, not per evaluation:
a last-N window is fresh every N reviews (predictions), a day window once a day, the volume check
once an hour. Expected false alarms per week <= alpha x (alerting tests x fresh looks per week).
It is an upper bound in one way (the effect-size minimums must also be met, which noise alone rarely
does) and a lower one in another (a window re-tested as it grows is several looks, not one), so read
it as an order of magnitude. A per-class family under drift.multiple_testing = "holm" (or "bh",
whose false discovery rate is the family-wise error when nothing changes) counts as one test.

    python -m drift.false_alarms --predictions-per-day 20000 --reviews-per-day 2000 [--config config.toml]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from clara.config import Config, load_config
from drift.checks import alerting_references

WEEK_DAYS, VOLUME_TESTS = 7, 3   # the volume check: low, high, silence


@dataclasses.dataclass(frozen=True)
class Budget:
    tests_per_evaluation: int
    looks_per_week: float
    false_alarms_per_week: float


def budget(config: Config, predictions_per_day: float, reviews_per_day: float) -> Budget:
    drift = config.drift
    mixes = len(alerting_references(config)) if sum(config.model.training_counts) else 1
    on_predictions = mixes * drift.prediction_drift + drift.confidence_drift + drift.label_shift
    recall = (1 if drift.multiple_testing != "none" else config.n_classes) * drift.performance
    on_reviews = mixes * drift.label_drift + drift.performance + recall + drift.calibration_drift
    last_n = {"predictions": WEEK_DAYS * predictions_per_day / drift.window_predictions,
              "reviews": WEEK_DAYS * reviews_per_day / drift.window_reviews}
    days = WEEK_DAYS if drift.day_window else 0
    looks = (on_predictions * (last_n["predictions"] + days) + on_reviews * (last_n["reviews"] + days)
             + VOLUME_TESTS * 24 * WEEK_DAYS * drift.volume)
    tests = (on_predictions + on_reviews) * (1 + drift.day_window) + VOLUME_TESTS * drift.volume
    return Budget(tests, looks, drift.alpha * looks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drift.false_alarms", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None)
    parser.add_argument("--predictions-per-day", type=float, required=True)
    parser.add_argument("--reviews-per-day", type=float, required=True)
    args = parser.parse_args(argv)
    found = budget(load_config(args.config), args.predictions_per_day, args.reviews_per_day)
    print(f"{found.tests_per_evaluation} alerting tests per evaluation, {found.looks_per_week:,.0f} fresh looks a "
          f"week: at most about {found.false_alarms_per_week:.2f} false alarms a week when nothing changes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
