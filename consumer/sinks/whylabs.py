"""The WhyLabs sink: whylogs' own WhyLabsWriter, wrapped in one bounded tenacity retry per upload.

The drain hands it one profile per prediction hour (every due entry of the hour merged, with model
performance metrics), so an hour costs one upload per drain, however many batches it took.

The writer asks `POST {endpoint}/v1/log/async` (API key in X-API-Key, dataset in X-WHYLABS-RESOURCE)
for an upload URL, then PUTs the v0 profile there. Its own retry does not cover the first call, so the
whole upload is one attempt here: bounded attempts and time, full-jitter exponential waits, a deadline
per attempt, retrying only connection errors, timeouts, 408, 429 (at least Retry-After apart) and 5xx.
Any other answer is permanent: the hour's entries go to dead-letter state with the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence

import tenacity
import urllib3.exceptions
from whylabs_client import ApiClient, Configuration
from whylabs_client.exceptions import ApiException
from whylogs import __version__ as whylogs_version
from whylogs.api.whylabs.session.whylabs_client_cache import StaticKeyRefresher
from whylogs.api.writer import whylabs_base
from whylogs.api.writer.whylabs import WhyLabsWriter
from whylogs.core import DatasetProfileView
from whylogs.core.segment import Segment
from whylogs.core.segmentation_partition import segment_on_column
from whylogs.core.view.segmented_dataset_profile_view import SegmentedDatasetProfileView

from clara.config import WhyLabsSettings
from consumer.sinks.base import Delivered, PermanentSinkError, SinkError, TransientSinkError
from consumer.sinks.whylabs_http import AttemptClock, BoundedPool, Phase, UploadHTTPError, retry_after_seconds

log = logging.getLogger("consumer.sinks.whylabs")

TRANSIENT_STATUSES = {408, 429}


class WhyLabsSink:
    name = "whylabs"
    performance = True
    exclusive = False

    def __init__(self, settings: WhyLabsSettings, *, sleep: Callable[[float], None] = time.sleep):
        if not settings.enabled:
            raise SinkError("the WhyLabs sink needs whylabs.org_id, whylabs.dataset_id and WHYLABS_API_KEY")
        self.settings = settings
        self.interval_seconds = settings.upload_interval_seconds
        self.clock = AttemptClock(settings.attempt_timeout_seconds)
        self.writer = build_writer(settings, self.clock)
        self.sleep = sleep

    def retrying(self) -> tenacity.Retrying:
        """One upload's retry budget, from config."""
        s = self.settings
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(s.attempts) | tenacity.stop_before_delay(s.max_seconds),
            wait=WaitRetryAfter(tenacity.wait_random_exponential(multiplier=s.backoff_initial_seconds,
                                                                  max=s.backoff_max_seconds)),
            retry=tenacity.retry_if_exception_type(TransientSinkError),
            before_sleep=_log_retry, sleep=self.sleep, reraise=True)

    def retry_delay(self, attempts: int) -> float:
        s = self.settings
        return min(s.backoff_max_seconds, s.backoff_initial_seconds * 2 ** attempts)

    def held(self, hour: dt.datetime) -> frozenset[str]:
        return frozenset()  # WhyLabs cannot tell what it already has: at least once

    def deliver(self, hour: dt.datetime, view: DatasetProfileView, entry_ids: Sequence[str],
                segments: Mapping[tuple[str, str], DatasetProfileView] | None = None) -> Delivered:
        """Upload the hour's profile (dataset timestamp = its hour) to the configured dataset, then each
        segment's as a whylogs segmented profile (tagged `whylogs.tag.<field>` = value: a WhyLabs segment),
        each upload with a retry budget of its own."""
        what = f"the profile of {hour:%Y-%m-%d %H}:00 UTC ({len(entry_ids)} outbox entries)"
        uploads: list[tuple[str, DatasetProfileView | SegmentedDatasetProfileView]] = [(what, view)]
        uploads += [(f"{what}, segment {field} = {value!r}", segmented(field, value, segment_view))
                    for (field, value), segment_view in sorted((segments or {}).items())]
        lost_answers = 0
        for sent, (label, writable) in enumerate(uploads):
            try:
                lost_answers += self._deliver_one(writable, label)
            except TransientSinkError as exc:
                exc.maybe_delivered = exc.maybe_delivered or sent > 0   # a retry sends the earlier ones again
                raise
        return Delivered(possible_duplicate=lost_answers > 0)

    def _deliver_one(self, view: DatasetProfileView | SegmentedDatasetProfileView, what: str) -> int:
        """One upload within its retry budget; how many of its attempts lost their answer."""
        lost_answers = 0
        try:
            for attempt in self.retrying():
                with attempt:
                    try:
                        self._upload(view, what)
                    except TransientSinkError as exc:
                        if exc.maybe_delivered:
                            lost_answers += 1
                            log.warning("%s: the upload was sent but its answer was lost (%s); "
                                        "WhyLabs may receive this profile twice", what, exc.reason)
                        raise
        except TransientSinkError as exc:
            exc.maybe_delivered = exc.maybe_delivered or lost_answers > 0
            raise
        if lost_answers:
            log.warning("%s delivered to WhyLabs after %d lost answer(s): possible duplicate upload",
                        what, lost_answers)
        return lost_answers

    def _upload(self, view: DatasetProfileView | SegmentedDatasetProfileView, what: str) -> None:
        self.clock.start()
        try:
            ok, message = self.writer.write(view)
        except Exception as exc:  # noqa: BLE001 - classified below; anything unknown counts as transient
            raise classify(exc, self.clock.phase, what) from exc
        if not ok:
            raise TransientSinkError(f"the whylogs WhyLabs writer reported a failure: {message}")


