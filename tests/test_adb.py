"""The ADB transport through the real adb server to the emulated Android device, which
speaks the device side of the ADB protocol (CNXN, OPEN, WRTE, shell v2, sync)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hilbench.core.errors import TransportError
from hilbench.devices.adb_shell import AdbShell
from hilbench.devices.emulated import write_sysfs
from hilbench.devices.presets import get_preset
from tests.adblab import AdbLab
from tests.cli import bench, bench_json, one_line_error
from tests.ports import free_port

MODEL = Path(__file__).parents[1] / "hilbench/assets/tiny-bert.onnx"


def shell(lab: AdbLab) -> AdbShell:
    return AdbShell(lab.serial, lab.server, stdin_dir=str(lab.sandbox))


def test_the_real_adb_client_sees_the_emulated_device(adb_lab: AdbLab) -> None:
    adb = [adb_lab.adb, "-P", adb_lab.server.rsplit(":", 1)[1]]
    connected = subprocess.run([*adb, "connect", adb_lab.serial], env=adb_lab.env,
                               capture_output=True, text=True, check=True)
    assert "connected" in connected.stdout
    listed = subprocess.run([*adb, "devices", "-l"], env=adb_lab.env, capture_output=True,
                            text=True, check=True)
    line = next(row for row in listed.stdout.splitlines() if row.startswith(adb_lab.serial))
    assert line.split()[1] == "device" and "model:hilbench_emulated_phone" in line
    result = subprocess.run([*adb, "-s", adb_lab.serial, "shell", "echo out; echo err >&2; exit 7"],
                            env=adb_lab.env, capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (7, "out\n", "err\n")


def test_exit_code_output_and_stdin(adb_lab: AdbLab) -> None:
    remote = shell(adb_lab)
    code = "import sys; print(sys.stdin.read()[::-1]); print('e', file=sys.stderr); sys.exit(5)"
    result = remote.run([sys.executable, "-c", code], timeout_s=60, stdin="abc")
    assert (result.returncode, result.stdout, result.stderr) == (5, "cba\n", "e\n")


def test_metacharacters_are_data(adb_lab: AdbLab) -> None:
    marker = adb_lab.sandbox / "pwned"
    hostile = [f"; touch {marker}", f"$(touch {marker})", f"`touch {marker}`", "a  b", "'\""]
    result = shell(adb_lab).run(
        [sys.executable, "-c", "import sys; print('\\n'.join(sys.argv[1:]))", *hostile],
        timeout_s=60,
    )
    assert result.stdout.splitlines() == hostile and not marker.exists()


def test_files_push_pull_size(adb_lab: AdbLab, tmp_path: Path) -> None:
    local = tmp_path / "blob"
    local.write_bytes(bytes(range(256)) * 1000)
    remote = shell(adb_lab)
    target = str(adb_lab.sandbox / "data" / "local" / "tmp" / "blob")
    assert remote.size(target) is None
    remote.push(local, target)
    assert remote.size(target) == 256_000
    remote.pull(target, tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == local.read_bytes()


def test_unplugged_device_and_missing_server(adb_lab: AdbLab) -> None:
    adb_lab.emulator.terminate()
    adb_lab.emulator.wait(timeout=10)
    with pytest.raises(TransportError, match=adb_lab.serial):
        shell(adb_lab).run(["true"], timeout_s=10)
    with pytest.raises(TransportError, match="cannot reach the adb server"):
        AdbShell("emulator-5554", f"127.0.0.1:{free_port()}").run(["true"], timeout_s=10)


def test_bench_run_through_adb(adb_lab: AdbLab, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    root = write_sysfs(get_preset("phone"), adb_lab.sandbox / "root")
    added = bench("devices", "add", "emu-adb", "--adb", adb_lab.serial, "--adb-server",
                  adb_lab.server, "--python", sys.executable, "--remote-dir",
                  str(adb_lab.sandbox / "data/local/tmp/hilbench"), "--sysfs-root", str(root),
                  store=store)
    assert added.returncode == 0, added.stderr
    device = bench_json("devices", "show", "emu-adb", store=store)
    assert device["kind"] == "adb" and device["cpu_count"] == 8
    assert device["dvfs_domains"] == ["cpu0-3", "cpu4-7"]
    rows = bench_json("run", "-m", str(MODEL), "-d", "emu-adb", "--min-runs", "10",
                      "--min-time", "0.1s", store=store)
    assert rows[0]["status"] == "ok" and rows[0]["runs"] >= 10
    assert list((adb_lab.sandbox / "data/local/tmp/hilbench/models").iterdir())


def test_bad_adb_settings_are_one_line(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    error = one_line_error(bench("devices", "add", "x", "--adb", "serial", "--adb-server",
                                 "nonsense", store=store))
    assert "invalid adb server 'nonsense'" in error
    unreachable = bench("devices", "add", "x", "--adb", "emulator-5554", "--adb-server",
                        f"127.0.0.1:{free_port()}", store=store)
    assert "cannot probe it" in one_line_error(unreachable)


def test_device_unplugged_mid_run_fails_alone(adb_lab: AdbLab, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    added = bench("devices", "add", "emu-adb", "--adb", adb_lab.serial, "--adb-server",
                  adb_lab.server, "--python", sys.executable, "--remote-dir",
                  str(adb_lab.sandbox / "data/local/tmp/hilbench"), store=store)
    assert added.returncode == 0, added.stderr
    assert bench("devices", "add", "phone", "--preset", "phone", store=store).returncode == 0
    run = subprocess.Popen(
        [sys.executable, "-m", "hilbench.cli", "run", "-m", str(MODEL), "-d", "emu-adb,phone",
         "--min-time", "3s", "--json", "--store", store],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    models = adb_lab.sandbox / "data/local/tmp/hilbench/models"
    deadline = time.monotonic() + 60
    while not (models.exists() and any(models.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the job is running on the device now
    adb_lab.emulator.kill()  # unplugged
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, stderr
    assert stdout.strip(), stderr
    rows = {row["device"]: row for row in json.loads(stdout)}
    assert rows["phone"]["status"] == "ok"
    assert rows["emu-adb"]["status"] == "failed"
    assert rows["emu-adb"]["error"].startswith(f"{adb_lab.serial}: device lost"), rows
    stored = {r["device"]: r["status"] for r in bench_json("profiles", "show", store=store)}
    assert stored == {"phone": "ok", "emu-adb": "failed"}
