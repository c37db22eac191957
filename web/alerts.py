"""GET /api/alerts, /api/alerts/{id} and /api/drift: the drift engine's alerts and statistics, served.

The reads are drift.queries' own (synchronous pymongo, shared with the consumer's alerts worker), run in
the default executor over a synchronous client the app owns (`drift_client_ctx`), so they never block
the event loop and the web layer keeps no copy of them.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from clara.db import Collections, connect
from drift import queries as drift_queries
from drift.segment_days import segment_daily_statistics
from web import keys, segments_api
from web.api import kept_answer
from web.drift_series import chart_series
from web.errors import BadParameter
from web.params import RANGE_PARAMETERS, integer, query, range_of

ALERT_ID = re.compile(r"[0-9a-f]{24}", re.ASCII)  # drift.alerts names alerts by str(ObjectId())
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


async def drift_client_ctx(app: web.Application) -> AsyncIterator[None]:
    """A synchronous MongoDB client for drift.queries in the executor, closed on the way out."""
    client = connect(app[keys.CONFIG])
    app[keys.DRIFT_COLLECTIONS] = Collections.of(client, app[keys.CONFIG])
    yield
    client.close()


async def _off_loop(function, *args):
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(function, *args))


async def alerts(request: web.Request) -> web.Response:
    """Open alerts (all of them) and past alerts opened in the range, newest first, at most `limit`."""
    values = query(request, (*RANGE_PARAMETERS, "limit"))
    config, cols = request.app[keys.CONFIG], request.app[keys.DRIFT_COLLECTIONS]
    days = range_of(values, config)
    limit = integer(values, "limit", DEFAULT_LIMIT, 0, MAX_LIMIT)
    start, end = days.bounds
    open_ = await _off_loop(drift_queries.open_alerts, cols)
    past = await _off_loop(drift_queries.past_alerts, cols, start, end, limit) if limit else []
    return _json({"range": days.to_json(), "limit": limit, "open": open_, "past": past})


async def alert(request: web.Request) -> web.Response:
    """One alert with its transitions and webhook deliveries."""
    query(request, allowed=())
    alert_id = request.match_info["id"]
    if not ALERT_ID.fullmatch(alert_id):
        raise BadParameter("id", f"{alert_id[:40]!r} is not an alert id; expected 24 hexadecimal digits")
    found = await _off_loop(drift_queries.alert_detail, request.app[keys.DRIFT_COLLECTIONS], alert_id)
    if found is None:
        raise web.HTTPNotFound(text=f"no alert {alert_id}")
    return _json(found)


DAY_CHECK_ROLES = ("rollups", "predictions")   # what /api/drift's day checks are made of (web.changes roles)


async def drift(request: web.Request) -> web.Response:
    """The latest evaluation's findings, and each day-window check per local day of the range for charts; with
    `segment`, that segment's findings and its checks computed from its own rollups (drift.segment_days)."""
    values = query(request, (*RANGE_PARAMETERS, segments_api.PARAMETER))
    config, cols = request.app[keys.CONFIG], request.app[keys.DRIFT_COLLECTIONS]
    days = range_of(values, config)
    segment = segments_api.segment_of(values, config)
    latest = await _off_loop(drift_queries.latest_findings, cols)
    # The day checks are a function of the rollups alone: kept while the fence sees none of them change.
    if segment is None:
        findings = latest["findings"]
        daily = await kept_answer(request.app, ("drift days", days), DAY_CHECK_ROLES, functools.partial(
            _off_loop, drift_queries.daily_statistics, cols, config, days.first, days.last))
    else:
        named = f"{segment.field}={segment.value}"   # a finding's `segment` (drift.segment_checks.tagged)
        findings = [finding for finding in latest["findings"] if finding.get("segment") == named]
        daily = await kept_answer(request.app, ("drift days", days, segment), segments_api.fence_roles(DAY_CHECK_ROLES),
                                  functools.partial(_off_loop, segment_daily_statistics, cols, config, days.first,
                                                    days.last, segment.field, segment.value))
    return _json({"range": days.to_json(), "segment": segment and segment.to_json(),
                  "evaluated_at": latest["evaluated_at"], "findings": findings,
                  "segment_findings_left_out": latest["segment_findings_left_out"],
                  "days": [day.isoformat() for day in days.days],
                  "series": chart_series(daily, days.days, config)})


def _json(body: Any) -> web.Response:
    return web.json_response(_finite(body))


def _finite(value: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers and the page's JSON.parse refuses them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
