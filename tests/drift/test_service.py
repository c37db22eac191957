"""The consumer's alerts worker body: a real follower's batches lead to an evaluation and a webhook delivery."""

from __future__ import annotations

import datetime as dt
import threading

from consumer.workers import PeriodicWorker
from drift.service import alerts_task
from tests.drift.scenario import drift_settings
from tests.drift.webhook_server import WebhookServer
from tests.support.documents import predictions
from tests.support.running import running_follower, wait_for

UTC = dt.timezone.utc


def test_follower_batches_then_worker_opens_and_delivers(mongo_client, make_config, collections):
    hook = {"name": "ops", "format": "json", "url_env": "CLARA_OPS_URL"}
    sections = drift_settings(reference_start="", reference_end="", accuracy_floor=0.9, min_reviews=200,
                              window_reviews=300)
    sections["alerts"] |= {"webhooks": [hook]}
    config = make_config(**sections, consumer={"batch_max_seconds": 0.05})
    server = WebhookServer().start()
    stop = threading.Event()
    worker = PeriodicWorker("alerts", alerts_task(mongo_client, collections, config, {"CLARA_OPS_URL": server.url}), 0.05, stop)
    try:
        with running_follower(mongo_client, collections, config):
            worker.start()
            start = dt.datetime.now(UTC) - dt.timedelta(hours=5)
            # Reviews right 80% of the time (tests.support.documents): under the 0.9 floor.
            collections.source.insert_many(predictions(400, start=start, step=dt.timedelta(seconds=30)))
            wait_for(lambda: any(key.startswith(_alert_id(collections, "accuracy:last_n")) for key in server.keys()),
                     timeout=30, what="the accuracy alert at the webhook")
    finally:
        stop.set()
        worker.wake.set()
        worker.join(10)
        server.stop()
    alert = collections.alerts.find_one({"key": "accuracy:last_n"})
    assert alert is not None and alert["status"] == "open" and alert["severity"] == "critical"
    assert "below the floor 0.9" in alert["message"]
    assert server.accepted[f"{alert['_id']}:opened:ops"] == 1
    # Uniform classes against the training mix: the class-mix alerts open too, each delivered once.
    assert set(server.accepted.values()) == {1}


def _alert_id(collections, key: str) -> str:
    alert = collections.alerts.find_one({"key": key}, {"_id": 1})
    return "-" if alert is None else alert["_id"]
