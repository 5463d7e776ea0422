"""The profile store's tables (SQLAlchemy Core). Times are epoch seconds (float)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
)

devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("preset", String(64)),
    Column("transport", JSON, nullable=False),
    Column("info", JSON, nullable=False),
    Column("added_at", Float, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("format", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("parent_sha256", String(64)),
    Column("compression", JSON, nullable=False),
    Column("added_at", Float, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", String(64), nullable=False, unique=True),
    Column("campaign_id", String(64)),
    Column("device_id", Integer, ForeignKey("devices.id", ondelete="SET NULL")),
    Column("device_name", String(64), nullable=False),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("settings", JSON, nullable=False),
    Column("environment", JSON),
    Column("env_key", String(32)),
    Column("runtime", String(64)),
    Column("runtime_version", String(64)),
    Column("execution_provider", String(64)),
    Column("threads", Integer),
    Column("dvfs", JSON),
    Column("agent_version", String(32)),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=False),
    Index("ix_runs_device_name", "device_name"),
    Index("ix_runs_model_id", "model_id"),
    Index("ix_runs_env_key", "env_key"),
)

# Version 3: figures a device's own benchmark tool may not report are nullable (a
# measurement without rows in ``samples`` holds the tool's summary); sensors sampled beside
# a run are kept in ``telemetry``.
NULLABLE_SINCE_V3 = ("p50_ms", "p90_ms", "p99_ms", "std_ms", "min_ms", "max_ms", "cv", "init_ms",
                     "first_inference_ms")

measurements = Table(
    "measurements",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False,
           unique=True),
    Column("count", Integer, nullable=False),
    Column("mean_ms", Float, nullable=False),
    Column("p50_ms", Float),
    Column("p90_ms", Float),
    Column("p99_ms", Float),
    Column("std_ms", Float),
    Column("min_ms", Float),
    Column("max_ms", Float),
    Column("cv", Float),
    Column("timed_duration_s", Float, nullable=False),
    Column("init_ms", Float),
    Column("first_inference_ms", Float),
    Column("peak_memory_mb", Float),
    Column("verdict", String(16), nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("emulated_figures", JSON, nullable=False),
    Column("unavailable_figures", JSON, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=False),
    # version 3: sensors beside the run, energy, throttling evidence
    Column("telemetry", LargeBinary),  # zlib-compressed JSON: every sampled series
    Column("energy", JSON),
    Column("energy_per_inference_mj", Float),
    Column("active_energy_per_inference_mj", Float),
    Column("avg_power_w", Float),
    Column("idle_power_w", Float),
    Column("temp_start_c", Float),
    Column("temp_end_c", Float),
    Column("frequencies_mhz", JSON),
    Column("notes", JSON),
)

ADDED_IN_V3 = ("telemetry", "energy", "energy_per_inference_mj", "active_energy_per_inference_mj",
               "avg_power_w", "idle_power_w", "temp_start_c", "temp_end_c", "frequencies_mhz",
               "notes")

samples = Table(
    "samples",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("latency_ns", BigInteger, nullable=False),
)

# Version 2: the coordinator's agents and job queue.

agents = Table(
    "agents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("device_name", String(64), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("registered_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("revoked_at", Float),  # version 5: a revoked agent's token opens nothing
    Index("ix_agents_device_name", "device_name"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", String(64), nullable=False, unique=True),
    Column("campaign_id", String(64)),
    Column("device_name", String(64), nullable=False),
    Column("model_sha256", String(64), nullable=False),
    Column("settings", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("lease_agent", String(64)),
    Column("lease_expires_at", Float),
    Column("attempts", Integer, nullable=False),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("dvfs_pin", JSON),  # version 4: the levels the agent pins for the job
    Index("ix_jobs_device_status", "device_name", "status"),
    Index("ix_jobs_lease_agent", "lease_agent"),  # version 5: heartbeats find their leases
)

# Version 4: accuracy of a model (a variant) on a dataset, measured once on the host: it
# depends on the runtime and precision, not on the device.

accuracy = Table(
    "accuracy",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_sha256", String(64), nullable=False),
    Column("dataset_name", String(255), nullable=False),
    Column("dataset_sha256", String(64), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("value", Float, nullable=False),
    Column("examples", Integer, nullable=False),
    Column("runtime", String(64), nullable=False),
    Column("runtime_version", String(64), nullable=False),
    Column("execution_provider", String(64), nullable=False),
    Column("base_sha256", String(64)),  # the model compared with (cosine, agreement)
    Column("measured_at", Float, nullable=False),
    UniqueConstraint("model_sha256", "dataset_sha256", "metric", "runtime",
                     name="uq_accuracy_model_dataset_metric_runtime"),
    Index("ix_accuracy_model", "model_sha256"),
)
