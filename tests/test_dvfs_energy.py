"""DVFS levels pinned and restored, energy per inference and throttling, on emulated devices
whose power and thermal model drives their sysfs (read by the same code as a real board)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hilbench.agents.dvfs_control import FrequencyPin
from hilbench.core.errors import ModelError, SettingsError
from hilbench.core.records import ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.devices.device import Device, open_device
from hilbench.devices.emulated import write_sysfs
from hilbench.devices.presets import get_preset
from hilbench.devices.registry import new_device_record
from tests.cli import InProcess, bench, bench_json, one_line_error

MODEL = Path(__file__).parents[1] / "hilbench/assets/tiny-bert.onnx"
BIG = "sys/devices/system/cpu/cpufreq/policy4"
QUICK = BenchmarkSettings(warmup_runs=2, warmup_duration_s=0.05, min_runs=10,
                          min_duration_s=0.6, idle_power_s=0.2)


def phone(tmp_path: Path) -> Device:
    device = open_device(new_device_record("emu-phone", "emulated", "phone"), tmp_path)
    assert isinstance(device, Device)
    return device


def limits(root: Path) -> tuple[str, str]:
    return ((root / BIG / "scaling_min_freq").read_text().strip(),
            (root / BIG / "scaling_max_freq").read_text().strip())


def test_pin_and_restore_whatever_happens(tmp_path: Path) -> None:
    root = write_sysfs(get_preset("phone"), tmp_path / "phone")
    before = limits(root)
    with FrequencyPin(root, {"cpu4-7": 1401000}):
        assert limits(root) == ("1401000", "1401000")
    assert limits(root) == before
    with pytest.raises(RuntimeError), FrequencyPin(root, {"cpu4-7": 710000}):
        raise RuntimeError("the job failed")
    assert limits(root) == before
    with pytest.raises(SettingsError, match="no level 1400000 kHz"):
        FrequencyPin(root, {"cpu4-7": 1400000}).__enter__()
    with pytest.raises(SettingsError, match="no DVFS domain 'gpu:x'"):
        FrequencyPin(root, {"gpu:x": 1}).__enter__()


def test_a_domain_that_cannot_be_written_is_observed_instead(tmp_path: Path) -> None:
    root = write_sysfs(get_preset("phone"), tmp_path / "phone")
    (root / BIG / "scaling_min_freq").unlink()
    (root / BIG / "scaling_min_freq").mkdir()  # not writable, even as root
    with FrequencyPin(root, {"cpu4-7": 1401000}) as pin:
        assert "cpu4-7 not pinned" in pin.notes[0] and "observed" in pin.notes[0]
    assert (root / BIG / "scaling_max_freq").read_text().strip() == "2419000"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_the_agent_restores_the_levels_when_it_is_stopped(tmp_path: Path,
                                                          stop: signal.Signals) -> None:
    device = phone(tmp_path)
    model = ModelRecord.from_file(MODEL)
    job = device.job_spec("job", model, replace(QUICK, min_duration_s=30, max_duration_s=60),
                          dvfs_pin={"cpu4-7": 1056000})
    root = Path(device.sysfs_root)
    before = limits(root)
    agent = subprocess.Popen([sys.executable, "-m", "hilbench.agents", "run"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert agent.stdin is not None
    agent.stdin.write(job.to_json())
    agent.stdin.close()
    deadline = time.monotonic() + 30
    while limits(root) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert limits(root) == ("1056000", "1056000")  # pinned while it runs
    agent.send_signal(stop)  # TERM: Ctrl-C on the host; HUP: its session closed
    agent.wait(timeout=30)
    assert limits(root) == before


def test_a_failing_job_restores_the_levels(tmp_path: Path) -> None:
    device = phone(tmp_path)
    model = replace(ModelRecord.from_file(MODEL), sha256="0" * 64)  # the agent refuses it
    root = Path(device.sysfs_root)
    before = limits(root)
    with pytest.raises(ModelError, match="changed"):
        device.run_model("job", model, QUICK, lambda p, f: None, {"cpu4-7": 710000})
    assert limits(root) == before


def test_energy_per_inference_idle_power_and_traces(tmp_path: Path) -> None:
    measurement = phone(tmp_path).run_model("job", ModelRecord.from_file(MODEL), QUICK,
                                            lambda p, f: None)
    energy = measurement.energy
    assert energy is not None and energy.sensor == "battery:battery"
    assert energy.method == "power trace" and energy.inferences == measurement.summary.count
    assert energy.idle_power_w == pytest.approx(0.9, rel=0.05)  # the preset's static power
    assert energy.avg_power_w > energy.idle_power_w
    assert energy.active_energy_per_inference_mj is not None
    assert 0 < energy.active_energy_per_inference_mj < energy.energy_per_inference_mj
    assert measurement.telemetry is not None
    assert not any(r.startswith("throttled") for r in measurement.verdict.reasons)
    assert measurement.telemetry.get("battery:battery") is not None


def test_a_hot_device_throttles_and_the_run_says_so(tmp_path: Path) -> None:
    device = phone(tmp_path)
    trip = Path(device.sysfs_root) / "sys/class/thermal/thermal_zone0/trip_point_0_temp"
    trip.write_text("30000\n")  # a trip point the device is already above
    measurement = device.run_model("job", ModelRecord.from_file(MODEL), QUICK,
                                   lambda p, f: None)
    reasons = measurement.verdict.reasons
    assert any(r.startswith("throttled: cpu4-7 at ") and "(expected 2419 MHz)" in r
               for r in reasons), reasons


def test_cool_down_waits_until_the_device_is_cool(tmp_path: Path) -> None:
    device = phone(tmp_path)
    state = Path(device.sysfs_root) / ".hilbench-board.json"
    state.write_text(json.dumps({"time": time.time(), "temp_c": 45.0, "energy_j": 0.0}))
    settings = replace(QUICK, cooldown_below_c=38.0, cooldown_max_s=20)
    measurement = device.run_model("job", ModelRecord.from_file(MODEL), settings,
                                   lambda p, f: None)
    assert measurement.notes[0].startswith("cool-down: waited ")
    assert measurement.telemetry is not None


def test_sweep_energy_falls_with_frequency_until_static_power_dominates(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    assert bench("devices", "add", "emu-phone", "--preset", "phone", store=store).returncode == 0
    # Two sweeps: a job this shared machine ran slowly (the host, not the device model) only
    # ever raises a level's energy, so each level keeps the lower of its two figures.
    sweeps = [bench_json("run", "-m", str(MODEL), "-d", "emu-phone", "--dvfs", "sweep",
                         "--min-time", "1s", "--idle-time", "200ms", store=store)
              for _ in range(2)]
    rows = sweeps[0]
    levels = [row["dvfs_pinned_mhz"]["cpu4-7"] for row in rows]
    assert levels == [2419, 2016, 1804, 1401, 1056, 710]
    assert [row["dvfs_pinned_mhz"]["cpu4-7"] for row in sweeps[1]] == levels
    energy = {level: min(sweep[i]["energy_per_inference_mj"] for sweep in sweeps)
              for i, level in enumerate(levels)}
    lowest = min(energy, key=energy.__getitem__)
    assert lowest in (1804, 1401, 1056)
    assert energy[2419] > energy[1401] * 1.1  # dynamic power falls faster than time grows
    # then static power over the longer run dominates: energy rises again at the bottom
    # (by 4-10 % on this shared host; a 5 % margin failed once in CI, at 3.6 %)
    assert energy[710] > energy[1056]
    every = [row for sweep in sweeps for row in sweep]
    assert all(row["energy_sensor"] == "battery:battery" for row in every)
    assert not [r for row in every for r in row["reasons"] if r.startswith("throttled")]
    assert rows[0]["frequencies_mhz"][f"/{BIG}/scaling_cur_freq"]["max"] == 2419
    stored = bench_json("profiles", "show", store=store)
    assert {round(r["energy_per_inference_mj"], 6) for r in stored} == {
        round(row["energy_per_inference_mj"], 6) for sweep in sweeps for row in sweep}


def test_named_levels_and_bad_levels(tmp_path: Path, cli: InProcess) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    added = cli.bench("devices", "add", "emu-phone", "--preset", "phone", store=store)
    assert added.returncode == 0
    assert cli.bench("devices", "add", "local", "--kind", "local", store=store).returncode == 0
    rows = cli.json("run", "-m", str(MODEL), "-d", "emu-phone", "--dvfs",
                      "cpu4-7=1.5GHz,cpu0-3=min", "--min-time", "0.4s", store=store)
    assert rows[0]["dvfs_pinned_mhz"] == {"cpu4-7": 1401, "cpu0-3": 300}
    no_gpu = cli.bench("run", "-m", str(MODEL), "-d", "emu-phone", "--dvfs", "gpu=max", store=store)
    assert "emu-phone has no DVFS domain 'gpu'" in one_line_error(no_gpu)
    no_levels = cli.bench("run", "-m", str(MODEL), "-d", "local", "--dvfs", "sweep", store=store)
    assert "local has no CPU cluster with frequency levels" in one_line_error(no_levels)
    garbage = cli.bench("run", "-m", str(MODEL), "-d", "emu-phone", "--dvfs", "cpu=fast",
                    store=store)
    assert "invalid DVFS level 'fast'" in one_line_error(garbage)
    assert len(cli.json("profiles", "show", store=store)) == 1  # nothing else was stored


def test_an_external_power_meter_gives_a_device_without_sensors_its_energy(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    assert bench("devices", "add", "bare", "--kind", "local", store=store).returncode == 0
    added = bench("devices", "add", "metered", "--kind", "local", "--power-command",
                  "echo 7.5 W", store=store)
    assert added.returncode == 0, added.stderr
    rows = {row["device"]: row for row in bench_json(
        "run", "-m", str(MODEL), "-d", "bare,metered", "--threads", "1", "--min-time", "0.5s",
        "--idle-time", "0s", store=store)}
    bad = bench("devices", "add", "x", "--kind", "local", "--power-command", "meter 'unclosed",
                store=store)
    assert "--power-command: external power command" in one_line_error(bad)
    bare, metered = rows["bare"], rows["metered"]
    assert bare["energy_per_inference_mj"] is None
    assert "energy_per_inference_mj" in bare["unavailable_figures"]
    assert "energy: no power sensor found on the device" in bare["notes"]
    assert metered["energy_sensor"] == "external"
    assert metered["avg_power_w"] == pytest.approx(7.5)
    assert metered["energy_per_inference_mj"] == pytest.approx(7.5 * metered["mean_ms"], rel=0.15)


def test_a_jetson_gpu_and_cpu_pinned_together(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    assert bench("devices", "add", "emu-jetson", "--preset", "jetson",
                 store=store).returncode == 0
    shown = bench_json("devices", "show", "emu-jetson", store=store)
    assert shown["dvfs_domains"] == ["cpu0-5", "gpu:17000000.ga10b"]
    assert shown["info"]["sensors"]["power"][0] == "ina3221:VDD_IN"
    rows = bench_json("run", "-m", str(MODEL), "-d", "emu-jetson", "--dvfs", "gpu=max,cpu=min",
                      "--min-time", "0.4s", "--idle-time", "0s", store=store)
    assert rows[0]["dvfs_pinned_mhz"] == {"gpu:17000000.ga10b": 1020, "cpu0-5": 115}
    assert rows[0]["energy_sensor"] == "ina3221:VDD_IN" and rows[0]["idle_power_w"] is None
