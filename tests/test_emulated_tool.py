"""The emulated phone's benchmark_model: a real LiteRT run, printed as the real tool prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hilbench.agents.parsers import parse_benchmark_model

TFLITE = Path(__file__).parents[1] / "hilbench/assets/tiny-mlp.tflite"


def tool(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hilbench.devices.emulated_tools.benchmark_model",
                           *flags], capture_output=True, text=True, timeout=120, check=False)


def test_its_output_parses_as_benchmark_model_output() -> None:
    result = tool(f"--graph={TFLITE}", "--num_threads=1", "--warmup_runs=3",
                  "--warmup_min_secs=0.01", "--num_runs=40", "--min_secs=0.05",
                  "--report_peak_memory_footprint=true")
    assert result.returncode == 0, result.stderr
    report = parse_benchmark_model(result.stderr)  # the real tool logs on stderr
    assert report.count >= 40 and report.threads == 1
    assert report.min_ms is not None and report.max_ms is not None
    assert report.min_ms <= (report.p50_ms or -1) <= report.max_ms
    assert report.mean_ms is not None and report.min_ms <= report.mean_ms <= report.max_ms
    assert (report.init_ms or 0) > 0 and (report.first_ms or 0) > 0
    assert (report.peak_memory_mb or 0) > 0


def test_bad_model_and_unknown_flags() -> None:
    missing = tool("--graph=/nonexistent/model.tflite")
    assert missing.returncode == 1
    assert "ERROR: Failed to mmap model /nonexistent/model.tflite" in missing.stderr
    no_graph = tool("--num_runs=3")
    assert no_graph.returncode == 1 and "--graph" in no_graph.stderr
    unknown = tool(f"--graph={TFLITE}", "--num_runs=2", "--min_secs=0", "--warmup_min_secs=0",
                   "--use_gpu=true")
    assert unknown.returncode == 0
    assert "WARNING: Unconsumed cmdline flags: --use_gpu=true" in unknown.stderr
