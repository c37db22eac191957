"""`python -m consumer`: follow the reviews, keep rollups and profiles exact, deliver profiles to sinks."""

from __future__ import annotations

import argparse
import faulthandler
import functools
import logging
import os
import signal
import threading
from collections.abc import Callable

from pymongo.errors import PyMongoError

from clara import telemetry
from clara.access import check_access, wait_for_access
from clara.config import Config, load_config
from clara.db import Collections, connect, ensure_indexes
from clara.errors import AccessDenied, ConfigError, IndexPrivilegeError
from clara.logs import setup_logging
from consumer.batch import BatchResult
from consumer.outbox_queue import sink_names
from consumer.stream import Follower
from drift.service import alerts_task

log = logging.getLogger("consumer")


class PeriodicWorker(threading.Thread):
    """Runs a task beside the follower (draining the outbox, evaluating alerts), so a slow sink or webhook
    never holds up a batch: every `interval` seconds, or sooner when woken."""

    def __init__(self, name: str, deliver: Callable[[], object], interval: float, stop: threading.Event,
                 on_error: Callable[[str], None] = lambda name: None):
        super().__init__(name=name, daemon=True)
        self.deliver, self.interval, self.stop, self.on_error = deliver, interval, stop, on_error
        self.wake = threading.Event()

    def run(self) -> None:
        while True:
            # The first round waits too: at start-up the follower's catch-up goes first (the round's imports
            # and work would hold the interpreter), and the follower wakes the worker once it is idle.
            self.wake.wait(self.interval)
            self.wake.clear()
            try:
                self.deliver()
            except Exception:  # noqa: BLE001 - a failing sink must not end delivery; it is retried next round
                log.exception("%s failed; retrying in %.1f s", self.name, self.interval)
                self.on_error(self.name)
            if self.stop.is_set():
                return


def outbox_delivery(cols: Collections, config: Config) -> Callable[[], object]:
    """The delivery worker's round. whylogs is imported (and the sinks built) by the first round, on the
    worker's thread: it takes seconds to load, and the follower need not wait for it to begin counting."""
    built: list = []

    def deliver() -> object:
        from consumer.sinks import build_sinks, deliver_pending

        if not built:
            built.append(build_sinks(config))
        return telemetry.record_profile_deliveries(cols, deliver_pending(cols, config, built[0]))
    return deliver


def alerts_round(task: Callable[[], object], cols: Collections) -> Callable[[], None]:
    """The alerts worker's round, counting its webhook deliveries into the telemetry."""
    def run_once() -> None:
        result = task()
        if result is not None:
            telemetry.record_webhook_deliveries(cols, result)
    return run_once


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m consumer", description=__doc__)
    parser.add_argument("--config", help="path to config.toml (default: the repository's config.toml)")
    parser.add_argument("--prepare", action="store_true",
                        help="check MongoDB access and create the indexes, then exit (a PaaS release process)")
    args = parser.parse_args(argv)
    try:
        setup_logging()
        config = load_config(args.config)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2
    if args.prepare:
        return prepare(config)
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
    failed = functools.partial(telemetry.record_worker_error, cols)
    worker = PeriodicWorker("outbox-delivery", outbox_delivery(cols, config),
                            config.consumer.outbox_drain_interval_seconds, stop, failed)
    try:
        alerts = PeriodicWorker("alerts", alerts_round(alerts_task(client, cols, config, os.environ), cols),
                                config.alerts.deliveries_drain_interval_seconds, stop, failed)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        client.close()
        return 2

    def after_batch(result: BatchResult) -> None:
        telemetry.record_batch(cols, result)

    def when_idle() -> None:
        # While batches keep coming, the workers run on their intervals, delivering many batches' profiles
        # in one round: woken after every batch, their whylogs and scipy work would compete with counting.
        worker.wake.set()
        alerts.wake.set()

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        if not wait_for_access(cols, stop, config.consumer.reconnect_max_seconds):
            client.close()
            return 0
    except AccessDenied as exc:  # retrying cannot help: the credentials or the roles must change
        log.error("consumer cannot start: %s", exc)
        client.close()
        return 2
    log.info("consumer starting: %s.%s, sinks %s", config.mongodb.database, config.mongodb.source_collection,
             ", ".join(sinks) or "none")
    worker.start()
    alerts.start()
    try:
        Follower(client, cols, config, sinks, stop, after_batch, app_name=app_name, when_idle=when_idle).run()
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


def prepare(config: Config) -> int:
    """The release step: fail fast on refused credentials or privileges, create the indexes CLARA needs."""
    client = connect(config)
    try:
        cols = Collections.of(client, config)
        check_access(cols)
        ensure_indexes(cols)
    except (AccessDenied, IndexPrivilegeError) as exc:
        log.error("cannot prepare the deployment: %s", exc)
        return 2
    except PyMongoError as exc:
        log.error("cannot prepare the deployment: MongoDB is unreachable (%s)", type(exc).__name__)
        return 1
    finally:
        client.close()
    log.info("prepared %s: MongoDB access checked, indexes in place", config.mongodb.database)
    return 0
