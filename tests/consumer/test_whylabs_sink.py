"""The WhyLabs sink through whylogs' real writer against the local WhyLabs server: retries and dead letters."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
from pathlib import Path

import pytest
from whylogs.migration.converters import read_v0_to_view

from consumer.sinks import OutboxEntry, PermanentSinkError, TransientSinkError, WhyLabsSink
from consumer.sinks.profiles import hour_view
from consumer.sinks.whylabs_http import retry_after_seconds

HOUR = dt.datetime(2024, 5, 1, 13, tzinfo=dt.timezone.utc)


class HourProfile:
    """What the drain hands the sink: one hour's merged profile (with performance metrics) and its entry ids."""

    def __init__(self, config, *docs):
        entries = [OutboxEntry.from_document(doc) for doc in docs]
        self.view = hour_view(entries, HOUR, config.model.classes, performance=True).view
        self.ids = [e.id for e in entries]

    def to(self, sink: WhyLabsSink):
        return sink.deliver(HOUR, self.view, self.ids)


@pytest.fixture
def hour(whylabs_config, outbox_entry) -> HourProfile:
    return HourProfile(whylabs_config, outbox_entry("b-1", HOUR, rows=5))


@pytest.fixture
def sink(whylabs_config) -> WhyLabsSink:
    return WhyLabsSink(whylabs_config.whylabs)


def v0_view(data: bytes):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "upload.bin"
        path.write_bytes(data)
        return read_v0_to_view(str(path))


def test_upload_arrives_with_dataset_timestamp_counts_and_performance_metrics(sink, hour, fake_whylabs):
    assert hour.to(sink).possible_duplicate is False

    [upload] = fake_whylabs.uploads
    assert (upload.org_id, upload.dataset_id, upload.dataset_timestamp) == ("org-test", "model-7", HOUR)
    view = v0_view(upload.body)
    assert view.get_column("target").get_metric("counts").n.value == 5
    matrix = view.model_performance_metrics.confusion_matrix
    assert sum(metric.n for metric in matrix.confusion_matrix.values()) == 4   # one of five rejected without a class
    assert [(method, path.split("/")[1]) for method, path, _ in fake_whylabs.requests] == [
        ("POST", "v1"), ("PUT", "upload")]


def test_an_hour_of_many_entries_old_and_new_is_one_upload(sink, whylabs_config, outbox_entry, fake_whylabs):
    docs = [outbox_entry(f"b-{i}", HOUR, rows=3 + i) for i in range(4)] + [outbox_entry("old", HOUR, 6, legacy=True)]
    HourProfile(whylabs_config, *docs).to(sink)

    [upload] = fake_whylabs.uploads
    view = v0_view(upload.body)
    assert upload.dataset_timestamp == HOUR
    assert view.get_column("target").get_metric("counts").n.value == 3 + 4 + 5 + 6 + 6
    assert view.model_performance_metrics is not None


@pytest.mark.parametrize(("status", "phase"), [(500, "log"), (503, "upload"), (408, "log"), (429, "upload")])
def test_transient_statuses_are_retried(sink, hour, fake_whylabs, status, phase):
    fake_whylabs.fail(status, times=2, phase=phase)
    hour.to(sink)
    assert len(fake_whylabs.uploads) == 1
    assert [s for _, _, s in fake_whylabs.requests].count(status) == 2


@pytest.mark.parametrize(("status", "phase"), [(400, "log"), (401, "log"), (404, "log"), (403, "upload")])
def test_other_4xx_are_permanent_and_not_retried(sink, hour, fake_whylabs, status, phase):
    fake_whylabs.fail(status, times=5, phase=phase)
    with pytest.raises(PermanentSinkError, match=f"HTTP {status}"):
        hour.to(sink)
    assert [s for _, _, s in fake_whylabs.requests].count(status) == 1


def test_gives_up_after_the_attempt_budget(sink, hour, fake_whylabs):
    fake_whylabs.fail(500, times=100)
    with pytest.raises(TransientSinkError, match="HTTP 500"):
        hour.to(sink)
    assert len(fake_whylabs.requests) == 3  # whylabs.attempts
    assert not fake_whylabs.uploads


def test_retry_after_is_honoured(whylabs_config, hour, fake_whylabs):
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    fake_whylabs.fail(429, times=1, phase="log", retry_after="1")
    hour.to(WhyLabsSink(whylabs_config.whylabs, sleep=sleep))
    assert waits and waits[0] >= 1.0  # backoff_max_seconds is 0.05: only Retry-After explains this wait
    assert len(fake_whylabs.uploads) == 1


def test_retry_after_in_either_form():
    now = dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": "Wed, 01 May 2024 12:00:30 GMT"}, now=now) == 30.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_a_hang_is_cut_at_the_attempt_timeout(sink, hour, fake_whylabs):
    fake_whylabs.hang(10, times=1, phase="log")
    started = time.monotonic()
    hour.to(sink)
    assert time.monotonic() - started < 3
    assert len(fake_whylabs.uploads) == 1


def test_refused_connections_are_transient(sink, hour, fake_whylabs):
    fake_whylabs.refuse_connections()
    with pytest.raises(TransientSinkError, match="cannot connect") as caught:
        hour.to(sink)
    assert caught.value.maybe_delivered is False
    fake_whylabs.accept_connections()
    hour.to(sink)
    assert len(fake_whylabs.uploads) == 1


def test_a_lost_answer_is_retried_and_logged_as_a_possible_duplicate(sink, hour, fake_whylabs, caplog):
    fake_whylabs.drop_answer(times=1)
    with caplog.at_level(logging.WARNING, logger="consumer.sinks.whylabs"):
        delivered = hour.to(sink)
    assert delivered.possible_duplicate is True
    assert len(fake_whylabs.uploads) == 2  # at least once: the first copy arrived, its answer did not
    assert "possible duplicate" in caplog.text
