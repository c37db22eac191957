"""Structured logs: LOG_FORMAT=json gives one JSON object per line with the extra fields on top."""

from __future__ import annotations

import json
import logging

from clara.logs import setup_logging


def test_json_lines_carry_extra_fields(capsys):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging({"LOG_FORMAT": "json", "LOG_LEVEL": "info"})
        logging.getLogger("consumer.stream").info("batch %s done", "b1", extra={"batch_size": 12, "lag_seconds": 0.3})
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    entry = json.loads(line)
    assert entry["message"] == "batch b1 done" and entry["level"] == "INFO" and entry["logger"] == "consumer.stream"
    assert entry["batch_size"] == 12 and entry["lag_seconds"] == 0.3
