"""Power and energy sensors, found under a sysfs root (``/`` on a device, an emulated tree
otherwise) or through NVML, read the same way whatever they are.

A sensor is either an ``energy`` counter (joules, cumulative, may wrap at ``wrap_j``) or a
``power`` reading (watts, instantaneous or averaged by the hardware)."""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from hilbench.core.errors import AgentError

ENERGY, POWER = "energy", "power"
# Rails that carry the whole board on Jetsons (the other rails nest inside them).
BOARD_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0", "VIN")
SUM_OF_SHUNTS = "sum of shunt voltages"


class PowerSensorError(AgentError):
    """A power sensor that is present but cannot be trusted or read now."""


@dataclass(frozen=True)
class PowerSensor:
    name: str
    kind: str
    source: str
    read: Callable[[], float]
    wrap_j: float | None = None
    update_s: float = 0.0  # how often the hardware refreshes it (0: unknown / continuous)
    board_total: bool = False  # the whole device, not one rail


def _text(path: Path) -> str:
    return path.read_text().strip()


def _number(path: Path) -> float:
    return float(_text(path))


def _scaled(path: Path, divisor: float) -> Callable[[], float]:
    return lambda: _number(path) / divisor


def _product(first: Path, second: Path, divisor: float) -> Callable[[], float]:
    return lambda: _number(first) * _number(second) / divisor


def _readable(path: Path) -> bool:
    try:
        _number(path)
    except (OSError, ValueError):
        return False
    return True


def rapl_sensors(root: Path) -> list[PowerSensor]:
    """Top-level powercap zones (packages; AMD too): energy_uj, wrapping at
    max_energy_range_uj. Root-only since Linux 5.10: unreadable zones are skipped."""
    sensors = []
    for zone in sorted(root.glob("sys/class/powercap/*rapl:[0-9]")):
        counter = zone / "energy_uj"
        if not _readable(counter):
            continue
        wrap = zone / "max_energy_range_uj"
        sensors.append(PowerSensor(
            name=f"rapl:{_text(zone / 'name') if (zone / 'name').exists() else zone.name}",
            kind=ENERGY, source=str(counter.relative_to(root)),
            read=_scaled(counter, 1e6),
            wrap_j=_number(wrap) / 1e6 if _readable(wrap) else None,
            update_s=0.001, board_total=False,
        ))
    return sensors


def _ina3221_hwmon(chip: Path, root: Path) -> list[PowerSensor]:
    """L4T r35+: inK_label, inK_input (mV), currK_input (mA); no power file."""
    sensors = []
    for label_file in sorted(chip.glob("in[0-9]_label")):
        channel = label_file.name[2]
        label = _text(label_file)
        volts, amps = chip / f"in{channel}_input", chip / f"curr{channel}_input"
        if label.lower() == SUM_OF_SHUNTS or not (_readable(volts) and _readable(amps)):
            continue
        sensors.append(PowerSensor(
            name=f"ina3221:{label}", kind=POWER, source=str(volts.relative_to(root)),
            read=_product(volts, amps, 1e6),
            board_total=label in BOARD_RAILS,
        ))
    return sensors


def _hwmon_generic(chip: Path, root: Path) -> list[PowerSensor]:
    """powerN_input (µW) and energyN_input (µJ), labelled by powerN_label if present."""
    sensors = []
    chip_name = _text(chip / "name") if (chip / "name").exists() else chip.name
    for kind, pattern, scale in ((POWER, "power[0-9]*_input", 1e6),
                                 (ENERGY, "energy[0-9]*_input", 1e6)):
        for value_file in sorted(chip.glob(pattern)):
            if not _readable(value_file):
                continue
            label_file = chip / value_file.name.replace("_input", "_label")
            label = _text(label_file) if label_file.exists() else value_file.name[:-6]
            sensors.append(PowerSensor(
                name=f"hwmon:{chip_name}:{label}", kind=kind,
                source=str(value_file.relative_to(root)),
                read=_scaled(value_file, scale),
            ))
    return sensors


def hwmon_sensors(root: Path) -> list[PowerSensor]:
    sensors: list[PowerSensor] = []
    for chip in sorted(root.glob("sys/class/hwmon/hwmon*")):
        name = _text(chip / "name") if (chip / "name").exists() else ""
        reader = _ina3221_hwmon if name == "ina3221" else _hwmon_generic
        sensors.extend(reader(chip, root))
    return sensors


