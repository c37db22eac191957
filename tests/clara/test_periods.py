"""Rollup periods: the longest of 60, 30 and 15 minutes that makes every local day of the zone whole periods."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo, available_timezones

import pytest

from clara import periods
from clara.config import config_from_mapping
from clara.errors import ConfigError
from clara.periods import period_start, periods_between, rollup_period
from clara.rollups import day_bounds

UTC = dt.timezone.utc
MINUTES = dt.timedelta(minutes=1)


@pytest.mark.parametrize("name, minutes", [
    ("Europe/Madrid", 60), ("UTC", 60), ("America/St_Johns", 30), ("Asia/Kolkata", 30),
    ("Australia/Adelaide", 30), ("Australia/Lord_Howe", 30),   # Lord Howe's DST moves it by half an hour
    ("Asia/Kathmandu", 15), ("Australia/Eucla", 15), ("Pacific/Chatham", 15)])
def test_the_period_is_the_longest_that_divides_every_offset(name, minutes):
    assert rollup_period(ZoneInfo(name)) == minutes * MINUTES


def test_every_day_of_a_zone_is_whole_periods():
    """For 60 zones of the tz database, local midnights of random days from 2000 to 2100 fall on period
    boundaries, so a day is exactly the periods between its bounds."""
    rng = random.Random(5)
    for name in rng.sample(sorted(available_timezones()), 60) + ["Asia/Kathmandu", "Australia/Lord_Howe"]:
        zone = ZoneInfo(name)
        period = rollup_period(zone)
        for _ in range(20):
            day = dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(365 * 100))
            start, end = day_bounds(day, day, zone)
            assert period_start(start, period) == start and period_start(end, period) == end, (name, day)


def test_period_start_floors_in_utc_whatever_the_input_zone():
    moment = dt.datetime(2026, 3, 1, 23, 59, 59, 999_999, tzinfo=ZoneInfo("Asia/Kathmandu"))   # 18:14:59 UTC
    assert period_start(moment, 15 * MINUTES) == dt.datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
    assert period_start(moment, 30 * MINUTES) == dt.datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
    assert period_start(dt.datetime(2026, 3, 1, 18, 45, tzinfo=UTC), 30 * MINUTES) == dt.datetime(
        2026, 3, 1, 18, 30, tzinfo=UTC)
    start = dt.datetime(2026, 3, 1, 18, 15, tzinfo=UTC)
    assert periods_between(start, start + dt.timedelta(hours=1), 15 * MINUTES) == [
        start + n * 15 * MINUTES for n in range(4)]


def test_a_zone_no_quarter_hour_fits_is_refused_by_name_and_offset(monkeypatch):
    """Liberia kept -00:44:30 until 1972: counted from 1970 its days cannot be whole periods."""
    monkeypatch.setattr(periods, "FIRST_YEAR", 1970)
    periods.rollup_period.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"UTC offset -00:44:30 is not a whole number of quarter hours"):
            rollup_period(ZoneInfo("Africa/Monrovia"))
        with pytest.raises(ConfigError, match=r"test: model.timezone = 'Africa/Monrovia': its UTC offset -00:44:30"):
            config_from_mapping({"model": {"timezone": "Africa/Monrovia"}}, {}, source="test")
    finally:
        periods.rollup_period.cache_clear()


def test_zones_with_half_and_quarter_hour_offsets_are_accepted():
    for name in ("Asia/Kolkata", "Australia/Adelaide", "Asia/Kathmandu"):
        config = config_from_mapping({"model": {"timezone": name}}, {}, source="test")
        assert config.model.rollup_period < dt.timedelta(hours=1)
