"""/metrics per segment (web/segment_metrics.py): the window's reviews, correct reviews, accuracy, predictions
and pending reviews of every segment value equal the documents' own counts, a field never has more than
max_values + 2 series, values beyond the cap fold into `other`, and nothing is added without segments."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter

import pytest

from clara.predictions import PredictionTotals
from clara.records import Record, parse_document
from clara.rollups import Totals
from clara.segments import OTHER, SEGMENTS_STATE_ID, UNKNOWN, WARNINGS, canonical
from tests.support.inserts import count_inserts
from tests.web.conftest import UTC, make_documents
from tests.web.test_metrics import scrape
from web.app import create_app
from web.segment_metrics import capped, families

FIELDS = ("model_version", "site")
MAX_VALUES = 2
VERSIONS = ["v1", "v2", "v3", None]        # three named values for a cap of two; None: the field is missing
SITES = ["north", "south", {"camera": 3}, ""]  # a document cannot name a segment (`other`); "" is `unknown`
FAMILIES = ("clara_segment_reviews", "clara_segment_correct_reviews", "clara_segment_accuracy",
            "clara_segment_predictions", "clara_segment_pending_reviews")


@pytest.fixture
def web_config(make_config):
    WARNINGS.seen.clear()
    return make_config(web={"sse_heartbeat_seconds": 0.5}, consumer={"batch_max_seconds": 0.05},
                       segments={"fields": list(FIELDS), "max_values": MAX_VALUES})


def segment_series(values: dict, name: str) -> dict[tuple[str, str], float]:
    return {(dict(labels)["field"], dict(labels)["value"]): value for (metric, labels), value in values.items()
            if metric == name}


async def test_segment_gauges_equal_the_documents_counts_within_the_cap(client, mongo_client, web_collections,
                                                                       web_config, process):
    rng = random.Random(18)
    now = dt.datetime.now(UTC)
    docs = make_documents(rng, now - dt.timedelta(hours=30), 24, 4, web_config.n_classes)
    old = make_documents(rng, now - dt.timedelta(days=20), 2, 4, web_config.n_classes, first_id=10_000)
    for doc in docs + old:
        version = rng.choice(VERSIONS)
        if version is not None:
            doc["model_version"] = version
        doc["site"] = rng.choice(SITES)
    web_collections.source.insert_many(docs + old)
    count_inserts(mongo_client, web_collections, web_config, docs + old)
    process()
    admitted = web_collections.state.find_one({"_id": SEGMENTS_STATE_ID})["values"]
    web_collections.segment_pending.insert_one({"at": now})   # a batch put off while behind, not yet folded
    values = await scrape(client)
    assert values[("clara_segments_pending_batches", ())] == 1

    for field in FIELDS:
        def segment(doc) -> str:
            value = canonical(doc.get(field))
            return value if value == UNKNOWN or value in admitted[field] else OTHER

        reviews, correct, predictions = Counter(), Counter(), Counter()
        for doc in docs:                                # the window: the last web.default_range_days days
            predictions[segment(doc)] += 1
            record = parse_document(doc, web_config.n_classes)
            if isinstance(record, Record) and record.reviewed:
                reviews[segment(doc)] += 1
                correct[segment(doc)] += record.truth == record.predicted
        assert {OTHER, UNKNOWN} <= set(predictions) and len(admitted[field]) == MAX_VALUES
        for name, expected in (("clara_segment_reviews", reviews), ("clara_segment_correct_reviews", correct),
                               ("clara_segment_predictions", predictions),
                               ("clara_segment_pending_reviews", predictions - reviews)):
            found = {value: n for (f, value), n in segment_series(values, name).items() if f == field}
            assert found == {value: expected[value] for value in predictions}, (name, field)
        accuracy = {value: n for (f, value), n in segment_series(values, "clara_segment_accuracy").items()
                    if f == field}
        assert accuracy == {value: correct[value] / reviews[value] for value in predictions}
        assert sum(reviews.values()) == values[("clara_reviews", ())]
        assert sum((predictions - reviews).values()) == values[("clara_pending_reviews", ())]
    for name in FAMILIES:
        assert len(segment_series(values, name)) <= len(FIELDS) * (MAX_VALUES + 2)


async def test_without_segments_metrics_has_no_segment_series(aiohttp_client, make_config, web_collections):
    client = await aiohttp_client(create_app(make_config()))
    values = await scrape(client)
    assert values and not [name for name, _ in values if name.startswith("clara_segment_")]


def test_values_admitted_under_a_higher_cap_fold_into_other_busiest_kept():
    reviews = {"a": Totals(reviews=2, cells=Counter({(0, 0): 2})), "c": Totals(reviews=1, cells=Counter({(1, 0): 1})),
               OTHER: Totals(reviews=1, cells=Counter({(1, 1): 1})), UNKNOWN: Totals(reviews=4)}
    predictions = {value: PredictionTotals(predictions=n) for value, n in
                   (("a", 5), ("b", 9), ("c", 2), ("d", 1), (OTHER, 3), (UNKNOWN, 6))}
    figures = {one.value: one for one in capped("site", reviews, predictions, 2)}
    assert sorted(figures) == sorted(["a", "b", OTHER, UNKNOWN])
    assert figures[OTHER].predictions.predictions == 2 + 1 + 3 and figures[OTHER].reviews.reviews == 1 + 1
    assert figures[OTHER].correct == 1 and figures["a"].correct == 2 and figures["b"].reviews.reviews == 0
    assert sum(one.predictions.predictions for one in figures.values()) == 26
    accuracy = {sample.labels["value"]: sample.value for family in families(list(figures.values()), 7)
                if family.name == "clara_segment_accuracy" for sample in family.samples}
    assert math.isnan(accuracy["b"]) and accuracy["a"] == 1.0 and accuracy[UNKNOWN] == 0.0
