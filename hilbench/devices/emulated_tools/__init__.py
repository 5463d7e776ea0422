"""Emulated devices' own benchmark tools: real inferences on this machine (LiteRT,
onnxruntime), printed in the format of the tool they stand in for.

    python -m hilbench.devices.emulated_tools.benchmark_model --graph=m.tflite
    python -m hilbench.devices.emulated_tools.onnxruntime_perf_test -I -s -r 50 m.onnx
"""

from __future__ import annotations

import resource
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from hilbench.agents.inputs import make_feeds
from hilbench.agents.runners import runner_for
from hilbench.core.settings import BenchmarkSettings

Invoke = Callable[[], None]


def load(path: Path, threads: int | None, dims: dict[str, int] | None = None) -> Invoke:
    """Load ``path`` with the runtime for its format; returns one inference on seeded inputs."""
    model = runner_for(path).load(path, threads, "CPUExecutionProvider")
    feeds = make_feeds(model.inputs, BenchmarkSettings(dims=dims or {}), model.default_dims)
    return lambda: model.run(feeds)


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


TOOLS = ("benchmark_model", "onnxruntime_perf_test")


def install(folder: Path) -> dict[str, Path]:
    """Executable ``benchmark_model`` and ``onnxruntime_perf_test`` in ``folder``: POSIX sh
    scripts that run these modules with this machine's Python."""
    folder.mkdir(parents=True, exist_ok=True)
    installed = {}
    for name in TOOLS:
        path = folder / name
        path.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m "
                        f'hilbench.devices.emulated_tools.{name} "$@"\n')
        path.chmod(0o755)
        installed[name] = path
    return installed
