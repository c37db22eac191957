"""Configuration: config.toml loaded once into frozen dataclasses, validated, with environment overrides.

Every error names the key, the value and what was expected. Secrets (the MongoDB password, the
WhyLabs API key, the dashboard credentials, webhook URLs) come only from the environment.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clara.errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.toml"


@dataclasses.dataclass(frozen=True)
class MongoSettings:
    uri: str = "mongodb://127.0.0.1:27017/?replicaSet=rs0"
    database: str = "mlops_labeller_db"
    source_collection: str = "image_logs"
    rollups_collection: str = "clara_rollups_hourly"
    outbox_collection: str = "clara_outbox"
    rejects_collection: str = "clara_rejects"
    state_collection: str = "clara_state"
    alerts_collection: str = "clara_alerts"
    server_selection_timeout_seconds: float = 10.0


@dataclasses.dataclass(frozen=True)
class ModelSettings:
    classes: tuple[str, ...] = ("SIGRE", "blue", "brown", "green", "green_point", "grey", "yellow")
    colors: tuple[str, ...] = (
        "rgb(219,0,146)", "blue", "rgb(150,100,25)", "green", "rgb(35,150,102)", "grey", "rgb(255,153,0)",
    )
    training_counts: tuple[int, ...] = (0, 0, 0, 0, 0, 0, 0)
    timezone: str = "Europe/Madrid"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclasses.dataclass(frozen=True)
class ConsumerSettings:
    batch_size: int = 500
    batch_max_seconds: float = 0.25
    catchup_batch_size: int = 1000
    poll_interval_seconds: float = 2.0
    checkpoint_idle_seconds: float = 60.0
    reconnect_max_seconds: float = 30.0
    outbox_drain_interval_seconds: float = 5.0


@dataclasses.dataclass(frozen=True)
class ProfileSettings:
    local_store: bool = True
    local_store_dir: str = "var/profiles"


@dataclasses.dataclass(frozen=True)
class WhyLabsSettings:
    org_id: str = ""
    dataset_id: str = ""
    endpoint: str = "https://api.whylabsapp.com"
    attempts: int = 5
    max_seconds: float = 120.0
    attempt_timeout_seconds: float = 15.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    api_key: str = dataclasses.field(default="", repr=False)

    @property
    def enabled(self) -> bool:
        return bool(self.api_key and self.org_id and self.dataset_id)


@dataclasses.dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 5004
    default_range_days: int = 7
    max_range_days: int = 400
    sse_heartbeat_seconds: float = 15.0
    sse_max_updates_per_second: float = 4.0
    api_token: str = dataclasses.field(default="", repr=False)
    basic_auth: str = dataclasses.field(default="", repr=False)


@dataclasses.dataclass(frozen=True)
class DriftSettings:
    enabled: bool = True
    evaluate_interval_seconds: float = 30.0
    window_reviews: int = 2000
    day_window: bool = True
    min_reviews: int = 200
    class_reference: str = "auto"
    baseline_days: int = 14
    reference_start: str = ""
    reference_end: str = ""
    min_reference_reviews: int = 500
    alpha: float = 0.001
    prediction_drift: bool = True
    label_drift: bool = True
    confidence_drift: bool = True
    performance: bool = True
    class_mix_min_distance: float = 0.1
    confidence_min_distance: float = 0.1
    accuracy_min_drop: float = 0.05
    accuracy_floor: float = 0.0
    recall_min_drop: float = 0.15
    recall_min_reviews: int = 100
    backlog_max_pending: int = 0
    lag_max_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class WebhookSettings:
    name: str = ""
    format: str = "json"
    url_env: str = ""


@dataclasses.dataclass(frozen=True)
class AlertSettings:
    cooldown_seconds: float = 3600.0
    deliveries_drain_interval_seconds: float = 10.0
    attempts: int = 3
    attempt_timeout_seconds: float = 10.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 10.0
    redeliver_initial_seconds: float = 30.0
    redeliver_max_seconds: float = 1800.0
    give_up_hours: float = 72.0
    webhooks: tuple[WebhookSettings, ...] = ()


@dataclasses.dataclass(frozen=True)
class Config:
    mongodb: MongoSettings = MongoSettings()
    model: ModelSettings = ModelSettings()
    consumer: ConsumerSettings = ConsumerSettings()
    profiles: ProfileSettings = ProfileSettings()
    whylabs: WhyLabsSettings = WhyLabsSettings()
    web: WebSettings = WebSettings()
    drift: DriftSettings = DriftSettings()
    alerts: AlertSettings = AlertSettings()
    source: str = "<defaults>"

    @property
    def n_classes(self) -> int:
        return len(self.model.classes)


# Environment variables: which setting each one overrides. Only deployment values and secrets.
ENVIRONMENT = {
    "MONGODB_URI": ("mongodb", "uri"),
    "PORT": ("web", "port"),
    "WHYLABS_API_KEY": ("whylabs", "api_key"),
    "WHYLABS_DEFAULT_ORG_ID": ("whylabs", "org_id"),
    "WHYLABS_DEFAULT_DATASET_ID": ("whylabs", "dataset_id"),
    "WHYLABS_API_ENDPOINT": ("whylabs", "endpoint"),
    "CLARA_API_TOKEN": ("web", "api_token"),
    "CLARA_BASIC_AUTH": ("web", "basic_auth"),
}
SECRET_KEYS = {("whylabs", "api_key"), ("web", "api_token"), ("web", "basic_auth")}
SECTIONS: dict[str, type] = {name: cls for name, cls in typing.get_type_hints(Config).items() if name != "source"}


def load_config(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read config.toml (or `path`), apply environment overrides, validate everything."""
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    environ = os.environ if environ is None else environ
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such configuration file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return config_from_mapping(raw, environ, source=str(path))