def ina3221_iio_sensors(root: Path) -> list[PowerSensor]:
    """Old L4T: rail_name_N and in_powerN_input (mW) under the ina3221x iio device."""
    sensors = []
    for device in sorted(root.glob("sys/bus/i2c/drivers/ina3221x/*/iio:device*")):
        for name_file in sorted(device.glob("rail_name_[0-9]")):
            rail = _text(name_file)
            power = device / f"in_power{name_file.name[-1]}_input"
            if _readable(power):
                sensors.append(PowerSensor(
                    name=f"ina3221:{rail}", kind=POWER, source=str(power.relative_to(root)),
                    read=_scaled(power, 1000.0), board_total=rail in BOARD_RAILS,
                ))
    return sensors


def battery_units(current: float, voltage: float) -> tuple[float, float]:
    """(amps, volts) from a battery's raw current_now and voltage_now. Vendors report µA or
    mA and µV or mV: no phone battery draws 10 A, and none sits under 10 mV."""
    amps = abs(current) / (1e6 if abs(current) >= 10_000 else 1e3)
    volts = voltage / (1e6 if voltage >= 10_000 else 1e3)
    return amps, volts


def _battery_watts(supply: Path) -> float:
    status = _text(supply / "status") if (supply / "status").exists() else ""
    if status in ("Charging", "Full"):
        raise PowerSensorError(f"battery is {status.lower()}: its readings mean nothing on "
                               "USB power (use adb over Wi-Fi, or unplug)")
    amps, volts = battery_units(_number(supply / "current_now"), _number(supply / "voltage_now"))
    return amps * volts


def battery_sensors(root: Path) -> list[PowerSensor]:
    sensors = []
    for supply in sorted(root.glob("sys/class/power_supply/*")):
        kind_file = supply / "type"
        if not kind_file.exists() or _text(kind_file) != "Battery":
            continue
        if _readable(supply / "current_now") and _readable(supply / "voltage_now"):
            sensors.append(PowerSensor(
                name=f"battery:{supply.name}", kind=POWER,
                source=str((supply / "current_now").relative_to(root)),
                read=partial(_battery_watts, supply), board_total=True,
            ))
    return sensors


def external_sensor(command: str, timeout_s: float = 2.0) -> PowerSensor:
    """A user command that prints the current power in watts (a USB power meter's CLI):
    the last number it prints is the reading."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise PowerSensorError(f"external power command {command!r}: {exc}") from exc
    if not argv:
        raise PowerSensorError("external power command is empty")
    if "\0" in command:
        raise PowerSensorError(f"external power command {command!r} holds a NUL byte")

    def read() -> float:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                                  check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise PowerSensorError(f"external power command failed: {exc}") from exc
        numbers = re.findall(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", done.stdout)
        if not numbers:
            raise PowerSensorError(f"external power command printed no number: "
                                   f"{done.stdout.strip()[:60]!r}")
        return float(numbers[-1])

    return PowerSensor(name="external", kind=POWER, source=command, read=read,
                       board_total=True)


def nvml_sensors() -> list[PowerSensor]:
    """GPU 0's total-energy counter (mJ, refreshed about every 100 ms) and power (mW)."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError:
        return []
    return [
        PowerSensor(name="nvml:gpu0:energy", kind=ENERGY, source="nvmlDeviceGetTotalEnergy"
                    "Consumption", read=lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(
                        handle) / 1000.0, update_s=0.1),
        PowerSensor(name="nvml:gpu0:power", kind=POWER, source="nvmlDeviceGetPowerUsage",
                    read=lambda: pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
                    update_s=0.1),
    ]


def power_sensors(root: Path, external: str | None = None,
                  nvml: bool = False) -> list[PowerSensor]:
    """Every power or energy sensor found, the most trustworthy whole-device one first:
    an external meter, NVML (for GPU runs), a board rail, the battery, RAPL, then the rest."""
    found: list[PowerSensor] = [external_sensor(external)] if external else []
    if nvml:
        found += nvml_sensors()
    rails = ina3221_iio_sensors(root) + hwmon_sensors(root)
    found += [s for s in rails if s.board_total]
    found += battery_sensors(root)
    found += rapl_sensors(root)
    found += [s for s in rails if not s.board_total]
    return found
