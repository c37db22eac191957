"""GET /api/stream: Server-Sent Events for live updates, and the hub's owned background tasks.

On connect a client gets a `status` event ({"live": true|false}: whether the web process is
following the rollups and alerts). A client that reconnects with a Last-Event-ID other than the latest
gets an `update` and an `alerts` event at once. Then `update` events follow the review and prediction
rollups ({"hours": [...]}) and `alerts` events the alerts ({"ids": [...]}; null: unknown, refresh all),
with heartbeat comments between.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp_sse import sse_response

from web import keys
from web.stopping import cancel_and_wait
from web.hub import Hub
from web.params import query

log = logging.getLogger(__name__)
SEND_TIMEOUT_SECONDS = 10.0
WATCH_STOP_SECONDS = 5.0


async def stream(request: web.Request) -> web.StreamResponse:
    query(request, allowed=())
    hub = request.app[keys.HUB]
    config = request.app[keys.CONFIG]
    async with sse_response(request, ping_interval=config.web.sse_heartbeat_seconds,
                            send_timeout=SEND_TIMEOUT_SECONDS) as client:
        await client.send(hub.status_payload(), event="status")
        last_seen = client.last_event_id
        if last_seen is not None and last_seen != hub.last_id:
            await client.send(hub.update_payload_missed(), event="update", id=hub.last_id)
            await client.send(hub.alerts_payload_missed(), event="alerts", id=hub.last_id)
        hub.clients.add(client)
        try:
            await client.wait()
        finally:
            hub.clients.discard(client)
    return client


async def hub_ctx(app: web.Application) -> AsyncIterator[None]:
    """Create the hub, run its producer and publisher, and cancel and await both on the way out."""
    config = app[keys.CONFIG]
    hub = Hub(config.web.sse_max_updates_per_second, config.consumer.reconnect_max_seconds,
              before_update=app[keys.RESPONSES].refresh)
    app[keys.HUB] = hub
    collections = app[keys.COLLECTIONS]
    watcher = asyncio.create_task(hub.watch(collections.rollups, collections.alerts, collections.predictions),
                                  name="rollups-alerts-watch")
    publisher = asyncio.create_task(hub.publish(), name="sse-publish")
    yield
    hub.stop()
    await cancel_and_wait(publisher)
    await asyncio.wait([watcher], timeout=WATCH_STOP_SECONDS)
    if not watcher.done():
        log.warning("the rollups and alerts watcher did not stop within %s s; cancelling it", WATCH_STOP_SECONDS)
        watcher.cancel()
        await asyncio.wait([watcher], timeout=WATCH_STOP_SECONDS)


async def close_streams(app: web.Application) -> None:
    """On shutdown, end every open stream so the server does not wait for clients to leave."""
    for client in list(app[keys.HUB].clients):
        client.stop_streaming()