def config_from_mapping(raw: Mapping[str, Any], environ: Mapping[str, str] | None = None,
                        source: str = "<mapping>") -> Config:
    """Validate a parsed TOML mapping plus environment overrides into a Config."""
    environ = {} if environ is None else environ
    for name in raw:
        if name not in SECTIONS:
            raise ConfigError(f"{source}: unknown section [{name}]; expected one of {', '.join(SECTIONS)}")
    sections: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        table = raw.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: [{name}] must be a table, got {table!r}")
        for key in table:
            if (name, key) in SECRET_KEYS:
                env = next(var for var, target in ENVIRONMENT.items() if target == (name, key))
                raise ConfigError(f"{source}: {name}.{key} is a secret and is never read from the file; "
                                  f"set the environment variable {env} instead")
        sections[name] = dict(table)
    file_uri = sections["mongodb"].get("uri")
    if isinstance(file_uri, str) and "@" in file_uri:
        raise ConfigError(f"{source}: mongodb.uri holds credentials; secrets are never read from the file: "
                          f"set the environment variable MONGODB_URI instead")
    for var, (section, key) in ENVIRONMENT.items():
        if environ.get(var):
            sections[section][key] = environ[var] if key != "port" else _env_int(var, environ[var])
    built = {name: _build_section(name, SECTIONS[name], sections[name], source) for name in SECTIONS}
    config = Config(**built, source=source)
    _check(config, source)
    return config


def _env_int(var: str, value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"environment variable {var}={value!r}: expected an integer") from exc


def _build_section(name: str, cls: type, table: dict[str, Any], source: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in table:
        if key not in known:
            public = sorted(k for k in known if (name, k) not in SECRET_KEYS)
            raise ConfigError(f"{source}: unknown key {name}.{key}; expected one of {', '.join(public)}")
    values = {key: _coerce(f"{name}.{key}", value, hints[key], source) for key, value in table.items()}
    return cls(**values)


def _coerce(key: str, value: Any, expected: Any, source: str) -> Any:
    origin = typing.get_origin(expected)
    if origin is tuple:
        item_type = typing.get_args(expected)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} = {value!r}: expected a list of {_type_name(item_type)}")
        return tuple(_coerce(f"{key}[{i}]", item, item_type, source) for i, item in enumerate(value))
    if dataclasses.is_dataclass(expected):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: {key} = {value!r}: expected a table")
        return _build_section(key, expected, dict(value), source)
    if expected is bool:
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif expected is str:
        ok = isinstance(value, str)
    else:  # pragma: no cover - a programming error in the dataclasses above
        raise TypeError(f"unsupported config type {expected!r} for {key}")
    if not ok:
        raise ConfigError(f"{source}: {key} = {value!r}: expected {_type_name(expected)}")
    return value


def _type_name(expected: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        expected, getattr(expected, "__name__", str(expected)))


def _fail(source: str, key: str, value: Any, expected: str) -> typing.NoReturn:
    shown = "<hidden: it holds credentials>" if key == "mongodb.uri" and "@" in str(value) else repr(value)
    raise ConfigError(f"{source}: {key} = {shown}: expected {expected}")


