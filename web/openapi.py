"""The OpenAPI 3.0 description of every endpoint, served at /api/openapi.json."""

from __future__ import annotations

import re

from aiohttp import web

from clara.segments import MAX_VALUE_LENGTH
from web import estimates_openapi, keys
from web.hours import MAX_HOURLY_DAYS
from web.params import query
from web.volume import HOURLY_UP_TO_DAYS

NUMBER = {"type": "number", "nullable": True}
COUNT = {"type": "integer", "minimum": 0}
COUNTS = {"type": "array", "items": COUNT}
NUMBERS = {"type": "array", "items": NUMBER}
STRINGS = {"type": "array", "items": {"type": "string"}}
RANGE = {"$ref": "#/components/schemas/Range"}
SCORES = {"type": "object", "required": ["precision", "recall", "f1"],
          "properties": {score: NUMBER for score in ("precision", "recall", "f1")}}
BY_AVERAGE = {"type": "object", "required": ["macro", "weighted"],
              "properties": {"macro": NUMBERS, "weighted": NUMBERS}}
# Local days 1970-01-01 .. 9998-12-31 (web.params.EARLIEST, LATEST), as the server accepts them.
YEAR = r"(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
DATE = {"type": "string", "format": "date",
        "pattern": rf"^{YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"}
# A time starting an hour-precise range: local in the configured zone, or with its own offset (web.hours).
HOUR_TIME = {"type": "string", "pattern": rf"^{YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):"
                                          r"[0-5][0-9](Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$"}
# The rules no JSON Schema can state (they relate two parameters), stated for people and for tests.
RANGE_RULE = ("`from` must not be after `to`, and the range spans at most web.max_range_days days "
              "(`x-clara-max-range-days`); otherwise HTTP 400 naming `to`")
HOUR_RULE = ("An hour-precise range (YYYY-MM-DDTHH:MM, local in the configured zone, or with an offset such as Z "
             "or +05:30) gives both ends so; each must start a local hour (and exist: not skipped by a clock change; "
             "a local hour given twice is the first), `to` is excluded and after `from`, and it spans at most "
             f"{MAX_HOURLY_DAYS * 24} hours; otherwise HTTP 400 naming the parameter")
DATE_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "description": text, "schema": DATE}
    for name, text in (("from", "First local day (YYYY-MM-DD, 1970-01-01 to 9998-12-31) in the configured zone; "
                                "default: web.default_range_days - 1 days before `to`. " + RANGE_RULE),
                       ("to", "Last local day, inclusive; default: today, or with `from` alone the last day of the "
                              "longest range from it up to today (never before `from`). " + RANGE_RULE))]
# Days, or an hour-precise range: what every endpoint of rollup figures takes (web.hours).
SPAN_PARAMETERS = [{**parameter, "description": f"{parameter['description']} Or the {end} of an hour-precise range. "
                                                f"{HOUR_RULE}.",
                    "schema": {"anyOf": [DATE, HOUR_TIME]}}
                   for parameter, end in zip(DATE_PARAMETERS, ("start", "end (excluded)"))]
BY_PARAMETER = {"name": "by", "in": "query", "required": False,
                "description": "One value per local day, or per local hour (from the first local midnight, or from an "
                               "hour-precise `from`); default: per hour for hour-precise ranges and date ranges of up "
                               f"to {HOURLY_UP_TO_DAYS} days. Per hour: at most {MAX_HOURLY_DAYS} days, and the only "
                               "choice for an hour-precise range (HTTP 400 naming `by` otherwise)",
                "schema": {"type": "string", "enum": ["day", "hour"]}}
SERIES_BY_PARAMETER = {**BY_PARAMETER,
                       "description": "The series per local day (default for date ranges), or per local hour "
                                      "(`hours`, UTC start times; default for hour-precise ranges, and the only "
                                      f"choice there; for date ranges of at most {MAX_HOURLY_DAYS} days, read as "
                                      "the hours of those whole days); HTTP 400 naming `by` otherwise"}
SERIES = frozenset({"/api/daily", *estimates_openapi.SERIES})
LIMIT_PARAMETER = {"name": "limit", "in": "query", "required": False,
                   "description": "Past alerts returned at most (newest first); default 100, 0 for open alerts only",
                   "schema": {"type": "integer", "minimum": 0, "maximum": 1000}}
# The rollup endpoints that answer for one segment (web.segments_api); the parameter's pattern names the
# configured fields (segment_parameter).
SEGMENTED = frozenset({"/api/summary", "/api/daily", "/api/classes", "/api/confusion", "/api/volume", "/api/training",
                       "/api/health", "/api/drift", *estimates_openapi.ENDPOINTS})


