"""Devices' own benchmark tools: how hilbench calls them for a job, and how their report
becomes a measurement (a summary: these tools print no per-run latencies)."""

from __future__ import annotations

import math
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from hilbench.agents.parsers import ToolReport, parse_benchmark_model, parse_onnxruntime_perf_test
from hilbench.agents.parsers.report import ToolOutputError
from hilbench.core.errors import DeviceError
from hilbench.core.settings import BenchmarkSettings
from hilbench.core.stats import OPTIONAL_STATS, LatencySummary


def _seconds(value: float) -> str:
    return f"{value:g}"


def benchmark_model_argv(tool: str, model: str, settings: BenchmarkSettings) -> list[str]:
    """TFLite ``benchmark_model``: warm-up and timed phases by count AND time, like hilbench's
    own loop (older builds ignore flags they do not know, with a warning)."""
    argv = [
        tool, f"--graph={model}",
        f"--warmup_runs={settings.warmup_runs}",
        f"--warmup_min_secs={_seconds(settings.warmup_duration_s)}",
        f"--num_runs={settings.min_runs}",
        f"--min_secs={_seconds(settings.min_duration_s)}",
        f"--max_secs={_seconds(settings.max_duration_s)}",
        "--report_peak_memory_footprint=true",
    ]
    if settings.threads:
        argv.append(f"--num_threads={settings.threads}")
    if settings.shapes:
        names = sorted(settings.shapes)
        argv.append("--input_layer=" + ",".join(names))
        argv.append("--input_layer_shape=" + ":".join(
            ",".join(str(d) for d in settings.shapes[name]) for name in names
        ))
    return argv


def perf_test_argv(tool: str, model: str, settings: BenchmarkSettings) -> list[str]:
    """``onnxruntime_perf_test``: a fixed number of runs on generated inputs (-I), with
    percentiles (-s); it has no minimum-time mode, the verdict judges the time it took."""
    argv = [tool, "-I", "-s", "-m", "times", "-r", str(settings.min_runs)]
    if settings.threads:
        argv += ["-x", str(settings.threads)]
    for name, size in sorted(settings.dims.items()):
        argv += ["-f", f"{name}:{size}"]
    return [*argv, model]


@dataclass(frozen=True)
class BenchmarkTool:
    name: str
    model_format: str
    argv: Callable[[str, str, BenchmarkSettings], list[str]]
    parse: Callable[[str], ToolReport]


TOOLS: dict[str, BenchmarkTool] = {
    "benchmark_model": BenchmarkTool(
        "benchmark_model", "tflite", benchmark_model_argv, parse_benchmark_model
    ),
    "onnxruntime_perf_test": BenchmarkTool(
        "onnxruntime_perf_test", "onnx", perf_test_argv, parse_onnxruntime_perf_test
    ),
}


def tool_named(kind: str | None, path: str) -> BenchmarkTool:
    """The tool ``kind`` names, else the one the file name says (``benchmark_model``,
    ``android_aarch64_benchmark_model``, ``onnxruntime_perf_test``...)."""
    if kind:
        if kind not in TOOLS:
            raise DeviceError(f"unknown benchmark tool {kind!r}; known: {', '.join(TOOLS)}")
        return TOOLS[kind]
    base = posixpath.basename(path)
    for name, tool in TOOLS.items():
        if name in base:
            return tool
    raise DeviceError(f"cannot tell which tool {base!r} is: name it with --tool-kind "
                      f"({' or '.join(TOOLS)})")


def reported_summary(report: ToolReport, requested_runs: int) -> LatencySummary:
    """The tool's figures as a summary. An old ``onnxruntime_perf_test`` does not print how
    many runs it made: then it made the ``-r`` it was asked for."""
    count = report.count or (requested_runs if report.tool == "onnxruntime_perf_test" else 0)
    if count < 1 or report.mean_ms is None:
        raise ToolOutputError(f"{report.tool} reported no timed inference (count={count})")
    for name, value in report.to_dict().items():
        if isinstance(value, float) and not (math.isfinite(value)
                                             and (value >= 0 or not name.endswith("_ms"))):
            raise ToolOutputError(f"{report.tool} reported {name.replace('_', ' ')} = {value}")
    figures = {name: getattr(report, name) for name in OPTIONAL_STATS}
    return LatencySummary(count=count, mean_ms=report.mean_ms, **figures)


def unavailable(report: ToolReport, summary: LatencySummary) -> tuple[str, ...]:
    others = {"init_ms": report.init_ms, "first_inference_ms": report.first_ms,
              "peak_memory_mb": report.peak_memory_mb}
    return (*summary.missing, *(name for name, value in others.items() if value is None))
