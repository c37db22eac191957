"""The run command and the Procfiles: every process names a module that exists; MONGODB_URI drops mongo."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path

import pytest
from honcho.environ import parse_procfile

REPO = Path(__file__).resolve().parent.parent


def processes(name: str) -> dict[str, str]:
    return dict(parse_procfile((REPO / name).read_text()).processes)


@pytest.mark.parametrize("procfile", ["Procfile", "Procfile.dev"])
def test_every_process_runs_a_module_that_exists(procfile):
    for name, command in processes(procfile).items():
        module = re.search(r"python -m ([\w.]+)", command)
        assert module, f"{procfile}: {name} does not run `python -m <module>`"
        assert importlib.util.find_spec(module.group(1)) is not None, f"{procfile}: {name}: no {module.group(1)}"


def test_production_procfile_runs_web_and_worker():
    assert processes("Procfile") == {"release": "python -m consumer --prepare", "web": "python -m web",
                                     "worker": "python -m consumer"}
    assert set(processes("Procfile.dev")) == {"mongo", "simulator", "consumer", "web"}


def _dry_run(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"} | env
    return subprocess.run([str(REPO / "scripts" / "run"), "--dry-run", *args], env=environ, capture_output=True,
                          text=True, timeout=30)


def test_run_starts_the_embedded_mongod_unless_mongodb_uri_is_set():
    assert "would start mongo simulator" in _dry_run().stdout
    result = _dry_run(MONGODB_URI="mongodb://db.example:27017/?replicaSet=rs0")
    assert "MONGODB_URI is set" in result.stdout
    assert "would start simulator" in result.stdout and " mongo" not in result.stdout.split("would start")[1]


def test_run_rejects_an_unknown_process_name():
    result = _dry_run("nosuch")
    assert result.returncode == 2
    assert "no process named 'nosuch'" in result.stderr
