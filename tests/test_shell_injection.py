"""Shell metacharacters at the argv boundary: what a user types (device names, remote
folders, the device's Python, a tool's path, a power meter's command line, model paths)
reaches a device over SSH (a real sshd on loopback) and over ADB (the real adb server and
the emulated phone) as data, or is refused with one line; never run as shell code. Every
payload would ``touch`` a canary file if a shell ever ran it: the canary must not exist."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hilbench.core.errors import DeviceError, TransportError
from hilbench.core.measurement import Measurement
from hilbench.core.records import ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.devices.adb_shell import AdbShell
from hilbench.devices.device import adb_transport, open_device, sh_agent_transport, ssh_transport
from hilbench.devices.emulated import write_sysfs
from hilbench.devices.emulated_tools import install
from hilbench.devices.local_shell import LocalShell
from hilbench.devices.presets import get_preset
from hilbench.devices.registry import new_device_record
from hilbench.devices.ssh_shell import SshShell, SshTarget
from hilbench.devices.staging import RemoteFolder
from hilbench.profiles import Store
from tests.adblab import AdbLab
from tests.cli import in_process, one_line_error
from tests.sshd import SshServer

ASSETS = Path(__file__).parents[1] / "hilbench/assets"
MODEL = ASSETS / "tiny-bert.onnx"
TFLITE = ASSETS / "tiny-mlp.tflite"
SETTINGS = BenchmarkSettings(threads=1, warmup_runs=1, warmup_duration_s=0.0, min_runs=5,
                             min_duration_s=0.3, idle_power_s=0.0)

# Each becomes a command that creates the canary, were it ever run by a shell.
PAYLOADS = ("; touch {c}", "$(touch {c})", "`touch {c}`", "&& touch {c}", "| touch {c}",
            "' ; touch {c} '", "\" ; touch {c} \"", "> {c}", "a  b *")
LINE_BREAKS = ("\ntouch {c}\n", "\r\ntouch {c}", "\ttouch {c}")


def hostile(canary: Path, patterns: tuple[str, ...] = PAYLOADS) -> list[str]:
    return [pattern.format(c=canary) for pattern in patterns]


def hostile_folder(root: Path, canary: Path) -> Path:
    """A folder whose name holds every payload (each ``/`` in one nests a folder)."""
    return root / " ".join(hostile(canary))


def python_wrapper(folder: Path) -> Path:
    """The device's Python (this venv's) at a path full of metacharacters."""
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "python ; $(id) `id` && | ' \""
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


def power_meter(folder: Path) -> tuple[Path, Path]:
    """A power meter's CLI that records the arguments it got (one JSON list a line) and
    prints watts."""
    folder.mkdir(parents=True, exist_ok=True)
    meter, log = folder / "usb-meter", folder / "meter-argv.jsonl"
    meter.write_text(f"#!{sys.executable}\nimport json, sys\n"
                     f"with open({str(log)!r}, 'a') as log:\n"
                     "    log.write(json.dumps(sys.argv[1:]) + '\\n')\n"
                     "print('power: 2.50 W')\n")
    meter.chmod(0o755)
    return meter, log


def assert_meter_got(log: Path, words: list[str]) -> None:
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls and all(call == words for call in calls), calls


def hostile_model(root: Path, canary: Path, source: Path) -> Path:
    """A copy of ``source`` whose local path holds every payload and line breaks."""
    path = root / "models" / (" ".join(hostile(canary, PAYLOADS + LINE_BREAKS)) + source.suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, path)
    return path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
        ) -> Cli:
    return Cli(capsys, monkeypatch, tmp_path)


class Cli:
    """``bench`` in this process, on a store of its own."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                 folder: Path) -> None:
        self.capsys, self.monkeypatch, self.folder = capsys, monkeypatch, folder
        self.store = f"sqlite:///{folder}/profiles.db"
        self.env = {"XDG_DATA_HOME": str(folder / "data"),
                    "XDG_CACHE_HOME": str(folder / "cache")}

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return in_process(self.capsys, self.monkeypatch, self.env, *args, "--store", self.store)

    def ok(self, *args: str) -> object:
        result = self(*args, "--json")
        assert result.returncode in (0, 1), result.stderr
        return json.loads(result.stdout)

    def run(self, model: Path, device: str, dvfs_pin: dict[str, int] | None = None
            ) -> Measurement:
        """``model`` measured on the registered ``device`` (through the device API: the
        transport and the agents are what this module tests)."""
        with Store.open(self.store) as store:
            record = store.get_device(device)
        opened = open_device(record, self.folder / "work")
        try:
            return opened.run_model("job-1", ModelRecord.from_file(model), SETTINGS,
                                    lambda phase, fraction: None, dvfs_pin)
        finally:
            opened.close()


