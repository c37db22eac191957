"""One drainer at a time for the sinks whose exactly-once rests on it (the local store's merge into hour files).

Two drainers merging into the same hour file could each replace the other's write and lose rows (a second
consumer started by mistake runs a delivery worker too). The drain lease is a `consumer.lease.Lease` of its
own, `lease:outbox-drain`: taken when free, expired (MongoDB's clock) or held by a process on this machine
that is gone (a kill -9 need not wait for expiry), renewed before every hour a drain writes.
"""

from __future__ import annotations

from pymongo.collection import Collection

from consumer.lease import Lease

DRAIN_LEASE_ID = "lease:outbox-drain"
LEASE_SECONDS = 30.0
_leases: dict[str, Lease] = {}   # one holder identity per process and state collection


def lease_for(state: Collection, seconds: float = LEASE_SECONDS) -> Lease:
    return _leases.setdefault(state.full_name, Lease(state, DRAIN_LEASE_ID, seconds))


def hold(state: Collection, seconds: float = LEASE_SECONDS) -> bool:
    """Take or renew the drain lease for this process; False while another live drainer holds it."""
    return lease_for(state, seconds).try_acquire()
