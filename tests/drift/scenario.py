"""Simulated traffic counted by the consumer (its catch-up for the reviews, its recount for every prediction),
and evaluation over simulated time."""

from __future__ import annotations

import datetime as dt

from clara.db import Collections
from consumer.catchup import catch_up
from consumer.predictions import recount_replacing
from drift.evaluate import Evaluation, evaluate
from simulator.generator import Drift, Settings
from simulator.history import history_documents, write_history
from simulator.model import Behaviour

UTC = dt.timezone.utc
END = dt.datetime(2025, 3, 15, tzinfo=UTC)          # a Saturday; days before it are simulated
TRAINING = (1200, 3400, 2100, 2900, 800, 2600, 1500)
DAYS, PER_DAY = 14, 1000
DAY = dt.timedelta(days=1)
START = END - DAYS * DAY


def drift_settings(**drift) -> dict:
    """Config sections for scenario tests: a 1-day-ish window, a fixed reference (the first week)."""
    return {"model": {"training_counts": list(TRAINING), "timezone": "UTC"},
            "profiles": {"local_store": False},
            "drift": {"window_reviews": 800, "min_reviews": 400, "min_reference_reviews": 1000,
                      "reference_start": START.date().isoformat(),
                      "reference_end": (START + 6 * DAY).date().isoformat(),
                      "recall_min_reviews": 60, "evaluate_interval_seconds": 0} | drift,
            "alerts": {"cooldown_seconds": 3 * 3600}}


def load_history(client, cols: Collections, config, drift: Drift | None = None, seed: str = "drift",
                 review_fraction: float = 0.8) -> int:
    behaviour = Behaviour(class_mix=tuple(float(c) for c in TRAINING), accuracy=(0.9,) * len(TRAINING))
    settings = Settings(behaviour, review_fraction=review_fraction, review_delay=600.0, legacy_fraction=0.02,
                        drift=drift)
    written = write_history(cols.source, history_documents(settings, seed, END, DAYS, PER_DAY))
    catch_up(client, cols, config)
    recount_replacing(cols, config.n_classes, config.model.rollup_period, None)   # the prediction rollups, as a first start builds them
    return written


def run_hourly(cols: Collections, config, first: dt.datetime, last: dt.datetime,
               step: dt.timedelta = dt.timedelta(hours=1)) -> list[Evaluation]:
    evaluations, now = [], first
    while now <= last:
        evaluations.append(evaluate(cols, config, now))
        now += step
    return evaluations


def at_day(days: float) -> dt.datetime:
    return START + dt.timedelta(days=days)
