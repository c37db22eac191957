"""Replay: backfill a date range of reviews through the consumer's batch pipeline, or rebuild its rollups."""
