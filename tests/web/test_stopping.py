"""The app's way out is bounded: a task that will not stop, or a close that never returns, is logged and left."""

from __future__ import annotations

import asyncio
import logging
import time

from web.stopping import cancel_and_wait, within


async def stubborn(released: asyncio.Event) -> None:
    while not released.is_set():
        try:
            await released.wait()
        except asyncio.CancelledError:
            continue   # ignores every cancel, as a task stuck in a swallowed await would


async def test_a_task_that_ignores_its_cancel_does_not_hold_the_shutdown(caplog):
    released = asyncio.Event()
    task = asyncio.create_task(stubborn(released), name="stubborn-task")
    quick = asyncio.create_task(asyncio.sleep(3600), name="quick-task")
    await asyncio.sleep(0)   # both running, in their sleeps
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="web.stopping"):
        await cancel_and_wait(task, quick, seconds=0.3)
    assert time.monotonic() - started < 2
    assert quick.cancelled()
    assert "stubborn-task did not stop within" in caplog.text and "quick-task" not in caplog.text
    released.set()   # this test's loop must not be left with it
    await task


async def test_a_close_that_never_returns_is_given_up_after_its_time(caplog):
    never = asyncio.get_running_loop().create_future()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="web.stopping"):
        await within(never, "closing the never cache", seconds=0.3)
    assert time.monotonic() - started < 2
    assert "closing the never cache did not stop within" in caplog.text
