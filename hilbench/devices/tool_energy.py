"""Energy of a device tool's timed runs, from what the sh agent sampled beside it.

The timed runs' window comes from the tool's own timestamped output: ``benchmark_model``
prints "Running benchmark for at least ..." right before its timed runs and their
``count=`` line right after; ``onnxruntime_perf_test`` prints everything at the end, with
"Total inference run time". Power comes from the trace's most trustworthy whole-device
sensor, in the Python agent's order: the external meter (``--power-command``, watts), the
battery (current x voltage), RAPL counters, then hwmon power inputs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hilbench.agents.parsers.report import NUMBER, strip_log_prefix
from hilbench.agents.power import battery_units
from hilbench.core.energy import EnergyReport, counter_energy_j, mean_power_w, trace_energy_j
from hilbench.core.telemetry import Series, Telemetry
from hilbench.devices.sh_agent import EXTERNAL_SERIES, TimedLine

Points = list[tuple[float, float]]
MIN_SAMPLES_PER_WINDOW = 3
_RUN_TIME = re.compile(rf"Total inference run time:\s*({NUMBER})\s*s")
_TRUST = ("external", "battery:", "rapl:", "hwmon:")  # the most trustworthy first


@dataclass(frozen=True)
class PowerTrace:
    name: str
    kind: str  # energy (J counter) or power (W)
    points: Points
    wrap_j: float | None = None


def timed_window(tool: str, lines: list[TimedLine]) -> tuple[float, float] | None:
    """When the tool ran its timed inferences, on the agent's clock."""
    if tool == "benchmark_model":
        return _benchmark_model_window(lines)
    stamped = [line for line in lines if line.t_s is not None]
    for line in stamped:
        match = _RUN_TIME.search(line.text)
        if match and stamped[-1].t_s is not None:
            end = stamped[-1].t_s
            return end - float(match.group(1)), end
    return None


def _benchmark_model_window(lines: list[TimedLine]) -> tuple[float, float] | None:
    starts = [i for i, line in enumerate(lines)
              if strip_log_prefix(line.text).startswith("Running benchmark for at least")]
    if not starts:
        return None
    begin = lines[starts[-1]]
    end = next((line for line in lines[starts[-1] + 1:]
                if strip_log_prefix(line.text).startswith("count=")), None)
    if begin.t_s is None or end is None or end.t_s is None or end.t_s <= begin.t_s:
        return None
    return begin.t_s, end.t_s


def _points(series: Series) -> Points:
    return list(zip(series.t_s, series.values, strict=True))


def _battery(telemetry: Telemetry, current: Series) -> PowerTrace | None:
    voltage = telemetry.get(current.sensor.replace("current_now", "voltage_now"))
    if voltage is None:
        return None
    volts_at = dict(_points(voltage))
    points = []
    for t, raw_current in _points(current):
        if t in volts_at:
            amps, volts = battery_units(raw_current, volts_at[t])
            points.append((t, amps * volts))
    name = "battery:" + current.sensor.split("/")[-2]
    return PowerTrace(name, "power", points) if points else None


def _trace(series: Series, telemetry: Telemetry, files: dict[str, str]) -> PowerTrace | None:
    sensor = series.sensor
    if sensor == EXTERNAL_SERIES:
        return PowerTrace(EXTERNAL_SERIES, "power", _points(series))
    if sensor.endswith("/current_now"):
        supply = sensor.rsplit("/", 1)[0]
        if files.get(f"{supply}/type", "").strip() == "Battery":
            return _battery(telemetry, series)
    elif sensor.endswith("/energy_uj"):
        wrap = files.get(sensor.replace("energy_uj", "max_energy_range_uj"), "").strip()
        return PowerTrace("rapl:" + sensor.split("/")[-2], "energy",
                          [(t, v / 1e6) for t, v in _points(series)],
                          float(wrap) / 1e6 if wrap.isdigit() else None)
    elif "/hwmon/" in sensor and sensor.endswith("_input"):
        return PowerTrace("hwmon:" + "/".join(sensor.split("/")[-2:]), "power",
                          [(t, v / 1e6) for t, v in _points(series)])
    return None


def _trust(trace: PowerTrace) -> int:
    return next(i for i, prefix in enumerate(_TRUST) if trace.name.startswith(prefix))


def power_traces(telemetry: Telemetry, files: dict[str, str]) -> list[PowerTrace]:
    """Every power sensor in the trace, the most trustworthy first."""
    traces = [_trace(series, telemetry, files) for series in telemetry.series]
    return sorted((trace for trace in traces if trace is not None), key=_trust)


def charging(files: dict[str, str]) -> str | None:
    for path, text in files.items():
        if path.endswith("/status") and text.strip() in ("Charging", "Full"):
            return f"energy: battery is {text.strip().lower()}: its readings mean nothing on " \
                   "USB power (use adb over Wi-Fi, or unplug)"
    return None


def _usable(telemetry: Telemetry, files: dict[str, str]) -> tuple[list[PowerTrace], list[str]]:
    """The power traces energy may come from, and why the others may not: a charging
    battery says nothing (an external meter still does)."""
    traces = power_traces(telemetry, files)
    if not traces:
        return [], ["energy: no power sensor found on the device"]
    refused = charging(files)
    if refused is None:
        return traces, []
    return [trace for trace in traces if not trace.name.startswith("battery:")], [refused]


def tool_energy(telemetry: Telemetry, files: dict[str, str], window: tuple[float, float] | None,
                idle: tuple[float, float] | None, inferences: int
                ) -> tuple[EnergyReport | None, list[str]]:
    traces, notes = _usable(telemetry, files)
    if not traces:
        return None, notes
    if window is None:
        return None, [*notes, "energy: the tool's output did not say when its timed runs ran"]
    start, end = window
    if end - start < MIN_SAMPLES_PER_WINDOW * telemetry.interval_s:
        return None, [*notes, f"energy: the timed runs took {end - start:.2g} s, too short "
                      f"for {telemetry.interval_s:g} s samples (raise --min-time)"]
    for trace in traces:
        energy = (counter_energy_j(trace.points, start, end, trace.wrap_j)
                  if trace.kind == "energy" else trace_energy_j(trace.points, start, end))
        if energy is None:
            continue
        idle_w = mean_power_w(trace.points, *idle, trace.kind) if idle else None
        method = "counter" if trace.kind == "energy" else "power trace"
        return EnergyReport(trace.name, method, end - start, inferences, energy, idle_w), notes
    return None, [*notes, "energy: no power readings around the timed runs"]