def segment_parameter(fields: tuple[str, ...]) -> dict:
    """`segment=field:value`, its pattern made of the configured fields (documented only where some are: without
    them the server refuses any value, with HTTP 400)."""
    names = "|".join(re.escape(field) for field in fields)
    return {"name": "segment", "in": "query", "required": False,
            "description": "Answer for one segment, `field:value` (for example model_version:v2), from the segment "
                           "rollups: the same figures for the predictions and reviews of that value only. The field "
                           f"is one of segments.fields ({', '.join(fields)}); the value 1 to {MAX_VALUE_LENGTH} "
                           "characters as /api/segments lists it (unknown: the field missing; other: beyond "
                           "segments.max_values); otherwise HTTP 400 naming `segment`. A value never seen gives an empty answer. Pending "
                           "reviews of a segment are its predictions minus bad ones minus its reviews",
            "schema": {"type": "string", "pattern": f"^({names}):.{{1,{MAX_VALUE_LENGTH}}}$"}}


def compare_parameters(fields: tuple[str, ...]) -> list[dict]:
    """`field`, `a` and `b` of /api/compare (web.compare_api)."""
    field = {"type": "string", "enum": list(fields)} if fields else {"type": "string"}
    value = {"type": "string", "minLength": 1, "maxLength": MAX_VALUE_LENGTH}
    return [{"name": "field", "in": "query", "required": True, "schema": field,
             "description": "The segment field to compare by: one of segments.fields (HTTP 400 naming `field` "
                            "otherwise, and when none is configured)"},
            *({"name": name, "in": "query", "required": True, "schema": value,
               "description": f"Side {name.upper()}: a value of `field` as /api/segments lists it (1 to "
                              f"{MAX_VALUE_LENGTH} characters; a value never seen has no reviews)"}
              for name in ("a", "b"))]


ALERT_ID_PARAMETER = {"name": "id", "in": "path", "required": True, "description": "The alert's id",
                      "schema": {"type": "string", "pattern": "^[0-9a-f]{24}$"}}


def _object(**properties) -> dict:
    return {"type": "object", "required": list(properties), "properties": properties}


TEXT, MOMENT = {"type": "string"}, {"type": "string", "format": "date-time"}
OBJECT = {"type": "object"}
# An alert as drift.alerts stores it; detail adds `transitions` and `deliveries`.
ALERT = _object(id=TEXT, key=TEXT, detector=TEXT, subject=TEXT, type=TEXT, severity=TEXT,
                status={"type": "string", "enum": ["open", "resolved"]}, message=TEXT, window=OBJECT,
                statistic=OBJECT, threshold=OBJECT, opened_at=MOMENT, updated_at=MOMENT,
                resolved_at={**MOMENT, "nullable": True}, evaluations=COUNT)
# Which population a check used ("all predictions", "reviewed predictions"; "" for operational ones), and
# whether it alerts (a comparison shown beside does not); absent on alerts opened by older versions.
POPULATION = {"population": TEXT, "alerting": {"type": "boolean"}}
ALERT["properties"] |= POPULATION
ALERT_LIST = {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}
FINDING = _object(key=TEXT, detector=TEXT, subject=TEXT, type=TEXT, firing={"type": "boolean", "nullable": True},
                  severity=TEXT, window=OBJECT, statistic=OBJECT, threshold=OBJECT, message=TEXT)
FINDING["properties"] |= POPULATION
SERIES = _object(key=TEXT, detector=TEXT, subject=TEXT, statistic=TEXT, title=TEXT, population=TEXT,
                 alerting={"type": "boolean"}, values=NUMBERS, p_values=NUMBERS,
                 firing={"type": "array", "items": {"type": "boolean", "nullable": True}}, threshold=NUMBERS,
                 threshold_label=TEXT)


# A difference of two proportions (estimates.compare, web.compare_api).
DIFFERENCE = _object(method=TEXT, assumption=TEXT, a=estimates_openapi.ESTIMATE, b=estimates_openapi.ESTIMATE,
                     difference=NUMBER, statistic=NUMBER, p_value=NUMBER, adjusted_p_value=NUMBER,
                     alpha={"type": "number"}, significant={"type": "boolean", "nullable": True},
                     reason={"type": "string", "nullable": True}, verdict=TEXT)
RELIABILITY = estimates_openapi.RELIABILITY


# Server-Sent Events of /api/stream: the JSON `data` of each event type (heartbeats are comments).
EVENTS = {
    "status": _object(live={"type": "boolean"}),
    "update": _object(hours={"type": "array", "nullable": True, "items": MOMENT}),
    "alerts": _object(ids={"type": "array", "nullable": True, "items": TEXT}),
}