def _check(config: Config, source: str) -> None:
    """Cross-field and value checks that types alone cannot express."""
    mongo, model, consumer, web, whylabs = config.mongodb, config.model, config.consumer, config.web, config.whylabs
    parts = urlsplit(mongo.uri)
    if parts.scheme not in ("mongodb", "mongodb+srv") or not parts.hostname:
        _fail(source, "mongodb.uri", mongo.uri, "a MongoDB URI such as mongodb://host:27017/?replicaSet=rs0")
    if not mongo.database or any(ch in mongo.database for ch in ' $/\\."'):
        _fail(source, "mongodb.database", mongo.database, "a database name without spaces, '$', '/', '.' or quotes")
    for key in ("source_collection", "rollups_collection", "outbox_collection",
                "rejects_collection", "state_collection", "alerts_collection"):
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
    for key in ("batch_size", "catchup_batch_size"):
        if getattr(consumer, key) < 1:
            _fail(source, f"consumer.{key}", getattr(consumer, key), "an integer of at least 1")
    for key in ("batch_max_seconds", "poll_interval_seconds", "checkpoint_idle_seconds",
                "reconnect_max_seconds", "outbox_drain_interval_seconds"):
        if getattr(consumer, key) <= 0:
            _fail(source, f"consumer.{key}", getattr(consumer, key), "a positive number of seconds")
    if not config.profiles.local_store_dir:
        _fail(source, "profiles.local_store_dir", "", "a directory path")
    endpoint = urlsplit(whylabs.endpoint)
    if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
        _fail(source, "whylabs.endpoint", whylabs.endpoint, "an http(s) URL")
    if whylabs.attempts < 1:
        _fail(source, "whylabs.attempts", whylabs.attempts, "an integer of at least 1")
    for key in ("max_seconds", "attempt_timeout_seconds", "backoff_initial_seconds", "backoff_max_seconds"):
        if getattr(whylabs, key) <= 0:
            _fail(source, f"whylabs.{key}", getattr(whylabs, key), "a positive number of seconds")
    if not 1 <= web.port <= 65535:
        _fail(source, "web.port", web.port, "a TCP port from 1 to 65535")
    if not 1 <= web.default_range_days <= web.max_range_days:
        _fail(source, "web.default_range_days", web.default_range_days,
              f"from 1 to web.max_range_days ({web.max_range_days})")
    for key in ("sse_heartbeat_seconds", "sse_max_updates_per_second"):
        if getattr(web, key) <= 0:
            _fail(source, f"web.{key}", getattr(web, key), "a positive number")
    if web.basic_auth and ":" not in web.basic_auth:
        raise ConfigError("environment variable CLARA_BASIC_AUTH: expected user:password")
    _check_drift(config, source)
    _check_alerts(config.alerts, source)


def _check_drift(config: Config, source: str) -> None:
    drift = config.drift
    for key in ("window_reviews", "min_reviews", "baseline_days", "min_reference_reviews", "recall_min_reviews"):
        if getattr(drift, key) < 1:
            _fail(source, f"drift.{key}", getattr(drift, key), "an integer of at least 1")
    if drift.min_reviews > drift.window_reviews:
        _fail(source, "drift.min_reviews", drift.min_reviews, f"at most drift.window_reviews ({drift.window_reviews})")
    if drift.evaluate_interval_seconds < 0:
        _fail(source, "drift.evaluate_interval_seconds", drift.evaluate_interval_seconds, "zero or more seconds")
    if drift.class_reference not in ("auto", "training", "baseline"):
        _fail(source, "drift.class_reference", drift.class_reference, "'auto', 'training' or 'baseline'")
    if drift.class_reference == "training" and not sum(config.model.training_counts):
        _fail(source, "drift.class_reference", drift.class_reference,
              "'auto' or 'baseline' while model.training_counts are all zero")
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
                "recall_min_drop"):
        if not 0 <= getattr(drift, key) <= 1:
            _fail(source, f"drift.{key}", getattr(drift, key), "a number from 0 to 1")
    if drift.backlog_max_pending < 0:
        _fail(source, "drift.backlog_max_pending", drift.backlog_max_pending, "zero (off) or a positive count")
    if drift.lag_max_seconds < 0:
        _fail(source, "drift.lag_max_seconds", drift.lag_max_seconds, "zero (off) or a positive number of seconds")


def _check_alerts(alerts: AlertSettings, source: str) -> None:
    if alerts.cooldown_seconds < 0:
        _fail(source, "alerts.cooldown_seconds", alerts.cooldown_seconds, "zero or more seconds")
    if alerts.attempts < 1:
        _fail(source, "alerts.attempts", alerts.attempts, "an integer of at least 1")
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
    # Rollups are hourly in UTC; a local day is a union of whole UTC hours only where offsets are whole hours.
    moment = dt.datetime(1990, 1, 1, tzinfo=dt.timezone.utc)
    while moment.year < 2040:
        offset = moment.astimezone(zone).utcoffset()
        if offset is not None and offset.total_seconds() % 3600:
            raise ConfigError(f"{source}: model.timezone = {name!r}: expected a time zone whose UTC offsets are "
                              f"whole hours (hourly rollups cannot split its days exactly)")
        moment += dt.timedelta(days=61)


def section_keys() -> dict[str, list[str]]:
    """Every configurable key per section, for documentation checks."""
    return {name: [f.name for f in dataclasses.fields(cls) if (name, f.name) not in SECRET_KEYS]
            for name, cls in SECTIONS.items()}

