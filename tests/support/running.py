"""Run the consumer's follower in a thread for a test, and wait for conditions without fixed sleeps."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from consumer.outbox_queue import sink_names
from consumer.stream import Follower


def wait_for(condition: Callable[[], object], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


@contextlib.contextmanager
def running_follower(client, cols, config, sinks=None) -> Iterator[Follower]:
    stop = threading.Event()
    follower = Follower(client, cols, config, sink_names(config) if sinks is None else sinks, stop)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            follower.run()
        except BaseException as exc:  # noqa: BLE001 - surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=target, name="follower", daemon=True)
    thread.start()
    try:
        yield follower
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the follower did not stop"
        assert not errors, f"the follower failed: {errors[0]!r}"
