"""What a device's own benchmark tool reported, in milliseconds and MiB."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from hilbench.core.errors import AgentError

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_UNIT_MS = {"s": 1000.0, "ms": 1.0, "us": 0.001, "µs": 0.001, "ns": 1e-6}


class ToolOutputError(AgentError):
    """The tool's output holds no result hilbench can read."""


def to_ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit.lower()]


def count(value: str | float, tool: str) -> int:
    """A number of runs a tool printed (``50``, ``1e+06``); ``ToolOutputError`` for one that
    is no count (infinite, negative, fractional)."""
    number = float(value)
    if not (math.isfinite(number) and number >= 0 and number == int(number)):
        raise ToolOutputError(f"{tool} printed {value} as a number of runs")
    return int(number)


def strip_log_prefix(line: str) -> str:
    """Drop ``INFO: `` and Android logcat prefixes (``I tflite  : ``, ``I/tflite ( 123): ``)."""
    line = line.rstrip("\r")
    line = re.sub(r"^\s*(?:INFO|WARNING|ERROR):\s*", "", line)
    return re.sub(r"^\s*[VDIWEF][/ ]tflite\s*(?:\(\s*\d+\))?\s*:\s*", "", line)


@dataclass(frozen=True)
class ToolReport:
    """Figures a benchmark tool printed. ``None``: the tool (or its version) did not say."""

    tool: str
    count: int
    mean_ms: float | None = None
    std_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    first_ms: float | None = None
    init_ms: float | None = None
    warmup_mean_ms: float | None = None
    peak_memory_mb: float | None = None
    threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
