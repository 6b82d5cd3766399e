"""The one settings object.

Read from (highest wins): constructor arguments, ``PLAYNEXT_*`` environment variables, a TOML file named by
``PLAYNEXT_CONFIG`` (or ``./playnext.toml`` when present), then defaults. Defaults make the embedded mode work
with no file at all. Code below the CLI and the app factory receives a ``Settings`` and never reads the
environment itself, so tests build isolated worlds on temporary directories.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from playnext.experiments.definitions import Experiment, check_experiments


def _config_file() -> Path | None:
    named = os.environ.get("PLAYNEXT_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"PLAYNEXT_CONFIG names {path}, which is not a file")
        return path
    local = Path("playnext.toml")
    return local if local.is_file() else None


class PipelineSettings(BaseModel):
    """Parameters of the feature tables (stage ②); ``[pipelines]`` in TOML, ``PLAYNEXT_PIPELINES__*`` in env."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["duckdb", "spark"] = "duckdb"
    spark_master: str = "local[*]"
    # Affinity: what each interaction is worth, and how fast it fades.
    half_life_days: float = Field(default=30.0, gt=0)
    play_base: float = 0.5  # any play, even a short one, says something
    play_completion: float = 1.0  # times the share of the item played (capped at 1)
    skip: float = -0.5
    save: float = 2.0
    unsave: float = -2.0
    playlist_add: float = 1.5
    follow: float = 2.0
    # Sessions: a pause longer than this starts a new one.
    session_gap_minutes: float = Field(default=30.0, gt=0)
    # Co-occurrence: items at most this many positions apart in a session count as a pair.
    cooccurrence_window: int = Field(default=5, ge=1)
    cooccurrence_min_count: int = Field(default=2, ge=1)
    cooccurrence_top_k: int = Field(default=50, ge=1)
    # Outcomes of an impression.
    stream_threshold_ms: int = Field(default=30_000, ge=0)
    outcome_window_hours: float = Field(default=24.0, gt=0)
    return_window_days: float = Field(default=7.0, gt=0)
    trend_days: int = Field(default=7, ge=1)


class RewardSettings(BaseModel):
    """A named reward: the weight of each outcome of an impression (``outcomes`` columns). Changing the weights
    registers a new version of the name; an old version is never rewritten."""

    model_config = ConfigDict(extra="forbid")

    streamed: float = 1.0
    saved: float = 0.0
    skipped: float = 0.0
    returned: float = 0.0
    minutes: float = 0.0  # per minute listened, capped by ``minutes_cap``
    minutes_cap: float = Field(default=10.0, ge=0)


DEFAULT_REWARDS = {
    "engagement": RewardSettings(streamed=1.0, saved=2.0, skipped=-1.0, returned=0.5),
    "streamed_30s": RewardSettings(streamed=1.0),
    "saved": RewardSettings(streamed=0.0, saved=1.0),
    "long_term": RewardSettings(streamed=0.5, saved=1.0, skipped=-0.5, returned=2.0, minutes=0.1),
}


class ModelSettings(BaseModel):
    """Stage ③: which generators a training run fits, their parameters, and the ranker; ``[models]`` in TOML."""

    model_config = ConfigDict(extra="forbid")

    generators: list[str] = Field(
        default=["als", "ease", "rp3beta", "cooccurrence", "popularity", "popularity_country", "content", "sasrec"]
    )
    # Hyper-parameters per generator name, e.g. ``[models.params.als] factors = 128``.
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # ALS's trainer: ``implicit`` in process, or Spark ALS on ``spark_master`` for data beyond one machine.
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark_master: str = "local[*]"
    candidates_per_generator: int = Field(default=100, ge=1, le=5000)
    ranker: bool = True
    ranker_params: dict[str, Any] = Field(default_factory=dict)
    # Without logged impressions, the ranker learns from the last share of the training events: generators
    # fitted on what came before propose candidates, and what listeners did next labels them.
    ranker_label_share: float = Field(default=0.15, gt=0, lt=1)
    reward: str = "engagement"
    # A play of at least this share of an item (or a save, a playlist add) is a positive: the training sequence of
    # next-track models and the holdout of offline evaluation.
    positive_completion: float = Field(default=0.8, ge=0, le=1)
    # Listener × item pairs at or below this affinity are not training signal (skips net out negative).
    min_affinity: float = 0.0
    # Vector models answer ``recommend`` through a voyager index when the catalog has at least this many items.
    ann_min_items: int = Field(default=20_000, ge=0)
    ann_ef: int = Field(default=200, ge=10)
    # How often a running server checks for a newly promoted version.
    reload_interval_s: float = Field(default=2.0, gt=0)


