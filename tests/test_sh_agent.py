"""The POSIX-sh agent run by a real /bin/sh against an emulated phone's sysfs tree, and the
host's reading of what it prints."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hilbench.agents.emulated_board import EmulatedBoard
from hilbench.agents.emulation import SpeedModel
from hilbench.agents.parsers import parse_benchmark_model
from hilbench.agents.sysfs import probe, read_dvfs
from hilbench.core.errors import AgentError, DeviceError, SettingsError
from hilbench.core.measurement import Measurement
from hilbench.core.records import DeviceRecord, ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.core.telemetry import Series, Telemetry
from hilbench.devices.emulated import speed_model, write_sysfs
from hilbench.devices.emulated_tools import install
from hilbench.devices.local_shell import LocalShell
from hilbench.devices.presets import get_preset
from hilbench.devices.sh_agent import (
    AgentOutput,
    parse_agent_output,
    parse_trace,
    pin_arguments,
    power_arguments,
    sh_agent_script,
    timed_lines,
    write_tree,
)
from hilbench.devices.staging import RemoteFolder
from hilbench.devices.tool_device import ToolDevice, open_tool_device
from hilbench.devices.tool_energy import tool_energy
from hilbench.devices.tools import (
    benchmark_model_argv,
    perf_test_argv,
    reported_summary,
    tool_named,
)

GOLDEN = Path(__file__).parent / "golden"
TFLITE = Path(__file__).parents[1] / "hilbench/assets/tiny-mlp.tflite"
BIG = "sys/devices/system/cpu/cpufreq/policy4"
QUICK = BenchmarkSettings(threads=1, warmup_runs=2, warmup_duration_s=0.05, min_runs=10,
                          min_duration_s=0.6, idle_power_s=0.2)


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
    assert info["battery_wh"] == pytest.approx(4.5 * 3.9)  # 4,500 mAh at 3.4-4.4 V
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


# --- DVFS pinning and the power command ------------------------------------------------------


def limits(root: Path) -> tuple[str, str]:
    return ((root / BIG / "scaling_min_freq").read_text().strip(),
            (root / BIG / "scaling_max_freq").read_text().strip())


def pins(tmp_path: Path, root: Path, khz: int) -> list[str]:
    """The host's --pin arguments, from what the agent's own ``dvfs`` dump says."""
    return pin_arguments(agent(tmp_path, "dvfs", str(root)).files, str(root), {"cpu4-7": khz})


def limits_tool(tmp_path: Path, root: Path) -> Path:
    """A benchmark tool that prints the big cluster's limits while it runs, then exits $1."""
    tool = tmp_path / "limits-tool"
    tool.write_text(f"#!/bin/sh\necho \"limits $(cat {root / BIG}/scaling_min_freq) "
                    f"$(cat {root / BIG}/scaling_max_freq)\"\nexit ${{1:-0}}\n")
    tool.chmod(0o755)
    return tool


def test_the_dvfs_dump_gives_each_domain_its_folder(phone: Path, tmp_path: Path) -> None:
    assert pins(tmp_path, phone, 1401000) == [
        "--pin", "cpu4-7", f"{phone}/{BIG}", "scaling_min_freq", "scaling_max_freq", "1401000"]
    jetson = write_sysfs(get_preset("jetson"), tmp_path / "jetson")
    files = agent(tmp_path, "dvfs", str(jetson)).files
    gpu = pin_arguments(files, "/", {"gpu:17000000.ga10b": 612000})  # devfreq: Hz in sysfs
    assert gpu == ["--pin", "gpu:17000000.ga10b", "/sys/class/devfreq/17000000.ga10b",
                   "min_freq", "max_freq", "612000000"]
    with pytest.raises(SettingsError, match="no level 1400000 kHz"):
        pins(tmp_path, phone, 1400000)
    with pytest.raises(SettingsError, match=r"no DVFS domain 'gpu:x'.*cpu0-3, cpu4-7"):
        pin_arguments(agent(tmp_path, "dvfs", str(phone)).files, str(phone), {"gpu:x": 1})
    assert power_arguments("usbmeter --watts 'port 2'") == [
        "--power-command", "3", "usbmeter", "--watts", "port 2"]
    with pytest.raises(DeviceError, match="--power-command"):
        power_arguments("meter 'unclosed")


