"""The emulated device's hardware: a power model and a thermal model that keep its emulated
sysfs moving while a job runs, so the sensor code reads it like a real board's.

    power = static + dynamic * (V(f) / V_max)^2 * (f / f_max) * utilisation
    dT/dt = (ambient + R_th * power - T) / tau

``V(f)`` rises linearly from ``v_min`` at the lowest level to ``v_max`` at the highest. Above
the first trip point of thermal_zone0 (``trip_point_0_temp``, m°C) the run cluster is
throttled one level per tick; it climbs back once the zone is ``hysteresis_c`` under the trip.
The power shows up where the preset's real counterpart reports it: a battery
(``current_now`` in µA, negative while discharging), INA3221 hwmon rails (mV, mA), a RAPL
package counter (µJ) or a hwmon power input (µW). Temperature and energy persist between jobs
in ``.hilbench-board.json`` at the tree's root; the temperature relaxes towards ambient over
the time between jobs."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from hilbench.agents.emulation import SpeedModel
from hilbench.core.errors import AgentError
from hilbench.core.fields import FieldError, get_float, get_str

STATE_FILE = ".hilbench-board.json"
TICK_S = 0.05
BATTERY_V = 3.862
BOARD_RAIL_V = 5.0
RAPL_WRAP_UJ = 262_143_328_850
AVERAGING_S = 0.1  # power sensors report an average, as INA3221s and fuel gauges do
ZONE_STEP_C = 1.5  # thermal_zoneN runs this much cooler than zone N-1


@dataclass(frozen=True)
class PowerModel:
    sensor: str  # battery | ina3221 | rapl | hwmon
    static_w: float
    dynamic_w: float  # at the top level, all cores of the run cluster busy
    v_min: float
    v_max: float
    ambient_c: float
    thermal_resistance_c_per_w: float
    time_constant_s: float
    hysteresis_c: float = 3.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PowerModel:
        try:
            numbers = {name: get_float(data, name) for name in (
                "static_w", "dynamic_w", "v_min", "v_max", "ambient_c",
                "thermal_resistance_c_per_w", "time_constant_s", "hysteresis_c")}
            return cls(sensor=get_str(data, "sensor"), **numbers)
        except FieldError as exc:
            raise AgentError(f"malformed power model in job: {exc}") from exc

    def voltage(self, khz: int, levels: tuple[int, ...]) -> float:
        low, high = min(levels), max(levels)
        if high == low:
            return self.v_max
        return self.v_min + (self.v_max - self.v_min) * (khz - low) / (high - low)

    def power_w(self, khz: int, levels: tuple[int, ...], utilisation: float) -> float:
        scale = (self.voltage(khz, levels) / self.v_max) ** 2 * khz / max(levels)
        return self.static_w + self.dynamic_w * scale * min(1.0, max(0.0, utilisation))


def _read_int(path: Path, default: int) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def _write(path: Path, value: object) -> None:
    """Atomically, as a sysfs read never sees half a value; only when the value changed
    (the board ticks often, and its writes must not load the machine it emulates on)."""
    text = f"{value}\n"
    try:
        if path.read_text() == text:
            return
    except OSError:
        path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.new")
    partial.write_text(text)
    os.replace(partial, path)


class EmulatedBoard:
    """Runs on its own thread for the length of a job; ``add_busy`` tells it how long the
    device computed (on ``active_fraction`` of the cluster's cores), ``current_khz`` what
    the run cluster runs at now."""

    def __init__(self, model: PowerModel, speed: SpeedModel, root: Path,
                 levels: tuple[int, ...], policy: Path, active_fraction: float = 1.0) -> None:
        self.model, self.speed, self.root = model, speed, root
        self.active_fraction = active_fraction
        self.levels = tuple(sorted(levels))
        self.policy = policy
        self._lock = threading.Lock()
        self._busy_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hilbench-board", daemon=True)
        state = self._load_state()
        self.temp_c = state["temp_c"]
        self.energy_j = state["energy_j"]
        self._cap_khz = max(self.levels)
        self._cur_khz = self._requested_khz()
        self._averaged_w = self.model.static_w
        self._publish(self.model.static_w)

    def _load_state(self) -> dict[str, float]:
        try:
            state = json.loads((self.root / STATE_FILE).read_text())
            elapsed = max(0.0, time.time() - float(state["time"]))
            ambient = self.model.ambient_c
            relax = math.exp(-elapsed / self.model.time_constant_s)
            return {"temp_c": ambient + (float(state["temp_c"]) - ambient) * relax,
                    "energy_j": float(state["energy_j"])}
        except (OSError, ValueError, KeyError, TypeError):
            return {"temp_c": self.model.ambient_c + 8.0, "energy_j": 0.0}

    def _requested_khz(self) -> int:
        """What the governor asks for: the policy's max (min = max when pinned)."""
        return _read_int(self.policy / "scaling_max_freq", max(self.levels))

    def _trip_c(self) -> float:
        zone = self.root / "sys/class/thermal/thermal_zone0/trip_point_0_temp"
        return _read_int(zone, 95_000) / 1000.0

    def add_busy(self, seconds: float) -> None:
        with self._lock:
            self._busy_s += seconds

    def current_khz(self) -> int:
        return self._cur_khz

    def start(self) -> EmulatedBoard:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._save_state()

    def _loop(self) -> None:
        last = time.perf_counter()
        while not self._stop.wait(TICK_S):
            now = time.perf_counter()
            dt = now - last
            with self._lock:  # an inference longer than a tick is spread over the next ones
                busy = min(self._busy_s, dt)
                self._busy_s -= busy
            self.step(dt, busy)
            last = now

    def step(self, dt: float, busy_s: float) -> None:
        """Advance the model by ``dt`` seconds in which the device computed ``busy_s``."""
        if dt <= 0:
            return
        self._throttle()
        power = self.model.power_w(self._cur_khz, self.levels,
                                   busy_s / dt * self.active_fraction)
        self.energy_j += power * dt
        target = self.model.ambient_c + self.model.thermal_resistance_c_per_w * power
        self.temp_c += (target - self.temp_c) * (1.0 - math.exp(-dt / self.model.time_constant_s))
        self._averaged_w += (power - self._averaged_w) * (1.0 - math.exp(-dt / AVERAGING_S))
        self._publish(self._averaged_w)

    def _throttle(self) -> None:
        trip = self._trip_c()
        index = self.levels.index(self._cap_khz) if self._cap_khz in self.levels else -1
        if self.temp_c > trip and index > 0:
            self._cap_khz = self.levels[index - 1]
        elif self.temp_c < trip - self.model.hysteresis_c and 0 <= index < len(self.levels) - 1:
            self._cap_khz = self.levels[index + 1]
        self._cur_khz = min(self._requested_khz(), self._cap_khz)

    def _publish(self, power: float) -> None:
        _write(self.policy / "scaling_cur_freq", self._cur_khz)
        zones = sorted(self.root.glob("sys/class/thermal/thermal_zone*"))
        for index, zone in enumerate(zones or [self.root / "sys/class/thermal/thermal_zone0"]):
            _write(zone / "temp", int((self.temp_c - ZONE_STEP_C * index) * 1000))
        publish_power(self.model, self.root, power, self.energy_j)

    def _save_state(self) -> None:
        state = {"time": time.time(), "temp_c": self.temp_c, "energy_j": self.energy_j}
        (self.root / STATE_FILE).write_text(json.dumps(state))


def parse_power_model(data: Mapping[str, Any] | None) -> PowerModel | None:
    return None if data is None else PowerModel.from_dict(data)


def _battery(root: Path, power: float, model: PowerModel, energy_j: float) -> None:
    _write(root / "sys/class/power_supply/battery/current_now", -int(power / BATTERY_V * 1e6))


def _ina3221(root: Path, power: float, model: PowerModel, energy_j: float) -> None:
    chip = root / "sys/class/hwmon/hwmon0"
    dynamic = max(0.0, power - model.static_w)
    rails = (("VDD_IN", power), ("VDD_CPU_GPU_CV", dynamic * 0.9),
             ("VDD_SOC", model.static_w * 0.4 + dynamic * 0.1))
    _write(chip / "name", "ina3221")
    for channel, (label, watts) in enumerate(rails, start=1):
        _write(chip / f"in{channel}_label", label)
        _write(chip / f"in{channel}_input", int(BOARD_RAIL_V * 1000))
        _write(chip / f"curr{channel}_input", int(watts / BOARD_RAIL_V * 1000))
    _write(chip / "in7_label", "sum of shunt voltages")
    _write(chip / "in7_input", 12)


def _rapl(root: Path, power: float, model: PowerModel, energy_j: float) -> None:
    zone = root / "sys/class/powercap/intel-rapl:0"
    _write(zone / "name", "package-0")
    _write(zone / "max_energy_range_uj", RAPL_WRAP_UJ)
    _write(zone / "energy_uj", int(energy_j * 1e6) % RAPL_WRAP_UJ)


def _hwmon(root: Path, power: float, model: PowerModel, energy_j: float) -> None:
    chip = root / "sys/class/hwmon/hwmon0"
    _write(chip / "name", "fpga_board")
    _write(chip / "power1_label", "VCC_BOARD")
    _write(chip / "power1_input", int(power * 1e6))


PUBLISHERS = {"battery": _battery, "ina3221": _ina3221, "rapl": _rapl, "hwmon": _hwmon}


def publish_power(model: PowerModel, root: Path, power: float, energy_j: float) -> None:
    """Show ``power`` (W) and the energy so far where the preset's real board reports them."""
    publisher = PUBLISHERS.get(model.sensor)
    if publisher is None:
        raise AgentError(f"emulated power sensor {model.sensor!r} is not known")
    publisher(root, power, model, energy_j)