class OnlineSettings(BaseModel):
    """Online state and serving: what requests read per listener, and how long they may take; ``[online]``."""

    model_config = ConfigDict(extra="forbid")

    # Plays kept per listener for the live session (next track); older ones are trimmed as new ones arrive.
    recent_plays: int = Field(default=100, ge=1, le=10_000)
    # A gap longer than this between two plays starts a new session.
    session_gap_s: float = Field(default=1800.0, gt=0)
    # Where online state lives: SQLite in ``data_dir/online`` (one machine), or Redis (many API replicas).
    backend: Literal["local", "redis"] = "local"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "playnext:"
    # A Redis command slower than this fails; the store is then skipped for ``redis_cooldown_s`` (surfaces degrade
    # to computing or to popularity) before Redis is tried again.
    redis_timeout_s: float = Field(default=0.25, gt=0)
    redis_cooldown_s: float = Field(default=1.0, ge=0)
    # A surface not precomputed for a listener is computed on request; past this budget the request is answered
    # from segment popularity (flagged ``fallback``) while the computation finishes and is stored for next time.
    budget_ms: float = Field(default=250.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PLAYNEXT_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Field(default=Path("playnext-data"), description="Root of every file playnext owns.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # Ingest limits: a batch larger than these is answered 413, never half-read.
    max_batch_events: int = Field(default=5000, ge=1)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # Requests per second a key may make on one replica unless the key says otherwise (`keys create --rate`);
    # 0: unlimited. Bursts of up to two seconds' worth pass.
    rate_limit_per_s: float = Field(default=1000.0, ge=0)
    # How often the server looks at the keys file for revocations (a new key is seen at once): a look per request
    # cost a tenth of a precomputed surface's answer.
    keys_recheck_s: float = Field(default=1.0, ge=0)
    # Blend and search requests under way or waiting for the surface threads (each takes tens of ms) before more are
    # answered 503: past it, a queue only adds latency to answers the clients have likely given up on.
    surface_backlog: int = Field(default=32, ge=1)
    # Serving processes of `playnext serve` (`--workers`): Python answers one request at a time per process, so
    # more cores need more of them. Above 1, the supervising process owns the event log (`api.workers`).
    workers: int = Field(default=1, ge=1, le=64)
    # A new log segment is started past this size; only sealed segments are compacted into the lake.
    segment_max_bytes: int = Field(default=64 * 1024 * 1024, ge=4096)
    # A non-empty active segment older than this is sealed, so compaction sees recent events on a quiet server.
    segment_max_age_s: float = Field(default=300.0, gt=0)
    # How often `playnext serve` folds sealed segments into the lake by itself; 0 leaves it to
    # `playnext events compact`.
    compact_interval_s: float = Field(default=60.0, ge=0)
    # Log bytes folded into the lake per manifest commit: bounds compaction's memory.
    compact_commit_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    # FastAPI's native OpenTelemetry (a span and metrics per request, once an OpenTelemetry provider is
    # configured). Off unless asked for: playnext's own metrics are Prometheus (`/metrics`), and FastAPI looks up
    # the global providers on every request to find out whether one is configured, which cost about 5 µs of a
    # 42 µs hello-world request over HTTP (the serving bench's `app-hello`, README *Benchmarks*).
    opentelemetry: bool = False
    # Upper bound on events written under one fsync; keeps the tail latency of a group bounded.
    group_commit_max_events: int = Field(default=20_000, ge=1)
    # Events further in the future than this are rejected: they are clock bugs, and would land in the lake
    # partition of a day that has not happened yet.
    max_clock_skew_s: int = Field(default=24 * 3600, ge=0)

    pipelines: PipelineSettings = Field(default_factory=PipelineSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    online: OnlineSettings = Field(default_factory=OnlineSettings)
    # A/B tests, ``[experiments.NAME]``; see ``playnext.experiments.definitions``.
    experiments: dict[str, Experiment] = Field(default_factory=dict)
    # Listeners kept out of every experiment (the global holdout).
    experiment_holdout_share: float = Field(default=0.0, ge=0, lt=1)
    rewards: dict[str, RewardSettings] = Field(default_factory=lambda: dict(DEFAULT_REWARDS))

    @field_validator("rewards")
    @classmethod
    def _with_default_rewards(cls, value: dict[str, RewardSettings]) -> dict[str, RewardSettings]:
        """Configured rewards add to (or redefine) the built-in ones instead of hiding them."""
        return {**DEFAULT_REWARDS, **value}

    @field_validator("experiments")
    @classmethod
    def _experiments_fit(cls, value: dict[str, Experiment]) -> dict[str, Experiment]:
        check_experiments(value)
        return value

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    # Paths of each stage's state, in one place so no module invents its own layout.
    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def catalog_dir(self) -> Path:
        return self.data_dir / "catalog"

    @property
    def keys_file(self) -> Path:
        return self.data_dir / "keys.json"

    @property
    def features_dir(self) -> Path:
        return self.data_dir / "features"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def rewards_dir(self) -> Path:
        return self.data_dir / "rewards"

    @property
    def experiments_dir(self) -> Path:
        """Per experiment: its looks, latest analysis and ramp state."""
        return self.data_dir / "experiments"

    @property
    def tombstones_file(self) -> Path:
        return self.data_dir / "tombstones.json"

    @property
    def online_dir(self) -> Path:
        return self.data_dir / "online"

    @property
    def synth_dir(self) -> Path:
        return self.data_dir / "synth"


def load_settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
