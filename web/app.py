"""The application factory: routes, middlewares and the cleanup contexts that own every resource."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from pymongo import AsyncMongoClient

from clara.config import Config
from clara.db import Collections, client_options
from clara.predictions import PredictionTotals
from web import keys, sse
from web.alerts import drift_client_ctx
from web.auth import auth_middleware
from web.errors import error_middleware
from web.instruments import Metrics
from web.metrics import count_requests
from web.rollup_cache import RollupCache
from web.routes import setup_routes
from web.security import security_headers, time_limit


async def mongo_ctx(app: web.Application) -> AsyncIterator[None]:
    """One asynchronous MongoDB client for the app's lifetime, closed on the way out."""
    config = app[keys.CONFIG]
    client: AsyncMongoClient = AsyncMongoClient(config.mongodb.uri, **client_options(config))
    app[keys.COLLECTIONS] = Collections.of(client, config)  # type: ignore[arg-type]  # same roles, async
    yield
    await client.close()


def create_app(config: Config) -> web.Application:
    middlewares = [count_requests, error_middleware]
    auth = auth_middleware(config.web)
    if auth is not None:
        middlewares.append(auth)
    middlewares.append(time_limit)
    app = web.Application(middlewares=middlewares)
    app.on_response_prepare.append(security_headers)
    app[keys.CONFIG] = config
    app[keys.METRICS] = Metrics()
    app[keys.ROLLUP_CACHE] = RollupCache(config.model.zone)
    app[keys.PREDICTION_CACHE] = RollupCache(config.model.zone, role="predictions", summed=PredictionTotals.of)
    app.cleanup_ctx.extend([mongo_ctx, drift_client_ctx, sse.hub_ctx])
    app.on_shutdown.append(sse.close_streams)
    setup_routes(app)
    return app
