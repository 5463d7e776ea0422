"""The fleet as the store knows it: each registered device with how it is reached, what its
probe found (cores, memory, runtimes, DVFS levels, sensors), its runs and when it was last
seen. ``bench devices list | show`` and the dashboard's Fleet page read it from here."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas
from sqlalchemy import case, func, select

from hilbench.core.records import REPLAY_KIND, DeviceRecord
from hilbench.profiles.schema import agents, measurements, runs
from hilbench.profiles.store import Store

# An agent heartbeats at least every lease / 3 (30 s by default) while it works and every poll
# while it waits: silent for longer than this, it is offline.
AGENT_ONLINE_S = 90.0
ONLINE, OFFLINE, ON_DEMAND, REPLAYED = "online", "offline", "on demand", "replay"
FLEET_COLUMNS = ("device", "kind", "preset", "class", "transport", "status", "last_seen",
                 "cpu_count", "cpu_model", "memory_mb", "runtimes", "dvfs_levels", "sensors",
                 "runs", "valid_runs")


@dataclass(frozen=True)
class Activity:
    """A device's runs in the store (VALID ones too), when its last run finished and when an
    agent of it last called the coordinator (epoch seconds, None when never)."""

    runs: int = 0
    valid_runs: int = 0
    last_run_at: float | None = None
    agent_seen_at: float | None = None


def device_row(record: DeviceRecord) -> dict[str, Any]:
    """What a device's probe found, one flat row (``bench devices list --json``)."""
    info = record.info
    domains = info.get("dvfs", {}).get("domains", [])
    return {
        "device": record.name,
        "kind": record.kind,
        "preset": record.preset,
        "class": info.get("class"),
        "os": info.get("os"),
        "cpu_count": info.get("cpu_count"),
        "cpu_model": info.get("cpu_model"),
        "memory_mb": info.get("memory_mb"),
        "dvfs_domains": [d.get("name") for d in domains],
        "runtimes": sorted(info.get("runtimes", {})),
        "sensors": sorted(info.get("sensors", {})),
    }


def transport_text(record: DeviceRecord) -> str:
    """How hilbench reaches the device, in a few words."""
    settings = record.transport
    agent = " (sh agent)" if settings.get("agent") == "sh" else ""
    if "ssh" in settings:
        return f"ssh {settings['ssh']}{agent}"
    if "adb" in settings:
        return f"adb {settings['adb']}{agent}"
    return {"local": "this machine", "emulated": "emulated on this machine",
            "agent": "coordinator agent", REPLAY_KIND: "replay (published table)"
            }.get(record.kind, record.kind)


def dvfs_levels_text(info: Mapping[str, Any]) -> str:
    """Each DVFS domain with its levels in MHz (``cpu4-7: 710-2419 MHz (6)``), and the power
    modes of a Jetson."""
    parts = []
    for domain in info.get("dvfs", {}).get("domains", []):
        levels = sorted(int(khz) for khz in domain.get("available_khz", []))
        span = (f"{levels[0] / 1000:.0f}-{levels[-1] / 1000:.0f} MHz ({len(levels)})"
                if levels else "levels unknown")
        parts.append(f"{domain.get('name', '?')}: {span}")
    jetson = info.get("jetson")
    modes = jetson.get("power_modes", []) if isinstance(jetson, dict) else []
    if modes:
        parts.append("power modes: " + ", ".join(str(m.get("name", m.get("id")))
                                                 for m in modes))
    return "; ".join(parts)


def sensors_text(info: Mapping[str, Any]) -> str:
    """Sensor kinds with their names, power first (``power: battery:battery; thermal:
    ...``)."""
    sensors = info.get("sensors", {})
    return "; ".join(f"{kind}: {', '.join(map(str, names))}" for kind, names in
                     sorted(sensors.items(), key=lambda item: (item[0] != "power", item[0])))


def activity(store: Store) -> dict[str, Activity]:
    """Per device name (registered or not: a removed device keeps its runs)."""
    valid = func.sum(case((measurements.c.verdict == "VALID", 1), else_=0))
    run_query = (select(runs.c.device_name, func.count(), valid, func.max(runs.c.finished_at))
                 .outerjoin(measurements, measurements.c.run_id == runs.c.id)
                 .group_by(runs.c.device_name))
    agent_query = select(agents.c.device_name, func.max(agents.c.last_seen)).group_by(
        agents.c.device_name)
    found: dict[str, Activity] = {}
    with store.connection() as connection:
        for name, count, valid_count, last in connection.execute(run_query):
            found[name] = Activity(int(count), int(valid_count or 0), last)
        for name, seen in connection.execute(agent_query):
            found[name] = Activity(*_counts(found.get(name)), agent_seen_at=seen)
    return found


def _counts(known: Activity | None) -> tuple[int, int, float | None]:
    known = known or Activity()
    return known.runs, known.valid_runs, known.last_run_at


def status(record: DeviceRecord, seen: Activity, now: float) -> tuple[str, float | None]:
    """``online`` / ``offline`` for a device served by coordinator agents (by their last
    heartbeat); the others are reached when a job runs (``on demand``, or ``replay``), and
    count as online while a run of theirs finished within the same window. With the time it
    was last seen (its agents' call or its last run, whichever is later)."""
    times = [t for t in (seen.agent_seen_at, seen.last_run_at) if t is not None]
    last_seen = max(times) if times else None
    recent = last_seen is not None and now - last_seen <= AGENT_ONLINE_S
    if record.kind == "agent":
        return (ONLINE if recent else OFFLINE), last_seen
    if record.kind == REPLAY_KIND:
        return REPLAYED, last_seen
    return (ONLINE if recent else ON_DEMAND), last_seen


def fleet_row(record: DeviceRecord, seen: Activity, now: float) -> dict[str, Any]:
    """A device as the Fleet page and ``bench devices list`` show it."""
    state, last_seen = status(record, seen, now)
    info = record.info
    row = device_row(record)
    return {
        **{key: row[key] for key in ("device", "kind", "preset", "class", "cpu_count",
                                     "cpu_model", "memory_mb")},
        "transport": transport_text(record), "status": state, "last_seen": last_seen,
        "runtimes": ", ".join(row["runtimes"]), "dvfs_levels": dvfs_levels_text(info),
        "sensors": sensors_text(info), "runs": seen.runs, "valid_runs": seen.valid_runs,
    }


def fleet_rows(store: Store, now: float | None = None) -> list[dict[str, Any]]:
    """One row per registered device (``FLEET_COLUMNS``), by name."""
    seen = activity(store)
    moment = time.time() if now is None else now
    return [fleet_row(record, seen.get(record.name, Activity()), moment)
            for record in store.list_devices()]


def fleet_frame(store: Store, now: float | None = None) -> pandas.DataFrame:
    return pandas.DataFrame(fleet_rows(store, now), columns=list(FLEET_COLUMNS))
