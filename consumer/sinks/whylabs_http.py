"""The HTTP layer under whylogs' WhyLabsWriter, made fit for a bounded retry around the whole upload.

whylogs 1.6.4 sends the async-log request through a whylabs-client ApiClient and the profile through a
urllib3 pool of its own. Left alone, neither has a timeout on the API call, urllib3 silently retries
(a PUT three times), and a failed PUT is retried for up to a minute inside whylogs and then reported
as `(False, profile_id)` with its status code lost. The pools here give every request the time left
in the current attempt, never retry on their own, and turn a non-200 answer to the PUT into an
exception that carries the status and Retry-After; the `phase` they record tells whether a failure
happened after the profile bytes were on their way (a possible duplicate).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Mapping
from typing import Any, Literal

import urllib3
from urllib3.exceptions import TimeoutError as Urllib3Timeout

Phase = Literal["log", "upload"]


class UploadHTTPError(Exception):
    """The upload URL answered the PUT with something other than 200."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str], body: bytes):
        super().__init__(f"{status} {reason}")
        self.status, self.reason, self.headers, self.body = status, reason, headers, body


class AttemptClock:
    """The deadline of the current upload attempt and the phase it has reached."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.phase: Phase = "log"

    def start(self) -> None:
        self.deadline = time.monotonic() + self.seconds
        self.phase = "log"

    def timeout(self) -> urllib3.Timeout:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise Urllib3Timeout(f"the attempt's {self.seconds:g} s ran out before the {self.phase} request")
        return urllib3.Timeout(total=remaining)


class BoundedPool(urllib3.PoolManager):
    """A PoolManager bound to an AttemptClock: per-attempt timeout, no retries or redirects of its own."""

    def __init__(self, clock: AttemptClock, phase: Phase, *, raise_for_status: bool = False):
        super().__init__(num_pools=4, maxsize=4)
        self.clock, self.phase, self.raise_for_status = clock, phase, raise_for_status

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:
        self.clock.phase = self.phase
        kw["timeout"] = self.clock.timeout()
        kw["retries"] = False
        response = super().urlopen(method, url, redirect=False, **kw)
        if self.raise_for_status and response.status != 200:
            raise UploadHTTPError(response.status, response.reason or "", dict(response.headers), response.data)
        return response


def retry_after_seconds(headers: Mapping[str, str] | None, now: dt.datetime | None = None) -> float | None:
    """Retry-After as seconds from now (it is either delta-seconds or an HTTP date); None if absent or bad."""
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())
