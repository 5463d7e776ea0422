"""What a device's probe says about it, as numbers the transfer model can use next to its
hardware embedding (its latencies on the reference networks).

The vector: log2 of the CPU count, the highest CPU frequency of its DVFS domains (GHz), log2
of its memory (GB), and its class one-hot. A figure the probe did not give (a replay device
knows only its class) is NaN, which the gradient boosting treats as missing, not as zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy

DEVICE_CLASSES = ("cpu", "server", "phone", "jetson", "board", "gpu", "fpga", "asic")
DEVICE_FEATURE_NAMES: tuple[str, ...] = (
    "log2_cpu_count", "max_cpu_ghz", "log2_memory_gb",
    *(f"class_{name}" for name in DEVICE_CLASSES),
)


def _positive(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _max_cpu_ghz(info: Mapping[str, Any]) -> float | None:
    dvfs = info.get("dvfs")
    domains = dvfs.get("domains", []) if isinstance(dvfs, Mapping) else []
    tops = [_positive(d.get("max_khz")) for d in domains  # devfreq domains are "gpu:..."
            if isinstance(d, Mapping) and str(d.get("name", "")).startswith("cpu")]
    found = [top for top in tops if top is not None]
    return max(found) / 1e6 if found else None


def device_features(info: Mapping[str, Any]) -> numpy.ndarray:
    """The device's probe info (``DeviceRecord.info``) as ``DEVICE_FEATURE_NAMES``."""
    cpus = _positive(info.get("cpu_count"))
    memory_mb = _positive(info.get("memory_mb"))
    ghz = _max_cpu_ghz(info)
    numbers = [
        math.log2(cpus) if cpus else math.nan,
        ghz if ghz is not None else math.nan,
        math.log2(memory_mb / 1024) if memory_mb else math.nan,
    ]
    kind = info.get("class")
    classes = [float(kind == name) for name in DEVICE_CLASSES] if kind in DEVICE_CLASSES \
        else [math.nan] * len(DEVICE_CLASSES)
    return numpy.asarray(numbers + classes, dtype=float)
