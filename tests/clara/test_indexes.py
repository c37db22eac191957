"""ensure_indexes against what a deployment already has: other people's indexes, and missing privileges."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.errors import PyMongoError

from clara.config import config_from_mapping
from clara.db import WANTED_INDEXES, Collections, connect, ensure_indexes, wanted_indexes
from clara.embedded_mongo import EmbeddedMongo
from clara.errors import IndexPrivilegeError
from clara.segments import field_range, segment_id
from tests.support.audit import assert_exactly_once, rollup_cells
from tests.support.documents import predictions
from tests.support.processes import start, write_config
from tests.support.running import running_follower, wait_for

UTC = dt.timezone.utc
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
UNLOGGED_FILTER = {"output_validated": {"$exists": True}}
UNSEGMENTED = [wanted for wanted in WANTED_INDEXES if not wanted.segments_only]   # without segments.fields
UNLOGGED_COMMAND = ('db.image_logs.createIndex({"logged": 1, "_id": 1}, {"name": "clara_unlogged", '
                    '"partialFilterExpression": {"output_validated": {"$exists": true}}})')


def indexes(collection) -> dict[str, dict]:
    return {index["name"]: index for index in collection.list_indexes()}


def key_patterns(collection) -> list[tuple]:
    return [(tuple(index["key"].items()), json.dumps(index.get("partialFilterExpression"), sort_keys=True))
            for index in collection.list_indexes()]


def warnings_of(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.name == "clara.db" and record.levelno == logging.WARNING]


@pytest.fixture
def cols(mongo_client, config) -> Collections:
    """The collections with no index made yet (the `collections` fixture has already run ensure_indexes)."""
    return Collections.of(mongo_client, config)


def test_with_segments_a_fields_range_of_segment_rollups_reads_that_fields_documents_alone(make_config, mongo_client):
    config = make_config(segments={"fields": ["camera", "site"]})
    cols = Collections.of(mongo_client, config)
    ensure_indexes(cols)
    assert {wanted.name for wanted in wanted_indexes(cols)} - {wanted.name for wanted in UNSEGMENTED} == \
        {"clara_segment_field_hour"}
    for collection in (cols.segment_rollups, cols.segment_predictions):
        assert indexes(collection)["clara_segment_field_hour"]["key"] == {"_id.field": 1, "_id.hour": 1}
        collection.insert_many([{"_id": segment_id(START + dt.timedelta(hours=n), field), "values": {}}
                                for n in range(48) for field in ("camera", "site")])
        stats = collection.find(field_range("site", START + dt.timedelta(hours=12), START + dt.timedelta(hours=36))
                                ).explain()["executionStats"]
        assert (stats["nReturned"], stats["totalDocsExamined"]) == (24, 24)   # the _id range alone: 48


def test_without_segments_no_segment_collection_is_made(cols, mongo_client):
    ensure_indexes(cols)
    names = cols.db.list_collection_names()
    assert cols.segment_rollups.name not in names and cols.segment_predictions.name not in names


def test_indexes_a_user_made_under_other_names_are_used_not_duplicated(cols, mongo_client, config, caplog):
    cols.source.create_index([("timestamp", ASCENDING)])  # timestamp_1
    cols.source.create_index([("output_validated", ASCENDING), ("timestamp", ASCENDING)], name="reviews_by_time")
    # CLARA's keys without its partial filter: no substitute for clara_unlogged, which is created beside it.
    cols.source.create_index([("logged", ASCENDING), ("_id", ASCENDING)], name="logged_plain")
    cols.source.insert_many(predictions(30, start=START))
    with caplog.at_level(logging.INFO, logger="clara.db"):
        ensure_indexes(cols)
        ensure_indexes(cols)  # as after a reconnect: nothing more is created
    names = indexes(cols.source)
    assert set(names) == {"_id_", "timestamp_1", "reviews_by_time", "logged_plain", "clara_unlogged"}
    assert names["clara_unlogged"]["partialFilterExpression"] == UNLOGGED_FILTER
    assert len(key_patterns(cols.source)) == len(set(key_patterns(cols.source)))
    assert "using the existing index timestamp_1" in caplog.text
    assert "in place of CLARA's clara_timestamp" in caplog.text
    assert "using the existing index reviews_by_time" in caplog.text
    assert not warnings_of(caplog)
    with running_follower(mongo_client, cols, config):
        wait_for(lambda: rollup_cells(cols)[2] == 30, what="the reviews")
    assert_exactly_once(cols, config.n_classes)
    assert set(indexes(cols.source)) == set(names)


def test_the_same_keys_with_the_same_partial_filter_serve_as_clara_unlogged(cols, caplog):
    cols.source.create_index([("logged", ASCENDING), ("_id", ASCENDING)], name="mine",
                             partialFilterExpression=UNLOGGED_FILTER)
    with caplog.at_level(logging.INFO, logger="clara.db"):
        ensure_indexes(cols)
    assert "clara_unlogged" not in indexes(cols.source)
    assert "using the existing index mine" in caplog.text


@pytest.mark.parametrize(("rival", "options", "code_name"), [
    ([("timestamp", DESCENDING)], {"name": "clara_timestamp"}, "IndexKeySpecsConflict"),  # CLARA's name, other keys
    ([("timestamp", ASCENDING)], {"hidden": True}, "IndexOptionsConflict"),  # CLARA's keys, hidden from the planner
])
def test_an_index_mongodb_refuses_beside_a_rival_is_one_warning_naming_both(cols, caplog, rival, options, code_name):
    rival_name = cols.source.create_index(rival, **options)
    with caplog.at_level(logging.INFO, logger="clara.db"):
        ensure_indexes(cols)
    [warning] = warnings_of(caplog)
    assert "CLARA's index clara_timestamp" in warning and f"the existing index {rival_name}" in warning
    assert code_name in warning and "carrying on without it" in warning
    assert {"clara_unlogged", "clara_review_timestamp"} <= set(indexes(cols.source))
    assert "clara_pending" in indexes(cols.outbox)


def test_with_create_indexes_false_none_is_made_and_each_missing_one_is_logged_with_its_command(
        mongo_client, make_config, caplog):
    config = make_config(mongodb={"create_indexes": False})
    cols = Collections.of(mongo_client, config)
    cols.source.create_index([("timestamp", ASCENDING)])
    with caplog.at_level(logging.INFO, logger="clara.db"):
        ensure_indexes(cols)
    assert set(indexes(cols.source)) == {"_id_", "timestamp_1"}
    for role in {wanted.role for wanted in WANTED_INDEXES} - {"source"}:
        assert set(indexes(getattr(cols, role))) <= {"_id_"}
    missing = warnings_of(caplog)
    assert len(missing) == len(UNSEGMENTED) - 1 and not any("clara_timestamp" in line for line in missing)
    assert any(line.endswith(UNLOGGED_COMMAND) for line in missing)
    # The commands are exact: run as logged (JSON is valid mongosh), they make every warning go away.
    for line in missing:
        collection, arguments = re.search(r"db\.(\w+)\.createIndex\((.*)\)$", line).groups()
        keys, index_options = json.loads(f"[{arguments}]")
        cols.db[collection].create_index(list(keys.items()), **index_options)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="clara.db"):
        ensure_indexes(cols)
    assert not warnings_of(caplog)


# -- access control: a user who may read and write but not create indexes ---------------------------

ROOT_PASSWORD = "root-secret"
NO_CREATE_INDEX = ["find", "insert", "update", "remove", "changeStream", "listIndexes"]


@pytest.fixture(scope="module")
def secured_mongo(tmp_path_factory) -> Iterator[EmbeddedMongo]:
    mongo = EmbeddedMongo(tmp_path_factory.mktemp("secured"), auth=True).start()
    try:
        with MongoClient(mongo.uri) as first:  # the localhost exception: no user exists yet
            first.admin.command("createUser", "root", pwd=ROOT_PASSWORD, roles=["root"])
        yield mongo
    finally:
        mongo.stop()


@pytest.fixture
def restricted(secured_mongo, tmp_path) -> Iterator[SimpleNamespace]:
    """A fresh database; `uri` logs in as a user there whose role lacks createIndex; `cols` are root's."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    root_uri = secured_mongo.uri.replace("mongodb://", f"mongodb://root:{ROOT_PASSWORD}@")
    config = config_from_mapping({"mongodb": {"database": database}}, {"MONGODB_URI": root_uri}, source="test")
    root = connect(config)
    db = root[database]

    def user(name: str, actions: list[str]) -> str:
        db.command("createRole", f"{name}_role", roles=[],
                   privileges=[{"resource": {"db": database, "collection": ""}, "actions": actions}])
        db.command("createUser", name, pwd=f"{name}-secret", roles=[f"{name}_role"])
        return secured_mongo.uri.replace("mongodb://", f"mongodb://{name}:{name}-secret@") + f"&authSource={database}"

    try:
        yield SimpleNamespace(uri=user("clara", NO_CREATE_INDEX), user=user, database=database,
                              cols=Collections.of(root, config), n_classes=config.n_classes, log=tmp_path / "out.log")
    finally:
        db.command("dropAllUsersFromDatabase")
        db.command("dropAllRolesFromDatabase")
        root.drop_database(database)
        root.close()


