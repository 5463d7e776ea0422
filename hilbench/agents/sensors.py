"""Which sensors a device exposes under a sysfs root: thermal zones, GPU devfreq, battery
and other power supplies, RAPL powercap zones, hwmon chips. Discovery only: reading them
beside a run is the sampler's job."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

SensorMap = Dict[str, List[str]]


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _sorted_dirs(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.is_dir())


def thermal_zones(root: Path) -> list[str]:
    """``thermal_zoneN:type`` of every zone whose temperature is readable."""
    zones = []
    for zone in _sorted_dirs(root, "sys/class/thermal/thermal_zone*"):
        if (zone / "temp").exists():
            zones.append(f"{zone.name}:{_read(zone / 'type') or '?'}")
    return zones


def devfreq_devices(root: Path) -> list[str]:
    return [d.name for d in _sorted_dirs(root, "sys/class/devfreq/*") if (d / "cur_freq").exists()]


def power_supplies(root: Path) -> list[str]:
    """Supplies with current and voltage readings (an Android battery, a USB supply)."""
    return [
        s.name for s in _sorted_dirs(root, "sys/class/power_supply/*")
        if (s / "current_now").exists() and (s / "voltage_now").exists()
    ]


def powercap_zones(root: Path) -> list[str]:
    return [
        f"{z.name}:{_read(z / 'name') or '?'}"
        for z in _sorted_dirs(root, "sys/class/powercap/*")
        if (z / "energy_uj").exists()
    ]


def hwmon_chips(root: Path) -> list[str]:
    return [f"{h.name}:{_read(h / 'name') or '?'}"
            for h in _sorted_dirs(root, "sys/class/hwmon/hwmon*")]


def discover(root: Path) -> SensorMap:
    """Every kind of sensor found, by kind; kinds with nothing found are left out."""
    found = {
        "thermal": thermal_zones(root),
        "devfreq": devfreq_devices(root),
        "power_supply": power_supplies(root),
        "powercap": powercap_zones(root),
        "hwmon": hwmon_chips(root),
    }
    return {kind: names for kind, names in found.items() if names}
