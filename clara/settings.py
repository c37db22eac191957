"""Configuration sections as frozen dataclasses; their defaults are the defaults of config.toml."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from clara.periods import rollup_period


@dataclasses.dataclass(frozen=True)
class MongoSettings:
    uri: str = "mongodb://127.0.0.1:27017/?replicaSet=rs0"
    database: str = "mlops_labeller_db"
    source_collection: str = "image_logs"
    rollups_collection: str = "clara_rollups_hourly"
    outbox_collection: str = "clara_outbox"
    rejects_collection: str = "clara_rejects"
    state_collection: str = "clara_state"
    alerts_collection: str = "clara_alerts"
    counted_collection: str = "clara_counted"
    predictions_collection: str = "clara_predictions_hourly"
    segment_rollups_collection: str = "clara_rollups_segments"
    segment_predictions_collection: str = "clara_predictions_segments"
    segment_pending_collection: str = "clara_segments_pending"
    server_selection_timeout_seconds: float = 10.0
    create_indexes: bool = True


@dataclasses.dataclass(frozen=True)
class ModelSettings:
    classes: tuple[str, ...] = ("SIGRE", "blue", "brown", "green", "green_point", "grey", "yellow")
    colors: tuple[str, ...] = (
        "rgb(219,0,146)", "blue", "rgb(150,100,25)", "green", "rgb(35,150,102)", "grey", "rgb(255,153,0)",
    )
    training_counts: tuple[int, ...] = (0, 0, 0, 0, 0, 0, 0)
    timezone: str = "Europe/Madrid"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def rollup_period(self) -> dt.timedelta:
        """How long one rollup document's period is: an hour, or less where the zone's offsets need it."""
        return rollup_period(self.zone)


@dataclasses.dataclass(frozen=True)
class ConsumerSettings:
    batch_size: int = 2000
    batch_max_seconds: float = 0.25
    catchup_batch_size: int = 1000
    poll_interval_seconds: float = 2.0
    checkpoint_idle_seconds: float = 60.0
    reconnect_max_seconds: float = 30.0
    outbox_drain_interval_seconds: float = 5.0
    mark_source: bool = True
    lease_seconds: float = 15.0
    recheck_per_poll: int = 5000
    transaction_max_seconds: float = 20.0


@dataclasses.dataclass(frozen=True)
class ProfileSettings:
    local_store: bool = True
    local_store_dir: str = "var/profiles"
    local_store_interval_seconds: float = 5.0
    dead_retention_days: float = 14.0


@dataclasses.dataclass(frozen=True)
class WhyLabsSettings:
    org_id: str = ""
    dataset_id: str = ""
    endpoint: str = "https://api.whylabsapp.com"
    attempts: int = 5
    max_seconds: float = 120.0
    attempt_timeout_seconds: float = 15.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    upload_interval_seconds: float = 300.0
    api_key: str = dataclasses.field(default="", repr=False)

    @property
    def enabled(self) -> bool:
        return bool(self.api_key and self.org_id and self.dataset_id)


@dataclasses.dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 5004
    default_range_days: int = 7
    max_range_days: int = 400
    sse_heartbeat_seconds: float = 15.0
    sse_max_updates_per_second: float = 4.0
    api_timeout_seconds: float = 5.0
    api_token: str = dataclasses.field(default="", repr=False)
    basic_auth: str = dataclasses.field(default="", repr=False)


@dataclasses.dataclass(frozen=True)
class DriftSettings:
    enabled: bool = True
    evaluate_interval_seconds: float = 30.0
    window_reviews: int = 2000
    window_predictions: int = 2000
    day_window: bool = True
    segments: bool = True        # every live-window check once more per segment value (with [segments] fields)
    min_reviews: int = 200
    min_predictions: int = 200
    class_reference: str = "baseline"
    baseline_days: int = 14
    reference_start: str = ""
    reference_end: str = ""
    min_reference_reviews: int = 500
    min_reference_predictions: int = 500
    alpha: float = 0.001
    prediction_drift: bool = True
    label_drift: bool = True
    confidence_drift: bool = True
    performance: bool = True
    class_mix_min_distance: float = 0.1
    confidence_min_distance: float = 0.1
    accuracy_min_drop: float = 0.05
    accuracy_floor: float = 0.0
    recall_min_drop: float = 0.15
    recall_min_reviews: int = 100
    backlog_max_pending: int = 0
    lag_max_seconds: float = 0.0
    outbox_max_entries: int = 0
    outbox_max_age_seconds: float = 0.0
    volume: bool = True
    volume_weeks: int = 4
    volume_low_ratio: float = 0.25
    volume_high_ratio: float = 3.0
    volume_min_predictions: int = 30
    calibration_drift: bool = True
    calibration_min_change: float = 0.05
    calibration_min_bin_reviews: int = 30
    label_shift: bool = True
    label_shift_method: str = "bbse"
    label_shift_min_distance: float = 0.1
    multiple_testing: str = "none"


@dataclasses.dataclass(frozen=True)
class EstimateSettings:
    min_day_reviews: int = 30
    reference_days: int = 7
    calibrated_within: float = 0.01
    f1_draws: int = 1000
    bbse_draws: int = 500
    rlls_draws: int = 200
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class WebhookSettings:
    name: str = ""
    format: str = "json"
    url_env: str = ""


@dataclasses.dataclass(frozen=True)
class AlertSettings:
    cooldown_seconds: float = 3600.0
    deliveries_drain_interval_seconds: float = 10.0
    attempts: int = 3
    attempt_timeout_seconds: float = 10.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 10.0
    redeliver_initial_seconds: float = 30.0
    redeliver_max_seconds: float = 1800.0
    give_up_hours: float = 72.0
    max_per_evaluation: int = 20   # alerts opened by one evaluation at most; the rest wait for the next
    webhooks: tuple[WebhookSettings, ...] = ()


@dataclasses.dataclass(frozen=True)
class SegmentSettings:
    fields: tuple[str, ...] = ()
    max_values: int = 20
    fold_seconds: float = 3.0

    @property
    def enabled(self) -> bool:
        return bool(self.fields)


@dataclasses.dataclass(frozen=True)
class Config:
    mongodb: MongoSettings = MongoSettings()
    model: ModelSettings = ModelSettings()
    consumer: ConsumerSettings = ConsumerSettings()
    profiles: ProfileSettings = ProfileSettings()
    whylabs: WhyLabsSettings = WhyLabsSettings()
    web: WebSettings = WebSettings()
    drift: DriftSettings = DriftSettings()
    estimates: EstimateSettings = EstimateSettings()
    alerts: AlertSettings = AlertSettings()
    segments: SegmentSettings = SegmentSettings()
    source: str = "<defaults>"

    @property
    def n_classes(self) -> int:
        return len(self.model.classes)