def process_config(tmp_path, database: str, **mongodb) -> object:
    return write_config(tmp_path / "config.toml", {
        "mongodb": {"database": database, **mongodb},
        "consumer": {"batch_max_seconds": 0.05},
        "profiles": {"local_store_dir": str(tmp_path / "profiles")},
        # drift's alert indexes are created apart (drift/alerts.py), by the alerts worker: not under test here
        "drift": {"enabled": False},
    })


def exit_code(process: subprocess.Popen, log_path, timeout: float = 60.0) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"still running after {timeout} s:\n{log_path.read_text()}")


@pytest.mark.parametrize("module", ["consumer", "replay"])
def test_without_create_index_start_up_stops_with_exit_2_and_one_line_saying_what_to_do(tmp_path, restricted, module):
    restricted.cols.source.insert_many(predictions(5, start=START))
    process = start(module, process_config(tmp_path, restricted.database), restricted.uri, log_path=restricted.log)
    code = exit_code(process, restricted.log)
    text = restricted.log.read_text()
    assert code == 2, text
    [line] = [line for line in text.splitlines() if "createIndex" in line]
    assert " ERROR " in line and "cannot start: the MongoDB user lacks the createIndex privilege on" in line
    ns = f"{restricted.database}.image_logs"
    assert 'index clara_unlogged {"logged": 1, "_id": 1}' in line
    assert f"grant createIndex on {ns}, create it yourself: {UNLOGGED_COMMAND}, " \
           "or set mongodb.create_indexes = false" in line
    assert "reconnecting" not in text and "Traceback" not in text
    assert set(indexes(restricted.cols.source)) == {"_id_"}


