"""Emulated devices: a sysfs/procfs tree the agent reads like a real one, and the speed
model the agent applies to what it measures."""

from __future__ import annotations

import shlex
import sys
import zlib
from pathlib import Path
from typing import Any

from hilbench.agents.emulated_board import publish_power
from hilbench.agents.emulation import SpeedModel
from hilbench.devices.accelerator import model_time_fraction
from hilbench.devices.presets import Cluster, EmulatedPreset

CPU_DIR = Path("sys/devices/system/cpu")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def _cpu_list(first: int, count: int) -> str:
    return f"{first}-{first + count - 1}" if count > 1 else str(first)


def _write_policy(root: Path, first_cpu: int, cluster: Cluster) -> None:
    policy = root / CPU_DIR / "cpufreq" / f"policy{first_cpu}"
    levels = cluster.frequencies_khz
    files = {
        "related_cpus": " ".join(str(c) for c in range(first_cpu, first_cpu + cluster.cores)),
        "affected_cpus": " ".join(str(c) for c in range(first_cpu, first_cpu + cluster.cores)),
        "scaling_available_frequencies": " ".join(str(f) for f in levels),
        "scaling_available_governors": "performance powersave userspace schedutil",
        "scaling_governor": "performance",
        "scaling_cur_freq": str(max(levels)),
        "scaling_min_freq": str(min(levels)),
        "scaling_max_freq": str(max(levels)),
        "cpuinfo_min_freq": str(min(levels)),
        "cpuinfo_max_freq": str(max(levels)),
    }
    for name, text in files.items():
        _write(policy / name, text)


def write_sysfs(preset: EmulatedPreset, root: Path) -> Path:
    """Create (or reset) the emulated tree of ``preset`` under ``root``; returns ``root``."""
    total = sum(c.cores for c in preset.clusters)
    for name in ("present", "possible", "online"):
        _write(root / CPU_DIR / name, _cpu_list(0, total))
    for index, cluster in enumerate(preset.clusters):
        _write_policy(root, preset.first_cpu(index), cluster)
    _write(root / "proc/meminfo", f"MemTotal:       {preset.memory_mb * 1024} kB")
    _write(root / "etc/os-release", f'PRETTY_NAME="{preset.os_name}"')
    cpuinfo = "\n".join(f"processor\t: {cpu}" for cpu in range(total))
    _write(root / "proc/cpuinfo", f"{cpuinfo}\nHardware\t: {preset.cpu_model}")
    _write_sensors(preset, root)
    if preset.gpu_devfreq is not None:
        _write_gpu(root, *preset.gpu_devfreq)
    if preset.power_modes:
        _write_jetson_tools(preset, root)
    return root


def _nvpmodel_conf(preset: EmulatedPreset) -> str:
    """An L4T-style nvpmodel.conf: clock PARAMs naming their sysfs files, then the modes."""
    lines = []
    policy = CPU_DIR / "cpufreq" / f"policy{preset.first_cpu(preset.run_cluster)}"
    clocks = [("CPU_A78_0", policy, "scaling_")]
    if preset.gpu_devfreq is not None:
        clocks.append(("GPU", Path("sys/class/devfreq") / preset.gpu_devfreq[0], ""))
    for name, folder, prefix in clocks:
        table = "scaling_available_frequencies" if prefix else "available_frequencies"
        lines += [f"< PARAM TYPE=CLOCK NAME={name} >", f"FREQ_TABLE /{folder}/{table}",
                  f"MAX_FREQ /{folder}/{prefix}max_freq", f"MIN_FREQ /{folder}/{prefix}min_freq",
                  f"CUR_FREQ /{folder}/{'scaling_' if prefix else ''}cur_freq", ""]
    for mode_id, name, cpu_khz, gpu_hz in preset.power_modes:
        lines += [f"< POWER_MODEL ID={mode_id} NAME={name} >", "CPU_A78_0 MIN_FREQ 0",
                  f"CPU_A78_0 MAX_FREQ {cpu_khz}", "GPU MIN_FREQ 0", f"GPU MAX_FREQ {gpu_hz}", ""]
    lines.append(f"< PM_CONFIG DEFAULT={preset.power_modes[0][0]} >")
    return "\n".join(lines)


