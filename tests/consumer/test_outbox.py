"""Draining the outbox on the real mongod: every entry's rows reach every sink, merged per hour, whatever the
outage or the kill; exactly once in the local store."""

from __future__ import annotations

import dataclasses
import datetime as dt

import tempfile
from pathlib import Path

import pytest
import whylogs as why
from whylogs.migration.converters import read_v0_to_view

from consumer.outbox_queue import OUTBOX_STATE_ID
from consumer.sinks import LocalProfileStore, WhyLabsSink, build_sinks, deliver_pending, drain_lease, requeue_dead
from consumer.sinks.outbox import MAINTENANCE_SECONDS

T0 = dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)
HOURS = [T0, T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2)]


@pytest.fixture
def config(make_config):
    """The test configuration, with the local store drained at every call (no interval)."""
    return make_config(profiles={"local_store_interval_seconds": 0.0})


def fill(collections, outbox_entry, pending=("local", "whylabs"), legacy=False) -> list[str]:
    docs = [outbox_entry(f"b{i}", hour, rows=3 + i, pending=pending, created_at=T0 + dt.timedelta(seconds=i),
                         legacy=legacy) for i, hour in enumerate(HOURS)]
    collections.outbox.insert_many(docs)
    return [doc["_id"] for doc in docs]


def store_files(config) -> list:
    return sorted(p for p in LocalProfileStore(config.profiles.local_store_dir).directory.rglob("*") if p.is_file())


def counts(config) -> dict:
    """Rows in each hour file of the local store, by the file's dataset timestamp."""
    views = (why.read(str(path)).view() for path in store_files(config))
    return {view.dataset_timestamp: view.get_column("target").get_metric("counts").n.value for view in views}


def uploads(server) -> list[tuple[dt.datetime, int]]:
    return sorted((u.dataset_timestamp, read_upload(u.body).get_column("target").get_metric("counts").n.value)
                  for u in server.uploads)


