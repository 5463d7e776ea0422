"""Read CPU topology, DVFS state and memory from a sysfs/procfs root.

The root is ``/`` on a real device and an emulated tree for emulated devices: the same
code reads both."""

from __future__ import annotations

import re
from pathlib import Path

from hilbench.agents.jetson import power_mode_label, probe_jetson
from hilbench.agents.power import power_sensors
from hilbench.agents.sensors import discover
from hilbench.core.dvfs import DomainState, DvfsState

CPU_DIR = "sys/devices/system/cpu"


MAX_CPUS = 8192  # the kernel's largest NR_CPUS: a CPU list past it is not a CPU list
_INTEGER = re.compile(r"^-?[0-9]{1,30}$")  # (int() refuses thousands of digits)
_CPU_RANGE = re.compile(r"^([0-9]{1,9})(?:-([0-9]{1,9}))?$")


def _read(path: Path) -> str | None:
    """A file's text; None where it cannot be read or is not text."""
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _integer(text: str | None) -> int | None:
    return int(text) if text is not None and _INTEGER.match(text) else None


def _read_int(path: Path) -> int | None:
    return _integer(_read(path))


def _integers(text: str) -> list[int]:
    """The whole numbers of a space-separated list (anything else in it is left out)."""
    return [int(word) for word in text.split() if _INTEGER.match(word)]


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """Kernel CPU lists: ``"0-3,6"`` -> (0, 1, 2, 3, 6); also space-separated lists. Parts
    that are not CPU numbers or ranges (below ``MAX_CPUS``) are left out."""
    cpus: set[int] = set()
    for part in re.split(r"[,\s]+", text.strip()):
        match = _CPU_RANGE.match(part)
        if match:
            low, high = int(match.group(1)), int(match.group(2) or match.group(1))
            cpus.update(range(low, min(high, MAX_CPUS - 1) + 1))
    return tuple(sorted(cpus))


def _number_after(name: str, prefix: str) -> int:
    """``policy4`` -> 4, for sorting (a name without a number sorts last)."""
    suffix = name[len(prefix):]
    number = _integer(suffix) if suffix else 0
    return number if number is not None else MAX_CPUS


def _policy_dirs(root: Path) -> list[Path]:
    base = root / CPU_DIR
    policies = sorted(
        (base / "cpufreq").glob("policy*"), key=lambda p: _number_after(p.name, "policy")
    )
    if policies:
        return policies
    per_cpu = sorted(base.glob("cpu[0-9]*/cpufreq"),
                     key=lambda p: _number_after(p.parent.name, "cpu"))
    seen: set[tuple[int, ...]] = set()
    unique: list[Path] = []
    for directory in per_cpu:
        cpus = parse_cpu_list(_read(directory / "related_cpus") or directory.parent.name[3:])
        if cpus not in seen:
            seen.add(cpus)
            unique.append(directory)
    return unique


def _domain(directory: Path) -> DomainState:
    related = _read(directory / "related_cpus") or _read(directory / "affected_cpus") or ""
    cpus = parse_cpu_list(related) if related else ()
    name = f"cpu{cpus[0]}-{cpus[-1]}" if len(cpus) > 1 else f"cpu{cpus[0] if cpus else '?'}"
    available = _read(directory / "scaling_available_frequencies") or ""
    return DomainState(
        name=name,
        cpus=cpus,
        governor=_read(directory / "scaling_governor"),
        cur_khz=_read_int(directory / "scaling_cur_freq"),
        min_khz=_read_int(directory / "scaling_min_freq"),
        max_khz=_read_int(directory / "scaling_max_freq"),
        available_khz=tuple(sorted(f for f in _integers(available) if f >= 0)),
    )


GPU_DEVFREQ = re.compile(r"gpu|gp10b|gv11b|ga10b|kgsl|mali", re.IGNORECASE)


def _khz(hz: int | None) -> int | None:
    return None if hz is None else hz // 1000


