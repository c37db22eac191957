"""whylogs profiles per segment: the local store's hour file carries them, WhyLabs gets segmented profiles."""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from collections import Counter
from pathlib import Path

from google.protobuf.internal.decoder import _DecodeVarint32
from whylogs.core.proto.v0 import DatasetProfileMessageV0
from whylogs.migration.converters import read_v0_to_view

from clara.db import Collections, ensure_indexes
from clara.segments import canonical
from clara.settings import SegmentSettings
from consumer.catchup import catch_up
from consumer.outbox_queue import sink_names
from consumer.sinks import LocalProfileStore, build_sinks, deliver_pending
from consumer.sinks.local_store import SEGMENTS_KEY, read_hour, read_segments
from tests.consumer.test_segments import with_segments
from tests.support.documents import predictions

UTC = dt.timezone.utc
START = dt.datetime(2026, 3, 27, 20, 0, tzinfo=UTC)


def v0_message(data: bytes) -> DatasetProfileMessageV0:
    size, start = _DecodeVarint32(data, 0)
    return DatasetProfileMessageV0.FromString(data[start:start + size])


def v0_view(data: bytes):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "upload.bin"
        path.write_bytes(data)
        return read_v0_to_view(str(path))


def reviewed_in_hour(docs, hour):
    return [doc for doc in docs if doc.get("output_validated") is not None
            and hour <= doc["timestamp"].replace(tzinfo=UTC) < hour + dt.timedelta(hours=1)]


def test_each_segment_has_its_profile_in_the_local_store_and_at_whylabs(whylabs_config, mongo_client, fake_whylabs):
    config = dataclasses.replace(whylabs_config, segments=SegmentSettings(fields=("model_version", "site")))
    cols = Collections.of(mongo_client, config)
    ensure_indexes(cols)
    docs = with_segments(predictions(60, start=START, step=dt.timedelta(minutes=2), reviewed_fraction=0.8))
    cols.source.insert_many(docs)
    catch_up(mongo_client, cols, config, sinks=sink_names(config))
    deliver_pending(cols, config, build_sinks(config))
    hours = sorted({doc["timestamp"].replace(tzinfo=UTC, minute=0, second=0) for doc in docs})

    store = LocalProfileStore(config.profiles.local_store_dir)
    for hour in hours:
        mine = reviewed_in_hour(docs, hour)
        path = store.path_for(hour)
        assert read_hour(path).get_column("prediction").get_metric("counts").n.value == len(mine)
        segments = read_segments(path)
        expected = {(field, canonical(doc.get(field))) for doc in mine for field in ("model_version", "site")}
        assert segments.keys() == expected
        for (field, value), view in segments.items():
            rows = [doc for doc in mine if canonical(doc.get(field)) == value]
            assert view.get_column("prediction").get_metric("counts").n.value == len(rows), (hour, field, value)
            labelled = [doc for doc in rows if not isinstance(doc["output_validated"], bool) or doc["output_validated"]]
            matrix = view.model_performance_metrics.confusion_matrix if labelled else None
            assert (sum(m.n for m in matrix.confusion_matrix.values()) if matrix else 0) == len(labelled)
            assert view.dataset_timestamp == hour

        uploads = fake_whylabs.uploads_for(hour)
        tags = Counter(tuple(sorted(v0_message(u.body).properties.tags.items())) for u in uploads)
        assert tags == Counter([()] + [((f"whylogs.tag.{field}", value),) for field, value in expected])
        for upload in uploads:
            [(key, value)] = list(v0_message(upload.body).properties.tags.items()) or [(None, None)]
            rows = mine if key is None else [d for d in mine if canonical(d.get(key.split(".")[-1])) == value]
            assert v0_view(upload.body).get_column("target").get_metric("counts").n.value == len(rows)


def test_later_rows_merge_into_each_segment_of_the_hour_file(whylabs_config, mongo_client):
    config = dataclasses.replace(whylabs_config, segments=SegmentSettings(fields=("site",)),
                                 whylabs=dataclasses.replace(whylabs_config.whylabs, api_key=""))
    cols = Collections.of(mongo_client, config)
    ensure_indexes(cols)
    docs = with_segments(predictions(40, start=START, step=dt.timedelta(seconds=30), reviewed_fraction=1.0))
    cols.source.insert_many(docs[:20])
    catch_up(mongo_client, cols, config, sinks=sink_names(config))
    deliver_pending(cols, config, build_sinks(config))
    cols.source.insert_many(docs[20:])
    catch_up(mongo_client, cols, config, sinks=sink_names(config))
    deliver_pending(cols, config, build_sinks(config))

    path = LocalProfileStore(config.profiles.local_store_dir).path_for(START)
    by_site = Counter(canonical(doc["site"]) for doc in docs)
    assert {value: view.get_column("prediction").get_metric("counts").n.value
            for (_, value), view in read_segments(path).items()} == by_site


def test_without_segments_the_outbox_rows_and_profile_files_are_as_before(whylabs_config, mongo_client):
    config = dataclasses.replace(whylabs_config, whylabs=dataclasses.replace(whylabs_config.whylabs, api_key=""))
    cols = Collections.of(mongo_client, config)
    ensure_indexes(cols)
    cols.source.insert_many(with_segments(predictions(20, start=START, reviewed_fraction=1.0)))
    catch_up(mongo_client, cols, config, sinks=sink_names(config))
    assert all(set(entry["columns"]) == {"predicted", "truth", "confidence", "latency_seconds"}
               for entry in cols.outbox.find())
    deliver_pending(cols, config, build_sinks(config))
    for path in Path(config.profiles.local_store_dir).rglob("*.bin"):
        assert SEGMENTS_KEY not in read_hour(path).metadata and read_segments(path) == {}
