"""Every route of the app: the page, its static files, the API, the live stream and operations."""

from __future__ import annotations

import functools
from pathlib import Path

from aiohttp import web

from web import alerts, api, assets, compare_api, estimates_api, metrics, ops, segments_api, sse
from web.errors import MissingAssets
from web.openapi import openapi

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def vendor_file(path: Path, request: web.Request) -> web.FileResponse:
    return web.FileResponse(path)


def setup_routes(app: web.Application) -> None:
    if assets.missing():
        raise MissingAssets(f"{assets.NODE_MODULES} lacks the dashboard's files {', '.join(assets.missing())}; "
                            "run scripts/setup, `npm ci` in web/, or `python -m web.assets`")
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC)
    for name in assets.vendor_files():  # exactly the files the page loads, not the whole node_modules
        app.router.add_get(f"/vendor/{name}", functools.partial(vendor_file, assets.NODE_MODULES / name))
    app.router.add_get("/api/meta", api.meta)
    app.router.add_get("/api/summary", api.summary)
    app.router.add_get("/api/daily", api.daily)
    app.router.add_get("/api/volume", api.volume)
    app.router.add_get("/api/classes", api.classes)
    app.router.add_get("/api/confusion", api.confusion)
    app.router.add_get("/api/training", api.training)
    app.router.add_get("/api/health", api.health)
    app.router.add_get("/api/segments", segments_api.segments)
    app.router.add_get("/api/compare", compare_api.compare_handler)
    app.router.add_get("/api/intervals", estimates_api.intervals)
    app.router.add_get("/api/calibration", estimates_api.calibration)
    app.router.add_get("/api/unreviewed", estimates_api.unreviewed)
    app.router.add_get("/api/label-shift", estimates_api.label_shift)
    app.router.add_get("/api/review-hints", estimates_api.review_hints)
    app.router.add_get("/api/alerts", alerts.alerts)
    app.router.add_get("/api/alerts/{id}", alerts.alert)
    app.router.add_get("/api/drift", alerts.drift)
    app.router.add_get("/api/stream", sse.stream)
    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_get("/healthz", ops.healthz)
    app.router.add_get("/metrics", metrics.metrics)
