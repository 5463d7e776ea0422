"""A device without Python (a phone, a small board): the POSIX-sh agent runs the device's own
benchmark tool there, samples sysfs beside it, and the host parses what comes back."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hilbench.agents.benchmark import ProgressCallback
from hilbench.agents.metering import ENERGY_FIGURES
from hilbench.agents.parsers.report import ToolReport
from hilbench.agents.sysfs import probe, read_dvfs
from hilbench.core.dvfs import DvfsState
from hilbench.core.errors import (
    AgentError,
    DeviceError,
    SettingsError,
    UnsupportedFormatError,
)
from hilbench.core.measurement import Environment, Measurement
from hilbench.core.records import DeviceRecord, ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.core.shell import CommandResult, Shell
from hilbench.devices.sh_agent import (
    SH_AGENT_VERSION,
    AgentOutput,
    parse_agent_output,
    parse_trace,
    pin_arguments,
    pin_notes,
    power_arguments,
    sh_agent_name,
    sh_agent_script,
    timed_lines,
    write_tree,
)
from hilbench.devices.staging import RemoteFolder
from hilbench.devices.tool_energy import timed_window, tool_energy
from hilbench.devices.tools import BenchmarkTool, reported_summary, tool_named, unavailable

PROBE_TIMEOUT_S = 60.0
LOAD_ALLOWANCE_S = 120.0


@dataclass(frozen=True)
class ToolDevice:
    """``tool`` is the path of the benchmark binary on the device (pushed by the user)."""

    record: DeviceRecord
    shell: Shell
    folder: RemoteFolder
    tool_path: str
    tool: BenchmarkTool
    sysfs_root: str = "/"
    exclusive_host_cpu: bool = False

    @property
    def name(self) -> str:
        return self.record.name

    def cancel(self) -> None:
        self.shell.cancel()

    def close(self) -> None:
        self.shell.close()

    def _agent(self, args: list[str], timeout_s: float) -> AgentOutput:
        script = self.folder.put_bytes(sh_agent_name(), sh_agent_script())
        result = self.shell.run(["sh", script, *args], timeout_s=timeout_s)
        _check_exit(result, self.name)
        output = parse_agent_output(result.stdout)
        error = output.marker("error")
        if error:
            raise AgentError(f"{self.name}: {error}")
        return output

    def probe(self) -> dict[str, Any]:
        output = self._agent(["probe", self.sysfs_root, self.tool_path], PROBE_TIMEOUT_S)
        if output.marker("tool-missing") is not None:
            raise DeviceError(f"{self.name}: {self.tool.name} is not at {self.tool_path} on the "
                              "device (or not executable): push it there first")
        with tempfile.TemporaryDirectory(prefix="hilbench-sh-probe-") as folder:
            info: dict[str, Any] = probe(write_tree(output.files, Path(folder)))
        android = output.marker("android")
        if android:
            info["os"] = f"Android {android}"
        info.update({
            "class": "cpu", "agent_version": f"sh-{SH_AGENT_VERSION}",
            "python_version": output.marker("python") or None,
            "runtimes": {self.tool.name: {"path": self.tool_path, "providers": ["CPU"]}},
        })
        return info

    def run_model(self, job_id: str, model: ModelRecord, settings: BenchmarkSettings,
                  progress: ProgressCallback, dvfs_pin: dict[str, int] | None = None
                  ) -> Measurement:
        """Run the tool once, at ``dvfs_pin``'s levels (the agent pins them and puts back
        what it found, whatever happens)."""
        if model.format != self.tool.model_format:
            raise UnsupportedFormatError(f"{self.name}: {self.tool.name} runs "
                                         f".{self.tool.model_format} models, not {model.name}")
        started = time.time()
        progress("load", 0.0)
        argv = self.tool.argv(self.tool_path, self.folder.model_path(model), settings)
        options = [*self._pins(dvfs_pin or {}),
                   *power_arguments(self.record.transport.get("power_command"))]
        progress("run", 0.0)
        output = self._agent(["run", self.sysfs_root, f"{settings.sample_interval_s:g}",
                              f"{settings.idle_power_s:g}", *options, "--", *argv],
                             2 * settings.max_duration_s + LOAD_ALLOWANCE_S)
        lines = timed_lines(output.sections.get("tool", ""))
        text = "\n".join(line.text for line in lines)
        code = output.marker("tool-exit")
        if code != "0":
            raise AgentError(f"{self.name}: {self.tool.name} exited with {code}: "
                             f"{_last_line(text)}")
        report = self.tool.parse(text)
        progress("run", 1.0)
        return self._measurement(model, settings, report, output, started,
                                 timed_window(self.tool.name, lines))

    def _pins(self, dvfs_pin: dict[str, int]) -> list[str]:
        """The agent's ``--pin`` arguments, from the domains the device has now."""
        if not dvfs_pin:
            return []
        output = self._agent(["dvfs", self.sysfs_root], PROBE_TIMEOUT_S)
        try:
            return pin_arguments(output.files, self.sysfs_root, dvfs_pin)
        except SettingsError as exc:
            raise SettingsError(f"{self.name}: {exc}") from exc

    def _measurement(self, model: ModelRecord, settings: BenchmarkSettings, report: ToolReport,
                     output: AgentOutput, started: float,
                     window: tuple[float, float] | None) -> Measurement:
        summary = reported_summary(report, settings.min_runs)
        telemetry = parse_trace(output.sections.get("trace", ""), settings.sample_interval_s)
        telemetry = replace(telemetry, window_start_s=window[0] if window else None,
                            window_end_s=window[1] if window else None)
        energy, notes = tool_energy(telemetry, output.files, window, _idle(output),
                                    summary.count)
        notes += pin_notes(output)
        missing = unavailable(report, summary)
        if energy is None:
            missing += ENERGY_FIGURES
        return Measurement(
            environment=self._environment(model, settings, report, output),
            settings=settings,
            samples_ns=(),
            timed_duration_s=summary.count * summary.mean_ms / 1000.0,
            init_ms=report.init_ms,
            first_inference_ms=report.first_ms,
            peak_memory_mb=report.peak_memory_mb,
            started_at=started,
            finished_at=time.time(),
            unavailable_figures=missing,
            reported=summary,
            telemetry=telemetry,
            energy=energy,
            notes=tuple(notes),
        )

    def _environment(self, model: ModelRecord, settings: BenchmarkSettings, report: ToolReport,
                     output: AgentOutput) -> Environment:
        digest = output.marker("tool-sha256")
        return Environment(
            device=self.name,
            device_kind=self.record.kind,
            runtime=self.tool.name,
            runtime_version=f"sha256:{digest[:12]}" if digest else "unknown build",
            execution_provider="CPU",
            model_sha256=model.sha256,
            threads=settings.threads or report.threads,
            input_shapes=tuple(sorted(settings.shapes.items())),
            dvfs=_dvfs(output),
            agent_version=f"sh-{SH_AGENT_VERSION}",
            python_version="none",
            platform=str(self.record.info.get("os") or "unknown"),
            hostname=self.name,
        )


def _idle(output: AgentOutput) -> tuple[float, float] | None:
    """The idle phase before the tool started, on the agent's clock."""
    try:
        return float(output.marker("idle-start") or ""), float(output.marker("tool-start") or "")
    except ValueError:
        return None


def _dvfs(output: AgentOutput) -> DvfsState:
    with tempfile.TemporaryDirectory(prefix="hilbench-sh-run-") as folder:
        return read_dvfs(write_tree(output.files, Path(folder)))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _check_exit(result: CommandResult, device: str) -> None:
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {result.returncode}"
        raise AgentError(f"{device}: sh agent failed: {last}")


def open_tool_device(record: DeviceRecord, shell: Shell, folder: RemoteFolder,
                     sysfs_root: str) -> ToolDevice:
    settings = record.transport
    tool_path = str(settings.get("tool") or "")
    if not tool_path:
        raise DeviceError(f"device {record.name} uses the sh agent but names no --tool")
    return ToolDevice(record, shell, folder, tool_path,
                      tool_named(settings.get("tool_kind"), tool_path), sysfs_root)

