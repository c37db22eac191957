"""The consumer's alerts worker body: evaluate the checks (throttled), then send due webhook deliveries.

Run beside the follower (consumer.main's PeriodicWorker) and woken after each batch, so evaluation and
a slow or dead webhook never hold up a batch, and checks still run while no reviews arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pymongo import MongoClient

from clara.config import Config
from clara.db import Collections
from drift.webhooks import DrainResult, drain, targets


def alerts_task(client: MongoClient, cols: Collections, config: Config,
                environ: Mapping[str, str]) -> Callable[[], DrainResult | None]:
    """A no-argument round of alert work, returning what its webhook drain did (None without webhooks);
    raises ConfigError now if a webhook's URL variable is unset."""
    hooks = targets(config, environ)

    def run_once() -> DrainResult | None:
        # Imported by the worker's first round, not at start-up: scipy and scikit-learn take seconds to
        # load, and the follower need not wait for them to begin counting.
        from drift.evaluate import evaluate_after_batch

        evaluate_after_batch(client, cols, config)
        return drain(cols, config, hooks) if hooks else None

    return run_once
