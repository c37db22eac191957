"""Draining the outbox on the real mongod: every profile reaches every sink, whatever the outage."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import whylogs as why

from consumer.sinks import LocalProfileStore, WhyLabsSink, build_sinks, deliver_pending, requeue_dead

T0 = dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)
HOURS = [T0, T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2)]


def fill(collections, outbox_entry, pending=("local", "whylabs")) -> list[str]:
    docs = [outbox_entry(f"b{i}", hour, rows=3 + i, pending=pending, created_at=T0 + dt.timedelta(seconds=i))
            for i, hour in enumerate(HOURS)]
    collections.outbox.insert_many(docs)
    return [doc["_id"] for doc in docs]


def store_files(config) -> list:
    return sorted(p for p in LocalProfileStore(config.profiles.local_store_dir).directory.rglob("*") if p.is_file())


def test_build_sinks_follows_config(make_config, whylabs_config):
    assert [s.name for s in build_sinks(make_config())] == ["local"]
    assert [s.name for s in build_sinks(make_config(profiles={"local_store": False}))] == []
    assert [s.name for s in build_sinks(whylabs_config)] == ["local", "whylabs"]


def test_every_entry_reaches_both_sinks_then_leaves(collections, whylabs_config, fake_whylabs, outbox_entry):
    fill(collections, outbox_entry)
    result = deliver_pending(collections, whylabs_config, build_sinks(whylabs_config))

    assert result.delivered == {"local": 3, "whylabs": 3} and result.deleted == 3
    assert collections.outbox.count_documents({}) == 0
    assert sorted(u.dataset_timestamp for u in fake_whylabs.uploads) == HOURS
    files = store_files(whylabs_config)
    assert len(files) == 3
    views = sorted((why.read(str(p)).view() for p in files), key=lambda v: v.dataset_timestamp)
    assert [v.dataset_timestamp for v in views] == HOURS
    assert [v.get_column("target").get_metric("counts").n.value for v in views] == [3, 4, 5]


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
    assert len(store_files(whylabs_config)) == 3
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
    assert sorted(u.dataset_timestamp for u in fake_whylabs.uploads) == HOURS
    assert len(store_files(whylabs_config)) == 3


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
    assert deliver_pending(collections, whylabs_config, build_sinks(whylabs_config)).dead == {}

    assert requeue_dead(collections, "whylabs") == 1
    assert deliver_pending(collections, whylabs_config, build_sinks(whylabs_config)).delivered == {"whylabs": 1}
    assert collections.outbox.count_documents({}) == 0
    assert len(fake_whylabs.uploads) == 3


def test_redelivery_to_the_local_store_leaves_no_duplicate(collections, config, outbox_entry):
    ids = fill(collections, outbox_entry, pending=("local",))
    sinks = build_sinks(config)
    deliver_pending(collections, config, sinks)
    # A crash after the files were written but before the marks: the entries come back.
    collections.outbox.insert_many([outbox_entry(f"b{i}", hour, rows=3 + i, pending=("local",))
                                    for i, hour in enumerate(HOURS)])
    assert deliver_pending(collections, config, sinks).delivered == {"local": 3}
    assert [p.name for p in store_files(config)] == sorted(f"{i.replace(':', '_')}.bin" for i in ids)


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
