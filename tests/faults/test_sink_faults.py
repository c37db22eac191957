"""WhyLabs faults against the real `python -m consumer`: outages of every kind, a restart, SIGKILLs mid-upload.

The consumer runs as a process with WhyLabs enabled through its environment variables, pointed at the
local fake server. The test records every outbox entry the consumer creates (a change stream on the
outbox, opened before the consumer starts) and audits at the end: rollups exactly once, the outbox
drained, one local-store file per prediction hour holding exactly that hour's rows (counts, extremes
and mean of the score and latency columns), and every hour's rows uploaded to WhyLabs at least once,
with rows twice only where an answer was lost (or a kill landed between an upload and its
acknowledgement). A last test kills a drainer with SIGKILL right after it replaced an hour file, before
it acknowledged the entries, and checks the next drain merges nothing twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from aiohttp import web
from whylogs.core import DatasetProfileView
from whylogs.core.view.dataset_profile_view import WHYLOGS_MAGIC_HEADER_BYTES
from whylogs.migration.converters import read_v0_to_view

from clara.config import load_config
from consumer.sinks import build_sinks, deliver_pending
from tests.support.audit import assert_exactly_once, expected_cells, rollup_cells
from tests.support.documents import predictions
from tests.support.processes import REPO, start, write_config
from tests.support.running import wait_for
from tests.whylabs_fixture import WHYLABS_KEY, outbox_document
from tests.whylabs_server import FakeWhyLabs

UTC = dt.timezone.utc
START = dt.datetime(2026, 8, 1, tzinfo=UTC)
LONELY = dt.datetime(2025, 1, 1, tzinfo=UTC)  # hours that get one rejected-without-class review each
SENTINEL = "sink_fault_sentinel"
DUPLICATE_LOG = "WhyLabs may receive this profile twice"


class CountingWhyLabs(FakeWhyLabs):
    """The fake server, counting the faults it served, optionally answering each stored upload late."""

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__(api_key)
        self.served: Counter = Counter()
        self.answer_delay = 0.0

    def _take(self, phase: str):
        fault = super()._take(phase)
        if fault is not None:
            self.served["hang" if fault.hang_seconds else str(fault.status)] += 1
        return fault

    def _take_drop(self) -> bool:
        dropped = super()._take_drop()
        if dropped:
            self.served["dropped answer"] += 1
        return dropped

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        response = await super()._upload(request)
        if self.answer_delay and response.status == 200:
            await asyncio.sleep(self.answer_delay)  # stored already: a kill now lands before the acknowledgement
        return response


@pytest.fixture
def whylabs():
    server = CountingWhyLabs(api_key=WHYLABS_KEY).start()
    try:
        yield server
    finally:
        server.stop()


class Reviews(threading.Thread):
    """Writes 10 reviewed predictions every `pause` seconds (a few minutes of prediction time each), plus now
    and then one rejected-without-class review alone in its hour (a profile without performance metrics)."""

    def __init__(self, cols, pause: float = 0.2, seed: int = 0):
        super().__init__(daemon=True)
        self.cols, self.pause, self.seed = cols, pause, seed
        self.stopping = threading.Event()
        self.written = 0

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            docs = predictions(10, start=START + dt.timedelta(minutes=5 * i), step=dt.timedelta(seconds=30),
                               seed=self.seed + i, legacy_fraction=0.2)
            if i % 25 == 0:
                lonely = predictions(1, start=LONELY + dt.timedelta(hours=self.seed + i), seed=i)[0]
                lonely["output_validated"] = False
                docs.append(lonely)
            self.cols.source.insert_many(docs)
            self.written += len(docs)
            i += 1
            self.stopping.wait(self.pause)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


class OutboxWatch:
    """Every outbox entry inserted (committed) from now on, read back at the end up to a sentinel."""

    def __init__(self, cols):
        self.cols = cols
        self.db = cols.outbox.database
        self.stream = self.db.watch([{"$match": {"operationType": "insert",
                                                 "ns.coll": {"$in": [cols.outbox.name, SENTINEL]}}}])

    def entries(self, timeout: float = 30.0) -> dict[str, dict]:
        mark = self.db[SENTINEL].insert_one({"at": time.time()}).inserted_id
        found: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            change = self.stream.try_next()
            if change is None:
                continue
            doc = change["fullDocument"]
            if change["ns"]["coll"] == SENTINEL:
                if doc["_id"] == mark:
                    self.stream.close()
                    return found
                continue
            assert doc["_id"] not in found, f"outbox entry {doc['_id']} inserted twice"
            found[doc["_id"]] = doc
        raise AssertionError("the outbox change stream did not reach the sentinel")


def read_view(data: bytes) -> DatasetProfileView:
    if data.startswith(WHYLOGS_MAGIC_HEADER_BYTES):
        return DatasetProfileView.deserialize(data)
    handle, path = tempfile.mkstemp(suffix=".bin")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        return read_v0_to_view(path)
    finally:
        os.unlink(path)


COLUMNS = {"score": "confidence", "review_latency_seconds": "latency_seconds"}


def stats(values: list[float]) -> tuple:
    return (len(values), min(values), max(values), sum(values) / len(values))


def expected_by_hour(created: dict[str, dict]) -> dict[dt.datetime, dict[str, tuple]]:
    """(n, min, max, mean) of the score and latency columns per prediction hour, from the entries' rows."""
    values: dict = defaultdict(lambda: defaultdict(list))
    for doc in created.values():
        for column, field in COLUMNS.items():
            values[doc["hour"].replace(tzinfo=UTC)][column] += [v for v in doc["columns"][field] if v is not None]
    return {hour: {column: stats(vs) for column, vs in by_column.items()} for hour, by_column in values.items()}


