"""What a benchmark job is asked to do, independent of the device."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Tuple

from hilbench.core.errors import SettingsError
from hilbench.core.fields import (
    FieldError,
    get_dict,
    get_float,
    get_int,
    get_optional_float,
    get_optional_int,
)

Shape = Tuple[int, ...]


@dataclass(frozen=True)
class BenchmarkSettings:
    """How long and how to measure. A job stops when it has BOTH ``min_runs`` timed runs
    and ``min_duration_s`` of timed runs, or when it reaches ``max_runs`` or
    ``max_duration_s`` first (then the verdict says which minimum was missed)."""

    threads: int | None = None
    warmup_runs: int = 10
    warmup_duration_s: float = 0.25
    min_runs: int = 20
    min_duration_s: float = 1.0
    max_runs: int = 100_000
    max_duration_s: float = 60.0
    max_cv: float = 0.10
    batch_size: int = 1
    dims: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, Shape] = field(default_factory=dict)
    seed: int = 0
    sample_interval_s: float = 0.1
    idle_power_s: float = 0.5
    cooldown_below_c: float | None = None
    cooldown_max_s: float = 120.0

    def __post_init__(self) -> None:
        self._check_counts()
        self._check_durations()
        self._check_sampling()
        for name, size in self.dims.items():
            if size < 1:
                raise SettingsError(f"dimension {name} must be >= 1, got {size}")
        for name, shape in self.shapes.items():
            if not shape or any(d < 1 for d in shape):
                raise SettingsError(f"shape of input {name} must be positive sizes, got {shape}")

    def _check_counts(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise SettingsError(f"threads must be >= 1, got {self.threads}")
        if self.warmup_runs < 0:
            raise SettingsError(f"warm-up runs must be >= 0, got {self.warmup_runs}")
        if self.warmup_duration_s < 0:
            raise SettingsError(f"warm-up time must be >= 0 s, got {self.warmup_duration_s}")
        if self.min_runs < 1:
            raise SettingsError(f"minimum runs must be >= 1, got {self.min_runs}")
        if self.max_runs < 1:
            raise SettingsError(f"maximum runs must be >= 1, got {self.max_runs}")
        if self.batch_size < 1:
            raise SettingsError(f"batch size must be >= 1, got {self.batch_size}")
        if not self.max_cv > 0.0:
            raise SettingsError(f"maximum coefficient of variation must be > 0, got {self.max_cv}")

    def _check_sampling(self) -> None:
        if not self.sample_interval_s > 0:
            raise SettingsError(f"sampling interval must be > 0 s, got {self.sample_interval_s}")
        if self.idle_power_s < 0:
            raise SettingsError(f"idle time must be >= 0 s, got {self.idle_power_s}")
        if self.cooldown_max_s < 0:
            raise SettingsError(f"cool-down limit must be >= 0 s, got {self.cooldown_max_s}")

    def _check_durations(self) -> None:
        if self.min_duration_s < 0:
            raise SettingsError(f"minimum duration must be >= 0 s, got {self.min_duration_s}")
        if self.max_duration_s <= 0:
            raise SettingsError(f"maximum duration must be > 0 s, got {self.max_duration_s}")

    def to_dict(self) -> dict[str, object]:
        return {
            "threads": self.threads,
            "warmup_runs": self.warmup_runs,
            "warmup_duration_s": self.warmup_duration_s,
            "min_runs": self.min_runs,
            "min_duration_s": self.min_duration_s,
            "max_runs": self.max_runs,
            "max_duration_s": self.max_duration_s,
            "max_cv": self.max_cv,
            "batch_size": self.batch_size,
            "dims": dict(self.dims),
            "shapes": {name: list(shape) for name, shape in self.shapes.items()},
            "seed": self.seed,
            "sample_interval_s": self.sample_interval_s,
            "idle_power_s": self.idle_power_s,
            "cooldown_below_c": self.cooldown_below_c,
            "cooldown_max_s": self.cooldown_max_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchmarkSettings:
        try:
            return cls(
                threads=get_optional_int(data, "threads"),
                warmup_runs=get_int(data, "warmup_runs"),
                warmup_duration_s=get_float(data, "warmup_duration_s"),
                min_runs=get_int(data, "min_runs"),
                min_duration_s=get_float(data, "min_duration_s"),
                max_runs=get_int(data, "max_runs"),
                max_duration_s=get_float(data, "max_duration_s"),
                max_cv=get_float(data, "max_cv"),
                batch_size=get_int(data, "batch_size"),
                dims={name: int(size) for name, size in get_dict(data, "dims").items()},
                shapes={
                    name: tuple(int(d) for d in shape)
                    for name, shape in get_dict(data, "shapes").items()
                },
                seed=get_int(data, "seed"),
                **_sampling(data),
            )
        except (FieldError, TypeError, ValueError) as exc:
            raise SettingsError(f"malformed benchmark settings: {exc}") from exc


def _sampling(data: Mapping[str, Any]) -> dict[str, Any]:
    """Sampling settings; runs stored before they existed used these defaults' values."""
    defaults = BenchmarkSettings()
    return {
        "sample_interval_s": float(data.get("sample_interval_s", defaults.sample_interval_s)),
        "idle_power_s": float(data.get("idle_power_s", defaults.idle_power_s)),
        "cooldown_below_c": get_optional_float(data, "cooldown_below_c"),
        "cooldown_max_s": float(data.get("cooldown_max_s", defaults.cooldown_max_s)),
    }
