"""One active consumer per source collection: a lease in the state collection, timed by the server's clock.

A consumer started by mistake beside another (a second dyno, a deploy that overlaps the old one) would
double-count on a standalone server and fight over every hour's rollup on a replica set. The holder
renews the lease inside each batch's transaction (so a batch commits only while its consumer holds
the lease: a paused process that lost it cannot commit afterwards) and while idle; the others wait as
standbys and take over once it has not been renewed for `consumer.lease_seconds`. Expiry uses
MongoDB's `$$NOW`, so clocks of different machines never disagree about it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pymongo
from pymongo import ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.errors import DuplicateKeyError, PyMongoError

from clara.errors import ClaraError

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
TAKE_TIMEOUT_SECONDS = 5.0
PROCESS_STARTED = time.time()   # tells this process from an earlier one that had the same pid


def is_timeout(exc: PyMongoError) -> bool:
    return getattr(exc, "timeout", False) is True


class LeaseLost(ClaraError):
    """Another consumer holds the lease now: this one stops processing and stands by."""


class Lease:
    """A lease document in the state collection (`lease:<source collection>` for the consumer)."""

    def __init__(self, state, lease_id: str, seconds: float, *, before_takeover: Callable[[], object] | None = None):
        self.state, self.seconds = state, seconds
        # Called before taking the lease from a holder that is gone or has stopped renewing: its killed
        # process may have left a transaction open that still locks the lease document (for up to 60 s).
        self.before_takeover = before_takeover
        self.id = lease_id
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        held = {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
                "process_started": PROCESS_STARTED, "renewed_at": "$$NOW",
                "expires_at": {"$add": ["$$NOW", int(seconds * 1000)]}}
        self._expiry = [{"$set": held}]
        # Atomic take-if-free: one pipeline update on the _id alone (MongoDB allows no $expr in an upsert's
        # filter); the lease changes hands only when it is ours already, expired, or new.
        free = {"$or": [{"$eq": ["$owner", self.owner]}, {"$lt": [{"$ifNull": ["$expires_at", None]}, "$$NOW"]}]}
        self._take = [{"$set": {"_free": free}},
                      {"$set": {key: {"$cond": ["$_free", value, f"${key}"]} for key, value in held.items()}},
                      {"$unset": "_free"}]

    @property
    def renew_every(self) -> float:
        return self.seconds / 3

    def try_acquire(self) -> bool:
        """Take the lease if it is free, expired or already ours."""
        holder = self.holder()
        dead = holder is not None and holder.get("owner") != self.owner and self._holder_is_dead(holder)
        if self.before_takeover is not None and holder is not None and holder.get("owner") != self.owner and (
                dead or holder.get("expires_at", dt.datetime.max.replace(tzinfo=UTC)) < self._server_now()):
            self.before_takeover()
        try:
            with pymongo.timeout(TAKE_TIMEOUT_SECONDS):
                doc = self.state.find_one_and_update({"_id": self.id}, self._take, upsert=True,
                                                     return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            return False  # another consumer created it at the same moment
        except PyMongoError as exc:
            if not is_timeout(exc):
                raise
            log.info("the lease %s is locked by another transaction; trying again", self.id)
            return False
        if doc is not None and doc.get("owner") == self.owner:
            return True
        return doc is not None and dead and self._take_from(doc)

    def _server_now(self) -> dt.datetime:
        return self.state.database.client.admin.command("hello", codec_options=self.state.codec_options)["localTime"]

    def _holder_is_dead(self, doc: dict[str, Any]) -> bool:
        """A holder on this machine whose process is gone (a kill -9, a crash): no need to wait for expiry.
        Our own pid with another start time is an earlier incarnation (a restarted container's pid 1)."""
        if doc.get("host") != socket.gethostname() or not isinstance(doc.get("pid"), int):
            return False
        if doc["pid"] == os.getpid():
            return doc.get("process_started") != PROCESS_STARTED
        try:
            os.kill(doc["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False   # a live process of another user
        return False

    def _take_from(self, doc: dict[str, Any]) -> bool:
        taken = self.state.update_one({"_id": self.id, "owner": doc.get("owner")}, self._expiry).modified_count == 1
        if taken:
            log.warning("took over the lease %s from %s (pid %s), which is no longer running",
                        self.id, doc.get("host"), doc.get("pid"))
        return taken

    def renew(self, session: ClientSession | None = None) -> None:
        """Extend the lease (inside the caller's transaction when given one); LeaseLost if another took it."""
        result = self.state.update_one({"_id": self.id, "owner": self.owner}, self._expiry, session=session)
        if result.matched_count == 0:
            raise LeaseLost(f"the lease {self.id} is held by {self.describe_holder()}")

    def release(self) -> None:
        """Give the lease up at once (a clean stop), so a standby takes over without waiting for expiry."""
        self.state.update_one({"_id": self.id, "owner": self.owner},
                              [{"$set": {"expires_at": "$$NOW", "released_at": "$$NOW"}}])

    def holder(self) -> dict[str, Any] | None:
        return self.state.find_one({"_id": self.id})

    def describe_holder(self) -> str:
        doc = self.holder()
        if doc is None:
            return "nobody"
        expires = doc.get("expires_at")
        return f"{doc.get('host')} (pid {doc.get('pid')}), expiring {expires:%H:%M:%S} UTC" if expires else str(doc)

    def wait_for(self, stop: threading.Event) -> bool:
        """Block as a standby until the lease is ours (True) or `stop` is set (False)."""
        if self.try_acquire():
            log.info("holding the consumer lease %s (renewed every %.1f s)", self.id, self.renew_every)
            return True
        log.warning("standby: another consumer is active for this collection (%s holds the lease %s); "
                    "taking over when it stops renewing it for %.0f s", self.describe_holder(), self.id, self.seconds)
        while not stop.wait(min(1.0, self.renew_every)):
            if self.try_acquire():
                log.warning("took over the consumer lease %s: now the active consumer", self.id)
                return True
        return False
