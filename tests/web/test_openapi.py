"""/api/openapi.json describes every route truthfully: schemathesis with all its checks passes on every
operation, and the live stream's events match the shapes it states."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import socket
import threading
from zoneinfo import ZoneInfo

import jsonschema_rs
import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, assume, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from tests.web.alerts_history import alert_sections, history_end, load, open_and_resolve, raise_floor
from tests.web.test_sse import read_event, read_until
from web import keys
from web.app import create_app
from web.hours import MAX_HOURLY_DAYS
from web.openapi import SCHEMAS, document

MAX_EXAMPLES = 25


async def test_every_route_is_described(client):
    described = set((await (await client.get("/api/openapi.json")).json())["paths"])
    routed = {route.resource.canonical for route in client.app.router.routes()
              if route.method == "GET" and not route.resource.canonical.startswith(("/static", "/vendor"))}
    assert routed - {"/"} == described


def test_document_is_json_serialisable_and_names_the_error_shape():
    spec = document()
    assert spec["components"]["schemas"]["Error"]["properties"]["error"]["required"] == ["status", "parameter",
                                                                                         "message"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def live_url(web_config, web_collections):
    """The app served from its own thread and event loop, for schemathesis's synchronous client."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(web_config))
    port = _free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, name="web-under-fuzz", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def violates_range_rule(case, max_range_days: int, zone: ZoneInfo) -> bool:
    """The cross-parameter rules the document states in words (RANGE_RULE, HOUR_RULE and `by`'s), which no JSON
    Schema can express."""
    query = case.query or {}
    timed = [name for name in ("from", "to") if "T" in query.get(name, "")]
    if timed:
        return violates_hour_rule(query, zone)
    days = 0
    if "from" in query and "to" in query:
        first, last = dt.date.fromisoformat(query["from"]), dt.date.fromisoformat(query["to"])
        if last < first or (last - first).days + 1 > max_range_days:
            return True
        days = (last - first).days + 1
    elif query.get("by") == "hour":
        return True   # a default end (today) the test does not know: the span may be too long per hour
    return query.get("by") == "hour" and days > MAX_HOURLY_DAYS


def violates_hour_rule(query: dict, zone: ZoneInfo) -> bool:
    if not all("T" in query.get(name, "") for name in ("from", "to")) or query.get("by") == "day":
        return True
    try:
        ends = [_hour_start(query[name], zone) for name in ("from", "to")]
    except ValueError:
        return True
    return None in ends or not ends[0] < ends[1] <= ends[0] + dt.timedelta(days=MAX_HOURLY_DAYS)


def _hour_start(text: str, zone: ZoneInfo) -> dt.datetime | None:
    """The UTC instant a time names if it starts a local hour of the zone (and exists there), else None."""
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        if moment.replace(tzinfo=zone).astimezone(dt.timezone.utc).astimezone(zone).replace(tzinfo=None) != moment:
            return None
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.timezone.utc) if moment.astimezone(zone).minute == 0 else None


@pytest.fixture
def web_config(make_config):
    """Alerts in the database (one open, one resolved), so /api/alerts/{id} has something to answer with; a
    segment field, so that `segment` is described and fuzzed."""
    return make_config(**alert_sections(history_end()), segments={"fields": ["model_version"]})


@pytest.fixture
def alerts_written(mongo_client, web_collections, web_config) -> None:
    end = history_end()
    load(mongo_client, web_collections, web_config, end)
    open_and_resolve(web_collections, web_config, end)
    raise_floor(web_collections, web_config, end)
    assert web_collections.alerts.count_documents({"status": "open"}) >= 1


def test_schemathesis_with_every_check_on_every_operation(live_url, alerts_written, web_config):
    """Every check schemathesis has, on every operation but the endless stream (its events are checked against
    the document below): valid requests are accepted and answered as described, invalid ones refused, and
    the links from /api/alerts reach /api/alerts/{id}'s success path."""
    schema = schemathesis.openapi.from_url(f"{live_url}/api/openapi.json")
    operations = [result.ok() for result in schema.exclude(path="/api/stream").get_all_operations()]
    # schemathesis leaves out the schema's own URL; everything else is fuzzed
    assert {op.path for op in operations} >= set(document()["paths"]) - {"/api/stream", "/api/openapi.json"}
    spec = document(web_config.web.max_range_days)["paths"]
    load_all_checks()
    every_check = CHECKS.get_all()
    assert len(every_check) >= 10
    for operation, mode in itertools.product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):
        if mode is GenerationMode.NEGATIVE and not spec[operation.path]["get"]["parameters"]:
            continue  # nothing to get wrong
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            if mode is GenerationMode.POSITIVE:
                assume(not violates_range_rule(case, web_config.web.max_range_days, web_config.model.zone))
            case.call_and_validate(base_url=live_url, checks=every_check)

        fuzz()

    statuses: dict[str, set[int]] = {}

    class Following(schema.exclude(path="/api/stream").as_state_machine()):
        def validate_response(self, response, case, **kwargs):
            statuses.setdefault(case.operation.path, set()).add(response.status_code)
            if case.meta is None or case.meta.generation.mode is GenerationMode.POSITIVE:
                if violates_range_rule(case, web_config.web.max_range_days, web_config.model.zone):
                    return None
            return case.validate_response(response, checks=every_check)

    Following.run(settings=settings(max_examples=20, stateful_step_count=4, deadline=None, database=None,
                                    suppress_health_check=list(HealthCheck)))
    assert 200 in statuses.get("/api/alerts/{id}", set()), statuses


async def test_stream_events_match_the_document(client):
    """/api/stream is left out of schemathesis (it never ends); its events are checked against x-clara-events."""
    media = document()["paths"]["/api/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"]
    schemas = {name: SCHEMAS[ref["$ref"].rsplit("/", 1)[1]] for name, ref in media["x-clara-events"].items()}
    hub = client.app[keys.HUB]
    async with client.get("/api/stream", headers={"Last-Event-ID": "0-0"}) as response:
        events = [await read_event(response) for _ in range(3)]  # status, then the missed update and alerts
        hub.changed(dt.datetime(2026, 1, 1, 5, tzinfo=dt.timezone.utc))
        hub.alerts_changed("65a1b2c3d4e5f60718293a4b")
        events += [await read_until(response, "update"), await read_until(response, "alerts")]
    assert {event["event"] for event in events} == set(schemas)
    for event in events:
        data = json.loads(event["data"])
        assert jsonschema_rs.validator_for(openapi_to_json_schema(schemas[event["event"]])).is_valid(data), event
    assert json.loads(events[-2]["data"]) == {"hours": ["2026-01-01T05:00:00+00:00"]}


def openapi_to_json_schema(schema: dict) -> dict:
    """OpenAPI 3.0's `nullable` as JSON Schema's type lists."""
    if not isinstance(schema, dict):
        return schema
    converted = {key: (openapi_to_json_schema(value) if isinstance(value, dict) else
                       {k: openapi_to_json_schema(v) for k, v in value.items()} if key == "properties" else value)
                 for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable"):
        converted["type"] = [schema["type"], "null"]
    return converted
