"""Value checks on a loaded configuration that types alone cannot express; each error names the key."""

from __future__ import annotations

import datetime as dt
import typing
import warnings
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pymongo import uri_parser
from pymongo.errors import PyMongoError

from clara.errors import ConfigError
from clara.periods import rollup_period
from clara.settings import AlertSettings, Config

MAX_REFERENCE_DAYS = 90   # the longest `reference_days` the estimate endpoints accept, too
MAX_FOLD_SECONDS = 60   # segment figures trail the overall ones by at most this while the consumer is behind
MAX_SEGMENT_VALUES = 1000   # distinct values per segment field: each one is a rollup per period
MAX_SEGMENT_FIELD = 100
MAX_ALERTS_PER_EVALUATION = 1000   # the largest alerts.max_per_evaluation accepted
CLARA_FIELDS = ("_id", "logged", "logged_at", "logged_as")   # not the model's: CLARA writes them
URI_EXAMPLE = "a MongoDB URI such as mongodb://host:27017/?replicaSet=rs0"


class Origin(str):
    """The configuration file's name, knowing which keys an environment variable set ("web.port" -> "PORT"),
    so that a bad value is blamed on where it came from."""

    environment: Mapping[str, str]

    def __new__(cls, source: str, environment: Mapping[str, str] | None = None) -> Origin:
        origin = super().__new__(cls, source)
        origin.environment = dict(environment or {})
        return origin


def _fail(source: str, key: str, value: Any, expected: str) -> typing.NoReturn:
    shown = "<hidden: it holds credentials>" if key == "mongodb.uri" and "@" in str(value) else repr(value)
    variable = getattr(source, "environment", {}).get(key)
    where = f"environment variable {variable}" if variable else f"{source}: {key}"
    raise ConfigError(f"{where} = {shown}: expected {expected}")


def uri_problem(uri: str) -> str | None:
    """Why the MongoDB driver would refuse this URI (None: it would not), found without any network I/O."""
    parts = urlsplit(uri)
    if parts.scheme not in ("mongodb", "mongodb+srv") or not parts.hostname:
        return ""
    # The driver resolves mongodb+srv names when it parses them; the rest of the syntax is checked offline.
    offline = uri if parts.scheme == "mongodb" else "mongodb://" + uri.removeprefix("mongodb+srv://")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown options are warnings to the driver too, not errors
            uri_parser.parse_uri(offline, warn=True)
    except (PyMongoError, ValueError) as exc:
        if parts.scheme == "mongodb+srv" and "srv" in str(exc).lower():
            return None
        reason = str(exc)
        return "the driver refuses it" if parts.password and len(parts.password) > 3 and parts.password in reason else reason
    return None


def check(config: Config, source: str) -> None:
    """Cross-field and value checks that types alone cannot express."""
    mongo, model, consumer, web, whylabs = config.mongodb, config.model, config.consumer, config.web, config.whylabs
    problem = uri_problem(mongo.uri)
    if problem is not None:
        _fail(source, "mongodb.uri", mongo.uri, URI_EXAMPLE + (f" ({problem})" if problem else ""))
    if not mongo.database or any(ch in mongo.database for ch in ' $/\\."'):
        _fail(source, "mongodb.database", mongo.database, "a database name without spaces, '$', '/', '.' or quotes")
    for key in ("source_collection", "rollups_collection", "outbox_collection",
                "rejects_collection", "state_collection", "alerts_collection", "counted_collection",
                "predictions_collection", "segment_rollups_collection", "segment_predictions_collection",
                "segment_pending_collection"):
        value = getattr(mongo, key)
        if not value.strip() or "$" in value or value.startswith("system."):
            _fail(source, f"mongodb.{key}", value, "a collection name without '$', not starting with 'system.'")
    if mongo.server_selection_timeout_seconds <= 0:
        _fail(source, "mongodb.server_selection_timeout_seconds", mongo.server_selection_timeout_seconds,
              "a positive number of seconds")
    if not model.classes:
        _fail(source, "model.classes", list(model.classes), "at least one class name")
    if len(set(model.classes)) != len(model.classes):
        _fail(source, "model.classes", list(model.classes), "distinct class names")
    for key in ("colors", "training_counts"):
        value = getattr(model, key)
        if len(value) != len(model.classes):
            _fail(source, f"model.{key}", list(value), f"one entry per class ({len(model.classes)})")
    if any(count < 0 for count in model.training_counts):
        _fail(source, "model.training_counts", list(model.training_counts), "counts of zero or more")
    _check_timezone(source, model.timezone)
    for key in ("batch_size", "catchup_batch_size", "recheck_per_poll"):
        if getattr(consumer, key) < 1:
            _fail(source, f"consumer.{key}", getattr(consumer, key), "an integer of at least 1")
    for key in ("batch_max_seconds", "poll_interval_seconds", "checkpoint_idle_seconds",
                "reconnect_max_seconds", "outbox_drain_interval_seconds", "lease_seconds",
                "transaction_max_seconds"):
        if getattr(consumer, key) <= 0:
            _fail(source, f"consumer.{key}", getattr(consumer, key), "a positive number of seconds")
    if not config.profiles.local_store_dir:
        _fail(source, "profiles.local_store_dir", "", "a directory path")
    for key in ("local_store_interval_seconds", "dead_retention_days"):
        if getattr(config.profiles, key) < 0:
            _fail(source, f"profiles.{key}", getattr(config.profiles, key), "zero or a positive number")
    endpoint = urlsplit(whylabs.endpoint)
    if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
        _fail(source, "whylabs.endpoint", whylabs.endpoint, "an http(s) URL")
    if whylabs.attempts < 1:
        _fail(source, "whylabs.attempts", whylabs.attempts, "an integer of at least 1")
    for key in ("max_seconds", "attempt_timeout_seconds", "backoff_initial_seconds", "backoff_max_seconds"):
        if getattr(whylabs, key) <= 0:
            _fail(source, f"whylabs.{key}", getattr(whylabs, key), "a positive number of seconds")
    if whylabs.upload_interval_seconds < 0:
        _fail(source, "whylabs.upload_interval_seconds", whylabs.upload_interval_seconds, "zero or more seconds")
    if not 1 <= web.port <= 65535:
        _fail(source, "web.port", web.port, "a TCP port from 1 to 65535")
    if not web.host or any(ch.isspace() or ch in "/@" for ch in web.host):
        _fail(source, "web.host", web.host, "a host name or IP address to listen on, such as 127.0.0.1 or 0.0.0.0")
    if web.api_timeout_seconds <= 0:
        _fail(source, "web.api_timeout_seconds", web.api_timeout_seconds, "a positive number of seconds")
    if not 1 <= web.default_range_days <= web.max_range_days:
        _fail(source, "web.default_range_days", web.default_range_days,
              f"from 1 to web.max_range_days ({web.max_range_days})")
    for key in ("sse_heartbeat_seconds", "sse_max_updates_per_second"):
        if getattr(web, key) <= 0:
            _fail(source, f"web.{key}", getattr(web, key), "a positive number")
    if web.basic_auth and ":" not in web.basic_auth:
        raise ConfigError("environment variable CLARA_BASIC_AUTH: expected user:password")
    _check_drift(config, source)
    _check_estimates(config, source)
    _check_alerts(config.alerts, source)
    _check_segments(config, source)


