"""pytest plugin: the local WhyLabs server, a config pointing at it, and real whylogs outbox entries.

Fixtures: `fake_whylabs` (a started `FakeWhyLabs`), `whylabs_config` (the test Config with WhyLabs on,
pointed at it, with tiny retry settings and no upload interval), `outbox_entry` (a factory of outbox
documents holding profile rows, or with `legacy=True` a real v0 classification profile, as entries were
written before rows). Register with `pytest_plugins = ["tests.whylabs_fixture"]`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")  # before whylogs loads: no usage telemetry from tests

import pandas as pd  # noqa: E402
import whylogs as why  # noqa: E402
from bson import Binary  # noqa: E402

from clara.config import Config  # noqa: E402
from consumer.outbox_queue import HourRows  # noqa: E402
from consumer.outbox_queue import outbox_entry as new_entry  # noqa: E402
from tests.whylabs_server import FakeWhyLabs, running_server  # noqa: E402

WHYLABS_KEY = "0123456789.test-secret:org-test"  # WhyLabs key shape: a 10-character id, '.', secret, ':org'
WHYLABS_RETRIES = {"org_id": "org-test", "dataset_id": "model-7", "attempts": 3, "max_seconds": 5.0,
                   "attempt_timeout_seconds": 0.5, "backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.05,
                   "upload_interval_seconds": 0.0}


@pytest.fixture
def fake_whylabs() -> Iterator[FakeWhyLabs]:
    yield from running_server(api_key=WHYLABS_KEY)


@pytest.fixture
def whylabs_config(make_config, fake_whylabs) -> Config:
    """WhyLabs enabled against `fake_whylabs`; the key comes in as WHYLABS_API_KEY would; no sink waits."""
    config = make_config(whylabs=WHYLABS_RETRIES | {"endpoint": fake_whylabs.endpoint},
                         profiles={"local_store_interval_seconds": 0.0})
    return dataclasses.replace(config, whylabs=dataclasses.replace(config.whylabs, api_key=WHYLABS_KEY))


def entry_rows(rows: int = 4) -> HourRows:
    """`rows` reviews of the default classes: one in five rejected without a class, one in seven without a score."""
    return HourRows(predicted=[(i * 2) % 3 * 2 + 1 for i in range(rows)],
                    truth=[None if i % 5 == 4 else i % 3 * 2 + 1 for i in range(rows)],
                    confidence=[None if i % 7 == 6 else 0.5 + (i % 5) / 10 for i in range(rows)],
                    latency_seconds=[60.0 * (i + 1) for i in range(rows)])


def profile_bytes(hour: dt.datetime, rows: int = 4) -> bytes:
    """A v0 classification profile of `rows` reviews with dataset timestamp `hour`, as the consumer wrote it
    before outbox entries held rows."""
    classes = ["blue", "green", "grey"]
    frame = pd.DataFrame({"target": [classes[i % 3] for i in range(rows)],
                          "prediction": [classes[(i * 2) % 3] for i in range(rows)],
                          "score": [0.5 + (i % 5) / 10 for i in range(rows)]})
    results = why.log_classification_metrics(frame, target_column="target", prediction_column="prediction",
                                             score_column="score", log_full_data=True)
    results.set_dataset_timestamp(hour)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "profile.bin"
        with open(path, "wb") as handle:
            results.view()._write(file=handle, use_v0=True)
        return path.read_bytes()


def outbox_document(batch_id: str, hour: dt.datetime, rows: int = 4, pending: tuple[str, ...] = ("local", "whylabs"),
                    created_at: dt.datetime | None = None, legacy: bool = False) -> dict:
    """An outbox entry in the schema the batch transaction writes (`legacy`: the schema before rows)."""
    created_at = created_at or dt.datetime.now(dt.timezone.utc)
    if legacy:
        doc = {"_id": f"{batch_id}:{hour:%Y%m%dT%H}", "batch_id": batch_id, "hour": hour,
               "profile": Binary(profile_bytes(hour, rows)), "rows": rows, "created_at": created_at,
               "pending": list(pending), "delivered": {}, "attempts": {}, "next_attempt_at": {}, "dead": {}}
    else:
        doc = new_entry(batch_id, hour, entry_rows(rows), pending, created_at)
    return doc


@pytest.fixture
def outbox_entry():
    """Factory: `outbox_entry(batch_id, hour, rows=4, pending=(...), created_at=None, legacy=False) -> dict`."""
    return outbox_document
