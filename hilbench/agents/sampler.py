"""A sampler that reads sensors on its own thread at a fixed rate, beside the workload."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hilbench.agents.power import ENERGY, PowerSensor, PowerSensorError
from hilbench.core.telemetry import Series, Telemetry, unit_of


@dataclass(frozen=True)
class Channel:
    name: str
    unit: str
    read: Callable[[], float]


def _file_reader(path: Path) -> Callable[[], float]:
    return lambda: float(path.read_text().split()[0])


def file_channels(root: Path) -> list[Channel]:
    """cpufreq per policy, devfreq, thermal zones: the frequency and temperature traces."""
    patterns = ("sys/devices/system/cpu/cpufreq/policy*/scaling_cur_freq",
                "sys/class/devfreq/*/cur_freq", "sys/class/thermal/thermal_zone*/temp")
    channels = []
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            name = "/" + str(path.relative_to(root))
            channels.append(Channel(name, unit_of(name), _file_reader(path)))
    return channels


def power_channel(sensor: PowerSensor) -> Channel:
    return Channel(sensor.name, "J" if sensor.kind == ENERGY else "W", sensor.read)


class Sampler:
    """Reads every channel every ``interval_s`` on a daemon thread, timestamped on
    ``time.perf_counter`` relative to ``origin``. A reading that fails is skipped; a power
    sensor that refuses (a charging battery) is dropped with its reason in ``refused``."""

    def __init__(self, channels: list[Channel], interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("sampling interval must be > 0")
        self.interval_s = interval_s
        self.origin = time.perf_counter()
        self.refused: dict[str, str] = {}
        self._channels = list(channels)
        self._points: dict[str, tuple[list[float], list[float]]] = {
            c.name: ([], []) for c in channels
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hilbench-sampler", daemon=True)

    def now(self) -> float:
        return time.perf_counter() - self.origin

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _sample(self) -> None:
        for channel in list(self._channels):
            try:
                value = channel.read()
            except PowerSensorError as exc:
                self.refused[channel.name] = str(exc)
                self._channels.remove(channel)
                continue
            except (OSError, ValueError, IndexError):
                continue
            times, values = self._points[channel.name]
            times.append(self.now())
            values.append(value)

    def _loop(self) -> None:
        deadline = time.perf_counter()
        while True:
            self._sample()
            deadline += self.interval_s
            if self._stop.wait(max(0.0, deadline - time.perf_counter())):
                self._sample()  # a last point after the window closes
                return

    def stop(self) -> Telemetry:
        self._stop.set()
        self._thread.join()
        units = {c.name: c.unit for c in self._channels}
        series = tuple(
            Series(name, units.get(name, "W"), tuple(times), tuple(values))
            for name, (times, values) in self._points.items() if times
        )
        return Telemetry(self.interval_s, series)
