"""The estimate endpoints against oracles on the raw documents: scikit-learn's calibration_curve (confidences on
bin edges), scipy's Wilson interval, the post-stratified estimate computed directly; a corrected review moves
the calibration bins exactly; bad parameters get the error shape."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.calibration import calibration_curve

from clara.rollups import CONFIDENCE_BINS
from consumer.batch import commit_batch
from tests.support.inserts import count_inserts
from tests.web.conftest import UTC, local_day, make_documents

START = dt.datetime(2024, 3, 29, 22, tzinfo=UTC)     # 23:00 local (Europe/Madrid); 96 hours across the DST change
DAYS = {"from": "2024-03-29", "to": "2024-04-03"}
EDGES = np.linspace(0, 1, CONFIDENCE_BINS + 1)


@pytest.fixture
def documents(mongo_client, web_collections, web_config, process) -> list[dict]:
    """Four local days of predictions, a third of the confidences exactly on a bin edge; reviews and all traffic counted."""
    rng = random.Random(13)
    docs = make_documents(rng, START, 96, 25, web_config.n_classes)
    for doc in docs:
        if rng.random() < 0.35:
            doc["output_confidence"] = float(EDGES[rng.randrange(CONFIDENCE_BINS + 1)])
        if rng.random() < 0.02:
            del doc["output_confidence"]
    web_collections.source.insert_many(docs)
    process()
    count_inserts(mongo_client, web_collections, web_config, docs)
    return docs


def reviewed(docs, day=None, zone=None) -> list[dict]:
    return [d for d in docs if d.get("output_validated") is not None and (day is None or local_day(d, zone) == day)]


def is_correct(doc) -> bool:
    truth = doc["output_validated"]
    return truth is True or (not isinstance(truth, bool) and truth == doc["output_prediction"])


def oracle_bin(confidence: float) -> int:
    """calibration_curve's own assignment (scikit-learn 1.x, strategy="uniform")."""
    return int(np.searchsorted(EDGES[1:-1], confidence))


async def get(client, path, **params):
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    return await response.json()


def assert_curve(reliability: dict, docs: list[dict]):
    chosen = [d for d in docs if "output_confidence" in d]
    if not chosen:
        assert (reliability["n"], reliability["bins"], reliability["ece"]) == (0, [], None)
        return
    correct = np.array([is_correct(d) for d in chosen], dtype=int)
    confidence = np.array([d["output_confidence"] for d in chosen])
    prob_true, prob_pred = calibration_curve(correct, confidence, n_bins=CONFIDENCE_BINS, strategy="uniform")
    assert [b["accuracy"] for b in reliability["bins"]] == prob_true.tolist()
    assert [b["confidence"] for b in reliability["bins"]] == pytest.approx(prob_pred.tolist(), rel=1e-12)
    counts = np.bincount([oracle_bin(c) for c in confidence], minlength=CONFIDENCE_BINS)
    assert [b["count"] for b in reliability["bins"]] == [int(n) for n in counts if n]
    weights = counts[counts > 0] / counts.sum()
    assert reliability["ece"] == pytest.approx(float(weights @ np.abs(prob_true - prob_pred)), rel=1e-12)
    assert reliability["mce"] == pytest.approx(float(np.abs(prob_true - prob_pred).max()), rel=1e-12)


async def test_calibration_equals_scikit_learn_on_the_raw_documents(client, documents, web_config):
    on_edges = [d for d in reviewed(documents) if d.get("output_confidence") in EDGES[1:-1]]
    assert len(on_edges) > 100
    body = await get(client, "/api/calibration", **DAYS)
    assert body["total"]["complete"] and body["total"]["method"] == "reliability_uniform_20"
    assert body["total"]["assumption"] and body["total"]["direction"] in ("over-confident", "under-confident")
    assert_curve(body["total"], reviewed(documents))
    for predicted in range(web_config.n_classes):
        assert_curve(body["by_class"][predicted],
                     [d for d in reviewed(documents) if d["output_prediction"] == predicted])
    zone = web_config.model.zone
    for row in body["days"]:
        assert_curve(row, reviewed(documents, dt.date.fromisoformat(row["day"]), zone))
        assert row["uncertain"] is (row["n"] < 30)


