"""A real Prometheus (Debian's package) scrapes the dashboard's /metrics while a real consumer counts
reviews: rate() of the reviews counter matches what the test wrote, the per-segment gauges equal the
documents' counts within the cardinality cap, and every PromQL query of the Grafana dashboard in grafana/
returns data."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.documents import prediction
from tests.support.processes import start, write_config
from tests.support.running import wait_for

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "grafana" / "dashboards" / "clara-monitor.json"
UTC = dt.timezone.utc
RATE = 20            # reviews written per second
WRITE_SECONDS = 16
RATE_INTERVAL = "10s"  # stands for Grafana's $__rate_interval: several 1 s scrapes
SITES = ["north", "south", "east", None]   # for a cap of 2: one named value counts under `other`; None: `unknown`
MAX_VALUES = 2


def with_site(doc: dict, i: int) -> dict:
    site = SITES[i % len(SITES)]
    return doc | ({"site": site} if site is not None else {})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str, timeout: float = 5) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def prometheus(tmp_path) -> Iterator[tuple[str, int]]:
    """Prometheus on a free loopback port, scraping a web port chosen now (the web starts after it)."""
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is missing: scripts/setup installs it"
    web_port, port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: clara
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:{web_port}"]
""")
    with open(tmp_path / "prometheus.log", "wb") as log:
        process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                    f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url, process), timeout=30, what="prometheus ready")
        yield url, web_port
    finally:
        stop(process)


def _ready(url: str, process: subprocess.Popen) -> bool:
    assert process.poll() is None, "prometheus exited"
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def promql(url: str, expr: str, at: float | None = None) -> list[dict]:
    params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
    body = get_json(f"{url}/api/v1/query?{urllib.parse.urlencode(params)}")
    assert body["status"] == "success", body
    return body["data"]["result"]


def scalar(url: str, expr: str, at: float | None = None) -> float | None:
    result = promql(url, expr, at)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_rates_the_reviews_and_answers_every_grafana_query(prometheus, tmp_path, mongo_uri, make_config,
                                                                      mongo_client):
    url, web_port = prometheus
    config = make_config()
    sections = {"mongodb": {"database": config.mongodb.database},
                "profiles": {"local_store_dir": str(tmp_path / "profiles"), "local_store_interval_seconds": 1.0},
                "consumer": {"batch_max_seconds": 0.1}, "web": {"port": web_port},
                "segments": {"fields": ["site"], "max_values": MAX_VALUES}}
    config_path = write_config(tmp_path / "config.toml", sections)
    source = mongo_client[config.mongodb.database][config.mongodb.source_collection]
    web = start("web", config_path, mongo_uri, log_path=tmp_path / "web.log")
    consumer = start("consumer", config_path, mongo_uri, log_path=tmp_path / "consumer.log")
    try:
        wait_for(lambda: scalar(url, 'up{job="clara"}') == 1, timeout=40, what="the dashboard scraped")
        wait_for(lambda: scalar(url, "clara_reviews_counted_total") == 0, timeout=30, what="the counter at zero")
        time.sleep(2)  # a few scrapes at zero before the first review
        written, started = 0, time.time()
        now = dt.datetime.now(UTC)
        while time.time() - started < WRITE_SECONDS:
            tick = time.time()
            source.insert_many([with_site(prediction(written + i, at=now), written + i) for i in range(RATE // 4)])
            written += RATE // 4
            time.sleep(max(0.0, 0.25 - (time.time() - tick)))
        finished = time.time()
        wait_for(lambda: scalar(url, "clara_reviews_counted_total") == written, timeout=30,
                 what=f"Prometheus sees all {written} reviews")

        # rate() over a window inside the writing period equals the rate the reviews were written at
        middle = started + WRITE_SECONDS * 0.6
        measured = scalar(url, f"rate(clara_reviews_counted_total[{RATE_INTERVAL}])", at=middle)
        assert measured == pytest.approx(written / (finished - started), rel=0.2)
        increase = scalar(url, "increase(clara_reviews_counted_total[2m])")
        assert increase == pytest.approx(written, rel=0.2)

        # per segment: gauges equal to the documents' counts, at most max_values + 2 series for the one field
        admitted = set(mongo_client[config.mongodb.database][config.mongodb.state_collection]
                       .find_one({"_id": "segments"})["values"]["site"])
        expected = Counter(site if site is None or site in admitted else "other"
                           for site in (doc.get("site") for doc in source.find()))
        expected = Counter({"unknown" if site is None else site: n for site, n in expected.items()})
        wait_for(lambda: scalar(url, "sum(clara_segment_reviews)") == written, timeout=30,
                 what="the segment gauges with every review")
        for name in ("clara_segment_reviews", "clara_segment_predictions"):
            found = {sample["metric"]["value"]: float(sample["value"][1])
                     for sample in promql(url, f'{name}{{field="site"}}')}
            assert found == expected, name
            assert scalar(url, f"count({name})") == len(expected) <= 1 * (MAX_VALUES + 2)
        assert len(admitted) == MAX_VALUES and {"unknown", "other"} <= set(expected)

        panels = json.loads(DASHBOARD.read_text())["panels"]
        queries = [(panel["title"], target["expr"]) for panel in panels for target in panel["targets"]]
        assert len(queries) >= 13 and any("clara_segment_" in expr for _, expr in queries)
        evaluated_at = finished + 1
        for title, expr in queries:
            result = promql(url, expr.replace("$__rate_interval", RATE_INTERVAL), at=evaluated_at)
            assert result, f"{title}: {expr} returned no data"
    finally:
        stop(consumer)
        stop(web)
        for name in ("web.log", "consumer.log"):
            print(name, (tmp_path / name).read_text()[-3000:], sep="\n")
