"""Segments: canonical values, the cap and its warnings, the configuration's checks."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from bson import ObjectId

from clara.config import config_from_mapping
from clara.errors import ConfigError
from clara.rollups import Counted
from clara.segments import OTHER, UNKNOWN, WARNINGS, Admission, canonical
from clara.settings import SegmentSettings

UTC = dt.timezone.utc


@pytest.fixture(autouse=True)
def fresh_warnings():
    """Capped values are warned about once per process: each test starts with none warned yet."""
    WARNINGS.seen.clear()


@pytest.mark.parametrize("value, expected", [
    (None, UNKNOWN), ("", UNKNOWN), (float("nan"), UNKNOWN), (float("inf"), UNKNOWN),
    ("v2", "v2"), ("x" * 100, "x" * 100), ("x" * 101, OTHER),
    (True, "true"), (False, "false"), (3, "3"), (-1, "-1"), (2.0, "2"), (1.5, "1.5"),
    (ObjectId("65a000000000000000000000"), "65a000000000000000000000"),
    (dt.datetime(2026, 3, 1, 12), "2026-03-01T12:00:00+00:00"),
    ({"a": 1}, OTHER), (["a"], OTHER), (b"raw", OTHER),
])
def test_every_value_has_one_canonical_string(value, expected):
    assert canonical(value) == expected


def test_values_beyond_the_cap_count_as_other_and_are_warned_about_once_each(caplog):
    admission = Admission(SegmentSettings(fields=("site", "model_version"), max_values=2), {"site": ["a"]})
    caplog.set_level(logging.WARNING, logger="clara.segments")
    sites = [admission.value("site", site) for site in ["a", "b", "c", "d", "c", "c", None, "b"]]
    assert sites == ["a", "b", OTHER, OTHER, OTHER, OTHER, UNKNOWN, "b"]
    assert admission.pending() == {"site": ["b"]}
    capped = [record.getMessage() for record in caplog.records]
    assert len(capped) == 2 and "'c'" in capped[0] and "'d'" in capped[1]
    assert all("segments.max_values = 2" in message for message in capped)
    assert admission.segment_of({"site": "a", "model_version": 7}) == (("model_version", "7"), ("site", "a"))


def test_a_document_segment_is_the_same_whether_or_not_its_values_were_seen_in_the_batch():
    """segment_of keeps the segments it gave by raw value; values equal across types (1, 1.0, True) and
    unhashable ones still get their own, and the cap still applies to each new value."""
    admission = Admission(SegmentSettings(fields=("site",), max_values=3))
    docs = [{"site": value} for value in ("a", 1, 1.0, True, "1", ["a"], {"b": 1}, None, "a", "c", True, "d", "a")]
    assert [admission.segment_of(doc) for doc in docs] == [(("site", value),) for value in (
        "a", "1", "1", "true", "1", OTHER, OTHER, UNKNOWN, "a", OTHER, "true", OTHER, "a")]
    assert admission.pending() == {"site": ["a", "1", "true"]}


def test_a_value_that_cannot_name_a_segment_is_other_and_never_admitted(caplog):
    admission = Admission(SegmentSettings(fields=("site",), max_values=5))
    caplog.set_level(logging.WARNING, logger="clara.segments")
    assert admission.value("site", {"nested": "document"}) == OTHER
    assert admission.value("site", "y" * 5000) == OTHER
    assert admission.pending() == {}
    assert [r.getMessage().split(" that ")[0] for r in caplog.records] == [
        "segment field 'site' holds a dict", "segment field 'site' holds a str"]


def test_a_counted_entry_keeps_its_segment_and_none_without_segments():
    hour = dt.datetime(2026, 3, 1, 12, tzinfo=UTC)
    plain = Counted(hour, 1, 1, 500_000, 1000)
    assert "segment" not in plain.to_doc()
    assert Counted.from_doc(plain.to_doc()) == plain
    segmented = Counted(hour, 1, 1, 500_000, 1000, (("model_version", "2"), ("site", "a")))
    assert segmented.to_doc()["segment"] == {"model_version": "2", "site": "a"}
    assert Counted.from_doc(segmented.to_doc() | {"segment": {"site": "a", "model_version": "2"}}) == segmented


@pytest.mark.parametrize("segments, message", [
    ({"fields": ["site", "site"]}, "config.toml: segments.fields[1] = 'site': expected a field named only once"),
    ({"fields": ["a.b"]}, "config.toml: segments.fields[0] = 'a.b': expected the name of a top-level field"),
    ({"fields": ["$x"]}, "segments.fields[0] = '$x'"),
    ({"fields": ["logged"]}, "segments.fields[0] = 'logged'"),
    ({"fields": [""]}, "segments.fields[0] = ''"),
    ({"fields": "site"}, "config.toml: segments.fields = 'site': expected a list of a string"),
    ({"max_values": 0}, "config.toml: segments.max_values = 0: expected a number of distinct values per field from 1"),
    ({"max_values": 5000}, "segments.max_values = 5000"),
    ({"fold_seconds": -1}, "config.toml: segments.fold_seconds = -1.0: expected a number of seconds from 0"),
    ({"fold_seconds": 600}, "segments.fold_seconds = 600.0: expected a number of seconds from 0 (apply every batch's"),
    ({"cap": 3}, "unknown key segments.cap"),
])
def test_bad_segment_settings_stop_start_up_naming_the_key(segments, message):
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"segments": segments}, {}, source="config.toml")
    assert message in str(caught.value)


def test_no_segments_by_default():
    config = config_from_mapping({}, {})
    assert config.segments.fields == () and not config.segments.enabled
