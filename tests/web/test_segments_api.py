"""`segment=field:value` on every rollup endpoint: a segment's figures equal scikit-learn on its own documents,
the overall figures are the sum of a field's segments, bad values are refused naming the parameter, a value
never seen is an empty answer, and /api/segments lists the values seen."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import pytest

from clara.segments import WARNINGS
from tests.support.inserts import count_inserts
from tests.web.conftest import UTC, expected_metrics, make_documents

VERSIONS = ["v1", "v2", None]   # None: the field is missing, the `unknown` segment
SITES = ["north", "south"]
RANGE = {"from": "2024-03-30", "to": "2024-04-01"}
SEGMENTED = ["/api/summary", "/api/daily", "/api/classes", "/api/confusion", "/api/volume", "/api/training",
             "/api/intervals", "/api/calibration", "/api/unreviewed", "/api/label-shift", "/api/review-hints",
             "/api/health", "/api/drift"]


@pytest.fixture
def web_config(make_config):
    WARNINGS.seen.clear()
    return make_config(web={"sse_heartbeat_seconds": 0.5}, consumer={"batch_max_seconds": 0.05},
                       segments={"fields": ["model_version", "site"], "max_values": 20})


@pytest.fixture
def documents(mongo_client, web_collections, web_config, process) -> list[dict]:
    rng = random.Random(18)
    docs = make_documents(rng, dt.datetime(2024, 3, 29, 23, tzinfo=UTC), 72, 5, web_config.n_classes)
    for doc in docs:
        version = rng.choice(VERSIONS)
        if version is not None:
            doc["model_version"] = version
        doc["site"] = rng.choice(SITES)
    web_collections.source.insert_many(docs)
    count_inserts(mongo_client, web_collections, web_config, docs)
    process()
    return docs


async def _get(client, path, **params):
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    return await response.json()


def _in_range(docs, zone):
    first, last = (dt.date.fromisoformat(RANGE[end]) for end in ("from", "to"))
    return [doc for doc in docs if first <= doc["timestamp"].astimezone(zone).date() <= last]


async def test_a_segment_equals_scikit_learn_on_its_documents(client, documents, web_config):
    chosen = _in_range(documents, web_config.model.zone)
    for version in ("v1", "v2", "unknown"):
        mine = [doc for doc in chosen if doc.get("model_version", "unknown") == version]
        expected = expected_metrics(mine, web_config.n_classes)
        summary = await _get(client, "/api/summary", **RANGE, segment=f"model_version:{version}")
        assert summary["reviews"] == expected["reviews"] > 0
        assert summary["accuracy"] == expected["accuracy"]
        assert summary["averages"] == {"macro": expected["macro"], "weighted": expected["weighted"]}
        assert summary["pending"] == sum("output_validated" not in doc for doc in mine)
        classes = await _get(client, "/api/classes", **RANGE, segment=f"model_version:{version}")
        assert classes["recall"] == expected["recall"]
        volume = await _get(client, "/api/volume", **RANGE, segment=f"model_version:{version}")
        assert volume["total"]["predictions"] == len(mine)


async def test_the_overall_answers_are_the_sum_of_a_fields_segments(client, documents, web_config):
    overall = {path: await _get(client, path, **RANGE) for path in ("/api/summary", "/api/daily", "/api/volume",
                                                                     "/api/confusion", "/api/training")}
    for field, values in (("model_version", ["v1", "v2", "unknown"]), ("site", SITES)):
        parts = {path: [await _get(client, path, **RANGE, segment=f"{field}:{value}") for value in values]
                 for path in overall}
        summaries = parts["/api/summary"]
        for name in ("reviews", "pending", "rejected_without_class"):
            assert sum(part[name] for part in summaries) == overall["/api/summary"][name], name
        for name in ("samples_by_class", "predicted_by_class"):
            assert [sum(column) for column in zip(*(part[name] for part in summaries))] == \
                overall["/api/summary"][name], name
        assert [sum(column) for column in zip(*(part["reviews"] for part in parts["/api/daily"]))] == \
            overall["/api/daily"]["reviews"]
        for name in ("predictions", "reviews", "pending", "bad"):
            assert [sum(column) for column in zip(*(part[name] for part in parts["/api/volume"]))] == \
                overall["/api/volume"][name], name
        matrices = [part["matrix"] for part in parts["/api/confusion"]]
        assert [[sum(cells) for cells in zip(*rows)] for rows in zip(*matrices)] == overall["/api/confusion"]["matrix"]
        assert sum(part["all_predictions"] for part in parts["/api/training"]) == \
            overall["/api/training"]["all_predictions"]


async def test_every_rollup_endpoint_takes_a_segment_and_an_unseen_value_is_empty(client, documents):
    for path in SEGMENTED:
        body = await _get(client, path, **RANGE, segment="model_version:v9")
        assert body["range"]["from"] == RANGE["from"], path
    summary = await _get(client, "/api/summary", **RANGE, segment="model_version:v9")
    assert (summary["reviews"], summary["pending"], summary["accuracy"]) == (0, 0, None)
    intervals = await _get(client, "/api/intervals", **RANGE, segment="model_version:v9")
    assert intervals["total"]["reviews"] == 0
    hourly = await _get(client, "/api/daily", **{"from": "2024-03-30T10:00", "to": "2024-03-30T16:00"},
                        segment="site:north")
    assert len(hourly["hours"]) == 6 and sum(hourly["reviews"]) > 0


@pytest.mark.parametrize("value, reason", [
    ("model_version", "is not field:value"), (":v1", "is not field:value"), ("model_version:", "is not field:value"),
    ("camera:3", "'camera' is not a segment field; configured: model_version, site"),
    ("site:" + "x" * 101, "at most 100")])
async def test_a_bad_segment_is_refused_naming_the_parameter(client, value, reason):
    for path in ("/api/summary", "/api/volume", "/api/intervals", "/api/review-hints", "/api/health"):
        response = await client.get(path, params={"segment": value})
        assert response.status == 400, path
        error = (await response.json())["error"]
        assert error["parameter"] == "segment" and reason in error["message"], (path, error)


async def test_data_health_of_a_segment_equals_its_documents_and_the_rest_is_the_whole_systems(
        client, documents, web_config, web_collections):
    import numpy as np

    from clara.rollups import LATENCY_EDGES

    web_collections.rejects.insert_one({"_id": "r", "reason": "output_prediction: missing",
                                        "field": "output_prediction", "at": dt.datetime.now(UTC)})
    chosen = _in_range(documents, web_config.model.zone)
    overall = await _get(client, "/api/health", **RANGE)
    for field, value in (("model_version", "v1"), ("model_version", "unknown"), ("site", "south")):
        mine = [doc for doc in chosen if doc.get(field, "unknown") == value]
        latencies = [(doc["timestamp_validated"] - doc["timestamp"]).total_seconds()
                     for doc in mine if "output_validated" in doc]
        health = await _get(client, "/api/health", **RANGE, segment=f"{field}:{value}")
        assert health["segment"] == {"field": field, "value": value}
        assert health["pending"] == sum("output_validated" not in doc for doc in mine) > 0
        assert health["latency"]["count"] == len(latencies) < overall["latency"]["count"]
        assert health["latency"]["mean_seconds"] == pytest.approx(np.mean(latencies), abs=1e-3)
        bins = np.bincount(np.digitize(latencies, LATENCY_EDGES), minlength=len(LATENCY_EDGES) + 1)
        assert [row["count"] for row in health["latency"]["histogram"]] == bins.tolist()
        for whole in ("rejects", "outbox_backlog"):   # the whole system's, whatever the segment
            assert health[whole] == overall[whole], whole
        assert health["consumer"]["known"] == overall["consumer"]["known"]
    assert overall["segment"] is None and overall["rejects"]["total"] == 1
    hours = {"from": "2024-03-30T10:00", "to": "2024-03-30T16:00"}   # an hour-precise range, local hours
    zone = web_config.model.zone
    start, end = (dt.datetime.fromisoformat(hours[edge]).replace(tzinfo=zone) for edge in ("from", "to"))
    mine = [doc for doc in documents if start <= doc["timestamp"] < end and doc["site"] == "north"]
    health = await _get(client, "/api/health", **hours, segment="site:north")
    assert health["pending"] == sum("output_validated" not in doc for doc in mine) > 0
    assert health["latency"]["count"] == sum("output_validated" in doc for doc in mine) > 0


async def test_segments_lists_the_values_seen_with_their_counts(client, documents, web_config):
    body = await _get(client, "/api/segments", **RANGE)
    chosen = _in_range(documents, web_config.model.zone)
    listed = {entry["field"]: entry["values"] for entry in body["fields"]}
    assert list(listed) == ["model_version", "site"]
    for row in listed["model_version"]:
        mine = [doc for doc in chosen if doc.get("model_version", "unknown") == row["value"]]
        assert row["predictions"] == len(mine) > 0
        assert row["reviews"] == sum("output_validated" in doc for doc in mine)
    assert {row["value"] for row in listed["model_version"]} == {"v1", "v2", "unknown"}
    meta = await _get(client, "/api/meta")
    assert meta["segments"] == ["model_version", "site"]


async def test_without_segments_configured_the_parameter_is_refused(aiohttp_client, make_config, web_collections):
    from web.app import create_app

    client = await aiohttp_client(create_app(make_config()))
    response = await client.get("/api/summary", params={"segment": "model_version:v1"})
    error = (await response.json())["error"]
    assert response.status == 400 and error["parameter"] == "segment" and "no segment fields" in error["message"]
    assert (await _get(client, "/api/meta"))["segments"] == []


async def test_openapi_describes_segment_on_every_segmented_endpoint(client):
    paths = (await _get(client, "/api/openapi.json"))["paths"]
    for path, operation in paths.items():
        named = [parameter for parameter in operation["get"]["parameters"] if parameter["name"] == "segment"]
        assert bool(named) == (path in SEGMENTED), path
        if named:
            assert named[0]["schema"]["pattern"] == "^(model_version|site):.{1,100}$"


async def test_compare_puts_two_versions_side_by_side_with_scipys_test(client, documents, web_config):
    from scipy.stats import binomtest, chi2_contingency, fisher_exact

    body = await _get(client, "/api/compare", **RANGE, field="model_version", a="v1", b="v2")
    chosen = _in_range(documents, web_config.model.zone)
    k = web_config.n_classes

    def counts(version):
        mine = [doc for doc in chosen if doc.get("model_version") == version]
        reviewed = [doc for doc in mine if "output_validated" in doc]
        truth = [doc["output_prediction"] if doc["output_validated"] is True else doc["output_validated"]
                 for doc in reviewed]
        right = sum(t is not False and t == doc["output_prediction"] for t, doc in zip(truth, reviewed))
        by_class = [(sum(t is not False and t == c == doc["output_prediction"] for t, doc in zip(truth, reviewed)),
                     sum(t is not False and t == c for t in truth)) for c in range(k)]
        mix = [sum(doc["output_prediction"] == c for doc in mine) for c in range(k)]
        return (right, len(reviewed)), by_class, mix

    (right_a, n_a), classes_a, mix_a = counts("v1")
    (right_b, n_b), classes_b, mix_b = counts("v2")
    accuracy = body["accuracy"]
    assert (accuracy["a"]["n"], accuracy["b"]["n"]) == (n_a, n_b)
    assert accuracy["a"]["value"] == right_a / n_a and accuracy["b"]["value"] == right_b / n_b
    assert accuracy["a"]["interval"]["low"] == pytest.approx(
        binomtest(right_a, n_a).proportion_ci(0.95, method="wilson").low)
    _, p, _, _ = chi2_contingency([[right_a, n_a - right_a], [right_b, n_b - right_b]], correction=False)
    assert accuracy["p_value"] == pytest.approx(p, rel=1e-9)
    assert accuracy["verdict"].startswith("accuracy: v") and "significant at 0.05" in accuracy["verdict"]
    for c, row in enumerate(body["recall"]):
        (k_a, m_a), (k_b, m_b) = classes_a[c], classes_b[c]
        assert (row["a"]["n"], row["b"]["n"]) == (m_a, m_b)
        table = [[k_a, m_a - k_a], [k_b, m_b - k_b]]
        expected = (fisher_exact(table)[1] if row["method"].startswith("Fisher")
                    else chi2_contingency(table, correction=False)[1])
        assert row["p_value"] == pytest.approx(expected, rel=1e-9)
    assert body["mix"]["a"]["by_class"] == mix_a and body["mix"]["b"]["by_class"] == mix_b
    assert body["calibration"]["a"]["n"] + body["calibration"]["b"]["n"] > 0
    assert len(body["periods"]) == 3 == len(body["accuracy_by_period"]["a"])
    assert sum(row["n"] for row in body["accuracy_by_period"]["b"]) == n_b


async def test_compare_refuses_bad_sides_naming_them(client):
    for params, name in (({"a": "v1", "b": "v2"}, "field"), ({"field": "camera", "a": "v1", "b": "v2"}, "field"),
                         ({"field": "site", "b": "v2"}, "a"), ({"field": "site", "a": "v1", "b": ""}, "b")):
        response = await client.get("/api/compare", params=params)
        assert response.status == 400 and (await response.json())["error"]["parameter"] == name, params


async def test_compare_counts_only_the_days_both_sides_have_reviews(client, documents, web_config, mongo_client,
                                                                     web_collections, process):
    """A version deployed on the range's last day is compared with the other on that day's traffic only."""
    late = make_documents(random.Random(3), dt.datetime(2024, 3, 31, 23, tzinfo=UTC), 20, 6, web_config.n_classes,
                          first_id=1_000_000)
    for doc in late:
        doc |= {"model_version": "v3", "site": "north"}
    web_collections.source.insert_many(late)
    count_inserts(mongo_client, web_collections, web_config, late)
    process()
    body = await _get(client, "/api/compare", **RANGE, field="model_version", a="v1", b="v3")
    assert body["common"] == ["2024-04-01"]
    last_day = [doc for doc in _in_range(documents, web_config.model.zone)
                if doc.get("model_version") == "v1" and doc["timestamp"].astimezone(web_config.model.zone).date()
                == dt.date(2024, 4, 1)]
    expected = expected_metrics(last_day, web_config.n_classes)
    assert (body["accuracy"]["a"]["n"], body["accuracy"]["a"]["value"]) == (expected["reviews"], expected["accuracy"])
    assert body["mix"]["a"]["predictions"] == len(last_day)
    assert body["accuracy"]["b"]["n"] == expected_metrics(late, web_config.n_classes)["reviews"]
    whole = await _get(client, "/api/summary", **RANGE, segment="model_version:v1")
    assert sum(row["n"] for row in body["accuracy_by_period"]["a"]) == whole["reviews"] > expected["reviews"]


async def test_data_health_shows_the_segment_increments_put_off_while_behind_until_they_are_folded(
        client, documents, mongo_client, web_collections):
    from clara.segment_pending import SegmentWrites, commit_segment_writes, fold_all
    from clara.segments import segment_id

    assert (await _get(client, "/api/health", **RANGE))["segments_pending"] == {"batches": 0, "oldest_at": None}
    hour = dt.datetime(2024, 3, 30, 10, tzinfo=UTC)
    moments = [dt.datetime(2024, 4, 2, 8, 0, second, tzinfo=UTC) for second in (1, 2)]
    for moment in moments:   # two full batches put off, as the consumer does while behind
        writes = SegmentWrites()
        writes.add("predictions", [((hour, "site", "north"), {"predictions": 1, "classes.0": 1})])
        with mongo_client.start_session() as session, session.start_transaction():
            assert commit_segment_writes(session, web_collections, writes, moment, defer=True)
    before = web_collections.segment_predictions.find_one({"_id": segment_id(hour, "site")})

    health = await _get(client, "/api/health", **RANGE, segment="site:north")
    assert health["segments_pending"] == {"batches": 2, "oldest_at": moments[0].isoformat()}
    assert fold_all(mongo_client, web_collections) == 1
    assert (await _get(client, "/api/health", **RANGE))["segments_pending"] == {"batches": 0, "oldest_at": None}
    after = web_collections.segment_predictions.find_one({"_id": segment_id(hour, "site")})
    assert after["values"]["north"]["predictions"] == before["values"]["north"]["predictions"] + 2


async def test_the_busiest_values_are_loaded_at_start_and_their_answers_read_only_what_changes_after(
        documents, client, web_config, mongo_client, web_collections, process):
    from clara.rollups import Totals
    from web import keys
    from web.params import DateRange

    kept = client.app[keys.SEGMENT_TOTALS]
    async with asyncio.timeout(10):
        while len(kept) < 10:   # the warm-up (web.warm): 5 values seen, both kinds
            await asyncio.sleep(0.05)
    days = DateRange(*(dt.date.fromisoformat(RANGE[end]) for end in ("from", "to")), web_config.model.zone).days
    v1 = kept.of("segment_rollups", "model_version", "v1", Totals.of)
    loaded = v1.state
    assert set(days) <= loaded.hours.keys()
    chosen = [doc for doc in _in_range(documents, web_config.model.zone) if doc.get("model_version") == "v1"]
    summary = await _get(client, "/api/summary", **RANGE, segment="model_version:v1")
    assert summary["reviews"] == expected_metrics(chosen, web_config.n_classes)["reviews"]
    assert v1.state is loaded   # answered from what the warm-up loaded, nothing read again
    pending = next(doc for doc in chosen if "output_validated" not in doc)
    web_collections.source.update_one({"_id": pending["_id"]}, {"$set": {"output_validated": pending["output_prediction"]}})
    process()
    reviewed = [doc | ({"output_validated": doc["output_prediction"]} if doc is pending else {}) for doc in chosen]
    summary = await _get(client, "/api/summary", **RANGE, segment="model_version:v1")
    assert summary["reviews"] == expected_metrics(reviewed, web_config.n_classes)["reviews"]
    day = pending["timestamp"].astimezone(web_config.model.zone).date()
    assert [d for d in days if v1.state.hours[d] is not loaded.hours[d]] == [day]   # only its day read again