def _check_segments(config: Config, source: str) -> None:
    segments = config.segments
    for i, field in enumerate(segments.fields):
        if not field or len(field) > MAX_SEGMENT_FIELD or field.startswith("$") or "." in field \
                or field in CLARA_FIELDS:
            _fail(source, f"segments.fields[{i}]", field,
                  f"the name of a top-level field of the source documents (at most {MAX_SEGMENT_FIELD} characters, "
                  f"no '.', not starting with '$', not one of {', '.join(CLARA_FIELDS)})")
        if segments.fields.index(field) != i:
            _fail(source, f"segments.fields[{i}]", field, "a field named only once")
    if not 1 <= segments.max_values <= MAX_SEGMENT_VALUES:
        _fail(source, "segments.max_values", segments.max_values,
              f"a number of distinct values per field from 1 to {MAX_SEGMENT_VALUES}")
    if not 0 <= segments.fold_seconds <= MAX_FOLD_SECONDS:
        _fail(source, "segments.fold_seconds", segments.fold_seconds,
              f"a number of seconds from 0 (apply every batch's segment increments at once) to {MAX_FOLD_SECONDS}")


def _check_drift(config: Config, source: str) -> None:
    drift = config.drift
    for key in ("window_reviews", "min_reviews", "baseline_days", "min_reference_reviews", "recall_min_reviews",
                "window_predictions", "min_predictions", "min_reference_predictions", "volume_weeks",
                "volume_min_predictions", "calibration_min_bin_reviews"):
        if getattr(drift, key) < 1:
            _fail(source, f"drift.{key}", getattr(drift, key), "an integer of at least 1")
    if drift.min_reviews > drift.window_reviews:
        _fail(source, "drift.min_reviews", drift.min_reviews, f"at most drift.window_reviews ({drift.window_reviews})")
    if drift.min_predictions > drift.window_predictions:
        _fail(source, "drift.min_predictions", drift.min_predictions,
              f"at most drift.window_predictions ({drift.window_predictions})")
    if not 0 < drift.volume_low_ratio < 1:
        _fail(source, "drift.volume_low_ratio", drift.volume_low_ratio, "a share of the usual volume, between 0 and 1")
    if not drift.volume_high_ratio > 1:
        _fail(source, "drift.volume_high_ratio", drift.volume_high_ratio, "a multiple of the usual volume, above 1")
    if drift.evaluate_interval_seconds < 0:
        _fail(source, "drift.evaluate_interval_seconds", drift.evaluate_interval_seconds, "zero or more seconds")
    if drift.class_reference not in ("baseline", "training", "both", "auto"):
        _fail(source, "drift.class_reference", drift.class_reference, "'baseline', 'training', 'both' or 'auto'")
    if drift.class_reference in ("training", "both") and not sum(config.model.training_counts):
        _fail(source, "drift.class_reference", drift.class_reference,
              "'baseline' or 'auto' while model.training_counts are all zero")
    dates = []
    for key in ("reference_start", "reference_end"):
        value = getattr(drift, key)
        try:
            dates.append(dt.date.fromisoformat(value) if value else None)
        except ValueError:
            _fail(source, f"drift.{key}", value, "a date such as 2025-01-31, or \"\" for a rolling baseline")
    if (dates[0] is None) != (dates[1] is None) or (dates[0] and dates[0] > dates[1]):
        _fail(source, "drift.reference_end", drift.reference_end,
              "set together with drift.reference_start, on or after it (or both empty)")
    if not 0 < drift.alpha < 1:
        _fail(source, "drift.alpha", drift.alpha, "a significance level strictly between 0 and 1")
    for key in ("class_mix_min_distance", "confidence_min_distance", "accuracy_min_drop", "accuracy_floor",
                "recall_min_drop", "calibration_min_change", "label_shift_min_distance"):
        if not 0 <= getattr(drift, key) <= 1:
            _fail(source, f"drift.{key}", getattr(drift, key), "a number from 0 to 1")
    if drift.label_shift_method not in ("bbse", "rlls"):
        _fail(source, "drift.label_shift_method", drift.label_shift_method, "'bbse' or 'rlls'")
    if drift.multiple_testing not in ("none", "holm", "bh"):
        _fail(source, "drift.multiple_testing", drift.multiple_testing,
              "'none', 'holm' (family-wise error) or 'bh' (Benjamini-Hochberg false discovery rate)")
    if drift.backlog_max_pending < 0:
        _fail(source, "drift.backlog_max_pending", drift.backlog_max_pending, "zero (off) or a positive count")
    if drift.lag_max_seconds < 0:
        _fail(source, "drift.lag_max_seconds", drift.lag_max_seconds, "zero (off) or a positive number of seconds")
    if drift.outbox_max_entries < 0:
        _fail(source, "drift.outbox_max_entries", drift.outbox_max_entries, "zero (off) or a positive count")
    if drift.outbox_max_age_seconds < 0:
        _fail(source, "drift.outbox_max_age_seconds", drift.outbox_max_age_seconds,
              "zero (off) or a positive number of seconds")


