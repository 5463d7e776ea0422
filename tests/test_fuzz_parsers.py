"""Fuzzing the parsers of what devices print: the benchmark tools' reports (golden captures
mutated, and random text), the sh agent's whole answer as the host reads it (a real
capture of the agent mutated: sections, dumped sysfs files, sensor traces, markers), and
the Jetson power-mode files. Each case gives a parsed value or a hilbench error with a
one-line message; never another exception."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hilbench.agents.jetson import NVPMODEL_CONF, NVPMODEL_STATUS, power_mode_label, probe_jetson
from hilbench.agents.parsers import parse_benchmark_model, parse_onnxruntime_perf_test
from hilbench.core.errors import HilbenchError
from hilbench.core.records import DeviceRecord, ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.core.shell import CommandResult, LineCallback
from hilbench.devices.emulated import write_sysfs
from hilbench.devices.presets import get_preset
from hilbench.devices.sh_agent import sh_agent_script
from hilbench.devices.staging import RemoteFolder
from hilbench.devices.tool_device import ToolDevice, open_tool_device
from hilbench.devices.tools import TOOLS, reported_summary, unavailable
from tests.fuzzing import assert_clear, examples, mutated_text, ran

GOLDEN = Path(__file__).parent / "golden"
ASSETS = Path(__file__).parents[1] / "hilbench/assets"
CAPTURES = {tool: [path.read_text() for path in sorted((GOLDEN / tool).glob("*.txt"))]
            for tool in TOOLS}
SETTINGS = BenchmarkSettings(min_runs=5, min_duration_s=0.1, idle_power_s=0.0)


def report_or_error(tool: str, text: str) -> None:
    """The tool's report and the summary the host makes of it, or a clear error."""
    try:
        report = TOOLS[tool].parse(text)
        summary = reported_summary(report, SETTINGS.min_runs)
        unavailable(report, summary)
    except HilbenchError as exc:
        assert_clear(exc)
        return
    assert summary.count >= 1 and summary.mean_ms >= 0


@settings(max_examples=examples(250))
@given(text=st.sampled_from(CAPTURES["benchmark_model"]).flatmap(mutated_text)
       | st.text(max_size=300))
def test_benchmark_model_output(text: str) -> None:
    ran("benchmark_model output")
    report_or_error("benchmark_model", text)


@settings(max_examples=examples(250))
@given(text=st.sampled_from(CAPTURES["onnxruntime_perf_test"]).flatmap(mutated_text)
       | st.text(max_size=300))
@example(text="Average inference time cost: 5 %")
@example(text="Average inference time cost total: 1e999 ms\nTotal inference requests: 1e999")
def test_onnxruntime_perf_test_output(text: str) -> None:
    ran("onnxruntime_perf_test output")
    report_or_error("onnxruntime_perf_test", text)


def test_the_golden_captures_still_parse() -> None:
    assert parse_benchmark_model(CAPTURES["benchmark_model"][1]).count == 50
    assert parse_onnxruntime_perf_test(CAPTURES["onnxruntime_perf_test"][1]).mean_ms


# -- the sh agent's answer, as ToolDevice reads it ------------------------------------------


@dataclass
class Replay:
    """A device that answers every command with ``stdout``: the agent's answer under test."""

    stdout: str = ""
    files: dict[str, int] = field(default_factory=dict)

    def run(self, argv: Any, *, timeout_s: float, stdin: str | None = None,
            on_stderr_line: LineCallback | None = None) -> CommandResult:
        return CommandResult(tuple(argv), 0, self.stdout, "", 0.01)

    def push(self, local: Path, remote: str) -> None:
        self.files[remote] = local.stat().st_size

    def size(self, remote: str) -> int | None:
        return self.files.get(remote)

    def read_text(self, path: str) -> str:
        raise AssertionError("not used by the sh agent")

    def pull(self, remote: str, local: Path) -> None:
        raise AssertionError("not used by the sh agent")

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass


def _capture(folder: Path, *args: str) -> str:
    script = folder / "hilbench-agent.sh"
    script.write_bytes(sh_agent_script())
    done = subprocess.run(["sh", str(script), *args], capture_output=True, text=True,
                          timeout=60, check=True, cwd=folder)
    return done.stdout