# -- refused with one line -------------------------------------------------------------------


def test_names_and_device_paths_with_metacharacters_are_refused(cli: Cli, tmp_path: Path,
                                                                 sshd: SshServer) -> None:
    canary = tmp_path / "canary"
    refused = 0
    for payload in hostile(canary, PAYLOADS + LINE_BREAKS):
        with pytest.raises(DeviceError, match="invalid device name") as name_error:
            new_device_record(f"dev{payload}", "local")
        with pytest.raises(DeviceError, match="invalid adb serial") as serial_error:
            adb_transport(f"127.0.0.1:5555{payload}")
        for error in (name_error, serial_error):
            assert "\n" not in str(error.value)
        refused += 2
    options: dict[str, Callable[[str], object]] = {
        "--remote-dir": lambda v: ssh_transport(sshd.target, str(sshd.key), directory=v),
        "--python": lambda v: ssh_transport(sshd.target, str(sshd.key), python=v),
        "--sysfs-root": lambda v: adb_transport("emulator-5554", sysfs_root=v),
        "--tool": lambda v: sh_agent_transport(v, "benchmark_model"),
    }
    for payload in [*hostile(canary, LINE_BREAKS), "ok\0x"]:
        for option, call in options.items():
            with pytest.raises(DeviceError, match=f"{option} .* holds a control character"):
                call(f"folder{payload}")
            refused += 1
    # A leading '-' would be an option to python or sh: with this remote dir, python ran
    # the agent's path (DIR/agent-HASH.pyz) as code before names were checked.
    injected = f"-cimport os;os.system('touch {canary}')#"
    with pytest.raises(DeviceError, match="starts with '-'"):
        ssh_transport(sshd.target, str(sshd.key), directory=injected)
    with pytest.raises(DeviceError, match="starts with '-'"):
        sh_agent_transport("-x", "benchmark_model")
    # through the CLI: exit code 2 and one line, nothing registered
    assert "invalid device name" in one_line_error(
        cli("devices", "add", f"x; touch {canary}", "--kind", "local"))
    assert "invalid adb serial" in one_line_error(
        cli("devices", "add", "x", "--adb", f"emulator-5554;touch {canary}"))
    assert "starts with '-'" in one_line_error(
        cli("devices", "add", "x", "--ssh", sshd.target, "--key", str(sshd.key),
            "--remote-dir", injected))
    assert "holds a NUL byte" in one_line_error(
        cli("devices", "add", "x", "--power-command", "meter \0 x"))
    assert cli.ok("devices", "list") == []
    assert not canary.exists()
    print(f"\nrefused {refused + 6} hostile names and paths")


def test_every_transport_refuses_a_nul_byte_and_keeps_a_dash_path_a_path(
        sshd: SshServer) -> None:
    target = SshTarget.parse(sshd.target, str(sshd.key), str(sshd.known_hosts))
    for shell in (LocalShell(), SshShell(target, connect_timeout_s=5)):
        with pytest.raises(TransportError, match="holds a NUL byte"):
            shell.run(["echo", "a\0b"], timeout_s=10)
        shell.close()
    # a remote folder stored before names were checked still gives paths that are no option
    pushed = Pushed()
    folder = RemoteFolder(pushed, "-c")
    model = ModelRecord.from_file(MODEL)
    assert folder.model_path(model) == f"./-c/models/{model.sha256}.onnx"
    assert folder.put_bytes("agent.pyz", b"zip") == "./-c/agent.pyz"
    assert pushed.remote == [f"./-c/models/{model.sha256}.onnx", "./-c/agent.pyz"]


class Pushed:
    """A device's files, as far as staging sees them: nothing there, pushes recorded."""

    def __init__(self) -> None:
        self.remote: list[str] = []

    def push(self, local: Path, remote: str) -> None:
        self.remote.append(remote)

    def size(self, remote: str) -> int | None:
        return None


# -- passed through literally: SSH ----------------------------------------------------------


