"""The volume check: ALL predictions per hour against the usual number for that hour of the week.

From the prediction rollups only. The usual number of an hour is the median of the same hour of the week
in the last `drift.volume_weeks` weeks, counting only weeks from the first prediction hour on (before it
the model service did not exist, which is not a zero). Two signals, read when the consumer evaluates:

- the last complete hour against its usual number: far below (under `volume_low_ratio` of it, with an
  exact Poisson p < alpha: the model service stopped, or lost most of its traffic; critical) or far above
  (over `volume_high_ratio` times it, p < alpha: a spike; warning);
- silence: no prediction at all in the current hour so far while at least `volume_min_predictions` were
  usual by now (a stop is seen within the hour, not only when the hour is over; critical).

A drop needs at least `volume_min_predictions` usual predictions and a spike that many observed (a quiet
night decides nothing); without any earlier week, or with too few on every side, there is no verdict.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pymongo.collection import Collection

from clara.config import Config
from clara.rollups import hour_of
from drift import detectors
from drift.checks import OPERATIONAL, Finding, p_text
from drift.windows import ALL

UTC = dt.timezone.utc
HOUR, WEEK = dt.timedelta(hours=1), dt.timedelta(weeks=1)


def volume_finding(predictions: Collection, config: Config, now: dt.datetime) -> Finding:
    """Read the UTC hours the check needs (2 + 2 x volume_weeks, each one rollup period or more) and judge them."""
    current = hour_of(now)
    last = current - HOUR
    weeks = config.drift.volume_weeks
    first = predictions.find_one({}, {"_id": 1}, sort=[("_id", 1)])
    first_hour = None if first is None else hour_of(_utc(first["_id"]))
    wanted = [last, current] + [hour - k * WEEK for k in range(1, weeks + 1) for hour in (last, current)]
    counts: Counter = Counter()   # per UTC hour, summed over its rollup periods
    ranges = [{"_id": {"$gte": hour, "$lt": hour + HOUR}} for hour in wanted]
    for doc in predictions.find({"$or": ranges}, {"predictions": 1}):
        counts[hour_of(_utc(doc["_id"]))] += doc.get("predictions", 0)
    return judge(counts, first_hour, last, now, config)


def judge(counts: Mapping[dt.datetime, int], first_hour: dt.datetime | None, last: dt.datetime, now: dt.datetime,
          config: Config) -> Finding:
    """The verdict from the hours' counts (an absent hour counted nothing) and the first prediction hour."""
    drift = config.drift
    current = last + HOUR
    earlier = [k for k in range(1, drift.volume_weeks + 1)
               if first_hour is not None and last - k * WEEK >= first_hour]
    usual_last = detectors.usual_count([counts.get(last - k * WEEK, 0) for k in earlier])
    usual_current = detectors.usual_count([counts.get(current - k * WEEK, 0) for k in earlier])
    elapsed = (now - current) / HOUR
    observed, so_far = counts.get(last, 0), counts.get(current, 0)
    window = {"kind": "volume", "label": f"{last:%Y-%m-%d %H}:00 to {current:%H}:00 UTC", "start": last.isoformat(),
              "end": current.isoformat(), "population": ALL, "predictions": observed,
              "current_hour_so_far": so_far, "weeks": len(earlier)}
    threshold = {"low_ratio": drift.volume_low_ratio, "high_ratio": drift.volume_high_ratio, "alpha": drift.alpha,
                 "min_predictions": drift.volume_min_predictions, "weeks": drift.volume_weeks}
    weeks = f"median of {len(earlier)} week{'s' * (len(earlier) != 1)}"
    if usual_last is None or usual_current is None:
        return _finding(None, "warning", window, {"name": "volume_ratio", "value": None}, threshold,
                        f"{ALL}: {observed:,} from {window['label']}; no earlier week to compare with yet")
    test = detectors.volume_test(observed, usual_last)
    expected_so_far = usual_current * elapsed
    silence = detectors.volume_test(so_far, expected_so_far)
    statistic: dict[str, Any] = {"name": "volume_ratio", "value": test.ratio, "observed": observed,
                                 "expected": usual_last, "p_low": test.p_low, "p_high": test.p_high,
                                 "current_hour_so_far": so_far, "current_hour_expected": expected_so_far,
                                 "method": test.method, "assumptions": test.assumptions}
    judged_low = usual_last >= drift.volume_min_predictions
    judged_high = observed >= drift.volume_min_predictions
    judged_silence = expected_so_far >= drift.volume_min_predictions
    low = judged_low and observed < drift.volume_low_ratio * usual_last and test.p_low < drift.alpha
    high = judged_high and observed > drift.volume_high_ratio * usual_last and test.p_high < drift.alpha
    quiet = judged_silence and so_far == 0 and silence.p_low < drift.alpha
    head = (f"{ALL}: {observed:,} from {window['label']} against {usual_last:,.0f} usual for that hour of the "
            f"week ({weeks})")
    silent = f"none since {current:%H}:00 UTC ({elapsed * 60:.0f} min) while {expected_so_far:,.0f} were usual by now"
    if low:
        statistic["p_value"] = test.p_low
        stopped = f"; {silent}; the model service may have stopped" if quiet else ""
        return _finding(True, "critical", window, statistic, threshold,
                        f"{head}: far below it (alert under {drift.volume_low_ratio:.0%} of the usual), "
                        f"{p_text(test.p_low)}{stopped}")
    if quiet:
        statistic["p_value"] = silence.p_low
        return _finding(True, "critical", window, statistic, threshold,
                        f"{ALL}: {silent} for this hour of the week ({weeks}); the model service may have stopped; "
                        f"{p_text(silence.p_low)}")
    if high:
        statistic["p_value"] = test.p_high
        return _finding(True, "warning", window, statistic, threshold,
                        f"{head}: far above it (alert over {drift.volume_high_ratio:g} times the usual), "
                        f"{p_text(test.p_high)}")
    if not (judged_low or judged_high or judged_silence):
        return _finding(None, "warning", window, statistic, threshold,
                        f"{head}: too few predictions, usual or observed, for a verdict "
                        f"(under {drift.volume_min_predictions})")
    return _finding(False, "warning", window, statistic, threshold,
                    f"{head}: within {drift.volume_low_ratio:.0%} to {drift.volume_high_ratio:g} times the usual")


def _finding(firing: bool | None, severity: str, window: dict, statistic: dict, threshold: dict,
             message: str) -> Finding:
    return Finding("volume", "last_hour", OPERATIONAL, firing, severity, window, statistic, threshold, message, ALL)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
