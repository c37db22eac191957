"""Drift tests run against the scenario configuration unless a test builds its own."""

from __future__ import annotations

import pytest

from tests.drift.scenario import drift_settings


@pytest.fixture
def config(make_config):
    return make_config(**drift_settings())