def _devfreq_domain(directory: Path) -> DomainState:
    """A devfreq device (GPU, bus): frequencies in Hz in sysfs, kHz here."""
    available = _read(directory / "available_frequencies") or ""
    kind = "gpu" if GPU_DEVFREQ.search(directory.name) else "devfreq"
    return DomainState(
        name=f"{kind}:{directory.name}",
        governor=_read(directory / "governor"),
        cur_khz=_khz(_read_int(directory / "cur_freq")),
        min_khz=_khz(_read_int(directory / "min_freq")),
        max_khz=_khz(_read_int(directory / "max_freq")),
        available_khz=tuple(sorted(f // 1000 for f in _integers(available) if f >= 0)),
    )


def dvfs_directories(root: Path) -> list[tuple[DomainState, Path]]:
    """Every DVFS domain with the sysfs folder that controls it: cpufreq policies (clusters)
    first, then devfreq devices (GPUs, buses)."""
    found = [(_domain(d), d) for d in _policy_dirs(root)]
    devfreq = sorted(d for d in root.glob("sys/class/devfreq/*") if (d / "cur_freq").exists())
    return found + [(_devfreq_domain(d), d) for d in devfreq]


def read_dvfs(root: Path) -> DvfsState:
    """Every DVFS domain under ``root`` (and a Jetson's power mode); empty where the
    platform exposes none."""
    return DvfsState(tuple(domain for domain, _ in dvfs_directories(root)),
                     power_mode_label(root))


def read_cpu_count(root: Path) -> int | None:
    for name in ("present", "possible", "online"):
        text = _read(root / CPU_DIR / name)
        if text:
            return len(parse_cpu_list(text))
    return None


def read_memory_mb(root: Path) -> float | None:
    text = _read(root / "proc/meminfo") or ""
    match = re.search(r"^MemTotal:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024.0 if match else None


def read_cpu_model(root: Path) -> str | None:
    text = _read(root / "proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Model", "Processor"):
        match = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    return None


def _os_name(root: Path) -> str | None:
    """PRETTY_NAME from os-release, else the kernel's own name."""
    release = _read(root / "etc/os-release") or _read(root / "usr/lib/os-release") or ""
    match = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', release, re.MULTILINE)
    if match:
        return match.group(1)
    return _read(root / "proc/sys/kernel/ostype")


def read_battery_wh(root: Path) -> float | None:
    """The design capacity of the device's battery in Wh, from the first power supply of
    type Battery: ``energy_full_design`` (µWh), else ``charge_full_design`` (µAh) at the
    middle of its design voltage range, or at ``voltage_now`` (µV); None without one."""
    for supply in sorted(root.glob("sys/class/power_supply/*")):
        if _read(supply / "type") != "Battery":
            continue
        energy_uwh = _read_int(supply / "energy_full_design")
        if energy_uwh and energy_uwh > 0:
            return energy_uwh / 1e6
        charge_uah = _read_int(supply / "charge_full_design")
        low, high = (_read_int(supply / "voltage_min_design"),
                     _read_int(supply / "voltage_max_design"))
        volts_uv = (low + high) / 2 if low and high else _read_int(supply / "voltage_now")
        if charge_uah and charge_uah > 0 and volts_uv and volts_uv > 0:
            return charge_uah / 1e6 * volts_uv / 1e6
    return None


def probe(root: Path) -> dict[str, object]:
    """What a device's sysfs/procfs says about it."""
    dvfs = read_dvfs(root)
    return {
        "os": _os_name(root),
        "cpu_count": read_cpu_count(root),
        "cpu_model": read_cpu_model(root),
        "memory_mb": read_memory_mb(root),
        "dvfs": dvfs.to_dict(),
        "sensors": {**discover(root), **_power(root)},
        "battery_wh": read_battery_wh(root),
        **probe_jetson(root),
    }


def _power(root: Path) -> dict[str, list[str]]:
    """The power sensors energy is read from, most trustworthy first."""
    names = [sensor.name for sensor in power_sensors(root)]
    return {"power": names} if names else {}
