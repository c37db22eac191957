"""Typed application state: every web.AppKey the app uses, in one place."""

from __future__ import annotations

from aiohttp import web

from clara.config import Config
from clara.db import Collections
from web.hub import Hub
from web.instruments import Metrics
from web.pending import PendingCounts
from web.quiet import Quiet
from web.response_cache import ResponseCache
from web.rollup_cache import RollupCache
from web.segment_totals import SegmentTotals

CONFIG = web.AppKey("config", Config)
# clara.db.Collections built over the async client: the same roles, asynchronous collections.
COLLECTIONS = web.AppKey("collections", Collections)
# The same roles over a synchronous client, for drift.queries run in the executor (web.alerts).
DRIFT_COLLECTIONS = web.AppKey("drift_collections", Collections)
HUB = web.AppKey("hub", Hub)
# Per-day totals of the hourly rollups, refreshed from the hours that changed (web.rollup_cache).
ROLLUP_CACHE = web.AppKey("rollup_cache", RollupCache)
# The same for the prediction rollups (every prediction, counted at insert): PredictionTotals per day.
PREDICTION_CACHE = web.AppKey("prediction_cache", RollupCache)
# The same per segment and kind, for the segments asked for lately (web.segment_totals).
SEGMENT_TOTALS = web.AppKey("segment_totals", SegmentTotals)
# This process's Prometheus registry (request counters and latency; web.metrics).
METRICS = web.AppKey("metrics", Metrics)
# Pending-review counts per range, kept until the source changes (web.pending).
PENDING = web.AppKey("pending_counts", PendingCounts)
# Finished JSON answers per endpoint, range and data version (web.response_cache).
RESPONSES = web.AppKey("responses", ResponseCache)
# When requests last started or ended: the segment warm-up waits for a pause in them (web.quiet).
QUIET = web.AppKey("quiet", Quiet)
