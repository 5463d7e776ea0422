"""Tables of run results."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from hilbench.campaign.rows import format_ms


def results_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="hilbench results (latency in ms)", title_justify="left")
    for column in ("model", "device", "mean", "p50", "p90", "p99", "std", "min", "max"):
        table.add_column(column, justify="left" if column in ("model", "device") else "right")
    for column in ("init", "first", "peak MiB", "mJ/inf", "runs", "verdict"):
        table.add_column(column, justify="right" if column != "verdict" else "left")
    for row in rows:
        table.add_row(*_cells(row))
    return table


def _cells(row: dict[str, Any]) -> list[Any]:
    pinned = row.get("dvfs_pinned_mhz") or {}
    levels = [f"{mhz:.0f}MHz" for mhz in pinned.values()]
    if row.get("power_mode"):
        levels.insert(0, str(row["power_mode"]).replace(" ", ""))
    level = " @" + ",".join(levels) if levels else ""
    device = row["device"] + level + (" *" if row.get("emulated_figures") else "")
    if row["status"] != "ok":
        return [row["model"], device, *["-"] * 13, Text(f"FAILED: {row['error']}", style="red")]
    peak = row["peak_memory_mb"]
    verdict = (
        Text("VALID", style="green")
        if row["verdict"] == "VALID"
        else Text("INVALID: " + "; ".join(row["reasons"]), style="yellow")
    )
    return [
        row["model"],
        device,
        *(format_ms(row[f]) for f in ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "std_ms")),
        format_ms(row["min_ms"]),
        format_ms(row["max_ms"]),
        format_ms(row["init_ms"]),
        format_ms(row["first_inference_ms"]),
        f"{peak:.0f}" if peak is not None else "n/a",
        format_ms(row.get("energy_per_inference_mj")),
        str(row["runs"]),
        verdict,
    ]


EMULATED_NOTE = (
    "* emulated device: latency, init, first inference and memory come from its speed model, "
    "energy from its power model"
)


def notes_lines(rows: list[dict[str, Any]]) -> list[str]:
    """What the devices could not do (no power sensor, a level not pinned), once each."""
    seen: dict[str, list[str]] = {}
    for row in rows:
        for note in row.get("notes") or []:
            devices = seen.setdefault(note, [])
            if row["device"] not in devices:
                devices.append(row["device"])
    return [f"note ({', '.join(devices)}): {note}" for note, devices in seen.items()]


def retry_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Jobs that took more than one attempt (their transport failed and was retried)."""
    return [f"retried ({row['device']}): {row['model']} took {row['attempts']} attempts, "
            f"{'then ran' if row['status'] == 'ok' else 'all failed'}"
            for row in rows if row.get("attempts", 1) > 1]