def profile_stats(view: DatasetProfileView) -> dict[str, tuple]:
    result = {}
    for column in COLUMNS:
        summary = view.get_column(column).to_summary_dict()
        result[column] = (summary["counts/n"],) + tuple(float(summary[f"distribution/{k}"])
                                                        for k in ("min", "max", "mean"))
    return result


def same(actual: dict[str, tuple], expected: dict[str, tuple]) -> bool:
    return all(actual[c][:3] == expected[c][:3] and actual[c][3] == pytest.approx(expected[c][3], rel=1e-9)
               for c in COLUMNS)


def store_files(directory: Path) -> dict[dt.datetime, Path]:
    """Local-store files by the prediction hour their name gives; asserts each is where its hour says."""
    files: dict[dt.datetime, Path] = {}
    for path in directory.glob("*/*.bin"):
        hour = dt.datetime.strptime(path.stem, "%Y%m%dT%H").replace(tzinfo=UTC)
        assert path.parent.name == f"{hour:%Y-%m-%d}", f"{path} is not under its hour's date"
        files[hour] = path
    return files


def duplicate_hours(log_text: str) -> set[dt.datetime]:
    """Hours whose upload the consumer logged as possibly received twice."""
    return {dt.datetime.strptime(m, "%Y-%m-%d %H").replace(tzinfo=UTC)
            for m in re.findall(r"the profile of (\d{4}-\d\d-\d\d \d\d):00 UTC[^\n]*" + DUPLICATE_LOG, log_text)}


def audit(cols, config, watch: OutboxWatch, store: Path, server: CountingWhyLabs) -> dict:
    """The whole "nothing lost, nothing doubled" audit; returns the figures."""
    reviews = assert_exactly_once(cols, config.n_classes)
    assert cols.outbox.count_documents({}) == 0, list(cols.outbox.find({}, {"columns": 0}).limit(3))
    created = watch.entries()
    assert created, "no outbox entry was created"
    assert all("columns" in doc and "profile" not in doc for doc in created.values())
    assert sum(doc["rows"] for doc in created.values()) == reviews, "profiled rows differ from the reviews counted"
    expected = expected_by_hour(created)

    files = store_files(store)
    assert set(files) == set(expected), (f"local store: {len(set(expected) - set(files))} hours missing, "
                                         f"{len(set(files) - set(expected))} unknown")
    for hour, path in files.items():
        view = DatasetProfileView.read(str(path))
        assert view.dataset_timestamp == hour
        assert same(profile_stats(view), expected[hour]), f"{path} holds other rows than its hour's entries"

    # WhyLabs: every hour's rows arrived (counts add up, extremes match); the same upload retried after a
    # lost answer arrives as an identical profile and is counted once here, but reported as a duplicate.
    uploads: dict = defaultdict(Counter)
    for upload in list(server.uploads):
        view = read_view(upload.body)
        stamp = view.dataset_timestamp.astimezone(UTC)
        assert stamp in expected, f"WhyLabs received a profile of {stamp}, an hour no entry holds"
        uploads[stamp][tuple(tuple(v) for v in profile_stats(view).values())] += 1
    missing = [hour for hour in expected if hour not in uploads]
    assert not missing, f"{len(missing)} hours never reached WhyLabs: {missing[:3]}"
    over = set()
    for hour, prints in uploads.items():
        n = sum(p[0][0] for p in prints)
        assert n >= expected[hour]["score"][0], f"WhyLabs got fewer rows of {hour} than reviewed"
        assert min(p[0][1] for p in prints) == expected[hour]["score"][1]
        assert max(p[0][2] for p in prints) == expected[hour]["score"][2]
        if n > expected[hour]["score"][0]:
            over.add(hour)
    identical = sum(sum(prints.values()) - len(prints) for prints in uploads.values())
    return {"reviews": reviews, "entries": len(created), "hours": len(expected),
            "uploads": len(server.uploads), "identical_uploads": identical, "hours_with_rows_twice": over}


