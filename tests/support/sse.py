"""Reading a text/event-stream as a browser's EventSource does, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp


async def sse_events(content: aiohttp.StreamReader) -> AsyncIterator[dict[str, str]]:
    """Each event of the stream as {field: value}; a comment line (a heartbeat) comes as {"comment": text}."""
    event: dict[str, str] = {}
    async for raw in content:
        line = raw.decode().rstrip("\r\n")
        if line:
            field, _, value = line.partition(":")
            event[field or "comment"] = value.removeprefix(" ")
            continue
        if event:
            yield event
        event = {}
