"""/healthz: is MongoDB reachable? (/metrics is web.metrics.)"""

from __future__ import annotations

import pymongo
from aiohttp import web
from pymongo.errors import PyMongoError

from web import keys, queries
from web.errors import error_response
from web.params import query

# A health check must answer promptly: a load balancer would rather hear "down" than wait for
# the client's full server-selection timeout.
HEALTHZ_TIMEOUT_SECONDS = 2.0


async def healthz(request: web.Request) -> web.Response:
    query(request, allowed=())
    try:
        with pymongo.timeout(HEALTHZ_TIMEOUT_SECONDS):
            await queries.ping(request.app[keys.COLLECTIONS])
    except PyMongoError as exc:
        return error_response(503, f"MongoDB is unreachable: {type(exc).__name__}")
    return web.json_response({"status": "ok", "mongodb": "reachable"})