@pytest.mark.parametrize(("cap_khz", "khz"), [(None, 710000), (1056000, 2016000)])
def test_a_pinned_run_holds_min_equal_max_and_puts_back_what_it_found(
    phone: Path, tmp_path: Path, cap_khz: int | None, khz: int
) -> None:
    if cap_khz is not None:  # a user capped the cluster: the pin raises it, max first
        (phone / BIG / "scaling_max_freq").write_text(f"{cap_khz}\n")
    before = limits(phone)
    tool = limits_tool(tmp_path, phone)
    output = agent(tmp_path, "run", str(phone), "0.05", "0", *pins(tmp_path, phone, khz), "--",
                   str(tool))
    assert [line.text for line in timed_lines(output.sections["tool"])] == [
        f"limits {khz} {khz}"]  # what the tool saw while it ran
    assert output.marker("dvfs-pinned") == f"cpu4-7 {khz}"
    with_pin = read_dvfs(write_tree(output.files, tmp_path / "dumped")).domain("cpu4-7")
    assert with_pin is not None and with_pin.min_khz == with_pin.max_khz == khz  # recorded
    assert limits(phone) == before
    failing = agent(tmp_path, "run", str(phone), "0.05", "0", *pins(tmp_path, phone, khz), "--",
                    str(tool), "3")
    assert failing.marker("tool-exit") == "3"
    assert [line.text for line in timed_lines(failing.sections["tool"])] == [
        f"limits {khz} {khz}"]
    assert limits(phone) == before  # after a failing tool too


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _default_hup() -> None:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stopped_agent_puts_the_limits_back_and_stops_the_tool(
    phone: Path, tmp_path: Path, stop: signal.Signals
) -> None:
    tool = tmp_path / "slow-tool"  # says it runs, then runs 60 s (exec: the tool is the sleep)
    tool.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'tool.pid'}\nexec sleep 60\n")
    tool.chmod(0o755)
    before = limits(phone)
    script = tmp_path / "hilbench-agent.sh"
    script.write_bytes(sh_agent_script())
    # a shell cannot trap a signal ignored when it started (POSIX): under nohup, as a test
    # run may be, HUP would be; a device's shell starts with it at its default
    running = subprocess.Popen(["sh", str(script), "run", str(phone), "0.05", "0",
                                *pins(tmp_path, phone, 1056000), "--power-command", "1", "true",
                                "--", str(tool)], stdout=subprocess.PIPE, text=True,
                               cwd=tmp_path, preexec_fn=_default_hup)
    deadline = time.monotonic() + 30
    while not (tmp_path / "tool.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)
    tool_pid = int((tmp_path / "tool.pid").read_text())
    assert limits(phone) == ("1056000", "1056000") and alive(tool_pid)  # pinned, running
    running.send_signal(stop)  # TERM: Ctrl-C on the host; HUP: its session closed
    running.communicate(timeout=30)
    assert running.returncode == 143
    assert limits(phone) == before
    deadline = time.monotonic() + 5
    while alive(tool_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(tool_pid)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("hilbench-")
                and p.name != "hilbench-agent.sh"]  # its work files are gone


class ThisMachine(LocalShell):
    """This machine as a device reached by the sh agent: LocalShell, plus the file sizes
    RemoteFolder asks for before it copies a file."""

    def size(self, remote: str) -> int | None:
        path = Path(remote)
        return path.stat().st_size if path.is_file() else None


def sh_device(tmp_path: Path, root: Path, power_command: str | None = None) -> ToolDevice:
    """The emulated phone's tree behind the sh agent, with the emulated benchmark_model
    (real LiteRT inferences on this machine) as the device's tool."""
    tool = install(tmp_path / "bin")["benchmark_model"]
    transport = {"agent": "sh", "tool": str(tool), "tool_kind": "benchmark_model",
                 **({"power_command": power_command} if power_command else {})}
    shell = ThisMachine()
    return open_tool_device(DeviceRecord("emu-sh", "ssh", transport=transport), shell,
                            RemoteFolder(shell, str(tmp_path / "remote")), str(root))


def run_on(device: ToolDevice, pin: dict[str, int] | None = None) -> Measurement:
    return device.run_model("job", ModelRecord.from_file(TFLITE), QUICK, lambda p, f: None,
                            pin)


def test_a_domain_that_cannot_be_written_is_observed_instead(phone: Path,
                                                             tmp_path: Path) -> None:
    (phone / BIG / "scaling_max_freq").write_text("1056000\n")  # raising to 1401 MHz: max first
    (phone / BIG / "scaling_min_freq").unlink()  # read-only procfs: not writable, even by root
    (phone / BIG / "scaling_min_freq").symlink_to("/proc/sys/kernel/ngroups_max")
    with pytest.raises(OSError):
        (phone / BIG / "scaling_min_freq").write_text("1401000\n")
    measurement = run_on(sh_device(tmp_path, phone), {"cpu4-7": 1401000})
    pin_notes = [note for note in measurement.notes if note.startswith("DVFS: ")]
    assert len(pin_notes) == 1, measurement.notes
    assert pin_notes[0].startswith("DVFS: cpu4-7 not pinned (")
    assert pin_notes[0].endswith("; pinning needs root): the frequencies observed are recorded "
                                 "instead")
    big = measurement.environment.dvfs.domain("cpu4-7")
    assert big is not None and big.max_khz == 1056000 and big.min_khz != big.max_khz
    assert (phone / BIG / "scaling_max_freq").read_text().strip() == "1056000"  # written back


def test_the_power_commands_watts_are_the_energy(phone: Path, tmp_path: Path) -> None:
    meter = tmp_path / "meter.sh"  # a USB meter's CLI: the last number it prints is watts
    meter.write_text("#!/bin/sh\necho 'VBUS 5.02 V'\necho 'power: 2.50 W'\n")
    measurement = run_on(sh_device(tmp_path, phone, f"sh {meter}"))
    energy = measurement.energy
    assert energy is not None and energy.sensor == "external"  # before the battery
    assert energy.avg_power_w == pytest.approx(2.5) and energy.idle_power_w == pytest.approx(2.5)
    assert energy.energy_per_inference_mj == pytest.approx(
        2.5 * measurement.summary.mean_ms, rel=0.35)
    assert measurement.telemetry is not None
    external = measurement.telemetry.get("external")
    assert external is not None and external.unit == "W" and len(external.values) >= 3
    assert measurement.telemetry.get("/sys/class/power_supply/battery/current_now") is not None


def test_a_charging_battery_leaves_the_external_meter() -> None:
    points = (0.0, 0.5, 1.0, 1.5, 2.0)
    telemetry = Telemetry(0.1, (
        Series("external", "W", points, (3.0,) * 5),
        Series("/sys/class/power_supply/battery/current_now", "µA", points, (-500000.0,) * 5),
        Series("/sys/class/power_supply/battery/voltage_now", "µV", points, (4e6,) * 5),
    ))
    files = {"/sys/class/power_supply/battery/type": "Battery",
             "/sys/class/power_supply/battery/status": "Charging"}
    energy, notes = tool_energy(telemetry, files, (0.5, 1.5), (0.0, 0.5), 10)
    assert energy is not None and energy.sensor == "external"
    assert energy.energy_j == pytest.approx(3.0)
    assert notes == ["energy: battery is charging: its readings mean nothing on USB power "
                     "(use adb over Wi-Fi, or unplug)"]
    alone, why = tool_energy(Telemetry(0.1, telemetry.series[1:]), files, (0.5, 1.5), None, 10)
    assert alone is None and why == notes


@contextmanager
def hardware(root: Path) -> Iterator[EmulatedBoard]:
    """The phone's power and thermal model running on its tree, as the project's emulated
    board does under the Python agent: it keeps the big cluster's scaling_cur_freq at its
    max limit, throttled one level per tick above the trip point."""
    preset = get_preset("phone")
    assert preset.power is not None
    speed = SpeedModel.from_dict(speed_model(preset, "emu-sh", 0))
    big = read_dvfs(root).domain("cpu4-7")
    assert big is not None
    board = EmulatedBoard(preset.power, speed, root, big.available_khz, root / BIG).start()
    try:
        yield board
    finally:
        board.stop()


def test_a_pinned_cluster_runs_at_its_level_and_a_hot_one_is_throttled(
    phone: Path, tmp_path: Path
) -> None:
    device = sh_device(tmp_path, phone)
    series = f"/{BIG}/scaling_cur_freq"
    with hardware(phone):
        cool = run_on(device, {"cpu4-7": 1401000})
    assert cool.telemetry is not None
    big = cool.telemetry.get(series)
    assert big is not None
    observed = [v for _, v in cool.telemetry.in_window(big)]
    assert len(observed) >= 3 and set(observed) == {1401000.0}
    assert not [r for r in cool.verdict.reasons if r.startswith("throttled")]
    (phone / "sys/class/thermal/thermal_zone0/trip_point_0_temp").write_text("30000\n")
    with hardware(phone):  # a trip point the phone is already above
        hot = run_on(device, {"cpu4-7": 1401000})
    throttled = [r for r in hot.verdict.reasons if r.startswith("throttled")]
    assert len(throttled) == 1 and not hot.verdict.valid, hot.verdict.reasons
    assert throttled[0].startswith("throttled: cpu4-7 at 710 MHz (pinned at 1401 MHz) at t=")
    assert limits(phone) == ("710000", "2419000")
