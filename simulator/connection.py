"""Reaching MongoDB: wait until a primary answers, and keep retrying writes while it is away.

The simulator stands in for the model's service, which keeps writing through a database restart:
a write that fails on a connection error is retried until it lands or the simulator is stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pymongo
from pymongo import MongoClient
from pymongo.errors import BulkWriteError, ConnectionFailure, ExecutionTimeout, OperationFailure, WriteConcernError

from simulator.errors import SimulatorError

log = logging.getLogger(__name__)
DUPLICATE_KEY = 11000


def wait_for_mongo(client: MongoClient, timeout: float, stop: threading.Event) -> bool:
    """Block until the server has a writable primary; False if stopped first, SimulatorError on timeout."""
    deadline = time.monotonic() + timeout
    said = False
    while not stop.is_set():
        try:
            with pymongo.timeout(1.0):
                client.admin.command("ping")
            if said:
                log.info("MongoDB is up")
            return True
        except (ConnectionFailure, ExecutionTimeout) as exc:
            if time.monotonic() >= deadline:
                raise SimulatorError(f"MongoDB did not answer within {timeout:g} s (mongodb.uri or MONGODB_URI): "
                                     f"{str(exc).split(' (configured timeouts')[0]}") from exc
            if not said:
                log.info("waiting for MongoDB (up to %g s)", timeout)
                said = True
        stop.wait(0.5)
    return False


def persist(write: Callable[[], object], stop: threading.Event, what: str, max_wait: float = 5.0) -> bool:
    """Run `write` until it succeeds (True), or until stopped (False).

    Connection errors, write-concern errors (a server shutting down) and retryable failures are retried;
    duplicate keys on a retried insert mean an earlier attempt landed before its answer was lost.
    """
    wait = 0.2
    while True:
        try:
            write()
            return True
        except BulkWriteError as exc:
            details = exc.details
            if any(error.get("code") != DUPLICATE_KEY for error in details.get("writeErrors", [])):
                raise
            if not details.get("writeConcernErrors"):
                return True
            reason = details["writeConcernErrors"][0].get("codeName", "write concern error")
        except (ConnectionFailure, WriteConcernError) as exc:
            reason = exc.__class__.__name__
        except OperationFailure as exc:
            if not exc.has_error_label("RetryableWriteError"):
                raise
            reason = exc.__class__.__name__
        log.warning("%s failed (%s); retrying in %.1f s", what, reason, wait)
        if stop.wait(wait):
            return False
        wait = min(wait * 2, max_wait)
