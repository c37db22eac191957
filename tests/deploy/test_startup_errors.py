"""Start-up errors as a user meets them: a bad environment value or refused MongoDB credentials stop
`python -m consumer`, `python -m web` and the release step with exit code 2 and one line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from clara.embedded_mongo import EmbeddedMongo

REPO = Path(__file__).resolve().parents[2]
ENTRY_POINTS = (["consumer"], ["web"], ["consumer", "--prepare"])


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("WHYLABS_", "CLARA_", "LOG_", "PORT", "HOST"))}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=environ | env, capture_output=True,
                          text=True, timeout=timeout)


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, lines
    return lines[0]


URI_WITH_BAD_PORT = ({"MONGODB_URI": "mongodb://u:p@127.0.0.1:notaport/"},
                     "environment variable MONGODB_URI = <hidden: it holds credentials>: expected a MongoDB URI")
NOT_A_URI = ({"MONGODB_URI": "notauri"}, "environment variable MONGODB_URI = 'notauri': expected a MongoDB URI")


@pytest.mark.parametrize("args, env, expected", [
    (["consumer"], *URI_WITH_BAD_PORT), (["web"], *URI_WITH_BAD_PORT), (["consumer"], *NOT_A_URI),
    (["web"], *NOT_A_URI),
    (["web"], {"PORT": "eighty"}, "environment variable PORT = 'eighty': expected an integer"),
    (["web"], {"HOST": "my host"}, "environment variable HOST = 'my host': expected a host name or IP address"),
    (["consumer"], {"LOG_LEVEL": "verbose"}, "environment variable LOG_LEVEL = 'verbose': expected DEBUG, INFO"),
], ids=["consumer-uri-port", "web-uri-port", "consumer-uri", "web-uri", "web-port", "web-host", "log-level"])
def test_a_bad_environment_value_is_named_as_the_variable(args, env, expected):
    result = run(args, env)
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert expected in line
    assert "config.toml" not in line and ":p@" not in line


@pytest.fixture(scope="module")
def secured_mongo(tmp_path_factory) -> Iterator[EmbeddedMongo]:
    """A mongod with access control on and one user, clara/right-password, allowed the whole database."""
    mongo = EmbeddedMongo(tmp_path_factory.mktemp("secured"), auth=True).start()
    try:
        with MongoClient(mongo.uri) as first:  # the localhost exception: no user exists yet
            first.admin.command("createUser", "clara", pwd="right-password", roles=["root"])
        yield mongo
    finally:
        mongo.stop()


@pytest.mark.parametrize("args", ENTRY_POINTS, ids=" ".join)
def test_refused_credentials_stop_start_up_with_one_line(secured_mongo, args):
    wrong = secured_mongo.uri.replace("mongodb://", "mongodb://clara:wrong-password@")
    started = time.monotonic()
    result = run(args, {"MONGODB_URI": wrong})
    assert result.returncode == 2, result.stdout + result.stderr
    assert time.monotonic() - started < 30  # no retrying
    line = one_line(result)
    assert "MongoDB refused access" in line and "authentication failed" in line.lower()
    assert "wrong-password" not in line


def test_without_credentials_the_refusal_names_the_privilege(secured_mongo):
    result = run(["consumer", "--prepare"], {"MONGODB_URI": secured_mongo.uri})
    assert result.returncode == 2
    line = one_line(result)
    assert "MongoDB refused access" in line and "not authorised" in line


def test_the_release_step_creates_the_indexes(secured_mongo):
    right = secured_mongo.uri.replace("mongodb://", "mongodb://clara:right-password@")
    result = run(["consumer", "--prepare"], {"MONGODB_URI": right})
    assert result.returncode == 0, result.stderr
    with MongoClient(right) as client:
        assert "clara_unlogged" in client["mlops_labeller_db"]["image_logs"].index_information()
