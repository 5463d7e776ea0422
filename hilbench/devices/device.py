"""A reachable device: its record, its transport, where the agent and models live on it,
and how to run the agent there."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hilbench.agents.benchmark import ProgressCallback
from hilbench.agents.protocol import JobSpec, parse_progress, parse_result
from hilbench.core.errors import AgentError, DeviceError
from hilbench.core.measurement import Measurement
from hilbench.core.records import DeviceRecord, ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.core.shell import CommandResult, Shell
from hilbench.devices.adb_shell import DEFAULT_SERVER, AdbShell, parse_server
from hilbench.devices.agent_bundle import agent_bundle, bundle_name
from hilbench.devices.emulated import speed_model, write_sysfs
from hilbench.devices.local_shell import LocalShell
from hilbench.devices.presets import get_preset
from hilbench.devices.ssh_shell import SshShell, SshTarget
from hilbench.devices.staging import RemoteFolder
from hilbench.devices.tool_device import ToolDevice, open_tool_device
from hilbench.devices.tools import tool_named

LOAD_ALLOWANCE_S = 120.0
PROBE_TIMEOUT_S = 60.0
DEFAULT_REMOTE_DIR = ".hilbench"
DEFAULT_ADB_DIR = "/data/local/tmp/hilbench"


class DeviceFiles(Protocol):
    """Where the agent and the models are on a device, putting them there if needed."""

    def agent_argv(self) -> list[str]: ...

    def model_path(self, model: ModelRecord) -> str: ...


@dataclass(frozen=True)
class LocalFiles:
    """This machine: the installed agent, models where they are."""

    python: str = sys.executable

    def agent_argv(self) -> list[str]:
        return [self.python, "-m", "hilbench.agents"]

    def model_path(self, model: ModelRecord) -> str:
        return model.path


@dataclass(frozen=True)
class RemoteFiles:
    """A device reached over SSH or ADB with Python: the agent zipapp and the models are
    pushed into its folder, each once."""

    folder: RemoteFolder
    python: str

    def agent_argv(self) -> list[str]:
        return [self.python, self.folder.put_bytes(bundle_name(), agent_bundle())]

    def model_path(self, model: ModelRecord) -> str:
        return self.folder.model_path(model)


@dataclass(frozen=True)
class Device:
    """Everything needed to run jobs on one registered device.

    ``exclusive_host_cpu`` marks a device whose figures are measured on this machine's CPU
    for real: nothing else that computes on this CPU may run beside it."""

    record: DeviceRecord
    shell: Shell
    files: DeviceFiles
    sysfs_root: str
    exclusive_host_cpu: bool

    @property
    def name(self) -> str:
        return self.record.name

    def job_spec(self, job_id: str, model: ModelRecord, settings: BenchmarkSettings,
                 dvfs_pin: dict[str, int] | None = None) -> JobSpec:
        """The job for ``model``, staged on the device (pushed there if it is remote)."""
        emulation: dict[str, Any] | None = None
        if self.record.kind == "emulated":
            preset = get_preset(self.record.preset or "")
            emulation = speed_model(preset, self.name, settings.seed, Path(model.path))
        return JobSpec(
            job_id=job_id,
            device=self.name,
            device_kind=self.record.kind,
            model_path=self.files.model_path(model),
            model_sha256=model.sha256,
            settings=settings,
            sysfs_root=self.sysfs_root,
            emulation=emulation,
            dvfs_pin=dvfs_pin,
            power_command=self.record.transport.get("power_command"),
        )

    def run_model(
        self, job_id: str, model: ModelRecord, settings: BenchmarkSettings,
        progress: ProgressCallback, dvfs_pin: dict[str, int] | None = None,
    ) -> Measurement:
        """Stage ``model`` on the device and measure it there (at ``dvfs_pin``'s levels)."""
        return self.run_job(self.job_spec(job_id, model, settings, dvfs_pin), progress)

    def cancel(self) -> None:
        self.shell.cancel()

    def close(self) -> None:
        self.shell.close()

    def run_job(self, job: JobSpec, progress: ProgressCallback) -> Measurement:
        """Run the agent on the device with ``job``; raise the hilbench error it reports."""

        def forward(line: str) -> None:
            update = parse_progress(line)
            if update is not None:
                progress(*update)

        result = self.shell.run(
            [*self.files.agent_argv(), "run"],
            timeout_s=job.settings.max_duration_s + LOAD_ALLOWANCE_S,
            stdin=job.to_json(),
            on_stderr_line=forward,
        )
        _check_exit(result, self.name)
        return parse_result(result.stdout, job.job_id)

    def probe(self) -> dict[str, Any]:
        result = self.shell.run(
            [*self.files.agent_argv(), "probe", "--root", self.sysfs_root],
            timeout_s=PROBE_TIMEOUT_S,
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


# adb serials: USB serials, emulator-5554, host:port, [v6]:port, mDNS service names
_ADB_SERIAL = re.compile(r"^[A-Za-z0-9\[][A-Za-z0-9._:%@+\[\]-]*$")


def device_path(option: str, value: str) -> str:
    """A path (or command name) on the device as the user gave it: every character is passed
    on as data, but ``DeviceError`` for an empty one, one that starts with ``-`` (programs
    would read it as an option) or one with a control character (a newline would split the
    sh agent's line-based lists, a NUL cuts a command line)."""
    if not value.strip():
        raise DeviceError(f"{option} is empty")
    if value.startswith("-"):
        raise DeviceError(f"{option} {value!r} starts with '-': write ./{value} for a relative "
                          "path")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise DeviceError(f"{option} {value!r} holds a control character (newline, tab, NUL...)")
    return value


def ssh_transport(
    target: str, key: str, python: str = "python3", known_hosts: str | None = None,
    directory: str = DEFAULT_REMOTE_DIR,
) -> dict[str, Any]:
    """Validated transport settings of an SSH device, as the store keeps them."""
    device_path("--python", python)
    device_path("--remote-dir", directory)
    parsed = SshTarget.parse(target, key, known_hosts)
    return {"ssh": parsed.address, "key": str(Path(key).expanduser().resolve()),
            "known_hosts": known_hosts and str(Path(known_hosts).expanduser().resolve()),
            "python": python, "directory": directory}


def adb_transport(
    serial: str, server: str = DEFAULT_SERVER, python: str = "python3",
    directory: str = DEFAULT_ADB_DIR, sysfs_root: str = "/",
) -> dict[str, Any]:
    """Validated transport settings of an ADB device, as the store keeps them."""
    parse_server(server)
    if not _ADB_SERIAL.match(serial):
        raise DeviceError(f"invalid adb serial {serial!r}: expected a serial (letters, digits, "
                          "'.', '_', '-') or host:port")
    for option, value in (("--python", python), ("--remote-dir", directory),
                          ("--sysfs-root", sysfs_root)):
        device_path(option, value)
    return {"adb": serial, "adb_server": server, "python": python, "directory": directory,
            "sysfs_root": sysfs_root}


OpenDevice = Device | ToolDevice


def sh_agent_transport(tool: str, tool_kind: str | None = None) -> dict[str, Any]:
    """Settings of a device without Python: the sh agent runs ``tool`` (a path on the
    device) for each job."""
    if not tool.strip():
        raise DeviceError("the sh agent needs --tool, the benchmark binary's path on the device")
    device_path("--tool", tool)
    return {"agent": "sh", "tool": tool, "tool_kind": tool_named(tool_kind, tool).name}


def _remote(record: DeviceRecord, shell: AdbShell | SshShell, folder: RemoteFolder,
            sysfs_root: str) -> OpenDevice:
    """The sh agent where the device has no Python, else the Python agent."""
    settings = record.transport
    if settings.get("agent") == "sh":
        return open_tool_device(record, shell, folder, sysfs_root)
    return Device(record, shell, RemoteFiles(folder, settings.get("python", "python3")),
                  sysfs_root, exclusive_host_cpu=False)


def _open_adb(record: DeviceRecord) -> OpenDevice:
    settings = record.transport
    directory = settings.get("directory", DEFAULT_ADB_DIR)
    shell = AdbShell(settings["adb"], settings.get("adb_server", DEFAULT_SERVER),
                     stdin_dir=directory)
    return _remote(record, shell, RemoteFolder(shell, directory), settings.get("sysfs_root", "/"))


def _open_ssh(record: DeviceRecord) -> OpenDevice:
    settings = record.transport
    target = SshTarget.parse(settings["ssh"], settings["key"], settings.get("known_hosts"))
    shell = SshShell(target)
    directory = settings.get("directory", DEFAULT_REMOTE_DIR)
    return _remote(record, shell, RemoteFolder(shell, directory), "/")



def open_device(record: DeviceRecord, workdir: Path) -> OpenDevice:
    """Connect to a registered device (lazily: nothing is sent before the first command).
    Emulated devices get their sysfs tree under ``workdir``."""
    if record.kind == "local":
        return Device(record, LocalShell(), LocalFiles(), "/", exclusive_host_cpu=True)
    if record.kind == "emulated":
        preset = get_preset(record.preset or "")
        root = write_sysfs(preset, workdir / record.name)
        return Device(record, LocalShell(), LocalFiles(), str(root), exclusive_host_cpu=False)
    if record.kind == "ssh":
        return _open_ssh(record)
    if record.kind == "adb":
        return _open_adb(record)
    raise DeviceError(f"device {record.name} has kind {record.kind!r}, which this hilbench "
                      "cannot reach")