def test_ssh_device_takes_metacharacters_literally(sshd: SshServer, cli: Cli,
                                                   tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    remote_dir = hostile_folder(tmp_path / "remote", canary)
    python = python_wrapper(hostile_folder(tmp_path / "bin", canary))
    meter, log = power_meter(tmp_path / "meter")
    words = hostile(canary, PAYLOADS + LINE_BREAKS)
    ssh = ("--ssh", sshd.target, "--key", str(sshd.key), "--known-hosts", str(sshd.known_hosts),
           "--remote-dir", str(remote_dir), "--power-command", shlex.join([str(meter), *words]))
    added = cli("devices", "add", "ssh-py", *ssh, "--python", str(python))
    assert added.returncode == 0, added.stderr
    measured = cli.run(hostile_model(tmp_path, canary, MODEL), "ssh-py")
    assert measured.summary.count >= 5
    assert_meter_got(log, words)  # the meter ran, its words intact
    assert list(remote_dir.glob("agent-*.pyz")) and list((remote_dir / "models").glob("*.onnx"))

    # a board without Python: the sh agent runs the tool at a hostile path
    tool = install(hostile_folder(tmp_path / "opt", canary))["onnxruntime_perf_test"]
    added = cli("devices", "add", "ssh-sh", *ssh, "--agent", "sh", "--tool", str(tool))
    assert added.returncode == 0, added.stderr
    log.unlink()
    measured = cli.run(hostile_model(tmp_path, canary, MODEL), "ssh-sh")
    assert measured.environment.runtime == "onnxruntime_perf_test"
    assert measured.summary.count == 5
    assert_meter_got(log, words)
    assert not canary.exists()


# -- passed through literally: ADB ----------------------------------------------------------


def test_adb_device_takes_metacharacters_literally(adb_lab: AdbLab, cli: Cli,
                                                   tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    sandbox = adb_lab.sandbox
    # relative to the device's working folder, as a phone's /data/local/tmp paths would be
    remote_dir = "hilbench " + " ".join(hostile(canary))
    sysfs_root = "sys root " + " ".join(hostile(canary))
    write_sysfs(get_preset("phone"), sandbox / sysfs_root)
    python = python_wrapper(sandbox / "bin" / "py dir ; $(id)")
    meter, log = power_meter(tmp_path / "meter")
    words = hostile(canary, PAYLOADS + LINE_BREAKS)
    adb = ("--adb", adb_lab.serial, "--adb-server", adb_lab.server, "--remote-dir", remote_dir,
           "--sysfs-root", sysfs_root, "--power-command", shlex.join([str(meter), *words]))
    added = cli("devices", "add", "adb-py", *adb, "--python", str(python))
    assert added.returncode == 0, added.stderr
    assert cli.ok("devices", "show", "adb-py")["cpu_count"] == 8  # type: ignore[index]
    measured = cli.run(hostile_model(tmp_path, canary, MODEL), "adb-py")
    assert measured.environment.dvfs.domain("cpu4-7") is not None  # read under the root
    assert_meter_got(log, words)
    assert list((sandbox / remote_dir).glob("agent-*.pyz"))

    # the phone without Python: its benchmark_model at a hostile path, DVFS pinned and
    # sampled under the hostile sysfs root
    tool = sandbox / "tools ; $(id) `id`" / "benchmark_model"
    tool.parent.mkdir()
    shutil.copy(sandbox / "bin" / "benchmark_model", tool)
    added = cli("devices", "add", "adb-sh", *adb, "--agent", "sh", "--tool",
                str(tool.relative_to(sandbox)))
    assert added.returncode == 0, added.stderr
    log.unlink()
    measured = cli.run(hostile_model(tmp_path, canary, TFLITE), "adb-sh", {"cpu4-7": 1401000})
    big = measured.environment.dvfs.domain("cpu4-7")
    assert big is not None and big.min_khz == big.max_khz == 1401000, big
    assert measured.telemetry is not None
    sampled = measured.telemetry.get("/sys/devices/system/cpu/cpufreq/policy4/scaling_cur_freq")
    assert sampled is not None and sampled.values, "nothing sampled under the hostile root"
    assert_meter_got(log, words)

    # stdin goes through a file in the device's folder: that folder's name is data too
    remote = AdbShell(adb_lab.serial, adb_lab.server, stdin_dir=remote_dir)
    result = remote.run([sys.executable, "-c", "import sys; print(sys.stdin.read())", *words],
                        timeout_s=60, stdin="; ".join(words))
    assert result.stdout == "; ".join(words) + "\n"
    assert not canary.exists()
