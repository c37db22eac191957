"""Configuration: config.toml loaded once into frozen dataclasses, validated, with environment overrides.

Every error names the key, the value and what was expected. Secrets (the MongoDB password, the
WhyLabs API key, the dashboard credentials, webhook URLs) come only from the environment.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clara.config_checks import Origin, check
from clara.errors import ConfigError
from clara.settings import (  # noqa: F401 - the sections are part of this module's interface
    AlertSettings, Config, ConsumerSettings, DriftSettings, ModelSettings, MongoSettings, ProfileSettings,
    SegmentSettings, WebhookSettings, WebSettings, WhyLabsSettings)

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.toml"

# Environment variables: which setting each one overrides. Only deployment values and secrets.
ENVIRONMENT = {
    "MONGODB_URI": ("mongodb", "uri"),
    "PORT": ("web", "port"),
    "HOST": ("web", "host"),
    "WHYLABS_API_KEY": ("whylabs", "api_key"),
    "WHYLABS_DEFAULT_ORG_ID": ("whylabs", "org_id"),
    "WHYLABS_DEFAULT_DATASET_ID": ("whylabs", "dataset_id"),
    "WHYLABS_API_ENDPOINT": ("whylabs", "endpoint"),
    "CLARA_API_TOKEN": ("web", "api_token"),
    "CLARA_BASIC_AUTH": ("web", "basic_auth"),
}
SECRET_KEYS = {("whylabs", "api_key"), ("web", "api_token"), ("web", "basic_auth")}
# Under PORT (a PaaS sets it and routes traffic to the container's external interface) the dashboard
# listens on every interface, unless HOST names one.
ALL_INTERFACES = "0.0.0.0"
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
    overridden: dict[str, str] = {}  # "section.key" -> the environment variable its value came from
    for var, (section, key) in ENVIRONMENT.items():
        if environ.get(var):
            sections[section][key] = environ[var] if key != "port" else _env_int(var, environ[var])
            overridden[f"{section}.{key}"] = var
    if environ.get("PORT") and not environ.get("HOST"):
        sections["web"]["host"] = ALL_INTERFACES
    built = {name: _build_section(name, SECTIONS[name], sections[name], source) for name in SECTIONS}
    config = Config(**built, source=source)
    check(config, Origin(source, overridden))
    return config


def _env_int(var: str, value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"environment variable {var} = {value!r}: expected an integer") from exc


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


def section_keys() -> dict[str, list[str]]:
    """Every configurable key per section, for documentation checks."""
    return {name: [f.name for f in dataclasses.fields(cls) if (name, f.name) not in SECRET_KEYS]
            for name, cls in SECTIONS.items()}

