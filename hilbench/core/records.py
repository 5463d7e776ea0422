"""Records the profile store keeps: devices, models and runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hilbench.core.errors import ModelError
from hilbench.core.measurement import Measurement
from hilbench.core.settings import BenchmarkSettings

DEVICE_KINDS = ("local", "emulated", "ssh", "adb")
REPLAY_KIND = "replay"  # a device whose measurements are a public table's (bench profiles import)
RUN_OK = "ok"
RUN_FAILED = "failed"


@dataclass(frozen=True)
class DeviceRecord:
    """A registered device. ``transport`` says how to reach it; ``info`` is what its probe
    found (cores, memory, runtimes ...)."""

    name: str
    kind: str
    preset: str | None = None
    transport: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelRecord:
    """A model file identified by the sha256 of its bytes."""

    sha256: str
    name: str
    format: str
    path: str
    size_bytes: int
    parent_sha256: str | None = None
    compression: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path) -> ModelRecord:
        """Hash a model file; ``ModelError`` if it cannot be read."""
        try:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            size = path.stat().st_size
        except OSError as exc:
            raise ModelError(f"cannot read model {path}: {exc.strerror or exc}") from exc
        return cls(
            sha256=digest.hexdigest(),
            name=path.stem,
            format=path.suffix.lstrip(".").lower(),
            path=str(path.resolve()),
            size_bytes=size,
        )


@dataclass(frozen=True)
class RunRecord:
    """One job (a model on a device) with its outcome: a measurement, or the error."""

    run_id: str
    device: str
    model: ModelRecord
    settings: BenchmarkSettings
    status: str
    started_at: float
    finished_at: float
    measurement: Measurement | None = None
    error: str | None = None
    campaign_id: str | None = None
    attempts: int = 1  # a job retried after transport failures took more (not stored)


@dataclass(frozen=True)
class AccuracyRecord:
    """A model's score on a dataset for one metric, measured on the host: accuracy depends
    on the runtime and the precision, not on the device, so it is measured once and recorded
    with the runtime that computed it. ``base_sha256``: the model compared with, for metrics
    against a base model (cosine similarity, agreement)."""

    model_sha256: str
    dataset_name: str
    dataset_sha256: str
    metric: str
    value: float
    examples: int
    runtime: str
    runtime_version: str
    execution_provider: str
    measured_at: float
    base_sha256: str | None = None