@dataclass(frozen=True)
class Captures:
    probe: str
    run: dict[str, str]


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> Captures:
    """The real sh agent's answers on the emulated phone's tree, each tool played by a
    script that prints a golden capture (what the host parses is all that matters here)."""
    folder = tmp_path_factory.mktemp("sh-captures")
    root = write_sysfs(get_preset("phone"), folder / "phone")
    runs = {}
    for tool, texts in CAPTURES.items():
        golden = max(texts, key=len)
        fake = folder / tool
        fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{golden}\nEOF\n")
        fake.chmod(0o755)
        runs[tool] = _capture(folder, "run", str(root), "0.02", "0.02", "--", str(fake))
    return Captures(_capture(folder, "probe", str(root), "/bin/true"), runs)


def tool_device(tool: str, stdout: str) -> ToolDevice:
    replay = Replay(stdout)
    record = DeviceRecord("phone", "adb", transport={"agent": "sh", "tool": f"/bin/{tool}",
                                                     "tool_kind": tool})
    return open_tool_device(record, replay, RemoteFolder(replay, "/data/local/tmp"), "/")


MODELS = {"benchmark_model": ModelRecord.from_file(ASSETS / "tiny-mlp.tflite"),
          "onnxruntime_perf_test": ModelRecord.from_file(ASSETS / "tiny-bert.onnx")}


@settings(max_examples=examples(200))
@given(data=st.data())
def test_sh_agent_run_answers(captures: Captures, data: st.DataObject) -> None:
    """A run's whole answer (markers, dumped cpufreq/devfreq/power-supply files, the tool's
    stamped output, the sensor trace) through ToolDevice.run_model."""
    ran("sh agent run answer (ToolDevice.run_model)")
    tool = data.draw(st.sampled_from(sorted(captures.run)))
    answer = data.draw(mutated_text(captures.run[tool]) | st.text(max_size=200))
    try:
        measured = tool_device(tool, answer).run_model("job", MODELS[tool], SETTINGS,
                                                       lambda phase, fraction: None,
                                                       data.draw(st.none() | st.just(
                                                           {"cpu4-7": 1401000})))
    except HilbenchError as exc:
        assert_clear(exc)
        return
    assert measured.summary.count >= 1
    assert measured.verdict.label in ("VALID", "INVALID")


@settings(max_examples=examples(150))
@given(data=st.data())
def test_sh_agent_probe_answers(captures: Captures, data: st.DataObject) -> None:
    """A probe's answer (the dumped cpufreq, cpuinfo, meminfo, thermal, power-supply files
    and markers) through ToolDevice.probe."""
    ran("sh agent probe answer (ToolDevice.probe)")
    _probe(data.draw(mutated_text(captures.probe) | st.text(max_size=200)))


def _probe(answer: str) -> None:
    try:
        info = tool_device("benchmark_model", answer).probe()
    except HilbenchError as exc:
        assert_clear(exc)
        return
    assert info["agent_version"] == "sh-3"


# -- Jetson power modes ----------------------------------------------------------------------

NVPMODEL_LINES = st.sampled_from(["< POWER_MODEL ID=0 NAME=MAXN >", "< POWER_MODEL ID=1 NAME=7W >",
                                  "< POWER_MODEL ID=99999999999999999999 NAME=x >",
                                  "< POWER_MODEL ID=2 NAME= >", "CPU_ONLINE CORE_0 1",
                                  "pmode:0001", "pmode:", "pmode:99999999999999999999999"])


@settings(max_examples=examples(100))
@given(conf=st.lists(NVPMODEL_LINES | st.text(max_size=30), max_size=6).map("\n".join),
       status=NVPMODEL_LINES | st.text(max_size=30))
def test_jetson_power_mode_files(conf: str, status: str) -> None:
    ran("Jetson nvpmodel.conf and status")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for relative, text in ((NVPMODEL_CONF, conf), (NVPMODEL_STATUS, status)):
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(text)
        try:
            label = power_mode_label(root)
            found = probe_jetson(root)
        except HilbenchError as exc:
            assert_clear(exc)
            return
    assert label is None or isinstance(label, str)
    assert isinstance(found, dict)
