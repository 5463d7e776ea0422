"""A reachable device: its record, its transport, and how to run the agent on it."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hilbench.agents.benchmark import ProgressCallback
from hilbench.agents.protocol import JobSpec, parse_progress, parse_result
from hilbench.core.errors import AgentError, DeviceError
from hilbench.core.measurement import Measurement
from hilbench.core.records import DeviceRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.core.shell import CommandResult, Shell
from hilbench.devices.emulated import speed_model, write_sysfs
from hilbench.devices.local_shell import LocalShell
from hilbench.devices.presets import get_preset

LOAD_ALLOWANCE_S = 120.0
PROBE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Device:
    """Everything needed to run jobs on one registered device.

    ``exclusive_host_cpu`` marks a device whose figures are measured on this machine's CPU
    for real: nothing else that computes on this CPU may run beside it."""

    record: DeviceRecord
    shell: Shell
    sysfs_root: str
    python: str
    exclusive_host_cpu: bool

    @property
    def name(self) -> str:
        return self.record.name

    def _agent(self, *args: str) -> list[str]:
        return [self.python, "-m", "hilbench.agents", *args]

    def job_spec(
        self, job_id: str, model_path: Path, model_sha256: str, settings: BenchmarkSettings
    ) -> JobSpec:
        emulation: dict[str, Any] | None = None
        if self.record.kind == "emulated":
            preset = get_preset(self.record.preset or "")
            emulation = speed_model(preset, self.name, settings.seed)
        return JobSpec(
            job_id=job_id,
            device=self.name,
            device_kind=self.record.kind,
            model_path=str(model_path),
            model_sha256=model_sha256,
            settings=settings,
            sysfs_root=self.sysfs_root,
            emulation=emulation,
        )

    def run_job(self, job: JobSpec, progress: ProgressCallback) -> Measurement:
        """Run the agent on the device with ``job``; raise the hilbench error it reports."""

        def forward(line: str) -> None:
            update = parse_progress(line)
            if update is not None:
                progress(*update)

        result = self.shell.run(
            self._agent("run"),
            timeout_s=job.settings.max_duration_s + LOAD_ALLOWANCE_S,
            stdin=job.to_json(),
            on_stderr_line=forward,
        )
        _check_exit(result, self.name)
        return parse_result(result.stdout, job.job_id)

    def probe(self) -> dict[str, Any]:
        result = self.shell.run(
            self._agent("probe", "--root", self.sysfs_root), timeout_s=PROBE_TIMEOUT_S
        )
        _check_exit(result, self.name)
        try:
            info: dict[str, Any] = json.loads(result.stdout)
        except ValueError as exc:
            raise AgentError(f"{self.name}: probe answered something that is not JSON") from exc
        if self.record.kind == "emulated":
            preset = get_preset(self.record.preset or "")
            info["class"] = preset.device_class
            info["description"] = preset.description
        else:
            info["class"] = "cpu"
        return info


def _check_exit(result: CommandResult, device: str) -> None:
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {result.returncode}"
        raise AgentError(f"{device}: agent failed: {last}")


def open_device(record: DeviceRecord, workdir: Path) -> Device:
    """Connect to a registered device. Emulated devices get their sysfs tree under
    ``workdir``."""
    if record.kind == "local":
        return Device(record, LocalShell(), "/", sys.executable, exclusive_host_cpu=True)
    if record.kind == "emulated":
        preset = get_preset(record.preset or "")
        root = write_sysfs(preset, workdir / record.name)
        return Device(record, LocalShell(), str(root), sys.executable, exclusive_host_cpu=False)
    raise DeviceError(f"device {record.name} has kind {record.kind!r}, which this hilbench "
                      "cannot reach")
