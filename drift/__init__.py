"""Drift detection and alerts: statistics from the hourly rollups, alert lifecycle in MongoDB, webhooks."""