async def test_intervals_equal_scipys_wilson_on_raw_counts(client, documents, web_config):
    body = await get(client, "/api/intervals", min_reviews=600, **DAYS)
    zone, n_classes = web_config.model.zone, web_config.n_classes

    def wilson(k, n):
        ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
        return {"low": ci.low, "high": ci.high, "level": 0.95, "method": "wilson"}

    for row in [body["total"], *body["days"]]:
        docs = reviewed(documents) if "day" not in row else reviewed(documents, dt.date.fromisoformat(row["day"]), zone)
        k = sum(is_correct(d) for d in docs)
        assert row["reviews"] == len(docs) and row["uncertain"] is (len(docs) < 600)
        if not docs:
            assert row["accuracy"]["value"] is None and row["accuracy"]["reason"] == "no reviews"
            continue
        assert row["accuracy"]["value"] == k / len(docs) and row["accuracy"]["interval"] == wilson(k, len(docs))
        assert row["accuracy"]["method"] == "wilson" and row["accuracy"]["assumption"]
    docs = reviewed(documents)
    for c in range(n_classes):
        predicted = [d for d in docs if d["output_prediction"] == c]
        true = [d for d in docs if d["output_validated"] is not False and
                (d["output_prediction"] if d["output_validated"] is True else d["output_validated"]) == c]
        right = sum(is_correct(d) for d in predicted)
        assert body["total"]["precision"][c]["interval"] == wilson(right, len(predicted))
        assert body["total"]["recall"][c]["interval"] == wilson(right, len(true))
    f1 = body["total"]["f1"]["macro"]
    assert f1["method"] == "bootstrap_f1_macro" and f1["interval"]["low"] <= f1["value"] <= f1["interval"]["high"]
    assert (await get(client, "/api/intervals", min_reviews=600, **DAYS)) == body   # seeded: the same again


async def test_post_stratified_estimate_equals_a_direct_computation(client, documents, web_config):
    body = await get(client, "/api/unreviewed", min_bin_reviews=1, reference="range", **DAYS)
    confident = [d for d in documents if "output_confidence" in d]
    done = [d for d in confident if d.get("output_validated") is not None]
    pending = [d for d in confident if d.get("output_validated") is None]
    r = np.bincount([oracle_bin(d["output_confidence"]) for d in done], minlength=CONFIDENCE_BINS)
    c = np.bincount([oracle_bin(d["output_confidence"]) for d in done if is_correct(d)], minlength=CONFIDENCE_BINS)
    u = np.bincount([oracle_bin(d["output_confidence"]) for d in pending], minlength=CONFIDENCE_BINS)
    assert (r > 0).all()          # no bin merged: the estimate is the plain reweighting
    expected = float((u / u.sum()) @ (c / r))
    total = body["total"]
    assert (total["predictions"], total["reviewed"], total["unreviewed"]) == (len(confident), len(done), len(pending))
    assert total["estimate"]["method"] == "post_stratified" and total["estimate"]["notes"] == []
    assert total["estimate"]["value"] == pytest.approx(expected, rel=1e-12)
    assert total["realized"]["value"] == c.sum() / r.sum()
    assert total["combined"]["value"] == pytest.approx((c.sum() + u.sum() * expected) / len(confident), rel=1e-12)
    assert set(total["estimates"]) == {"post_stratified", "average_confidence", "doc", "atc", "atc_weighted"}
    ac = total["estimates"]["average_confidence"]
    assert ac["value"] == pytest.approx(np.mean([d["output_confidence"] for d in pending]), rel=1e-12)
    assert all(e["assumption"] for e in total["estimates"].values())
    assert [row["day"] for row in body["days"]] == [f"2024-03-{d}" for d in (29, 30, 31)] + ["2024-04-01",
                                                                                          "2024-04-02", "2024-04-03"]


async def test_a_corrected_review_moves_the_calibration_bins_exactly(client, documents, mongo_client, web_collections,
                                                                     web_config):
    doc = next(d for d in reviewed(documents) if is_correct(d) and d.get("output_confidence") in EDGES[1:-2]
               and d["output_validated"] is not True)
    old = oracle_bin(doc["output_confidence"])     # on an inner edge: the lower bin
    before = {b["index"]: b for b in (await get(client, "/api/calibration", **DAYS))["total"]["bins"]}
    web_collections.source.update_one({"_id": doc["_id"]}, {"$set": {
        "output_validated": (doc["output_prediction"] + 1) % web_config.n_classes, "output_confidence": 0.999}})
    assert commit_batch(mongo_client, web_collections, web_config, [doc["_id"]], sinks=()).counts == {"corrected": 1}
    after = {b["index"]: b for b in (await get(client, "/api/calibration", **DAYS))["total"]["bins"]}
    assert (after[old]["count"], after[old]["correct"]) == (before[old]["count"] - 1, before[old]["correct"] - 1)
    assert (after[19]["count"], after[19]["correct"]) == (before[19]["count"] + 1, before[19]["correct"])
    assert {i: (b["count"], b["correct"]) for i, b in after.items() if i not in (old, 19)} == \
        {i: (b["count"], b["correct"]) for i, b in before.items() if i not in (old, 19)}
    assert after[19]["confidence"] * after[19]["count"] == pytest.approx(
        before[19]["confidence"] * before[19]["count"] + 0.999, rel=1e-12)
    for rollup in web_collections.rollups.find():
        assert all(n >= 0 for name in ("calibration_cells", "calibration_rejected", "calibration_micros")
                   for n in (rollup.get(name) or {}).values())