def consumer_env(server: FakeWhyLabs) -> dict[str, str]:
    return {"WHYLABS_API_KEY": WHYLABS_KEY, "WHYLABS_DEFAULT_ORG_ID": "org-test",
            "WHYLABS_DEFAULT_DATASET_ID": "model-7", "WHYLABS_API_ENDPOINT": server.endpoint}


def consumer_config(tmp_path: Path, config, attempt_timeout: float) -> Path:
    return write_config(tmp_path / "config.toml", {
        "mongodb": {"database": config.mongodb.database},
        "consumer": {"batch_size": 100, "batch_max_seconds": 0.5, "catchup_batch_size": 100,
                     "reconnect_max_seconds": 1.0, "outbox_drain_interval_seconds": 0.2},
        "profiles": {"local_store_dir": str(tmp_path / "profiles"), "local_store_interval_seconds": 0.3},
        "whylabs": {"attempts": 3, "max_seconds": 2.0, "attempt_timeout_seconds": attempt_timeout,
                    "backoff_initial_seconds": 0.02, "backoff_max_seconds": 0.1, "upload_interval_seconds": 0.3},
    })


def all_done(cols, config) -> bool:
    return (rollup_cells(cols)[2] == expected_cells(cols, config.n_classes)[2]
            and cols.outbox.count_documents({}) == 0)


def stop(process, timeout: float = 30.0) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=timeout)


def test_whylabs_outages_of_every_kind_and_a_restart_delay_but_never_lose_a_profile(
        tmp_path, config, collections, whylabs):
    cols, log = collections, tmp_path / "consumer.log"
    path = consumer_config(tmp_path, config, attempt_timeout=0.5)
    env = consumer_env(whylabs)
    watch = OutboxWatch(cols)
    writer = Reviews(cols, seed=1000)
    process = start("consumer", path, config.mongodb.uri, env=env, log_path=log)
    writer.start()
    outages: Counter = Counter()
    restarts = 0
    try:
        wait_for(lambda: len(whylabs.uploads) >= 3, timeout=60, what="the first uploads")

        def outage(kind: str, begin, end, seconds: float = 2.5) -> None:
            before = sum(whylabs.served.values())
            begin()
            time.sleep(seconds)
            end()
            outages[kind] += 1
            if kind != "refused":
                assert sum(whylabs.served.values()) > before, f"the {kind} outage met no request"
            wait_for(lambda: len(whylabs.uploads) > uploads_then[0], timeout=30, what=f"recovery after {kind}")

        uploads_then = [0]

        def mark() -> None:
            uploads_then[0] = len(whylabs.uploads)

        for kind, begin in [("500", lambda: whylabs.fail(500, times=10**6)),
                            ("429 Retry-After", lambda: whylabs.fail(429, times=10**6, retry_after="1")),
                            ("hang", lambda: whylabs.hang(2.0, times=10**6, phase="log")),
                            ("dropped answer", lambda: whylabs.drop_answer(times=10**6))]:
            outage(kind, lambda b=begin: (b(), mark()), whylabs.clear_faults)

        # Connections refused, and the consumer restarted in the middle of it.
        def refuse_and_restart() -> None:
            nonlocal process, restarts
            mark()
            whylabs.refuse_connections()
            time.sleep(1.5)
            assert stop(process) == 0, log.read_text()[-3000:]
            process = start("consumer", path, config.mongodb.uri, env=env, log_path=log)
            restarts += 1

        outage("refused", refuse_and_restart, whylabs.accept_connections)
        writer.stop()
        wait_for(lambda: all_done(cols, config), timeout=90, interval=0.2, what="every review and profile")
    finally:
        writer.stop()
        whylabs.clear_faults()
        code = stop(process)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert text.count("consumer starting") == 2 and text.count("consumer stopped") == 2
    assert "cannot connect" in text and "HTTP 500" in text and "HTTP 429" in text and "timed out" in text

    figures = audit(cols, config, watch, tmp_path / "profiles", whylabs)
    lost_answers = sum(1 for method, _, status in whylabs.requests if method == "PUT" and status == 0)
    assert whylabs.served["dropped answer"] == lost_answers > 0
    assert figures["identical_uploads"] <= lost_answers
    assert DUPLICATE_LOG in text
    # Rows twice only in hours whose upload was logged as a possible duplicate.
    assert figures["hours_with_rows_twice"] <= duplicate_hours(text)
    assert figures["reviews"] > 300
    print(f"\nsink outages: {dict(outages)}, restarts {restarts}, faults served {dict(whylabs.served)}, "
          f"lost answers {lost_answers}, {figures}")


