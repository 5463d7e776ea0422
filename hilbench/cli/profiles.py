"""`bench profiles show | export | import`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hilbench.campaign.rows import format_ms
from hilbench.cli.common import JsonOption, StoreOption, open_store, out, print_json
from hilbench.core.errors import SettingsError
from hilbench.profiles.transfer import export_runs, import_runs

app = typer.Typer(help="Show, export and import stored measurements.", no_args_is_help=True)

FORMATS = ("csv", "parquet")
SHOW_COLUMNS = (
    "run_id", "device", "model", "status", "mean_ms", "p50_ms", "p90_ms", "p99_ms",
    "count", "verdict", "reasons", "error", "started_at",
)


@app.command("show")
def show(
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name or sha256 prefix.")] = None,
    limit: Annotated[int, typer.Option(help="Newest N runs.")] = 50,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Stored runs, newest first."""
    with open_store(store) as opened:
        frame = opened.runs(device=device, model=model).head(limit)
    if json_output:
        print_json(frame.to_dict(orient="records"))
        return
    if frame.empty:
        out.print("No runs stored yet. Try `bench demo`.")
        return
    table = Table("run", "device", "model", "status", "mean", "p50", "p90", "p99", "runs",
                  "verdict", title="stored runs (latency in ms)", title_justify="left")
    for row in frame.to_dict(orient="records"):
        verdict = _text(row["verdict"]) or f"FAILED: {_text(row['error'])}"
        if verdict == "INVALID":
            verdict = f"INVALID: {_text(row['reasons'])}"
        table.add_row(
            str(row["run_id"])[:8], str(row["device"]), str(row["model"]), str(row["status"]),
            *(format_ms(_number(row[c])) for c in ("mean_ms", "p50_ms", "p90_ms", "p99_ms")),
            "-" if _number(row["count"]) is None else str(int(row["count"])),
            verdict,
        )
    out.print(table)


def _text(value: object) -> str | None:
    """A DataFrame cell as text, None for missing (NaN/None): a failed run has no verdict."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def _number(value: object) -> float | None:
    """A DataFrame cell as a float, None for missing (NaN/None)."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if number != number else number


@app.command("export")
def export(
    out_path: Annotated[Path, typer.Option("--out", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    store: StoreOption = None,
) -> None:
    """Write every run (summary, environment and raw samples) to CSV or Parquet."""
    if fmt not in FORMATS:
        raise SettingsError(f"unknown format {fmt!r}; choose csv or parquet")
    with open_store(store) as opened:
        count = export_runs(opened, out_path, fmt)
    out.print(f"Exported {count} runs to {out_path}")


@app.command("import")
def import_(
    path: Annotated[
        Path | None, typer.Argument(help="A file written by `bench profiles export`.")
    ] = None,
    public: Annotated[
        str | None,
        typer.Option("--public", help="Import a public latency table instead (nb201, fbnet or "
                     "hat) as runs of replay devices (replay-<device>, replay-hat-<device>)."),
    ] = None,
    devices: Annotated[
        str | None, typer.Option(help="With --public: the table's devices, e.g. pixel3,raspi4, "
                                 "or all.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="With --public: only N networks, drawn with --seed (the "
                                 "same ones on every device). Default: all.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="With --public: seed of --limit's draw.")] = None,
    data: Annotated[
        Path | None, typer.Option(help="With --public: the folder of the public tables "
                                  "(default: $HILBENCH_LATENCY_DATA or shared/data/latency).")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Load runs from an exported file (runs already in the store are skipped), or a public
    latency table with --public."""
    if public is not None:
        if path is not None:
            raise SettingsError("give either a file to import or --public, not both")
        _import_public(public, devices, limit, seed, data, store)
        return
    if path is None:
        raise SettingsError("give a file written by `bench profiles export`, or --public "
                            "nb201|fbnet|hat")
    given = [name for name, value in (("--devices", devices), ("--limit", limit),
                                      ("--seed", seed), ("--data", data)) if value is not None]
    if given:
        raise SettingsError(f"{', '.join(given)}: only with --public")
    with open_store(store) as opened:
        count = import_runs(opened, path)
    out.print(f"Imported {count} runs from {path}")


def _import_public(space: str, devices: str | None, limit: int | None, seed: int | None,
                   data: Path | None, store: str | None) -> None:
    """Every table, device and latency is checked before the store is opened."""
    from hilbench.predictor.replay import import_public, parse_devices, plan_public_import

    plan = plan_public_import(space, parse_devices(devices), limit, seed or 0, data)
    with open_store(store) as opened:
        result = import_public(opened, plan)
    names = ", ".join(result.devices)
    out.print(f"Imported {result.runs_added} runs of {space} ({result.networks} networks on "
              f"{len(result.devices)} replay devices: {names}; {result.runs_present} already "
              f"stored), {result.models_added} new models, {result.devices_added} new devices, "
              f"in {result.seconds:.2f} s ({result.rows_per_s:,.0f} rows/s)", markup=False)
