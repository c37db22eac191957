"""Logging set-up shared by the entry points: plain lines, or one JSON object per line (LOG_FORMAT=json)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Mapping

from clara.errors import ConfigError

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record; `extra={...}` fields become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        entry |= {key: value for key, value in vars(record).items() if key not in STANDARD}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(environ: Mapping[str, str] | None = None) -> None:
    """Log to stderr as LOG_FORMAT (text or json) says, from LOG_LEVEL up; a bad value is a ConfigError."""
    environ = os.environ if environ is None else environ
    log_format = environ.get("LOG_FORMAT", "").lower() or "text"
    if log_format not in FORMATS:
        raise ConfigError(f"environment variable LOG_FORMAT = {environ['LOG_FORMAT']!r}: expected text or json")
    level = environ.get("LOG_LEVEL", "").upper() or "INFO"
    if level not in LEVELS:
        raise ConfigError(f"environment variable LOG_LEVEL = {environ['LOG_LEVEL']!r}: expected "
                          f"{', '.join(LEVELS)}")
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
