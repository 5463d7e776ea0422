"""The POSIX-sh agent run by a real /bin/sh against an emulated phone's sysfs tree, and the
host's reading of what it prints."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hilbench.agents.parsers import parse_benchmark_model
from hilbench.agents.sysfs import probe
from hilbench.core.errors import AgentError, DeviceError
from hilbench.core.settings import BenchmarkSettings
from hilbench.devices.emulated import write_sysfs
from hilbench.devices.presets import get_preset
from hilbench.devices.sh_agent import (
    AgentOutput,
    parse_agent_output,
    parse_trace,
    sh_agent_script,
    timed_lines,
    write_tree,
)
from hilbench.devices.tools import (
    benchmark_model_argv,
    perf_test_argv,
    reported_summary,
    tool_named,
)

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture()
def phone(tmp_path: Path) -> Path:
    return write_sysfs(get_preset("phone"), tmp_path / "phone")


def agent(tmp_path: Path, *args: str) -> AgentOutput:
    script = tmp_path / "hilbench-agent.sh"
    script.write_bytes(sh_agent_script())
    result = subprocess.run(["sh", str(script), *args], capture_output=True, text=True,
                            timeout=60, check=True, cwd=tmp_path)
    return parse_agent_output(result.stdout)


def test_probe_dumps_what_the_host_reads_as_the_device(phone: Path, tmp_path: Path) -> None:
    output = agent(tmp_path, "probe", str(phone), "/bin/true")
    assert output.marker("tool-present") == "/bin/true"
    info = probe(write_tree(output.files, tmp_path / "copy"))
    assert info == probe(phone)  # the same figures as reading the tree itself
    assert info["cpu_count"] == 8 and info["os"] == "Android 14 (emulated)"
    assert [d["name"] for d in info["dvfs"]["domains"]] == ["cpu0-3", "cpu4-7"]  # type: ignore[index]
    assert info["sensors"] == {
        "thermal": ["thermal_zone0:cpu-big-thermal", "thermal_zone1:cpu-little-thermal",
                    "thermal_zone2:battery"],
        "power_supply": ["battery"],
        "power": ["battery:battery"],
    }


def test_probe_says_when_the_tool_is_missing(phone: Path, tmp_path: Path) -> None:
    output = agent(tmp_path, "probe", str(phone), str(tmp_path / "benchmark_model"))
    assert output.marker("tool-missing") == str(tmp_path / "benchmark_model")


def test_run_samples_sensors_beside_the_tool(phone: Path, tmp_path: Path) -> None:
    tool = tmp_path / "fake-tool"  # a real program: prints, takes 0.4 s, exits 0
    tool.write_text("#!/bin/sh\necho \"count=3 avg=100 std=1 args=$*\"\necho '@@not-a-marker'\n"
                    "sleep 0.4\n")
    tool.chmod(0o755)
    output = agent(tmp_path, "run", str(phone), "0.05", "0.1", "--", str(tool), "a b", "$(x)")
    assert output.marker("tool-exit") == "0"
    assert len(output.marker("tool-sha256") or "") == 64
    lines = timed_lines(output.sections["tool"])
    assert [line.text for line in lines] == ["count=3 avg=100 std=1 args=a b $(x)",
                                             "@@not-a-marker"]
    idle_start = float(output.marker("idle-start") or 0)
    tool_start = float(output.marker("tool-start") or 0)
    assert tool_start - idle_start >= 0.09  # the idle phase, on the device's clock
    assert all(line.t_s is not None and line.t_s >= tool_start for line in lines)
    telemetry = parse_trace(output.sections["trace"], 0.05)
    freq = telemetry.get("/sys/devices/system/cpu/cpufreq/policy4/scaling_cur_freq")
    assert freq is not None and freq.unit == "kHz" and set(freq.values) == {2419000.0}
    assert len(freq.t_s) >= 3 and list(freq.t_s) == sorted(freq.t_s)
    battery = telemetry.get("/sys/class/power_supply/battery/current_now")
    idle_phone_ua = -int(0.9 / 3.862 * 1e6)  # the preset's static power, drawn from 3.862 V
    assert battery is not None and battery.values[0] == idle_phone_ua and battery.unit == "µA"
    temps = [s for s in telemetry.series if s.unit == "m°C"]
    assert len(temps) == 3
    assert "/sys/devices/system/cpu/cpufreq/policy4/scaling_available_frequencies" in output.files


def test_a_failing_or_missing_tool_is_reported(phone: Path, tmp_path: Path) -> None:
    failing = agent(tmp_path, "run", str(phone), "0.05", "0", "--", "/bin/sh", "-c",
                    "echo 'ERROR: Failed to mmap model x'; exit 3")
    assert failing.marker("tool-exit") == "3"
    assert [line.text for line in timed_lines(failing.sections["tool"])] == [
        "ERROR: Failed to mmap model x"]
    missing = agent(tmp_path, "run", str(phone), "0.05", "0", "--", str(tmp_path / "nope"))
    assert "missing on the device" in (missing.marker("error") or "")


def test_garbage_and_other_versions_are_refused() -> None:
    with pytest.raises(AgentError, match="not its header"):
        parse_agent_output("sh: hilbench-agent.sh: not found\n")
    with pytest.raises(AgentError, match="version 9 on the device"):
        parse_agent_output("@@hilbench-sh-agent 9\n")
    with pytest.raises(AgentError, match="outside its root"):
        write_tree({"/../../etc/passwd": "x"}, Path("/nonexistent"))


def test_trace_lines_that_are_not_numbers_are_dropped() -> None:
    telemetry = parse_trace("1.00 /sys/a/temp 41000\n1.1 /sys/a/temp garbage\n1.2 /sys/a/te", 0.1)
    assert [(s.sensor, s.values) for s in telemetry.series] == [("/sys/a/temp", (41000.0,))]


def test_tool_argv_follows_the_settings() -> None:
    settings = BenchmarkSettings(threads=4, warmup_runs=5, warmup_duration_s=0.5, min_runs=30,
                                 min_duration_s=2, max_duration_s=20,
                                 shapes={"input": (1, 64)}, dims={"seq": 64})
    assert benchmark_model_argv("/data/local/tmp/benchmark_model", "m.tflite", settings) == [
        "/data/local/tmp/benchmark_model", "--graph=m.tflite", "--warmup_runs=5",
        "--warmup_min_secs=0.5", "--num_runs=30", "--min_secs=2", "--max_secs=20",
        "--report_peak_memory_footprint=true", "--num_threads=4", "--input_layer=input",
        "--input_layer_shape=1,64",
    ]
    assert perf_test_argv("ort", "m.onnx", settings) == [
        "ort", "-I", "-s", "-m", "times", "-r", "30", "-x", "4", "-f", "seq:64", "m.onnx"
    ]


def test_tools_are_named_by_option_or_file_name() -> None:
    assert tool_named(None, "/data/local/tmp/android_aarch64_benchmark_model").name == (
        "benchmark_model")
    assert tool_named(None, "bin/onnxruntime_perf_test").model_format == "onnx"
    assert tool_named("benchmark_model", "/data/local/tmp/bm").name == "benchmark_model"
    with pytest.raises(DeviceError, match="--tool-kind"):
        tool_named(None, "/data/local/tmp/bm")
    with pytest.raises(DeviceError, match="unknown benchmark tool"):
        tool_named("tvm", "x")


def test_an_old_build_summary_keeps_missing_figures_missing() -> None:
    report = parse_benchmark_model((GOLDEN / "benchmark_model/old-average.txt").read_text())
    summary = reported_summary(report, 50)
    assert summary.count == report.count and summary.p90_ms is None