def test_with_create_indexes_false_the_same_user_s_consumer_runs_and_logs_each_command(tmp_path, restricted):
    restricted.cols.source.insert_many(predictions(20, start=START))
    path = process_config(tmp_path, restricted.database, create_indexes=False)
    process = start("consumer", path, restricted.uri, log_path=restricted.log)
    try:
        wait_for(lambda: UNLOGGED_COMMAND in restricted.log.read_text(), timeout=60, what="the missing-index warning")
        wait_for(lambda: rollup_cells(restricted.cols)[2] == 20, timeout=60, what="the reviews")
        assert process.poll() is None, restricted.log.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        code = exit_code(process, restricted.log)
    text = restricted.log.read_text()
    assert code == 0, text
    missing = [line for line in text.splitlines() if " WARNING " in line and ".createIndex(" in line]
    assert len(missing) == len(UNSEGMENTED), text
    assert all("mongodb.create_indexes = false" in line for line in missing)
    assert "reconnecting" not in text
    assert_exactly_once(restricted.cols, restricted.n_classes)


def test_without_list_indexes_it_stops_naming_that_privilege_or_with_create_indexes_false_warns(restricted, caplog):
    uri = restricted.user("blind", [action for action in NO_CREATE_INDEX if action != "listIndexes"])
    config = config_from_mapping({"mongodb": {"database": restricted.database}}, {"MONGODB_URI": uri}, source="test")
    with connect(config) as client:
        cols = Collections.of(client, config)
        with pytest.raises(IndexPrivilegeError) as raised:
            ensure_indexes(cols)
        with caplog.at_level(logging.INFO, logger="clara.db"):
            ensure_indexes(cols, create=False)
    message = str(raised.value)
    assert "\n" not in message and not isinstance(raised.value, PyMongoError)
    assert f"lacks the listIndexes privilege on {restricted.database}.image_logs" in message
    assert f"grant listIndexes on {restricted.database}.image_logs" in message and UNLOGGED_COMMAND in message
    assert "or set mongodb.create_indexes = false" in message
    unchecked = warnings_of(caplog)
    assert len(unchecked) == len(UNSEGMENTED) and all("cannot check whether index" in line for line in unchecked)
