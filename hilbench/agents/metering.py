"""What is measured beside a job: sensors sampled from an idle phase before the run to its
end, and the energy of the timed inferences worked out from them."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from hilbench.agents.power import ENERGY, PowerSensor, power_sensors
from hilbench.agents.sampler import Sampler, file_channels, power_channel
from hilbench.core.energy import EnergyReport, counter_energy_j, mean_power_w, trace_energy_j
from hilbench.core.telemetry import Telemetry

ENERGY_FIGURES = ("energy_per_inference_mj", "avg_power_w")
MIN_UPDATES_PER_WINDOW = 10  # an energy window spans at least this many sensor updates
MIN_SAMPLES_PER_WINDOW = 3


@dataclass(frozen=True)
class Window:
    start_s: float
    end_s: float

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Metered:
    telemetry: Telemetry | None
    energy: EnergyReport | None
    notes: tuple[str, ...]


def min_window_s(sensor: PowerSensor, interval_s: float) -> float:
    return max(MIN_UPDATES_PER_WINDOW * sensor.update_s, MIN_SAMPLES_PER_WINDOW * interval_s)


def _energy(sensor: PowerSensor, telemetry: Telemetry, window: Window) -> float | None:
    series = telemetry.get(sensor.name)
    if series is None:
        return None
    points = list(zip(series.t_s, series.values))
    if sensor.kind == ENERGY:
        return counter_energy_j(points, window.start_s, window.end_s, sensor.wrap_j)
    return trace_energy_j(points, window.start_s, window.end_s)


def _idle_power(sensor: PowerSensor, telemetry: Telemetry, idle: Window | None) -> float | None:
    series = telemetry.get(sensor.name)
    if idle is None or series is None:
        return None
    return mean_power_w(list(zip(series.t_s, series.values)), idle.start_s, idle.end_s,
                        sensor.kind)


def energy_report(sensors: list[PowerSensor], telemetry: Telemetry, window: Window,
                  inferences: int, idle: Window | None) -> tuple[EnergyReport | None, list[str]]:
    """From the first sensor (most trustworthy first) that covers the window; notes say why
    the others, or all, could not."""
    notes: list[str] = []
    for sensor in sensors:
        needed = min_window_s(sensor, telemetry.interval_s)
        if window.length_s < needed:
            notes.append(f"energy: {sensor.name} needs a window of {needed:.2g} s, the timed "
                         f"runs took {window.length_s:.2g} s (raise --min-time)")
            continue
        energy = _energy(sensor, telemetry, window)
        if energy is None or inferences < 1:
            notes.append(f"energy: {sensor.name} has no readings around the timed runs")
            continue
        method = "counter" if sensor.kind == ENERGY else "power trace"
        report = EnergyReport(sensor.name, method, window.length_s, inferences, energy,
                              _idle_power(sensor, telemetry, idle))
        return report, notes
    return None, notes


class Meter:
    """Samples the device's sensors for one job. Without any power sensor it still samples
    frequencies and temperatures, and says that energy is missing."""

    def __init__(self, root: Path, interval_s: float, idle_s: float,
                 external: str | None = None, nvml: bool = False) -> None:
        self._sensors = power_sensors(root, external, nvml)
        self._idle_s = idle_s if self._sensors else 0.0
        self._idle: Window | None = None
        channels = file_channels(root) + [power_channel(s) for s in self._sensors]
        self._sampler = Sampler(channels, interval_s) if channels else None

    def start(self) -> Meter:
        if self._sampler is not None:
            self._sampler.start()
        return self

    def measure_idle(self) -> None:
        """Sleep ``idle_s`` with the device idle, to know its idle power."""
        if self._sampler is None or self._idle_s <= 0:
            return
        time.sleep(self._sampler.interval_s)  # a reading before the window opens
        start = self._sampler.now()
        time.sleep(self._idle_s)
        self._idle = Window(start, self._sampler.now())

    def window(self, start: float, end: float) -> Window:
        """A ``time.perf_counter`` interval on the sampler's time base."""
        origin = self._sampler.origin if self._sampler else 0.0
        return Window(start - origin, end - origin)

    def finish(self, window: Window, inferences: int) -> Metered:
        if self._sampler is None:
            return Metered(None, None, ("energy: no power sensor found on the device",))
        telemetry = replace(self._sampler.stop(), window_start_s=window.start_s,
                            window_end_s=window.end_s)
        notes = [f"energy: {name} refused: {why}" for name, why in self._sampler.refused.items()]
        sensors = [s for s in self._sensors if s.name not in self._sampler.refused]
        if not self._sensors:
            notes.append("energy: no power sensor found on the device")
        report, why_not = energy_report(sensors, telemetry, window, inferences, self._idle)
        return Metered(telemetry, report, tuple(notes + (why_not if report is None else [])))