def read_upload(data: bytes):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "upload.bin"
        path.write_bytes(data)
        return read_v0_to_view(str(path))


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs, no handler sees it."""


class KilledAfterWrite:
    """The local store, killed right after the hour file was renamed into place, before any acknowledgement."""

    def __init__(self, store: LocalProfileStore):
        self.store, self.name, self.performance, self.interval_seconds = store, store.name, False, 0.0
        self.exclusive = True

    def held(self, hour):
        return self.store.held(hour)

    def deliver(self, hour, view, entry_ids):
        self.store.deliver(hour, view, entry_ids)
        raise Killed

    def retry_delay(self, attempts):
        return 0.0


def test_build_sinks_follows_config(make_config, whylabs_config):
    assert [s.name for s in build_sinks(make_config())] == ["local"]
    assert [s.name for s in build_sinks(make_config(profiles={"local_store": False}))] == []
    assert [s.name for s in build_sinks(whylabs_config)] == ["local", "whylabs"]


def test_every_entry_reaches_both_sinks_then_leaves(collections, whylabs_config, fake_whylabs, outbox_entry):
    fill(collections, outbox_entry)
    result = deliver_pending(collections, whylabs_config, build_sinks(whylabs_config))

    assert result.delivered == {"local": 3, "whylabs": 3} and result.deleted == 3
    assert result.profiles == {"local": 3, "whylabs": 3}
    assert collections.outbox.count_documents({}) == 0
    assert uploads(fake_whylabs) == list(zip(HOURS, [3, 4, 5]))
    assert counts(whylabs_config) == dict(zip(HOURS, [3, 4, 5]))


def test_every_entry_of_an_hour_goes_as_one_profile_per_sink(collections, whylabs_config, fake_whylabs, outbox_entry):
    collections.outbox.insert_many([outbox_entry(f"b{i}", T0, rows=2 + i % 3, created_at=T0) for i in range(30)]
                                   + [outbox_entry("late", HOURS[1], rows=5, created_at=T0)])
    result = deliver_pending(collections, whylabs_config, build_sinks(whylabs_config))

    assert result.delivered == {"local": 31, "whylabs": 31} and result.profiles == {"local": 2, "whylabs": 2}
    rows = sum(2 + i % 3 for i in range(30))
    assert uploads(fake_whylabs) == [(T0, rows), (HOURS[1], 5)]
    assert counts(whylabs_config) == {T0: rows, HOURS[1]: 5}
    assert collections.outbox.count_documents({}) == 0


def test_entries_written_before_rows_still_reach_both_sinks(collections, whylabs_config, fake_whylabs, outbox_entry):
    fill(collections, outbox_entry, legacy=True)
    collections.outbox.insert_one(outbox_entry("new", HOURS[0], rows=7, created_at=T0))
    result = deliver_pending(collections, whylabs_config, build_sinks(whylabs_config))

    assert result.delivered == {"local": 4, "whylabs": 4} and result.dead == {}
    assert uploads(fake_whylabs) == list(zip(HOURS, [3 + 7, 4, 5]))
    assert counts(whylabs_config) == dict(zip(HOURS, [3 + 7, 4, 5]))
    assert collections.outbox.count_documents({}) == 0


def outage(server, kind: str) -> None:
    if kind == "500":
        server.fail(500, times=1000)
    elif kind == "429":
        server.fail(429, times=1000, retry_after="0")
    elif kind == "hang":
        server.hang(30, times=1000, phase="log")
    else:
        server.refuse_connections()


@pytest.mark.parametrize("kind", ["500", "429", "hang", "refused"])
def test_an_outage_delays_but_never_loses_a_profile_across_a_restart(
        collections, whylabs_config, fake_whylabs, outbox_entry, kind):
    ids = fill(collections, outbox_entry)
    outage(fake_whylabs, kind)
    result = deliver_pending(collections, whylabs_config, build_sinks(whylabs_config), now=T0)

    assert result.delivered == {"local": 3} and result.failed == {"whylabs": 1}  # a down sink: once per call
    assert counts(whylabs_config) == dict(zip(HOURS, [3, 4, 5]))
    first = collections.outbox.find_one({"_id": ids[0]})
    assert first["pending"] == ["whylabs"] and first["attempts"] == {"whylabs": 1}
    assert first["next_attempt_at"]["whylabs"] > T0 and first["last_error"]["whylabs"]

    fake_whylabs.clear_faults()
    if kind == "refused":
        fake_whylabs.accept_connections()
    # A restart: new sink objects over the same database, later on.
    later = T0 + dt.timedelta(minutes=5)
    result = deliver_pending(collections, whylabs_config, build_sinks(whylabs_config), now=later)

    assert result.delivered == {"whylabs": 3} and collections.outbox.count_documents({}) == 0
    assert uploads(fake_whylabs) == list(zip(HOURS, [3, 4, 5]))
    assert counts(whylabs_config) == dict(zip(HOURS, [3, 4, 5]))


def test_an_entry_is_not_retried_before_its_next_attempt(collections, whylabs_config, fake_whylabs, outbox_entry):
    collections.outbox.insert_one(outbox_entry("b0", T0, pending=("whylabs",)))
    fake_whylabs.fail(500, times=1000)
    sinks = build_sinks(whylabs_config)
    deliver_pending(collections, whylabs_config, sinks, now=T0)
    requests = len(fake_whylabs.requests)
    assert deliver_pending(collections, whylabs_config, sinks, now=T0).failed == {}
    assert len(fake_whylabs.requests) == requests
    due = collections.outbox.find_one()["next_attempt_at"]["whylabs"]
    assert deliver_pending(collections, whylabs_config, sinks, now=due).failed == {"whylabs": 1}
    assert collections.outbox.find_one()["attempts"] == {"whylabs": 2}


def test_a_4xx_dead_letters_the_entry_with_its_reason(collections, whylabs_config, fake_whylabs, outbox_entry):
    ids = fill(collections, outbox_entry, pending=("whylabs",))
    fake_whylabs.fail(400, times=1, phase="log")
    result = deliver_pending(collections, whylabs_config, build_sinks(whylabs_config), now=T0)

    assert result.dead == {"whylabs": 1} and result.delivered == {"whylabs": 2}
    dead = collections.outbox.find_one({"_id": ids[0]})
    assert dead["pending"] == [] and "HTTP 400" in dead["dead"]["whylabs"]["reason"]
    assert collections.outbox.count_documents({}) == 1  # kept in sight, never retried on its own
    later = T0 + dt.timedelta(minutes=5)
    assert deliver_pending(collections, whylabs_config, build_sinks(whylabs_config), now=later).dead == {}

    assert requeue_dead(collections, "whylabs") == 1
    result = deliver_pending(collections, whylabs_config, build_sinks(whylabs_config), now=later)
    assert result.delivered == {"whylabs": 1}
    assert collections.outbox.count_documents({}) == 0
    assert len(fake_whylabs.uploads) == 3


def test_a_kill_between_the_file_and_the_acknowledgement_merges_nothing_twice(collections, config, outbox_entry):
    fill(collections, outbox_entry, pending=("local",))
    store = LocalProfileStore(config.profiles.local_store_dir)
    with pytest.raises(Killed):
        deliver_pending(collections, config, [KilledAfterWrite(store)])
    assert counts(config) == {T0: 3}                                  # written, not acknowledged
    assert collections.outbox.count_documents({"pending": "local"}) == 3
    collections.outbox.insert_one(outbox_entry("after", T0, rows=2, pending=("local",)))

    result = deliver_pending(collections, config, build_sinks(config))   # the restarted drain
    assert result.delivered == {"local": 4} and result.profiles == {"local": 3}
    assert counts(config) == {T0: 3 + 2, HOURS[1]: 4, HOURS[2]: 5}
    assert collections.outbox.count_documents({}) == 0


def test_a_redone_delivery_after_lost_acknowledgements_counts_once(collections, config, outbox_entry):
    docs = [outbox_entry(f"b{i}", T0, rows=3, pending=("local",)) for i in range(4)]
    collections.outbox.insert_many(docs)
    sinks = build_sinks(config)
    assert deliver_pending(collections, config, sinks).delivered == {"local": 4}
    # The acknowledgements were lost: the entries are back as they were before the drain.
    collections.outbox.insert_many(docs)
    assert deliver_pending(collections, config, sinks).delivered == {"local": 4}
    assert counts(config) == {T0: 12} and len(store_files(config)) == 1
    assert collections.outbox.count_documents({}) == 0


def test_a_sink_waits_its_interval_then_takes_every_waiting_entry(collections, make_config, outbox_entry):
    config = make_config(profiles={"local_store_interval_seconds": 60.0})
    collections.outbox.insert_many([outbox_entry(f"b{i}", T0, rows=1, pending=("local",),
                                                 created_at=T0 + dt.timedelta(seconds=10 * i)) for i in range(10)])
    sinks = build_sinks(config)
    assert deliver_pending(collections, config, sinks, now=T0 + dt.timedelta(seconds=59)).delivered == {}
    result = deliver_pending(collections, config, sinks, now=T0 + dt.timedelta(seconds=60))
    assert result.delivered == {"local": 10} and result.profiles == {"local": 1}
    assert counts(config) == {T0: 10}



def test_a_backlog_larger_than_a_call_drains_call_after_call(collections, make_config, outbox_entry):
    config = make_config(profiles={"local_store_interval_seconds": 3600.0})
    collections.outbox.insert_many([outbox_entry(f"b{i}", T0 + dt.timedelta(hours=i % 3), rows=1, pending=("local",),
                                                 created_at=T0 + dt.timedelta(seconds=i)) for i in range(12)])
    sinks, later = build_sinks(config), T0 + dt.timedelta(seconds=60)
    assert deliver_pending(collections, config, sinks, now=later, limit=5).delivered == {"local": 5}
    assert deliver_pending(collections, config, sinks, now=later, limit=5).delivered == {"local": 5}
    assert deliver_pending(collections, config, sinks, now=later, limit=5).delivered == {}   # 2 left: they wait
    assert counts(config) == {T0: 4, T0 + dt.timedelta(hours=1): 3, T0 + dt.timedelta(hours=2): 3}


def test_oldest_first_and_bounded_per_call(collections, config, outbox_entry):
    ids = fill(collections, outbox_entry, pending=("local",))
    result = deliver_pending(collections, config, build_sinks(config), limit=2)
    assert result.delivered == {"local": 2}
    assert [d["_id"] for d in collections.outbox.find()] == ids[2:]


def test_a_sink_no_longer_configured_keeps_its_entries(collections, config, outbox_entry):
    fill(collections, outbox_entry, pending=("local", "whylabs"))
    assert not dataclasses.asdict(config.whylabs)["api_key"]
    result = deliver_pending(collections, config, build_sinks(config))
    assert result.delivered == {"local": 3}
    assert {tuple(d["pending"]) for d in collections.outbox.find()} == {("whylabs",)}


def test_no_sinks_is_a_no_op(collections, config, outbox_entry):
    fill(collections, outbox_entry, pending=("local",))
    assert deliver_pending(collections, config, []).delivered == {}
    assert collections.outbox.count_documents({}) == 3


def test_whylabs_sink_needs_credentials(config):
    with pytest.raises(Exception, match="WHYLABS_API_KEY"):
        WhyLabsSink(config.whylabs)


def test_a_retry_after_beyond_the_budget_sets_the_next_attempt(collections, whylabs_config, fake_whylabs, outbox_entry):
    collections.outbox.insert_one(outbox_entry("b0", T0, pending=("whylabs",)))
    fake_whylabs.fail(429, times=1, retry_after="600")  # longer than whylabs.max_seconds: not slept through
    result = deliver_pending(collections, whylabs_config, build_sinks(whylabs_config), now=T0)
    assert result.failed == {"whylabs": 1} and len(fake_whylabs.requests) == 1
    assert collections.outbox.find_one()["next_attempt_at"]["whylabs"] == T0 + dt.timedelta(seconds=600)


def test_dead_entries_are_kept_for_their_retention_then_deleted_and_counted(collections, whylabs_config,
                                                                           fake_whylabs, outbox_entry, caplog):
    fill(collections, outbox_entry, pending=("whylabs",))
    fake_whylabs.fail(403, times=10, phase="log")
    sinks = build_sinks(whylabs_config)
    assert deliver_pending(collections, whylabs_config, sinks, now=T0).dead == {"whylabs": 3}
    days = whylabs_config.profiles.dead_retention_days
    kept = T0 + dt.timedelta(days=days) - dt.timedelta(seconds=1)
    assert deliver_pending(collections, whylabs_config, sinks, now=kept).expired == 0
    assert collections.outbox.count_documents({}) == 3

    later = kept + dt.timedelta(seconds=MAINTENANCE_SECONDS + 1)
    with caplog.at_level("WARNING", logger="consumer.sinks"):
        assert deliver_pending(collections, whylabs_config, sinks, now=later).expired == 3
    assert collections.outbox.count_documents({}) == 0
    assert "deleted 3 dead outbox entries" in caplog.text and "whylabs (3)" in caplog.text
    assert collections.state.find_one({"_id": OUTBOX_STATE_ID})["dead_expired"] == {"whylabs": 3}


def test_one_drainer_at_a_time_writes_the_local_store(collections, config, outbox_entry):
    fill(collections, outbox_entry, pending=("local",))
    collections.state.insert_one({"_id": drain_lease.DRAIN_LEASE_ID, "owner": "another-machine:1:x",
                                  "host": "another-machine", "pid": 1,
                                  "expires_at": dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)})
    assert deliver_pending(collections, config, build_sinks(config)).delivered == {}
    assert store_files(config) == []
    collections.state.update_one({"_id": drain_lease.DRAIN_LEASE_ID}, {"$set": {"expires_at": T0}})  # it expired
    assert deliver_pending(collections, config, build_sinks(config)).delivered == {"local": 3}
    assert collections.state.find_one({"_id": drain_lease.DRAIN_LEASE_ID})["owner"] == \
        drain_lease.lease_for(collections.state).owner


def test_an_hour_failing_unexpectedly_is_retried_later_and_holds_up_no_other(collections, config, outbox_entry,
                                                                           monkeypatch, caplog):
    fill(collections, outbox_entry, pending=("local",))
    real = LocalProfileStore.deliver

    def broken_first_hour(self, hour, view, entry_ids):
        if hour == T0:
            raise ValueError("a whylogs bug")
        return real(self, hour, view, entry_ids)

    monkeypatch.setattr(LocalProfileStore, "deliver", broken_first_hour)
    result = deliver_pending(collections, config, build_sinks(config), now=T0)
    assert result.failed == {"local": 1} and result.delivered == {"local": 2}
    assert "unexpected error" in caplog.text
    stuck = collections.outbox.find_one({"pending": "local"})
    assert stuck["last_error"]["local"] == "ValueError: a whylogs bug" and stuck["next_attempt_at"]["local"] > T0
    monkeypatch.undo()
    assert deliver_pending(collections, config, build_sinks(config), now=T0).delivered == {}   # not yet due
    later = T0 + dt.timedelta(minutes=1)
    assert deliver_pending(collections, config, build_sinks(config), now=later).delivered == {"local": 1}
    assert counts(config) == dict(zip(HOURS, [3, 4, 5]))
