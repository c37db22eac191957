"""`python -m consumer`: follow the reviews, keep rollups and profiles exact, deliver profiles to sinks."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import threading
from collections.abc import Callable

from clara.config import Config, load_config
from clara.db import Collections, connect
from clara.errors import ConfigError, IndexPrivilegeError
from clara.logs import setup_logging
from consumer.batch import BatchResult
from consumer.outbox_queue import sink_names
from consumer.stream import Follower
from drift.service import alerts_task

log = logging.getLogger("consumer")


class PeriodicWorker(threading.Thread):
    """Runs a task beside the follower (draining the outbox, evaluating alerts), so a slow sink or webhook
    never holds up a batch: every `interval` seconds, or sooner when woken."""

    def __init__(self, name: str, deliver: Callable[[], object], interval: float, stop: threading.Event):
        super().__init__(name=name, daemon=True)
        self.deliver, self.interval, self.stop = deliver, interval, stop
        self.wake = threading.Event()

    def run(self) -> None:
        while True:
            try:
                self.deliver()
            except Exception:  # noqa: BLE001 - a failing sink must not end delivery; it is retried next round
                log.exception("%s failed; retrying in %.1f s", self.name, self.interval)
            if self.stop.is_set():
                return
            self.wake.wait(self.interval)
            self.wake.clear()


def outbox_delivery(cols: Collections, config: Config) -> Callable[[], object]:
    from consumer.sinks import build_sinks, deliver_pending

    sinks = build_sinks(config)
    return lambda: deliver_pending(cols, config, sinks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m consumer", description=__doc__)
    parser.add_argument("--config", help="path to config.toml (default: the repository's config.toml)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("%s received: finishing the current batch", signal.Signals(signum).name)
        stop.set()
        worker.wake.set()
        alerts.wake.set()

    # The app name marks this consumer's sessions, so a restarted one can end what a killed one left open.
    app_name = f"clara-consumer:{config.mongodb.database}.{config.mongodb.source_collection}"[:128]
    client = connect(config, appname=app_name)
    cols = Collections.of(client, config)
    sinks = sink_names(config)
    worker = PeriodicWorker("outbox-delivery", outbox_delivery(cols, config),
                            config.consumer.outbox_drain_interval_seconds, stop)
    try:
        alerts = PeriodicWorker("alerts", alerts_task(client, cols, config, os.environ),
                                config.alerts.deliveries_drain_interval_seconds, stop)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        client.close()
        return 2

    def after_batch(result: BatchResult) -> None:
        if result.profiles:
            worker.wake.set()
        alerts.wake.set()

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info("consumer starting: %s.%s, sinks %s", config.mongodb.database, config.mongodb.source_collection,
             ", ".join(sinks) or "none")
    worker.start()
    alerts.start()
    try:
        Follower(client, cols, config, sinks, stop, after_batch, app_name=app_name).run()
    except IndexPrivilegeError as exc:  # retrying cannot help: someone has to grant it or create the index
        log.error("consumer cannot start: %s", exc)
        return 2
    finally:
        stop.set()
        worker.wake.set()
        alerts.wake.set()
        worker.join(timeout=config.whylabs.max_seconds + 5)
        alerts.join(timeout=config.alerts.attempts * (config.alerts.attempt_timeout_seconds + 1) + 5)
        client.close()
    log.info("consumer stopped")
    return 0