# Volume and coverage: all predictions (prediction rollups) against the reviewed ones (review rollups).
FIGURES = {"predictions": COUNT, "bad": COUNT, "reviewed": COUNT, "rejected": COUNT, "pending": COUNT,
           "reviews": COUNT, "coverage": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True}}
FIGURE_SERIES = {name: {"type": "array", "items": {**schema, "nullable": True}} for name, schema in FIGURES.items()}
VOLUME = _object(range=RANGE, by={"type": "string", "enum": ["day", "hour"]}, periods=STRINGS, **FIGURE_SERIES,
                 total=_object(**FIGURES), today=_object(day={"type": "string", "format": "date"}, as_of=MOMENT,
                                                          **FIGURES),
                 recounting={"type": "boolean"})
LATENCY = _object(count=COUNT, mean_seconds=NUMBER, histogram={"type": "array", "items": _object(
    upper_seconds={"type": "integer", "nullable": True}, count=COUNT)})
SCHEMAS = {
    "Error": _object(error=_object(status={"type": "integer"}, parameter={"type": "string", "nullable": True},
                                   message={"type": "string"})),
    "Range": _object(**{"from": {"type": "string", "description": "YYYY-MM-DD, or YYYY-MM-DDTHH:MM local time"},
                        "to": {"type": "string", "description": "YYYY-MM-DD (inclusive), or YYYY-MM-DDTHH:MM "
                                                                 "local time (excluded)"},
                        "timezone": {"type": "string"}, "start": {"type": "string", "format": "date-time"},
                        "end": {"type": "string", "format": "date-time"}}),
    "Healthz": _object(status={"type": "string", "enum": ["ok"]}, mongodb={"type": "string", "enum": ["reachable"]}),
    "Meta": _object(classes=STRINGS, colors=STRINGS, timezone={"type": "string"}, default_range=RANGE,
                    max_range_days=COUNT, averages=STRINGS, segments=STRINGS),
    "Segments": _object(range=RANGE, max_values=COUNT, fields={"type": "array", "items": _object(
        field={"type": "string"}, values={"type": "array", "items": _object(
            value={"type": "string"}, predictions=COUNT, reviews=COUNT)})}),
    "Summary": _object(range=RANGE, reviews=COUNT, pending=COUNT, rejected_without_class=COUNT, accuracy=NUMBER,
                       averages=_object(macro=SCORES, weighted=SCORES), classes=STRINGS, colors=STRINGS,
                       samples_by_class=COUNTS, predicted_by_class=COUNTS, mean_confidence=NUMBER,
                       mean_latency_seconds=NUMBER),
    "Daily": {**_object(range=RANGE, by={"type": "string", "enum": ["day", "hour"]}, reviews=COUNTS,
                        accuracy=NUMBERS, precision=BY_AVERAGE, recall=BY_AVERAGE, f1=BY_AVERAGE),
              "properties": {"days": {"type": "array", "items": {"type": "string", "format": "date"}},
                             "hours": {"type": "array", "items": MOMENT}}},
    "Classes": _object(range=RANGE, classes=STRINGS, colors=STRINGS, precision=NUMBERS, recall=NUMBERS,
                       f1=NUMBERS, support=COUNTS, predicted=COUNTS),
    "Confusion": _object(range=RANGE, classes=STRINGS, matrix={"type": "array", "items": COUNTS},
                         rates={"type": "array", "items": NUMBERS}, rejected=COUNTS),
    "Training": _object(range=RANGE, classes=STRINGS, colors=STRINGS, training_counts=COUNTS, predicted=COUNTS,
                        reviewed_true=COUNTS, reviews=COUNT, rejected_without_class=COUNT, all_predicted=COUNTS,
                        all_predictions=COUNT, bad=COUNT),
    "Volume": VOLUME,
    "Compare": _object(range=RANGE, by={"type": "string", "enum": ["day", "hour"]}, field=TEXT, a=TEXT, b=TEXT,
                       classes=STRINGS, colors=STRINGS, accuracy=DIFFERENCE,
                       recall={"type": "array", "items": DIFFERENCE},
                       calibration=_object(a=RELIABILITY, b=RELIABILITY),
                       mix=_object(**dict.fromkeys("ab", _object(predictions=COUNT, bad=COUNT, by_class=COUNTS))),
                       common=STRINGS, periods=STRINGS, accuracy_by_period=_object(**dict.fromkeys("ab", {
                           "type": "array", "items": estimates_openapi.ESTIMATE}))),
    "Health": _object(range=RANGE, segment={**_object(field=TEXT, value=TEXT), "nullable": True}, pending=COUNT,
                      latency=LATENCY, outbox_backlog=COUNT, live={"type": "boolean"},
                      rejects=_object(total=COUNT, by_reason={"type": "array", "items": _object(
                          reason={"type": "string"}, field={"type": "string", "nullable": True}, count=COUNT,
                          last_at={"type": "string", "format": "date-time", "nullable": True})}),
                      consumer=_object(known={"type": "boolean"},
                                       last_batch_at={"type": "string", "format": "date-time", "nullable": True},
                                       lag_seconds=NUMBER, seconds_since_last_batch=NUMBER),
                      segments_pending={**_object(batches=COUNT, oldest_at={
                          "type": "string", "format": "date-time", "nullable": True}), "nullable": True}),
    "Alert": ALERT,
    "Alerts": _object(range=RANGE, limit=COUNT, open=ALERT_LIST, past=ALERT_LIST),
    "AlertDetail": {**ALERT, "required": [*ALERT["required"], "transitions"],
                    "properties": {**ALERT["properties"], "transitions": {"type": "array", "items": OBJECT},
                                   "deliveries": {"type": "array", "items": OBJECT}}},
    "StatusEvent": EVENTS["status"],
    "UpdateEvent": EVENTS["update"],
    "AlertsEvent": EVENTS["alerts"],
    "Drift": _object(range=RANGE, segment={**_object(field=TEXT, value=TEXT), "nullable": True,
                                            "description": "the segment the findings and series are of (the "
                                                           "`segment` parameter); null: every prediction"},
                     evaluated_at={**MOMENT, "nullable": True},
                     findings={"type": "array", "items": FINDING, "description": "the latest evaluation's "
                               "findings; with `segment`, only that segment's"},
                     segment_findings_left_out={"type": "integer", "minimum": 0,
                                                "description": "per-segment findings of the last evaluation left "
                                                               "out of `findings` (they did not fit the state "
                                                               "document); their alerts still open"},
                     days={"type": "array", "items": {"type": "string", "format": "date"}},
                     series={"type": "array", "items": SERIES}),
}
# path -> (summary, response schema or media type, takes the date range or the given parameters)
ENDPOINTS = {
    "/api/meta": ("Classes, colours, time zone and the default date range", "Meta", False),
    "/api/summary": ("Totals, accuracy and macro/weighted precision, recall and F1 over the range", "Summary", True),
    "/api/daily": ("The same metrics per local day (`days`), or per local hour (`hours`, UTC start times) with "
                   "`by=hour`; a period without reviews is null", "Daily", True),
    "/api/classes": ("Precision, recall, F1, support and predictions per class", "Classes", True),
    "/api/confusion": ("Confusion matrix: counts and row-normalised rates", "Confusion", True),
    "/api/volume": ("All predictions per local day (or hour: `periods`, UTC start times) split into reviewed (a true class "
                    "known), rejected without a class, pending and bad (set aside); `coverage` = reviews / (reviews "
                    "+ pending); `today` so far; null after now", "Volume", [*SPAN_PARAMETERS, BY_PARAMETER]),
    "/api/training": ("Training-set class counts beside the range's predictions: all of them by predicted class, "
                      "the reviewed ones by predicted and by true class", "Training", True),
    "/api/segments": ("Every configured segment field with the values seen in the range (predictions or reviews), "
                      "busiest first, with their counts: what `segment` can name", "Segments", True),
    "/api/compare": ("Two values of a segment field side by side, over the periods where both have reviews "
                     "(`common`): reviewed predictions' "
                     "accuracy and per-class recall (Wilson intervals) with a test of each difference (pooled "
                     "two-proportion z-test, Fisher's exact test for small tables; Benjamini-Hochberg over classes) "
                     "and its verdict in words, reliability of each, the predicted-class mix of all predictions, and "
                     "accuracy per day (or hour)", "Compare", [*SPAN_PARAMETERS, BY_PARAMETER]),
    "/api/health": ("Pending reviews and review latency (of the `segment` when one is given), and, for the whole "
                    "system whatever the segment: documents set aside, the outbox and the consumer", "Health", True),
    "/api/alerts": ("Open alerts, and past alerts opened in the range (newest first, at most `limit`)", "Alerts",
                    [*DATE_PARAMETERS, LIMIT_PARAMETER]),
    "/api/alerts/{id}": ("One alert with its transitions and webhook deliveries; 404 when unknown", "AlertDetail",
                         [ALERT_ID_PARAMETER]),
    "/api/drift": ("The latest drift findings, and each day-window check per day of the range with its alert line; "
                   "with `segment`, that segment's findings and its checks per day from its own rollups, against "
                   "its own reference period",
                   "Drift", DATE_PARAMETERS),
    "/api/stream": ("Server-Sent Events: `status` ({live}), `update` ({hours}: UTC starts of the rollup periods that changed, "
                    "null for unknown) and `alerts` ({ids}, null for unknown) events, heartbeat comments; honours "
                    "Last-Event-ID. Each event's data is JSON, described by `x-clara-events`",
                    "text/event-stream", False),
    "/api/openapi.json": ("This description", "application/json", False),
    "/healthz": ("200 when MongoDB answers a ping, 503 otherwise; never needs credentials", "Healthz", False),
    "/metrics": ("Prometheus text exposition: metrics over the default range, consumer lag, request counts",
                 "text/plain", False),
}

