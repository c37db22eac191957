"""One drainer at a time for the sinks whose exactly-once rests on it (the local store's merge into hour files).

Two drainers merging into the same hour file could each replace the other's write and lose rows (a second
consumer started by mistake runs a delivery worker too). The lease is the state document {_id:
"outbox-drain"}: taken when free, expired (MongoDB's clock, `$$NOW`) or held by a process on this machine
that is gone (a kill -9 need not wait for expiry), renewed before every hour a drain writes.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

DRAIN_LEASE_ID = "outbox-drain"
LEASE_SECONDS = 30.0
PROCESS_STARTED = time.time()   # tells this process from an earlier one with the same pid


def owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": PROCESS_STARTED}


def hold(state: Collection, seconds: float = LEASE_SECONDS) -> bool:
    """Take or renew the drain lease for this process; False while another live drainer holds it."""
    me = owner()
    mine = {"$and": [{"$eq": [f"$owner.{key}", value]} for key, value in me.items()]}
    free = {"$or": [mine, {"$lt": [{"$ifNull": ["$expires_at", None]}, "$$NOW"]}]}
    held = {"owner": me, "expires_at": {"$add": ["$$NOW", int(seconds * 1000)]}}
    take = [{"$set": {"_free": free}},
            {"$set": {key: {"$cond": ["$_free", value, f"${key}"]} for key, value in held.items()}},
            {"$unset": "_free"}]
    try:
        doc = state.find_one_and_update({"_id": DRAIN_LEASE_ID}, take, upsert=True,
                                        return_document=ReturnDocument.AFTER)
    except DuplicateKeyError:
        return False  # another drainer created it at the same moment
    if doc is not None and doc.get("owner") == me:
        return True
    holder = (doc or {}).get("owner") or {}
    if _gone(holder):
        taken = state.update_one({"_id": DRAIN_LEASE_ID, "owner": holder},
                                 [{"$set": {"owner": me, "expires_at": held["expires_at"]}}])
        return taken.modified_count == 1
    return False


def _gone(holder: dict[str, Any]) -> bool:
    """A holder on this machine whose process no longer runs."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    if holder["pid"] == os.getpid():
        return holder.get("started") != PROCESS_STARTED
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
