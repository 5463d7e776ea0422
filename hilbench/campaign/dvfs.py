"""Which DVFS levels each device runs at: ``--dvfs sweep`` (every level of the device's
fastest CPU cluster), ``--dvfs sweep=nvpmodel`` (every power mode of a Jetson) or ``--dvfs
cpu=1.2GHz,gpu=max,nvpmodel=7W,jetson_clocks`` (named levels), resolved against the domains
and power modes the device's probe found."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hilbench.agents.jetson import MAX_CLOCKS_KEY, POWER_MODE_KEY
from hilbench.core.dvfs import DomainState, DvfsState
from hilbench.core.errors import SettingsError
from hilbench.core.records import DeviceRecord

Pin = dict[str, int]
_FREQUENCY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ghz|mhz|khz)?\s*$", re.IGNORECASE)
_KHZ = {"ghz": 1_000_000, "mhz": 1000, "khz": 1, None: 1000}  # a bare number is MHz


@dataclass(frozen=True)
class DvfsRequest:
    """``sweep``, or (domain selector, level) pairs. A selector is ``cpu`` (every CPU
    cluster), ``gpu`` (every GPU), or one domain's name; a level is ``min``, ``max`` or a
    frequency (``1.2GHz``, ``1400MHz``; a bare number is MHz). On a Jetson, ``nvpmodel`` is
    selected by a power mode's ID or name, and ``jetson_clocks`` (no level) holds every clock
    at the highest its power mode allows."""

    sweep: bool = False
    levels: tuple[tuple[str, str], ...] = ()
    sweep_power_modes: bool = False


def parse_dvfs(text: str | None) -> DvfsRequest | None:
    if text is None:
        return None
    if text.strip() == "sweep":
        return DvfsRequest(sweep=True)
    if text.strip().replace(" ", "") == f"sweep={POWER_MODE_KEY}":
        return DvfsRequest(sweep_power_modes=True)
    return DvfsRequest(levels=tuple(_parse_item(item) for item in text.split(",")))


def _parse_item(item: str) -> tuple[str, str]:
    selector, sep, level = (part.strip() for part in item.partition("="))
    if selector == MAX_CLOCKS_KEY and not level:
        return selector, "on"
    if not sep or not selector or not level:
        raise SettingsError(f"invalid --dvfs {item!r}: use sweep, sweep=nvpmodel, or "
                            "DOMAIN=LEVEL such as cpu=1.2GHz, gpu=max, cpu4-7=min, nvpmodel=7W, "
                            "or jetson_clocks")
    if level not in ("min", "max") and selector != POWER_MODE_KEY:
        _khz(level)
    return selector, level


def _khz(level: str) -> int:
    match = _FREQUENCY.match(level)
    if not match:
        raise SettingsError(f"invalid DVFS level {level!r}: use min, max, 1.2GHz or 1400MHz")
    return int(float(match.group(1)) * _KHZ[match.group(2) and match.group(2).lower()])


def _select(dvfs: DvfsState, selector: str, device: str) -> list[DomainState]:
    if selector == "cpu":
        chosen = [d for d in dvfs.domains if d.cpus]
    elif selector == "gpu":
        chosen = [d for d in dvfs.domains if d.name.startswith("gpu:")]
    else:
        chosen = [d for d in dvfs.domains if d.name == selector]
    if not chosen:
        names = ", ".join(d.name for d in dvfs.domains) or "none"
        raise SettingsError(f"{device} has no DVFS domain {selector!r} (it has: {names})")
    return chosen


def _level(domain: DomainState, level: str) -> int:
    """The available level asked for; a frequency between levels takes the one below it."""
    levels = sorted(domain.available_khz) or [f for f in (domain.min_khz, domain.max_khz) if f]
    if not levels:
        raise SettingsError(f"{domain.name} lists no frequency levels")
    if level == "min":
        return levels[0]
    if level == "max":
        return levels[-1]
    wanted = _khz(level)
    below = [f for f in levels if f <= wanted]
    return below[-1] if below else levels[0]


def fastest_cluster(dvfs: DvfsState) -> DomainState | None:
    clusters = [d for d in dvfs.domains if d.cpus and d.available_khz]
    return max(clusters, key=lambda d: (max(d.available_khz), len(d.cpus)), default=None)


def _jetson(device: DeviceRecord, tool: str) -> dict[str, object]:
    jetson = device.info.get("jetson") or {}
    if not jetson.get(tool):
        raise SettingsError(f"{device.name} has no {tool} (not a Jetson, or L4T's tools are "
                            "not installed there)")
    return dict(jetson)


def _power_modes(device: DeviceRecord) -> list[tuple[int, str]]:
    modes = _jetson(device, POWER_MODE_KEY).get("power_modes") or []
    assert isinstance(modes, list)
    return [(int(mode["id"]), str(mode["name"])) for mode in modes]


def _power_mode(device: DeviceRecord, wanted: str) -> int:
    """A power mode by its ID or its name (``7W``, ``MAXN``; case does not matter)."""
    modes = _power_modes(device)
    for mode_id, name in modes:
        if wanted == str(mode_id) or wanted.lower() == name.lower():
            return mode_id
    listed = ", ".join(f"{mode_id} ({name})" for mode_id, name in modes) or "none"
    raise SettingsError(f"{device.name} has no power mode {wanted!r} (modes: {listed})")


def plan(request: DvfsRequest | None, device: DeviceRecord) -> list[Pin | None]:
    """The pins the device runs each model at, in order; ``[None]``: as it is."""
    if request is None:
        return [None]
    if request.sweep_power_modes:
        return [{POWER_MODE_KEY: mode_id} for mode_id, _ in _power_modes(device)]
    dvfs = DvfsState.from_dict(device.info.get("dvfs") or {"domains": []})
    if request.sweep:
        cluster = fastest_cluster(dvfs)
        if cluster is None:
            raise SettingsError(f"{device.name} has no CPU cluster with frequency levels to "
                                "sweep; leave it out of a --dvfs sweep")
        return [{cluster.name: khz} for khz in sorted(cluster.available_khz, reverse=True)]
    pin: Pin = {}
    for selector, level in request.levels:
        if selector == POWER_MODE_KEY:
            pin[POWER_MODE_KEY] = _power_mode(device, level)
        elif selector == MAX_CLOCKS_KEY:
            _jetson(device, MAX_CLOCKS_KEY)
            pin[MAX_CLOCKS_KEY] = 1
        else:
            for domain in _select(dvfs, selector, device.name):
                pin[domain.name] = _level(domain, level)
    return [pin]