SCHEMAS |= estimates_openapi.SCHEMAS
ENDPOINTS |= {path: (summary, body, [*(DATE_PARAMETERS if path in estimates_openapi.DAYS_ONLY else SPAN_PARAMETERS),
                                        *parameters])
              for path, (summary, body, parameters) in estimates_openapi.ENDPOINTS.items()}
ENDPOINTS |= {path: (summary, body, [*(SPAN_PARAMETERS if parameters is True else parameters), SERIES_BY_PARAMETER])
              for path, (summary, body, parameters) in ENDPOINTS.items() if path in SERIES}

WITHOUT_DATABASE = frozenset({"/api/meta", "/api/stream", "/api/openapi.json"})


# Where an alert listed by /api/alerts is read in full: schemathesis follows these to /api/alerts/{id}.
ALERT_LINKS = {name: {"operationId": "api_alerts_id", "parameters": {"id": f"$response.body#/{part}/0/id"},
                      "description": f"The first {part} alert in detail"}
               for name, part in (("OpenAlertDetail", "open"), ("PastAlertDetail", "past"))}


def _operation(path: str, summary: str, body: str, parameters: bool | list[dict], max_range_days: int,
               segment_fields: tuple[str, ...]) -> dict:
    if body in SCHEMAS:
        content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}
    elif body == "text/event-stream":
        content = {body: {"schema": {"type": "string"}, "x-clara-events": {
            name: {"$ref": f"#/components/schemas/{name.capitalize()}Event"} for name in EVENTS}}}
    else:
        content = {body: {"schema": {"type": "object" if body == "application/json" else "string"}}}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    responses = {"200": {"description": "OK", "content": content},
                 "400": {"description": "A bad query parameter, named in the body", **error},
                 "401": {"description": "Credentials required", **error}}
    parameters = SPAN_PARAMETERS if parameters is True else parameters or []
    if path in SEGMENTED and segment_fields:
        parameters = [*parameters, segment_parameter(segment_fields)]
    if path == "/api/compare":
        parameters = [*parameters, *compare_parameters(segment_fields)]
    if any(parameter["in"] == "path" for parameter in parameters):
        responses["404"] = {"description": "No such resource", **error}
    if path not in WITHOUT_DATABASE:
        responses["503"] = {"description": "MongoDB is unavailable", **error}
    if path == "/api/alerts":
        responses["200"]["links"] = ALERT_LINKS
    operation_id = path.strip("/").translate(str.maketrans("/.", "__", "{}"))
    operation = {"summary": summary, "operationId": operation_id, "parameters": parameters, "responses": responses}
    if any(parameter["name"] == "from" for parameter in parameters):
        operation["x-clara-max-range-days"] = max_range_days
    return {"get": operation}


def document(max_range_days: int = 400, segment_fields: tuple[str, ...] = ()) -> dict:
    return {"openapi": "3.0.3",
            "info": {"title": "CLARA Monitor", "version": "1.0",
                     "description": "Exact classification metrics from hourly rollups. Dates are local days in the "
                                    "configured time zone, times (hour-precise ranges) local hours; unknown query "
                                    "parameters are refused with 400."},
            "paths": {path: _operation(path, *spec, max_range_days, segment_fields)
                      for path, spec in ENDPOINTS.items()},
            "components": {"schemas": SCHEMAS,
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                               "basic": {"type": "http", "scheme": "basic"}}}}


async def openapi(request: web.Request) -> web.Response:
    query(request, allowed=())
    settings = request.app[keys.CONFIG].web
    body = document(settings.max_range_days, request.app[keys.CONFIG].segments.fields)
    if settings.api_token or settings.basic_auth:
        body["security"] = [{"bearer": []}, {"basic": []}]
    return web.json_response(body)