def _write_jetson_tools(preset: EmulatedPreset, root: Path) -> None:
    """nvpmodel.conf, the active mode, and ``nvpmodel`` / ``jetson_clocks`` where L4T puts
    them: sh scripts running hilbench's emulated tools on this tree."""
    _write(root / "etc/nvpmodel.conf", _nvpmodel_conf(preset))
    _write(root / "var/lib/nvpmodel/status", f"pmode:{preset.power_modes[0][0]:04d} fmode:quiet")
    for relative, tool in (("usr/sbin/nvpmodel", "nvpmodel"),
                           ("usr/bin/jetson_clocks", "jetson_clocks")):
        script = root / relative
        _write(script, "#!/bin/sh\n"
               f'root="$(cd "$(dirname "$0")/../.." && pwd)"\n'
               f'exec {shlex.quote(sys.executable)} -m hilbench.devices.emulated_tools.jetson '
               f'{tool} "$root" "$@"')
        script.chmod(0o755)


def _write_gpu(root: Path, devfreq_id: str, levels_hz: tuple[int, ...]) -> None:
    """A GPU's devfreq folder (frequencies in Hz), as on a Jetson."""
    folder = root / "sys/class/devfreq" / devfreq_id
    files = {"available_frequencies": " ".join(str(f) for f in levels_hz),
             "governor": "nvhost_podgov", "cur_freq": str(max(levels_hz)),
             "min_freq": str(min(levels_hz)), "max_freq": str(max(levels_hz))}
    for name, text in files.items():
        _write(folder / name, text)


def _write_sensors(preset: EmulatedPreset, root: Path) -> None:
    """Thermal zones (m°C), a phone's discharging battery (µA, µV), the power sensor."""
    for index, zone in enumerate(preset.thermal_zones):
        _write(root / f"sys/class/thermal/thermal_zone{index}/type", zone)
        _write(root / f"sys/class/thermal/thermal_zone{index}/temp", str(38000 + 1500 * index))
    first_zone = root / "sys/class/thermal/thermal_zone0"
    _write(first_zone / "trip_point_0_type", "passive")
    _write(first_zone / "trip_point_0_temp", str(int(preset.trip_c * 1000)))
    if preset.battery:
        battery = root / "sys/class/power_supply/battery"
        for name, text in (("type", "Battery"), ("status", "Discharging"), ("capacity", "81"),
                           ("voltage_now", "3862000"),
                           ("charge_full_design", str(preset.battery_mah * 1000)),
                           ("voltage_min_design", "3400000"),
                           ("voltage_max_design", "4400000")):
            _write(battery / name, text)
    if preset.power is not None:  # what the idle device draws, where its board reports it
        publish_power(preset.power, root, preset.power.static_w, 0.0)


def speed_model(preset: EmulatedPreset, device_name: str, seed: int,
                model_path: Path | None = None) -> dict[str, Any]:
    """The job's emulation spec; noise is seeded by the device name and the run's seed. A
    preset with an accelerator gets the share of the dense time the model takes there."""
    fraction = 1.0
    if preset.accelerator is not None and model_path is not None and model_path.suffix == ".onnx":
        fraction = model_time_fraction(model_path, preset.accelerator)
    spec = SpeedModel(
        preset=preset.name,
        cluster_cpu=preset.first_cpu(preset.run_cluster),
        slowdown=preset.slowdown,
        parallel_fraction=preset.parallel_fraction,
        memory_bound_fraction=preset.memory_bound_fraction,
        noise_sigma=preset.noise_sigma,
        seed=zlib.crc32(device_name.encode()) ^ seed,
        time_fraction=fraction,
    ).to_dict()
    if preset.power is not None:
        spec["power"] = preset.power.to_dict()
    return spec