def _check_estimates(config: Config, source: str) -> None:
    estimates = config.estimates
    for key in ("min_day_reviews", "f1_draws", "bbse_draws", "rlls_draws"):
        if getattr(estimates, key) < 1:
            _fail(source, f"estimates.{key}", getattr(estimates, key), "an integer of at least 1")
    if not 1 <= estimates.reference_days <= MAX_REFERENCE_DAYS:
        _fail(source, "estimates.reference_days", estimates.reference_days,
              f"a number of days from 1 to {MAX_REFERENCE_DAYS}")
    if not 0 <= estimates.calibrated_within < 1:
        _fail(source, "estimates.calibrated_within", estimates.calibrated_within, "a number from 0 to below 1")
    if estimates.seed < 0:
        _fail(source, "estimates.seed", estimates.seed, "an integer of zero or more")


def _check_alerts(alerts: AlertSettings, source: str) -> None:
    if alerts.cooldown_seconds < 0:
        _fail(source, "alerts.cooldown_seconds", alerts.cooldown_seconds, "zero or more seconds")
    if alerts.attempts < 1:
        _fail(source, "alerts.attempts", alerts.attempts, "an integer of at least 1")
    if not 1 <= alerts.max_per_evaluation <= MAX_ALERTS_PER_EVALUATION:
        _fail(source, "alerts.max_per_evaluation", alerts.max_per_evaluation,
              f"an integer from 1 to {MAX_ALERTS_PER_EVALUATION}")
    for key in ("deliveries_drain_interval_seconds", "attempt_timeout_seconds", "backoff_initial_seconds",
                "backoff_max_seconds", "redeliver_initial_seconds", "redeliver_max_seconds", "give_up_hours"):
        if getattr(alerts, key) <= 0:
            _fail(source, f"alerts.{key}", getattr(alerts, key), "a positive number")
    names = [hook.name for hook in alerts.webhooks]
    for i, hook in enumerate(alerts.webhooks):
        if not hook.name or names.count(hook.name) > 1:
            _fail(source, f"alerts.webhooks[{i}].name", hook.name, "a name no other webhook has")
        if hook.format not in ("json", "slack"):
            _fail(source, f"alerts.webhooks[{i}].format", hook.format, "'json' or 'slack'")
        if not hook.url_env or not hook.url_env.replace("_", "A").isalnum() or not hook.url_env.isupper() \
                or hook.url_env[0].isdigit():
            _fail(source, f"alerts.webhooks[{i}].url_env", hook.url_env,
                  "the NAME of an environment variable holding the URL, such as CLARA_SLACK_WEBHOOK_URL")


def _check_timezone(source: str, name: str) -> None:
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{source}: model.timezone = {name!r}: expected an IANA time zone "
                          f"such as 'Europe/Madrid'") from exc
    try:
        rollup_period(zone)
    except ValueError as exc:
        raise ConfigError(f"{source}: model.timezone = {name!r}: {exc}") from exc
