"""A Jetson's power modes (nvpmodel) and jetson_clocks: the emulated Jetson carries both
tools in its tree, where L4T installs them, and the agent drives them as on a real board."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hilbench.agents.jetson import BoardPowerPin, current_power_mode
from hilbench.agents.sysfs import read_dvfs
from hilbench.core.errors import SettingsError
from hilbench.core.records import ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.devices.device import Device, open_device
from hilbench.devices.emulated import write_sysfs
from hilbench.devices.presets import get_preset
from hilbench.devices.registry import new_device_record
from tests.cli import InProcess, bench, bench_json, one_line_error

MODEL = Path(__file__).parents[1] / "hilbench/assets/tiny-bert.onnx"
CPU = "sys/devices/system/cpu/cpufreq/policy0"
GPU = "sys/class/devfreq/17000000.ga10b"
QUICK = BenchmarkSettings(warmup_runs=2, warmup_duration_s=0.05, min_runs=10,
                          min_duration_s=0.5, idle_power_s=0.0)


def clocks(root: Path) -> tuple[str, ...]:
    return tuple((root / path).read_text().strip() for path in (
        f"{CPU}/scaling_min_freq", f"{CPU}/scaling_max_freq", f"{GPU}/min_freq",
        f"{GPU}/max_freq"))


@pytest.fixture()
def jetson(tmp_path: Path) -> Path:
    return write_sysfs(get_preset("jetson"), tmp_path / "jetson")


def test_power_mode_and_max_clocks_are_set_then_put_back(jetson: Path) -> None:
    before = clocks(jetson)
    assert read_dvfs(jetson).power_mode == "0 (15W)"
    with BoardPowerPin(jetson, mode=2, max_clocks=True) as pin:
        assert read_dvfs(jetson).power_mode == "2 (7W)"
        # jetson_clocks holds every clock at the highest the 7W mode allows
        assert clocks(jetson) == ("1036000", "1036000", "408000000", "408000000")
    assert pin.notes == []
    assert current_power_mode(jetson) == 0 and clocks(jetson) == before
    with pytest.raises(RuntimeError), BoardPowerPin(jetson, mode=1):
        assert clocks(jetson)[1] == "1344000"
        raise RuntimeError("the job failed")
    assert current_power_mode(jetson) == 0 and clocks(jetson) == before
    with pytest.raises(SettingsError, match=r"no power mode 9; modes: 0 \(15W\), 1 \(10W\)"):
        BoardPowerPin(jetson, mode=9).__enter__()


def test_a_board_that_refuses_is_observed_instead(jetson: Path) -> None:
    """Without root the real nvpmodel fails; nothing is changed and the run says so."""
    tool = jetson / "usr/sbin/nvpmodel"
    tool.write_text("#!/bin/sh\necho 'NVPM ERROR: failed to open sysfs: Permission denied'\n"
                    "exit 1\n")
    before = clocks(jetson)
    with BoardPowerPin(jetson, mode=2) as pin:
        assert clocks(jetson) == before
    assert pin.notes == ["DVFS: power mode 2 (7W) not set (nvpmodel: NVPM ERROR: failed to "
                         "open sysfs: Permission denied; it needs root): the frequencies "
                         "observed are recorded instead"]
    assert current_power_mode(jetson) == 0


def test_the_agent_restores_the_power_mode_when_it_is_stopped(tmp_path: Path) -> None:
    device = open_device(new_device_record("emu-jetson", "emulated", "jetson"), tmp_path)
    assert isinstance(device, Device)
    root = Path(device.sysfs_root)
    before = clocks(root)
    job = device.job_spec("job", ModelRecord.from_file(MODEL),
                          replace(QUICK, min_duration_s=30, max_duration_s=60),
                          dvfs_pin={"nvpmodel": 1, "jetson_clocks": 1})
    agent = subprocess.Popen([sys.executable, "-m", "hilbench.agents", "run"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert agent.stdin is not None
    agent.stdin.write(job.to_json())
    agent.stdin.close()
    deadline = time.monotonic() + 30
    while clocks(root) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # past nvpmodel, into jetson_clocks
    assert clocks(root) == ("1344000", "1344000", "612000000", "612000000")
    agent.send_signal(signal.SIGTERM)
    agent.wait(timeout=30)
    assert current_power_mode(root) == 0 and clocks(root) == before


def test_bench_run_in_each_power_mode(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    assert bench("devices", "add", "emu-jetson", "--preset", "jetson",
                 store=store).returncode == 0
    shown = bench_json("devices", "show", "emu-jetson", store=store)
    assert [m["name"] for m in shown["info"]["jetson"]["power_modes"]] == ["15W", "10W", "7W"]
    rows = bench_json("run", "-m", str(MODEL), "-d", "emu-jetson", "--dvfs", "sweep=nvpmodel",
                      "--threads", "1", "--min-time", "0.5s", "--idle-time", "0s",
                      store=store)
    assert [row["power_mode"] for row in rows] == ["0 (15W)", "1 (10W)", "2 (7W)"]
    top = [row["frequencies_mhz"][f"/{CPU}/scaling_cur_freq"]["max"] for row in rows]
    assert top == [1510, 1344, 1036]  # the board ran at each mode's cap
    # 7W is slower: 1510/1036 MHz on the 70 % of the work that scales with frequency
    # (the fastest run, least disturbed by whatever else this machine runs)
    assert rows[2]["min_ms"] > rows[0]["min_ms"] * 1.15
    held = bench_json("run", "-m", str(MODEL), "-d", "emu-jetson", "--dvfs",
                      "nvpmodel=7w,jetson_clocks", "--threads", "1", "--min-time", "0.4s",
                      "--idle-time", "0s", store=store)
    assert held[0]["power_mode"] == "2 (7W)"
    assert held[0]["dvfs_pinned_mhz"] == {"cpu0-5": 1036, "gpu:17000000.ga10b": 408}
    shown = bench_json("devices", "show", "emu-jetson", store=store)
    assert shown["info"]["jetson"]["power_mode"] == 0


def test_power_modes_are_refused_where_there_are_none(tmp_path: Path, cli: InProcess) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    added = cli.bench("devices", "add", "emu-phone", "--preset", "phone", store=store)
    assert added.returncode == 0
    assert cli.bench("devices", "add", "emu-jetson", "--preset", "jetson",
                 store=store).returncode == 0
    no_modes = cli.bench("run", "-m", str(MODEL), "-d", "emu-phone", "--dvfs", "nvpmodel=0",
                     store=store)
    assert "emu-phone has no nvpmodel (not a Jetson" in one_line_error(no_modes)
    no_clocks = cli.bench("run", "-m", str(MODEL), "-d", "emu-phone", "--dvfs", "jetson_clocks",
                      store=store)
    assert "emu-phone has no jetson_clocks" in one_line_error(no_clocks)
    unknown = cli.bench("run", "-m", str(MODEL), "-d", "emu-jetson", "--dvfs", "nvpmodel=MAXN",
                    store=store)
    assert ("emu-jetson has no power mode 'MAXN' (modes: 0 (15W), 1 (10W), 2 (7W))"
            in one_line_error(unknown))
    assert cli.json("profiles", "show", store=store) == []
