"""The web app's way out: background tasks and closes awaited for a bounded time, never forever.

A task that does not end when cancelled (or a close that waits on one) would otherwise hold the app's
shutdown, a SIGTERM from the platform, or a test's teardown, for good. What does not stop in time is
logged by name and left for the event loop's own shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

log = logging.getLogger(__name__)
STOP_SECONDS = 5.0


async def cancel_and_wait(*tasks: asyncio.Task, seconds: float = STOP_SECONDS) -> None:
    """Cancel the tasks and wait at most `seconds` for them to end."""
    for task in tasks:
        task.cancel()
    await _wait(list(tasks), seconds)


async def within(awaitable: Awaitable[object], what: str, seconds: float = STOP_SECONDS) -> None:
    """Await a close for at most `seconds`."""
    await _wait([asyncio.ensure_future(awaitable)], seconds, what)


async def _wait(tasks: list[asyncio.Future], seconds: float, what: str | None = None) -> None:
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s failed on the way out: %r", what or _name(task), task.exception())
    for task in pending:
        log.warning("%s did not stop within %.0f s of the app's shutdown; left to the event loop",
                    what or _name(task), seconds)
        task.cancel()


def _name(task: asyncio.Future) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)
