"""Entry points as real processes: a config file for them, start, signal, wait."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, sections: Mapping[str, Mapping]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def start(module: str, config_path: Path, mongo_uri: str, *args: str, env: Mapping[str, str] | None = None,
          log_path: Path | None = None) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("WHYLABS_", "CLARA_"))}
    environ |= {"MONGODB_URI": mongo_uri, "PYTHONPATH": str(REPO)} | dict(env or {})
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen([sys.executable, "-m", module, "--config", str(config_path), *args],
                                cwd=REPO, env=environ, stdout=out, stderr=subprocess.STDOUT)
    finally:
        if log_path:
            out.close()
