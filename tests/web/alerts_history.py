"""Alerts written by the real drift engine, for the web tests: simulated days counted by the consumer,
an accuracy drift that opens an alert and resolves, and a raised accuracy floor that opens another."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from clara.config import Config
from clara.db import Collections
from consumer.catchup import catch_up
from consumer.predictions import recount_replacing
from drift.evaluate import Evaluation, evaluate
from tests.support.inserts import count_inserts
from simulator.generator import Drift, Settings
from simulator.history import history_documents, write_history
from simulator.model import Behaviour

UTC = dt.timezone.utc
DAY = dt.timedelta(days=1)
DAYS, PER_DAY = 7, 700
TRAINING = (1200, 3400, 2100, 2900, 800, 2600, 1500)
# The accuracy drift runs on the history's days 3 and 4; days 0 and 1 are the fixed reference.
DRIFT_ON, DRIFT_OFF = 3, 5


def history_end() -> dt.datetime:
    """Today's midnight (UTC, the configured zone): the history is the days just before, inside the default range."""
    return dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def alert_sections(end: dt.datetime, **drift) -> dict:
    start = end - DAYS * DAY
    return {"model": {"training_counts": list(TRAINING), "timezone": "UTC"},
            "profiles": {"local_store": False},
            "drift": {"window_reviews": 800, "min_reviews": 400, "min_reference_reviews": 1000,
                      "reference_start": start.date().isoformat(),
                      "reference_end": (start + DAY).date().isoformat(),
                      "recall_min_reviews": 60, "evaluate_interval_seconds": 0} | drift,
            "alerts": {"cooldown_seconds": 0}}


def load(client, cols: Collections, config: Config, end: dt.datetime,
         tag: Callable[[dict], dict] | None = None) -> None:
    """The history counted; `tag`, when given, changes each document before it is written (segment fields)."""
    behaviour = Behaviour(class_mix=tuple(float(c) for c in TRAINING), accuracy=(0.9,) * len(TRAINING))
    drift = Drift("accuracy", start=DRIFT_ON * 86400.0, end=DRIFT_OFF * 86400.0, strength=0.3)
    settings = Settings(behaviour, review_fraction=0.8, review_delay=600.0, legacy_fraction=0.02, drift=drift)
    documents = history_documents(settings, "web-alerts", end, DAYS, PER_DAY)
    write_history(cols.source, documents if tag is None else map(tag, documents))
    catch_up(client, cols, config)
    if tag is None:   # every prediction, as a first start counts them
        recount_replacing(cols, config.n_classes, config.model.rollup_period, None)
    else:   # the standalone recount writes no segment rollups: counted as the consumer counts insert events
        count_inserts(client, cols, config, list(cols.source.find()))


def evaluate_during_drift(cols: Collections, config: Config, end: dt.datetime) -> Evaluation:
    """Evaluate halfway through the drift's last day: accuracy:last_n opens."""
    return evaluate(cols, config, end - (DAYS - DRIFT_OFF + 0.5) * DAY)


def open_and_resolve(cols: Collections, config: Config, end: dt.datetime) -> tuple[Evaluation, Evaluation]:
    """Evaluate inside the drift (accuracy:last_n opens) and after it (it resolves)."""
    return evaluate_during_drift(cols, config, end), evaluate(cols, config, end)


def raise_floor(cols: Collections, config: Config, end: dt.datetime) -> Evaluation:
    """The user raises the accuracy floor above the model's accuracy: a critical accuracy alert opens."""
    raised = dataclasses.replace(config, drift=dataclasses.replace(config.drift, accuracy_floor=0.97))
    return evaluate(cols, raised, end + dt.timedelta(minutes=5))