def test_sigkill_between_uploads_and_acknowledgements_loses_nothing(tmp_path, config, collections, whylabs):
    cols = collections
    rng = random.Random(11)
    path = consumer_config(tmp_path, config, attempt_timeout=1.0)
    env = consumer_env(whylabs)
    whylabs.answer_delay = 0.25       # every upload is stored, then answered a quarter of a second later
    whylabs.hang(3.0, times=4, phase="upload")  # and a few are held past the timeout (stored, answer lost)
    watch = OutboxWatch(cols)
    writer = Reviews(cols, seed=5000)
    writer.start()
    kills = 0
    try:
        for n in range(12):
            log = tmp_path / f"consumer-{n}.log"
            process = start("consumer", path, config.mongodb.uri, env=env, log_path=log)
            if n % 3:  # most kills once it runs (batches, uploads); every third one at any point of start-up
                wait_for(lambda: log.exists() and "consumer starting" in log.read_text(), timeout=60,
                         what="the consumer to start")
            time.sleep(rng.uniform(0.3, 2.0))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            kills += 1
    finally:
        writer.stop()
    log = tmp_path / "consumer-final.log"
    process = start("consumer", path, config.mongodb.uri, env=env, log_path=log)
    try:
        wait_for(lambda: all_done(cols, config), timeout=120, interval=0.2, what="every review and profile")
    finally:
        code = stop(process)
    assert code == 0, log.read_text()[-3000:]

    figures = audit(cols, config, watch, tmp_path / "profiles", whylabs)
    lost_answers = sum(1 for method, _, status in whylabs.requests if method == "PUT" and status == 0)
    held = whylabs.served["hang"]
    # One delivery thread: a kill interrupts at most one upload; a held upload may be stored and retried.
    assert figures["identical_uploads"] + len(figures["hours_with_rows_twice"]) <= kills + held + lost_answers
    assert kills == 12
    leftovers = list((tmp_path / "profiles").glob("*/.*.tmp"))
    print(f"\nSIGKILLs {kills}, held uploads {held}, lost answers {lost_answers}, "
          f"temporary files left by kills {len(leftovers)}, {figures}")


KILLED_DRAIN = """
import os, signal, sys
from clara.config import load_config
from clara.db import Collections, connect
from consumer.sinks import build_sinks, deliver_pending

config = load_config(sys.argv[1])
[store] = build_sinks(config)
write = store.deliver


def deliver_then_die(hour, view, entry_ids):
    write(hour, view, entry_ids)
    os.kill(os.getpid(), signal.SIGKILL)   # the file is in place; its entries are not acknowledged


store.deliver = deliver_then_die
deliver_pending(Collections.of(connect(config), config), config, [store])
"""


def test_sigkill_between_the_hour_file_and_its_acknowledgement_merges_nothing_twice(
        tmp_path, config, collections):
    path = write_config(tmp_path / "config.toml", {"mongodb": {"database": config.mongodb.database},
                                                   "profiles": {"local_store_dir": str(tmp_path / "profiles"),
                                                                "local_store_interval_seconds": 0.0}})
    hour = dt.datetime(2026, 8, 1, 9, tzinfo=UTC)
    collections.outbox.insert_many([outbox_document(f"b{i}", hour, rows=5, pending=("local",)) for i in range(6)])
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("WHYLABS_", "CLARA_"))}
    child = subprocess.run([sys.executable, "-c", KILLED_DRAIN, str(path)], cwd=REPO, timeout=120, capture_output=True,
                           env=environ | {"MONGODB_URI": config.mongodb.uri, "PYTHONPATH": str(REPO)})
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-3000:]
    [file] = store_files(tmp_path / "profiles").values()
    assert DatasetProfileView.read(str(file)).get_column("score").get_metric("counts").n.value == 30
    assert collections.outbox.count_documents({"pending": "local"}) == 6   # none acknowledged

    own = load_config(path, {"MONGODB_URI": config.mongodb.uri})
    result = deliver_pending(collections, own, build_sinks(own))   # the restarted drainer
    assert result.delivered == {"local": 6} and result.profiles == {}
    assert DatasetProfileView.read(str(file)).get_column("score").get_metric("counts").n.value == 30
    assert collections.outbox.count_documents({}) == 0
