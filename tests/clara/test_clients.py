"""Every CLARA client reads dates as aware UTC datetimes: the one rule that lets no module of its own
convert naive ones (a writer's naive datetime is stored as UTC; only the reading client decides)."""

from __future__ import annotations

import asyncio
import datetime as dt

from pymongo import AsyncMongoClient, MongoClient

from clara.db import Collections, client_options

UTC = dt.timezone.utc
NAIVE = dt.datetime(2026, 3, 2, 9, 30)


def test_the_sync_and_async_clients_read_a_naive_writers_date_as_aware_utc(mongo_client, config):
    cols = Collections.of(mongo_client, config)
    writer = MongoClient(config.mongodb.uri)   # a writer's own client: naive datetimes, as pymongo's default
    try:
        writer[config.mongodb.database][cols.rollups.name].insert_one({"_id": NAIVE})
    finally:
        writer.close()

    read = cols.rollups.find_one()["_id"]
    assert read.tzinfo is not None and read == NAIVE.replace(tzinfo=UTC)

    async def read_async() -> dt.datetime:
        client = AsyncMongoClient(config.mongodb.uri, **client_options(config))   # as web/app.py builds it
        try:
            return (await client[config.mongodb.database][cols.rollups.name].find_one())["_id"]
        finally:
            await client.close()

    read = asyncio.run(read_async())
    assert read.tzinfo is not None and read == NAIVE.replace(tzinfo=UTC)