def segmented(field: str, value: str, view: DatasetProfileView) -> SegmentedDatasetProfileView:
    """A segment's profile as whylogs segments one on a column: its v0 upload carries `whylogs.tag.<field>`."""
    partition = segment_on_column(field)[field]
    return SegmentedDatasetProfileView(profile_view=view, segment=Segment(key=(value,), parent_id=partition.id),
                                       partition=partition)


class WaitRetryAfter(tenacity.wait.wait_base):
    """The fallback wait, or the server's Retry-After when that is longer."""

    def __init__(self, fallback: tenacity.wait.wait_base):
        self.fallback = fallback

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        wait = self.fallback(retry_state)
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        return max(wait, retry_after) if retry_after is not None else wait


def classify(exc: BaseException, phase: Phase, what: str) -> SinkError:
    """A writer failure as transient (retry) or permanent (dead letter), with a reason a person can read."""
    where = "async-log request" if phase == "log" else "profile upload"
    if isinstance(exc, (ApiException, UploadHTTPError)):
        status = exc.status or 0
        headers = exc.headers or {}
        body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
        reason = f"WhyLabs answered the {where} with HTTP {status} {exc.reason or ''}".rstrip()
        reason += f": {body[:300]}" if body else ""
        if status == 0 or status in TRANSIENT_STATUSES or status >= 500:
            return TransientSinkError(reason, retry_after=retry_after_seconds(headers))
        return PermanentSinkError(reason)
    after_send = phase == "upload"
    if isinstance(exc, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)):
        return TransientSinkError(f"cannot connect for the {where}: {exc}")
    if isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError)):
        return TransientSinkError(f"the {where} timed out: {exc}", maybe_delivered=after_send)
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
        return TransientSinkError(f"the {where} failed: {type(exc).__name__}: {exc}", maybe_delivered=after_send)
    if isinstance(exc, SinkError):
        return exc
    log.exception("%s: unexpected error from the whylogs WhyLabs writer; retrying later", what)
    return TransientSinkError(f"unexpected {type(exc).__name__} in the {where}: {exc}", maybe_delivered=after_send)


def build_writer(settings: WhyLabsSettings, clock: AttemptClock) -> WhyLabsWriter:
    """whylogs' WhyLabsWriter, talking to `settings.endpoint` through pools bound to `clock`.

    whylogs 1.6.4 reads its endpoint only from WHYLABS_API_ENDPOINT or its own config file, and accepts
    a ready ApiClient but then never uses it (its API objects get `None`). So the writer is given our
    ApiClient and three attributes whylogs would otherwise leave broken are set here; whylogs gets no
    more releases, so these private names are stable.
    """
    try:
        key_refresher = StaticKeyRefresher(settings.api_key)
    except ValueError as exc:
        raise SinkError(f"environment variable WHYLABS_API_KEY: not a WhyLabs API key ({exc})") from exc
    # Its one-time HEAD of a public S3 config URL has no timeout (it would hang an offline consumer);
    # skip it the way whylogs does after a failed check: condition-count metrics are uncompounded.
    whylabs_base._WHYLABS_SKIP_CONFIG_READ = True
    # whylogs hangs a stderr handler on `backoff`, whose give-up messages repeat what we log per attempt.
    logging.getLogger("backoff").disabled = True
    configuration = Configuration(host=settings.endpoint.rstrip("/"), api_key={"ApiKeyAuth": settings.api_key})
    configuration.discard_unknown_keys = True
    configuration.client_side_validation = False
    api_client = ApiClient(configuration)
    api_client.user_agent = f"whylogs/python/{whylogs_version}"
    api_client.rest_client.pool_manager = BoundedPool(clock, "log")
    writer = WhyLabsWriter(org_id=settings.org_id, api_key=settings.api_key, dataset_id=settings.dataset_id,
                           api_client=api_client, _timeout_seconds=settings.attempt_timeout_seconds)
    client = writer._whylabs_client
    client._api_client = api_client
    client._key_refresher = key_refresher
    client._s3_pool = BoundedPool(clock, "upload", raise_for_status=True)
    client.whylabs_api_endpoint = settings.endpoint
    return writer


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    error = retry_state.outcome.exception() if retry_state.outcome else None
    wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
    log.info("WhyLabs upload attempt %d failed (%s); next in %.2f s", retry_state.attempt_number, error, wait)