async def test_label_shift_and_review_hints_answer_with_methods_and_reasons(client, documents, web_config):
    shift = await get(client, "/api/label-shift", reference="range", **DAYS)
    estimate = shift["estimate"]
    assert estimate["method"] == "bbse" and estimate["assumption"]
    assert estimate["defined"] or estimate["reason"]
    assert shift["reference"]["range"]["from"] == DAYS["from"]
    refused = await get(client, "/api/label-shift", **DAYS)   # the 7 days before: nothing reviewed
    assert refused["estimate"]["defined"] is False and "too few reference reviews" in refused["estimate"]["reason"]
    assert refused["reference"]["range"] == {**refused["reference"]["range"], "from": "2024-03-22", "to": "2024-03-28"}
    hints = await get(client, "/api/review-hints", **DAYS)
    assert len(hints["bins"]) == CONFIDENCE_BINS and len(hints["by_class"]) == web_config.n_classes
    last = max(local_day(d, web_config.model.zone) for d in reviewed(documents) if "output_confidence" in d)
    assert hints["bins"][0]["score"] >= hints["bins"][-1]["score"] and hints["day"] == last.isoformat()
    assert hints["reviews_needed"]["wilson"]["per_day"] > 0


@pytest.mark.parametrize("path, params, parameter", [
    ("/api/intervals", {"min_reviews": "0"}, "min_reviews"),
    ("/api/intervals", {"min_reviews": "many"}, "min_reviews"),
    ("/api/calibration", {"from": "2024-04-02", "to": "2024-03-30"}, "to"),
    ("/api/unreviewed", {"method": "magic"}, "method"),
    ("/api/unreviewed", {"reference_days": "91"}, "reference_days"),
    ("/api/unreviewed", {"reference": "range", "reference_days": "x"}, "reference_days"),   # unused, still checked
    ("/api/label-shift", {"weighting": "heavy"}, "weighting"),
    ("/api/label-shift", {"reference": "tomorrow"}, "reference"),
    ("/api/review-hints", {"min_reviews": "3"}, "min_reviews"),
])
async def test_bad_parameters_get_a_400_naming_them(client, path, params, parameter):
    response = await client.get(path, params=params)
    assert response.status == 400
    assert (await response.json())["error"]["parameter"] == parameter


async def test_hours_counted_before_the_calibration_counters_are_marked_incomplete(client, documents, web_collections,
                                                                                   web_config):
    hour = web_collections.rollups.find_one({"_id": {"$gte": START + dt.timedelta(hours=30)}})
    web_collections.rollups.update_one({"_id": hour["_id"]}, {
        "$unset": {"calibration_cells": "", "calibration_rejected": "", "calibration_micros": ""},
        "$set": {"updated_at": dt.datetime.now(UTC)}})
    body = await get(client, "/api/calibration", **DAYS)
    day = hour["_id"].astimezone(web_config.model.zone).date().isoformat()
    assert body["total"]["complete"] is False
    assert [row["day"] for row in body["days"] if not row["complete"]] == [day]
    unreviewed = await get(client, "/api/unreviewed", **DAYS)
    assert [row["day"] for row in unreviewed["days"] if not row["complete"]] == [day]


async def test_the_estimates_section_sets_the_endpoints_defaults(aiohttp_client, documents, web_config,
                                                                 web_collections):
    import dataclasses

    from web.app import create_app

    estimates = dataclasses.replace(web_config.estimates, min_day_reviews=600, reference_days=3,
                                    calibrated_within=0.5, f1_draws=50, bbse_draws=40, seed=7)
    client = await aiohttp_client(create_app(dataclasses.replace(web_config, estimates=estimates)))
    intervals = await get(client, "/api/intervals", **DAYS)
    assert intervals["min_reviews"] == 600
    assert [row["uncertain"] for row in intervals["days"]] == [row["reviews"] < 600 for row in intervals["days"]]
    assert intervals == await get(client, "/api/intervals", min_reviews=600, **DAYS)   # seeded: the same again
    calibration = await get(client, "/api/calibration", **DAYS)
    assert calibration["min_reviews"] == 600 and calibration["calibrated_within"] == 0.5
    assert calibration["total"]["direction"] == "calibrated"   # |gap| well under 0.5
    shift = await get(client, "/api/label-shift", **DAYS)
    assert shift["draws"] == 40
    assert shift["reference"]["range"] == {**shift["reference"]["range"], "from": "2024-03-26", "to": "2024-03-28"}
