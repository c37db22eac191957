"""The consumer's workers, outbox delivery and alerts, in a process of their own beside the follower.

Why a process: their rounds build whylogs profiles and run scipy checks, much of it pure Python. On threads
beside the follower every round held the follower's interpreter while its batches waited for it: an outbox
drain of a segmented hour takes a quarter of a second, a drift evaluation with segments up to two. The
follower and the workers share nothing but MongoDB (the outbox, the alerts and the telemetry are
collections), so moving them changes nothing they do. The follower wakes them when it falls idle; they
stop when it asks, or by themselves within ORPHAN_CHECK_SECONDS of its death (kill -9), so none outlives it.
"""

from __future__ import annotations

import faulthandler
import functools
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

from clara import telemetry
from clara.config import Config, load_config
from clara.db import Collections, connect
from clara.logs import setup_logging
from drift.service import alerts_task

log = logging.getLogger("consumer")
ORPHAN_CHECK_SECONDS = 1.0   # how often the workers' process looks for its consumer


class PeriodicWorker(threading.Thread):
    """Runs a task beside the follower (draining the outbox, evaluating alerts), so a slow sink or webhook
    never holds up a batch: every `interval` seconds, or sooner when woken."""

    def __init__(self, name: str, deliver: Callable[[], object], interval: float, stop: Any,
                 on_error: Callable[[str], None] = lambda name: None, wake: Any = None):
        super().__init__(name=name, daemon=True)
        self.deliver, self.interval, self.stop, self.on_error = deliver, interval, stop, on_error
        self.wake = wake if wake is not None else threading.Event()   # a threading or a multiprocessing Event

    def run(self) -> None:
        while True:
            # The first round waits too: at start-up the follower's catch-up goes first, and the follower
            # wakes the worker once it is idle.
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
    """The delivery worker's round. whylogs is imported (and the sinks built) by the first round: it takes
    seconds to load, and nothing waits for it before then."""
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


def stop_timeout(config: Config) -> float:
    """How long a stop may wait for the workers: a WhyLabs upload, or an alert's every webhook attempt."""
    return max(config.whylabs.max_seconds, config.alerts.attempts * (config.alerts.attempt_timeout_seconds + 1)) + 5


class Workers:
    """The follower's handle on the workers' process: start it, wake its workers, stop it."""

    def __init__(self, config_path: str | None, config: Config):
        self._context = multiprocessing.get_context("spawn")   # a fresh interpreter: no threads or sockets copied
        self.config_path, self.config = config_path, config
        self._stop = self._context.Event()
        self._wake = (self._context.Event(), self._context.Event())   # outbox delivery, alerts
        self.process: multiprocessing.process.BaseProcess | None = None

    def start(self) -> None:
        self.process = self._context.Process(target=run_workers, name="clara-consumer-workers", daemon=True,
                                             args=(self.config_path, self._stop, *self._wake, os.getpid()))
        self.process.start()
        log.info("outbox delivery and alerts run in process %d", self.process.pid)

    def wake(self) -> None:
        """Wake both workers (the follower fell idle); start the process again if it died."""
        if self.process is not None and not self.process.is_alive() and not self._stop.is_set():
            log.error("the workers' process exited with code %s; starting it again", self.process.exitcode)
            self.start()
        _set_all(self._wake)

    def stop(self) -> None:
        self._stop.set()
        _set_all(self._wake)
        if self.process is None:
            return
        timeout = stop_timeout(self.config)
        self.process.join(timeout)
        if self.process.is_alive():
            log.warning("the workers' process did not stop in %.0f s; terminating it", timeout)
            self.process.terminate()
            self.process.join(5)


def _set_all(events: Sequence[Any]) -> None:
    for event in events:
        event.set()


def run_workers(config_path: str | None, stop: Any, wake_outbox: Any, wake_alerts: Any, parent_pid: int) -> None:
    """The workers' process: both workers on threads until the consumer sets `stop` or is gone."""
    # Ctrl-C and SIGTERM reach the whole process group: the consumer finishes its batch, then stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    faulthandler.register(signal.SIGUSR1)
    setup_logging()
    config = load_config(config_path)
    client = connect(config, appname=f"clara-consumer-workers:{config.mongodb.database}"[:128])
    cols = Collections.of(client, config)
    failed = functools.partial(telemetry.record_worker_error, cols)
    workers = [PeriodicWorker("outbox-delivery", outbox_delivery(cols, config),
                              config.consumer.outbox_drain_interval_seconds, stop, failed, wake_outbox),
               PeriodicWorker("alerts", alerts_round(alerts_task(client, cols, config, os.environ), cols),
                              config.alerts.deliveries_drain_interval_seconds, stop, failed, wake_alerts)]
    for worker in workers:
        worker.start()
    while not stop.wait(ORPHAN_CHECK_SECONDS):
        if os.getppid() != parent_pid:
            log.warning("the consumer (process %d) is gone: its workers stop", parent_pid)
            _set_all((stop, wake_outbox, wake_alerts))
    for worker in workers:
        worker.join(stop_timeout(config))
    client.close()
