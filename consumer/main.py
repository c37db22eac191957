"""`python -m consumer`: follow the reviews, keep rollups and profiles exact, deliver profiles to sinks."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import threading

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
from consumer.workers import Workers
from drift.service import alerts_task

log = logging.getLogger("consumer")


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

    # The app name marks this consumer's sessions, so a restarted one can end what a killed one left open.
    app_name = f"clara-consumer:{config.mongodb.database}.{config.mongodb.source_collection}"[:128]
    client = connect(config, appname=app_name)
    cols = Collections.of(client, config)
    sinks = sink_names(config)
    try:
        alerts_task(client, cols, config, os.environ)   # what the workers' process will run: checked here
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        client.close()
        return 2
    workers = Workers(args.config, config)

    def after_batch(result: BatchResult) -> None:
        telemetry.record_batch(cols, result)

    def when_idle() -> None:
        # While batches keep coming, the workers run on their intervals, delivering many batches' profiles
        # in one round: woken after every batch, their whylogs and scipy work would compete with counting.
        workers.wake()

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
    workers.start()
    try:
        Follower(client, cols, config, sinks, stop, after_batch, app_name=app_name, when_idle=when_idle).run()
    except IndexPrivilegeError as exc:  # retrying cannot help: someone has to grant it or create the index
        log.error("consumer cannot start: %s", exc)
        return 2
    finally:
        stop.set()
        workers.stop()
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
