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
from hilbench.profiles import Store
from tests.adblab import AdbLab
from tests.cli import bench, bench_json, one_line_error
from tests.ports import free_port
from tests.test_sh_agent import BIG, hardware, limits

MODEL = Path(__file__).parents[1] / "hilbench/assets/tiny-bert.onnx"
TFLITE = Path(__file__).parents[1] / "hilbench/assets/tiny-mlp.tflite"


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


def add_phone_without_python(lab: AdbLab, store: str, tool: str = "bin/benchmark_model",
                             *options: str) -> subprocess.CompletedProcess[str]:
    return bench("devices", "add", "emu-phone", "--adb", lab.serial, "--adb-server", lab.server,
                 "--agent", "sh", "--tool", tool, "--sysfs-root", "sysroot", "--remote-dir",
                 "hilbench", *options, store=store)


def test_phone_without_python_runs_its_own_benchmark_model(adb_lab: AdbLab,
                                                           tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    added = add_phone_without_python(adb_lab, store)
    assert added.returncode == 0, added.stderr
    device = bench_json("devices", "show", "emu-phone", store=store)
    assert (device["kind"], device["cpu_count"]) == ("adb", 8)
    assert device["os"] == "Android 14 (emulated)"
    assert device["runtimes"] == ["benchmark_model"] and device["info"]["agent_version"] == "sh-3"
    assert device["sensors"] == ["power", "power_supply", "thermal"]
    assert device["info"]["sensors"]["power"] == ["battery:battery"]
    result = bench("run", "-m", str(TFLITE), "-m", str(MODEL), "-d", "emu-phone", "--threads",
                   "1", "--min-runs", "30", "--min-time", "0.5s", "--json", store=store)
    assert result.returncode == 1, result.stderr  # the .onnx job fails, the .tflite one runs
    rows = {row["model"]: row for row in json.loads(result.stdout)}
    tflite, onnx = rows["tiny-mlp"], rows["tiny-bert"]
    assert onnx["status"] == "failed"
    assert "benchmark_model runs .tflite models, not tiny-bert" in onnx["error"]
    assert tflite["status"] == "ok", tflite["error"]
    assert tflite["runs"] >= 30  # and it ran 0.5 s, timing each inference alone:
    assert tflite["timed_duration_s"] == pytest.approx(tflite["runs"] * tflite["mean_ms"] / 1000)
    assert tflite["min_ms"] <= tflite["p50_ms"] <= tflite["max_ms"]
    assert tflite["p90_ms"] is None and tflite["p99_ms"] is None  # the tool prints p5/p95
    assert {"p90_ms", "p99_ms"} <= set(tflite["unavailable_figures"])
    assert tflite["runtime"].startswith("benchmark_model sha256:") and tflite["threads"] == 1
    assert tflite["init_ms"] > 0 and tflite["peak_memory_mb"] > 0
    # energy from the battery sampled beside the tool, over the window its output dated
    assert tflite["notes"] == []
    assert tflite["energy_sensor"] == "battery:battery"
    assert tflite["avg_power_w"] == pytest.approx(0.9, rel=0.05)  # the idle phone's draw
    assert tflite["idle_power_w"] == pytest.approx(0.9, rel=0.05)
    assert tflite["energy_per_inference_mj"] == pytest.approx(
        tflite["avg_power_w"] * tflite["mean_ms"], rel=0.35)
    with Store.open(store) as opened:
        measurement = opened.measurement(tflite["run_id"])
        assert opened.samples(tflite["run_id"]).empty  # a summary, no invented samples
    assert [d.name for d in measurement.environment.dvfs.domains] == ["cpu0-3", "cpu4-7"]
    assert measurement.telemetry is not None
    big = measurement.telemetry.get("/sys/devices/system/cpu/cpufreq/policy4/scaling_cur_freq")
    assert big is not None and len(big.values) >= 2 and set(big.values) == {2419000.0}
    table = bench("profiles", "show", store=store)
    assert table.returncode == 0 and "emu-phone" in table.stdout


def test_phone_without_python_pins_a_level_and_reads_an_external_meter(
    adb_lab: AdbLab, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    meter = adb_lab.sandbox / "bin/usb-meter"  # on the device: prints its power in watts
    meter.write_text("#!/bin/sh\necho 'VBUS 5.01 V'\necho 'power: 3.30 W'\n")
    meter.chmod(0o755)
    added = add_phone_without_python(adb_lab, store, "bin/benchmark_model", "--power-command",
                                     "bin/usb-meter")
    assert added.returncode == 0, added.stderr
    sysroot = adb_lab.sandbox / "sysroot"
    before = limits(sysroot)
    run = ("run", "-m", str(TFLITE), "-d", "emu-phone", "--dvfs", "cpu4-7=1.5GHz", "--threads",
           "1", "--min-runs", "30", "--min-time", "0.5s")
    with hardware(sysroot):  # the phone's power and thermal model drives its cpufreq
        row = bench_json(*run, store=store)[0]
    assert row["status"] == "ok", row["error"]
    assert row["dvfs_pinned_mhz"] == {"cpu4-7": 1401}  # the level below 1.5 GHz
    assert row["frequencies_mhz"][f"/{BIG}/scaling_cur_freq"] == {
        "min": 1401, "mean": 1401, "max": 1401}  # what the device ran at, sampled
    assert not [r for r in row["reasons"] if r.startswith("throttled")]
    assert row["energy_sensor"] == "external"  # the meter before the battery
    assert row["avg_power_w"] == pytest.approx(3.3)
    assert row["notes"] == []
    assert limits(sysroot) == before  # put back after the run
    trip = sysroot / "sys/class/thermal/thermal_zone0/trip_point_0_temp"
    trip.write_text("30000\n")  # a trip point the phone is already above
    with hardware(sysroot):
        hot = bench_json(*run, store=store)[0]
    assert hot["status"] == "ok" and hot["verdict"] == "INVALID"
    assert any(r.startswith("throttled: cpu4-7 at 710 MHz (pinned at 1401 MHz) at t=")
               for r in hot["reasons"]), hot["reasons"]
    assert hot["frequencies_mhz"][f"/{BIG}/scaling_cur_freq"]["min"] == 710
    assert limits(sysroot) == before


def test_a_missing_tool_is_refused_at_registration(adb_lab: AdbLab, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    error = one_line_error(add_phone_without_python(adb_lab, store, "bin/no_benchmark_model"))
    assert "benchmark_model is not at bin/no_benchmark_model on the device" in error
    assert bench_json("devices", "list", store=store) == []
