"""Writes through a database restart: what is retried, what counts as done, what is raised."""

from __future__ import annotations

import threading

import pytest
from pymongo.errors import AutoReconnect, BulkWriteError, OperationFailure

from simulator.connection import persist


def failing(*errors):
    calls = []

    def write():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]

    return write, calls


def bulk_error(write_codes=(), concern_codes=()):
    return BulkWriteError({"writeErrors": [{"code": c, "index": 0} for c in write_codes],
                           "writeConcernErrors": [{"code": c, "codeName": "ShutdownInProgress"} for c in concern_codes]})


def test_connection_and_write_concern_errors_are_retried_until_the_write_lands():
    write, calls = failing(AutoReconnect("down"), bulk_error(concern_codes=[91]),
                           OperationFailure("retry me", 189, {"errorLabels": ["RetryableWriteError"]}))
    assert persist(write, threading.Event(), "test", max_wait=0.01) is True
    assert len(calls) == 4


def test_duplicate_keys_alone_mean_an_earlier_attempt_landed():
    write, calls = failing(bulk_error(write_codes=[11000, 11000]))
    assert persist(write, threading.Event(), "test") is True
    assert len(calls) == 1


def test_other_write_errors_are_raised():
    write, _ = failing(bulk_error(write_codes=[11000, 121]))
    with pytest.raises(BulkWriteError):
        persist(write, threading.Event(), "test")
    write, _ = failing(OperationFailure("bad", 2))
    with pytest.raises(OperationFailure):
        persist(write, threading.Event(), "test")


def test_a_stop_ends_the_retries():
    stop = threading.Event()
    stop.set()
    write, calls = failing(AutoReconnect("down"), AutoReconnect("down"))
    assert persist(write, stop, "test") is False
    assert len(calls) == 1
