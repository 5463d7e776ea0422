"""Power sensors read from sysfs trees laid out as real boards lay them out (REFERENCE.md),
energy over a window, and the sampler that reads them beside a run."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from hilbench.agents.power import (
    ENERGY,
    POWER,
    PowerSensorError,
    battery_units,
    external_sensor,
    power_sensors,
)
from hilbench.agents.sampler import Channel, Sampler, file_channels, power_channel
from hilbench.core.energy import EnergyReport, counter_energy_j, trace_energy_j, value_at


def tree(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text + "\n")
    return root


def readings(root: Path) -> dict[str, tuple[str, float]]:
    return {s.name: (s.kind, round(s.read(), 6)) for s in power_sensors(root)}


def test_jetson_l4t_r35_hwmon_rails_by_label(tmp_path: Path) -> None:
    chip = "sys/class/hwmon/hwmon3/"  # the number changes between boots: matched by name
    root = tree(tmp_path, {
        chip + "name": "ina3221",
        chip + "in1_label": "VDD_IN", chip + "in1_input": "5072", chip + "curr1_input": "1208",
        chip + "in2_label": "VDD_CPU_GPU_CV", chip + "in2_input": "5064",
        chip + "curr2_input": "400",
        chip + "in7_label": "sum of shunt voltages", chip + "in7_input": "12",
        chip + "curr7_input": "1",
    })
    sensors = power_sensors(root)
    assert [s.name for s in sensors] == ["ina3221:VDD_IN", "ina3221:VDD_CPU_GPU_CV"]
    assert sensors[0].board_total and not sensors[1].board_total  # nested rail, not summed
    assert sensors[0].read() == pytest.approx(5.072 * 1.208)


def test_old_l4t_iio_rails(tmp_path: Path) -> None:
    device = "sys/bus/i2c/drivers/ina3221x/1-0040/iio:device0/"
    root = tree(tmp_path, {
        device + "rail_name_0": "POM_5V_IN", device + "in_power0_input": "3456",
        device + "rail_name_1": "POM_5V_GPU", device + "in_power1_input": "512",
    })
    assert readings(root) == {"ina3221:POM_5V_IN": (POWER, 3.456),
                              "ina3221:POM_5V_GPU": (POWER, 0.512)}
    assert power_sensors(root)[0].board_total


@pytest.mark.parametrize(("current", "voltage", "watts"), [
    ("-412000", "3862000", 0.412 * 3.862),  # µA, negative while discharging (Pixel)
    ("412000", "3862000", 0.412 * 3.862),   # µA, positive (other vendors)
    ("-412", "3862", 0.412 * 3.862),        # mA and mV
])
def test_battery_units_and_sign(tmp_path: Path, current: str, voltage: str, watts: float) -> None:
    supply = "sys/class/power_supply/battery/"
    root = tree(tmp_path, {supply + "type": "Battery", supply + "status": "Discharging",
                           supply + "current_now": current, supply + "voltage_now": voltage,
                           "sys/class/power_supply/usb/type": "USB"})
    sensors = power_sensors(root)
    assert [s.name for s in sensors] == ["battery:battery"]
    assert sensors[0].read() == pytest.approx(watts)
    assert battery_units(-412000, 3862000) == pytest.approx((0.412, 3.862))


def test_a_charging_battery_is_refused(tmp_path: Path) -> None:
    supply = "sys/class/power_supply/battery/"
    root = tree(tmp_path, {supply + "type": "Battery", supply + "status": "Charging",
                           supply + "current_now": "900000", supply + "voltage_now": "4200000"})
    with pytest.raises(PowerSensorError, match="battery is charging"):
        power_sensors(root)[0].read()


def test_rapl_packages_and_generic_hwmon(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        "sys/class/powercap/intel-rapl:0/name": "package-0",
        "sys/class/powercap/intel-rapl:0/energy_uj": "123456789",
        "sys/class/powercap/intel-rapl:0/max_energy_range_uj": "262143328850",
        "sys/class/powercap/intel-rapl:0:0/name": "core",  # a subzone: inside package-0
        "sys/class/powercap/intel-rapl:0:0/energy_uj": "5",
        "sys/class/hwmon/hwmon0/name": "amdgpu",
        "sys/class/hwmon/hwmon0/power1_input": "15250000",
        "sys/class/hwmon/hwmon0/power1_label": "PPT",
    })
    sensors = power_sensors(root)
    assert [(s.name, s.kind) for s in sensors] == [("rapl:package-0", ENERGY),
                                                    ("hwmon:amdgpu:PPT", POWER)]
    assert sensors[0].read() == pytest.approx(123.456789)
    assert sensors[0].wrap_j == pytest.approx(262143.32885)
    assert sensors[1].read() == pytest.approx(15.25)


def test_an_external_meter_command(tmp_path: Path) -> None:
    meter = external_sensor(f"{sys.executable} -c \"print('USB meter: 5.02 V 0.61 A 3.06 W')\"")
    assert meter.read() == pytest.approx(3.06)
    assert power_sensors(tmp_path, external=meter.source)[0].name == "external"
    silent = external_sensor(f"{sys.executable} -c \"print('no reading')\"")
    with pytest.raises(PowerSensorError, match="printed no number"):
        silent.read()


def test_energy_from_a_counter_that_wraps_and_from_a_power_trace() -> None:
    counter = [(0.0, 90.0), (1.0, 95.0), (2.0, 3.0), (3.0, 8.0)]  # wraps at 100 J
    assert counter_energy_j(counter, 0.5, 2.5, wrap=100.0) == pytest.approx(105.5 - 92.5)
    trace = [(0.0, 2.0), (1.0, 2.0), (2.0, 4.0), (3.0, 4.0)]
    assert trace_energy_j(trace, 0.5, 2.5) == pytest.approx(1.0 + 3.0 + 2.0)
    assert value_at(trace, 3.5) is None and trace_energy_j(trace, -1.0, 2.0) is None
    report = EnergyReport("battery", "power trace", 2.0, 100, 6.0, idle_power_w=1.0)
    assert report.avg_power_w == 3.0 and report.energy_per_inference_mj == pytest.approx(60.0)
    assert report.active_energy_per_inference_mj == pytest.approx(40.0)


def test_the_sampler_reads_on_its_own_thread_and_drops_a_refusing_sensor(tmp_path: Path) -> None:
    root = tree(tmp_path, {"sys/class/thermal/thermal_zone0/temp": "41000",
                           "sys/devices/system/cpu/cpufreq/policy0/scaling_cur_freq": "1804000"})

    def refuse() -> float:
        raise PowerSensorError("battery is charging")

    channels = [*file_channels(root), Channel("battery", "W", refuse)]
    sampler = Sampler(channels, 0.02).start()
    time.sleep(0.3)  # the main thread does nothing: the sampler keeps its own pace
    telemetry = sampler.stop()
    temp = telemetry.get("/sys/class/thermal/thermal_zone0/temp")
    assert temp is not None and temp.unit == "m°C" and 10 <= len(temp.values) <= 20
    assert list(temp.t_s) == sorted(temp.t_s)
    assert telemetry.get("battery") is None and sampler.refused == {
        "battery": "battery is charging"}
    assert power_channel(external_sensor("echo 1")).unit == "W"


def test_battery_capacity_from_sysfs(tmp_path: Path) -> None:
    """energy_full_design (µWh) when the driver gives it (laptops), else charge_full_design
    (µAh) at the middle of the design voltages, else at voltage_now; a USB supply is not a
    battery."""
    from hilbench.agents.sysfs import read_battery_wh

    supplies = tmp_path / "sys/class/power_supply"
    usb = supplies / "usb"
    usb.mkdir(parents=True)
    (usb / "type").write_text("USB\n")
    (usb / "charge_full_design").write_text("9000000\n")
    assert read_battery_wh(tmp_path) is None
    battery = supplies / "BAT0"
    battery.mkdir()
    (battery / "type").write_text("Battery\n")
    (battery / "charge_full_design").write_text("3000000\n")
    (battery / "voltage_now").write_text("3800000\n")
    assert read_battery_wh(tmp_path) == pytest.approx(3.0 * 3.8)
    (battery / "voltage_min_design").write_text("3000000\n")
    (battery / "voltage_max_design").write_text("4200000\n")
    assert read_battery_wh(tmp_path) == pytest.approx(3.0 * 3.6)
    (battery / "energy_full_design").write_text("57000000\n")
    assert read_battery_wh(tmp_path) == pytest.approx(57.0)
