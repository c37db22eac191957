"""Finished answers, kept by name and given out while the data they came from is the same.

A handler asks for (key, version, build): the key names the answer (the endpoint and its range), the
version everything the answer is made of (web.day_totals' range version, a pending count, ...). What is
kept under the key is given out while the version is the same; a different version builds it again,
once, for every caller with that version (builds under way are shared, as results are). A failed build
is not kept. At most `kept` keys, least recently used dropped first. The API keeps JSON bytes here,
web.pending its counts.

The API also remembers how to give each answer it was asked for (`remember`): on a live update the hub
calls `refresh` before it tells the dashboards (web.sse), so the answers they then ask for are built
once, on a quiet event loop, rather than while hundreds of their requests arrive.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar


KEPT = 512
REMEMBERED = 32            # answers refreshed on a live update: the most recently asked for
REMEMBER_SECONDS = 300.0   # ... within this long
V = TypeVar("V")


class ResponseCache(Generic[V]):
    def __init__(self, kept: int = KEPT):
        self.kept = kept
        self._held: OrderedDict[Hashable, tuple[Hashable, asyncio.Future]] = OrderedDict()
        self._answers: OrderedDict[Hashable, tuple[float, Callable[[], Awaitable]]] = OrderedDict()

    async def get(self, key: Hashable, version: Hashable, build: Callable[[], Awaitable[V]]) -> V:
        held = self._held.get(key)
        if held is not None and held[0] == version and held[1].done() and not _failed(held[1]):
            self._held.move_to_end(key)
            return held[1].result()   # kept: no task switch, no shield
        if held is None or held[0] != version or _failed(held[1]):
            held = self._held[key] = (version, asyncio.ensure_future(build()))
            held[1].add_done_callback(_retrieve)
            while len(self._held) > self.kept:
                self._held.popitem(last=False)
        self._held.move_to_end(key)
        return await asyncio.shield(held[1])   # a caller that goes away does not cancel the others' build

    def remember(self, key: Hashable, answer: Callable[[], Awaitable]) -> None:
        """Note how to give the answer named `key` (a coroutine function of no arguments) for `refresh`."""
        self._answers[key] = (time.monotonic(), answer)
        self._answers.move_to_end(key)
        while len(self._answers) > REMEMBERED:
            self._answers.popitem(last=False)

    async def refresh(self) -> None:
        """Give every answer asked for in the last REMEMBER_SECONDS again, all at once: each builds afresh
        if what it is made of changed. A failure is left to the next request for it to meet."""
        recent = time.monotonic() - REMEMBER_SECONDS
        for key in [key for key, (at, _) in self._answers.items() if at < recent]:
            del self._answers[key]
        await asyncio.gather(*(answer() for _, answer in list(self._answers.values())), return_exceptions=True)

    async def close(self) -> None:
        """Cancel the builds under way and await them (the owner's way out)."""
        futures = [future for _, future in self._held.values() if not future.done()]
        for future in futures:
            future.cancel()
        await asyncio.gather(*futures, return_exceptions=True)
        self._held.clear()
        self._answers.clear()


def _failed(future: asyncio.Future) -> bool:
    return future.done() and (future.cancelled() or future.exception() is not None)


def _retrieve(future: asyncio.Future) -> None:
    """A build whose callers all went away must not log 'exception was never retrieved'."""
    if not future.cancelled():
        future.exception()

