"""Parsers of devices' own benchmark tools, on captures of each output format: TFLite
benchmark_model (plain, INFO:-prefixed with percentiles, logcat, old builds, count=0) and
onnxruntime_perf_test (current, old, CRLF). The captures follow ../shared/REFERENCE.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilbench.agents.parsers import parse_benchmark_model, parse_onnxruntime_perf_test
from hilbench.agents.parsers.report import ToolOutputError

GOLDEN = Path(__file__).parent / "golden"

TFLITE_EXPECTED = {
    "plain-periodic-peak.txt": {
        "count": 50, "mean_ms": 112.533, "std_ms": 0.778, "min_ms": 110.425, "max_ms": 114.213,
        "first_ms": 130.492, "init_ms": 34.939, "warmup_mean_ms": 116.523,
        "peak_memory_mb": 93.2383, "threads": 4, "p50_ms": None,
    },
    "info-prefix-percentiles.txt": {
        "count": 50, "mean_ms": 1240.27, "std_ms": 2.565, "p50_ms": 1239.807,
        "first_ms": 1357.602, "init_ms": 5.579, "warmup_mean_ms": 1357.6,
        "peak_memory_mb": 109.832, "threads": 2,
    },
    "logcat.txt": {
        "count": 25, "mean_ms": 145.528, "p50_ms": 144.918, "min_ms": 140.257,
        "first_ms": 187.533, "init_ms": 92.318, "peak_memory_mb": 71.5, "threads": 4,
    },
    "old-average.txt": {
        "count": 50, "mean_ms": 80.6601, "std_ms": 0.702, "first_ms": 91.471, "init_ms": 4.108,
        "warmup_mean_ms": 91.471, "peak_memory_mb": None, "threads": 1,
    },
    "count-zero.txt": {"count": 0, "mean_ms": None, "init_ms": 12.5, "threads": 4},
}

ORT_EXPECTED = {
    "total-and-percentiles.txt": {
        "count": 5, "mean_ms": 98.961997, "min_ms": 95.8204, "max_ms": 101.519,
        "p50_ms": 99.5086, "p90_ms": 101.519, "p99_ms": 101.519, "first_ms": 196.0,
        "init_ms": 217.932, "peak_memory_mb": 271122432 / 2**20,
    },
    "old-average.txt": {
        "count": 200, "mean_ms": 10.0206, "p50_ms": 9.9871, "p99_ms": 12.1984,
        "first_ms": None, "init_ms": 51.6, "peak_memory_mb": 51904512 / 2**20,
    },
    "windows-crlf.txt": {"count": 60, "mean_ms": 31.455, "first_ms": 41.0, "p90_ms": 33.0},
}


def _check(report: dict, expected: dict) -> None:
    for field, value in expected.items():
        if value is None or isinstance(value, int):
            assert report[field] == value, field
        else:
            assert report[field] == pytest.approx(value, rel=1e-6), field


@pytest.mark.parametrize("capture", sorted(TFLITE_EXPECTED))
def test_benchmark_model_captures(capture: str) -> None:
    report = parse_benchmark_model((GOLDEN / "benchmark_model" / capture).read_text())
    assert report.tool == "benchmark_model"
    _check(report.to_dict(), TFLITE_EXPECTED[capture])


@pytest.mark.parametrize("capture", sorted(ORT_EXPECTED))
def test_onnxruntime_perf_test_captures(capture: str) -> None:
    text = (GOLDEN / "onnxruntime_perf_test" / capture).read_bytes().decode()
    report = parse_onnxruntime_perf_test(text)
    _check(report.to_dict(), ORT_EXPECTED[capture])


def test_every_capture_is_checked() -> None:
    assert {p.name for p in (GOLDEN / "benchmark_model").iterdir()} == {
        *TFLITE_EXPECTED, "no-result.txt"
    }
    assert {p.name for p in (GOLDEN / "onnxruntime_perf_test").iterdir()} == set(ORT_EXPECTED)


@pytest.mark.parametrize("text", ["", "Segmentation fault\n", "count=abc\n"])
def test_output_without_timings_is_a_clear_error(text: str) -> None:
    with pytest.raises(ToolOutputError, match="no timings"):
        parse_benchmark_model(text)
    with pytest.raises(ToolOutputError, match="no average inference time"):
        parse_onnxruntime_perf_test(text)


def test_tool_that_failed_to_load_the_model() -> None:
    text = (GOLDEN / "benchmark_model" / "no-result.txt").read_text()
    with pytest.raises(ToolOutputError):
        parse_benchmark_model(text)
