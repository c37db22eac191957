"""Concurrent callers sharing one run of a coroutine function that starts after they called.

A run under way may have read MongoDB before a caller's request arrived, so a caller never joins it:
it waits for the next run, which starts when the one under way ends and serves everyone who called in
the meantime. Twenty requests that arrive together cost two runs at most, not twenty, and each still
sees every write made before it arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Coalesced(Generic[T]):
    """`await run()`: the result of a call of `function` that started after this one (one call at a time)."""

    def __init__(self, function: Callable[[], Awaitable[T]]):
        self._function = function
        self._running: asyncio.Future | None = None
        self._next: asyncio.Future | None = None

    async def run(self) -> T:
        if self._next is None:
            self._next = asyncio.ensure_future(self._after_running())
            self._next.add_done_callback(_retrieve)
        return await asyncio.shield(self._next)   # a caller that goes away does not cancel the others' run

    async def close(self) -> None:
        """Cancel the runs under way and waiting, and await them (the owner's way out)."""
        tasks = [task for task in (self._next, self._running) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _after_running(self) -> T:
        if self._running is not None:
            await asyncio.wait([self._running])
        me = self._running = self._next   # callers from now on wait for the run after this one
        self._next = None
        try:
            return await self._function()
        finally:
            if self._running is me:
                self._running = None


def _retrieve(task: asyncio.Future) -> None:
    """A run whose callers all went away must not log 'exception was never retrieved'."""
    if not task.cancelled():
        task.exception()
