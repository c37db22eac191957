"""Start-up check of MongoDB access: wrong credentials or a missing privilege stop start-up with one line.

Without it a refused login looks like an outage: the driver raises OperationFailure on every attempt and
the process retries forever. A real outage (nothing answers) still waits, with backoff, one warning line
per attempt (the traceback at DEBUG).
"""

from __future__ import annotations

import logging
import threading

from pymongo.errors import OperationFailure, PyMongoError

from clara.db import CONSUMER_STATE_ID, Collections
from clara.errors import AccessDenied

log = logging.getLogger(__name__)
# MongoDB's error codes for a refused login and a refused privilege.
REFUSALS = {18: "authentication failed", 13: "not authorised", 11: "the user does not exist"}


def check_access(cols: Collections) -> None:
    """One authenticated read of CLARA's state collection; AccessDenied when MongoDB refuses it, any other
    PyMongoError when MongoDB cannot be reached."""
    try:
        cols.state.find_one({"_id": CONSUMER_STATE_ID}, {"_id": 1})
    except OperationFailure as exc:
        if exc.code not in REFUSALS:
            raise
        message = (exc.details or {}).get("errmsg") or str(exc)
        raise AccessDenied(f"MongoDB refused access to {cols.db.name} ({REFUSALS[exc.code]}: {message}); "
                           f"check the user and password in MONGODB_URI (and authSource) and the user's roles"
                           ) from exc


def wait_for_access(cols: Collections, stop: threading.Event, max_delay: float) -> bool:
    """check_access until it passes (True) or `stop` is set (False); AccessDenied is raised at once."""
    delay = 0.5
    while not stop.is_set():
        try:
            check_access(cols)
            return True
        except AccessDenied:
            raise
        except PyMongoError as exc:
            log.warning("MongoDB is unreachable (%s: %s); trying again in %.1f s", type(exc).__name__,
                        str(exc).split(", Timeout:")[0], delay)
            log.debug("MongoDB access check failed", exc_info=True)
            stop.wait(delay)
            delay = min(delay * 2, max_delay)
    return False
