"""Fixtures for the consumer's tests: the local WhyLabs server and real outbox entries."""

from tests.whylabs_fixture import fake_whylabs, outbox_entry, whylabs_config  # noqa: F401
