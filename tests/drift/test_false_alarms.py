"""The README's false-alarm figures are what drift.false_alarms computes from the shipped configuration."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from clara.config import DEFAULT_CONFIG_PATH, load_config
from drift.false_alarms import budget, main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_readme_quotes_the_computed_false_alarm_rates(capsys):
    config = load_config(DEFAULT_CONFIG_PATH, environ={})
    busy, quiet = budget(config, 20000, 2000), budget(config, 5000, 1000)
    holm = budget(dataclasses.replace(config, drift=dataclasses.replace(config.drift, multiple_testing="holm")),
                  20000, 2000)
    assert f"{busy.tests_per_evaluation} alerting tests per evaluation" in README
    assert f"about {busy.false_alarms_per_week:.2f} false alarms a week at 20,000" in README
    assert f"({quiet.false_alarms_per_week:.2f} at 5,000 and 1,000)" in README
    assert f"{holm.tests_per_evaluation}\n  tests and {holm.false_alarms_per_week:.2f}" in README \
        or f"{holm.tests_per_evaluation} tests and {holm.false_alarms_per_week:.2f}" in README
    # One test per class without a correction, one per family with it; alpha scales the whole budget.
    assert busy.tests_per_evaluation - holm.tests_per_evaluation == 2 * (config.n_classes - 1)
    strict = dataclasses.replace(config, drift=dataclasses.replace(config.drift, alpha=0.0001))
    assert budget(strict, 20000, 2000).false_alarms_per_week == pytest.approx(busy.false_alarms_per_week / 10)
    assert main(["--predictions-per-day", "20000", "--reviews-per-day", "2000"]) == 0
    assert f"{busy.false_alarms_per_week:.2f} false alarms a week" in capsys.readouterr().out
