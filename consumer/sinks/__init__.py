"""Delivery of whylogs profiles from the outbox to the sinks: the local profile store and WhyLabs.

The consumer calls `build_sinks(config)` once, then `deliver_pending(collections, config, sinks)` after
each batch commit and every `consumer.outbox_drain_interval_seconds`. Nothing here runs inside a
MongoDB transaction.
"""

from consumer.sinks.base import OutboxEntry, PermanentSinkError, Sink, SinkError, TransientSinkError
from consumer.sinks.local_store import LocalProfileStore
from consumer.sinks.outbox import DrainResult, build_sinks, deliver_pending, requeue_dead
from consumer.sinks.whylabs import WhyLabsSink

__all__ = ["DrainResult", "LocalProfileStore", "OutboxEntry", "PermanentSinkError", "Sink", "SinkError",
           "TransientSinkError", "WhyLabsSink", "build_sinks", "deliver_pending", "requeue_dead"]
