"""The application factory: routes, middlewares and the cleanup contexts that own every resource."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web
from pymongo import AsyncMongoClient

from clara.config import Config
from clara.db import Collections, client_options
from clara.predictions import PredictionTotals
from web import keys, sse
from web.alerts import drift_client_ctx
from web.auth import auth_middleware
from web.changes import ChangeFence
from web.errors import error_middleware
from web.instruments import Metrics
from web.metrics import count_requests
from web.pending import PendingCounts
from web.quiet import Quiet, note_requests
from web.response_cache import ResponseCache
from web.rollup_cache import RollupCache
from web.segment_totals import SegmentTotals
from web.routes import setup_routes
from web.security import security_headers, time_limit
from web.stopping import cancel_and_wait, within
from web.warm import WARM_WAIT_SECONDS, warm


async def mongo_ctx(app: web.Application) -> AsyncIterator[None]:
    """One asynchronous MongoDB client for the app's lifetime, closed on the way out."""
    config = app[keys.CONFIG]
    client: AsyncMongoClient = AsyncMongoClient(config.mongodb.uri, **client_options(config))
    app[keys.COLLECTIONS] = Collections.of(client, config)  # type: ignore[arg-type]  # same roles, async
    yield
    await within(client.close(), "closing the MongoDB client")


def memory_ctx(fence: ChangeFence):
    """The caches' change fence (web.changes) attached to the app's client, its idle drain, the warm start
    (web.warm: waited for at most WARM_WAIT_SECONDS); on the way out every task stopped, the stream closed."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        fence.attach(app[keys.COLLECTIONS])
        idle = asyncio.create_task(fence.keep_following(), name="change-fence-idle-drain")
        warming = asyncio.create_task(warm(app), name="rollup-cache-warm")
        await asyncio.wait([warming], timeout=WARM_WAIT_SECONDS)
        yield
        await cancel_and_wait(idle, warming)
        for owner in (app[keys.RESPONSES], app[keys.PENDING], app[keys.ROLLUP_CACHE], app[keys.PREDICTION_CACHE],
                      app[keys.SEGMENT_TOTALS], fence):
            await within(owner.close(), f"closing {type(owner).__name__}")
    return ctx


def create_app(config: Config) -> web.Application:
    quiet = Quiet()
    middlewares = [note_requests(quiet), count_requests, error_middleware]
    auth = auth_middleware(config.web)
    if auth is not None:
        middlewares.append(auth)
    middlewares.append(time_limit)
    app = web.Application(middlewares=middlewares)
    app.on_response_prepare.append(security_headers)
    app[keys.CONFIG] = config
    app[keys.QUIET] = quiet
    app[keys.METRICS] = Metrics()
    fence = ChangeFence()
    app[keys.ROLLUP_CACHE] = RollupCache(config.model.zone, fence=fence)
    app[keys.PREDICTION_CACHE] = RollupCache(config.model.zone, role="predictions", summed=PredictionTotals.of,
                                             fence=fence)
    app[keys.SEGMENT_TOTALS] = SegmentTotals(config.model.zone, fence)
    app[keys.PENDING] = PendingCounts(fence)
    app[keys.RESPONSES] = ResponseCache()
    app.cleanup_ctx.extend([mongo_ctx, drift_client_ctx, memory_ctx(fence), sse.hub_ctx])
    app.on_shutdown.append(sse.close_streams)
    setup_routes(app)
    return app
