"""`bench select`: the best (device, model, setting) for a latency and an accuracy
constraint, the Pareto front, and why every other device lost."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from hilbench.campaign.rows import format_ms
from hilbench.cli.common import JsonOption, StoreOption, err, open_store, out, print_json
from hilbench.cli.parsing import parse_duration
from hilbench.cli.predictor import ArtifactOption
from hilbench.core.constraints import (
    AccuracyConstraint,
    Constraints,
    LatencyConstraint,
    check_objective,
)
from hilbench.core.errors import SettingsError
from hilbench.core.files import write_atomically
from hilbench.core.records import REPLAY_KIND
from hilbench.core.settings import BenchmarkSettings

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas

    from hilbench.core.records import DeviceRecord
    from hilbench.profiles.store import Store
    from hilbench.selector.candidates import ModelChoice
    from hilbench.selector.query import Answer
    from hilbench.selector.verify import Pick, Verified

EXIT_NOTHING_FEASIBLE = 1
# options bench select and bench fleet share
DevicesOption = Annotated[str, typer.Option(
    "--devices", "-d", help="all, NAME[,NAME...] or kind=KIND.")]
PercentileOption = Annotated[str, typer.Option(
    "--percentile", help="What LC bounds: mean, p50, p90 or p99.")]
AcOption = Annotated[float | None, typer.Option("--ac", help="Accuracy constraint.")]
RiskOption = Annotated[str, typer.Option(
    help="Which end of a predicted latency interval must meet LC: upper or median.")]
BatchOption = Annotated[int | None, typer.Option(
    help="Only candidates at this batch size (default: the one most of the measured "
    "candidates ran at).", show_default=False)]


def device_numbers(items: list[str], option: str) -> dict[str, float]:
    """``DEVICE=NUMBER`` items (``--cost``, ``--battery``) as a mapping."""
    found = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not name.strip() or not math.isfinite(number) or number < 0:
            raise SettingsError(f"invalid {option} {item!r}: expected DEVICE=NUMBER (>= 0)")
        found[name.strip()] = number
    return found


def parse_rate(text: str | None) -> float | None:
    """``50``, ``50/s`` or ``50Hz``: inferences per second."""
    if text is None:
        return None
    cleaned = text.strip().removesuffix("/s").removesuffix("Hz").removesuffix("hz").strip()
    try:
        return float(cleaned)
    except ValueError as exc:
        raise SettingsError(f"invalid --rate {text!r}: expected inferences per second, "
                            "e.g. 30 or 30/s") from exc


def _measure(store: Store, devices: Sequence[DeviceRecord], choices: Sequence[ModelChoice],
             picks: Sequence[Pick], *, settings: BenchmarkSettings) -> None:
    """Run each pick on its device (the devices of one model in parallel, as bench run does)
    and store the runs."""
    from hilbench.cli.run import execute
    from hilbench.core.records import ModelRecord

    by_name = {d.name: d for d in devices}
    files = {c.sha256: c for c in choices}
    replayed = [p for p in picks if by_name[p.device].kind == REPLAY_KIND]
    for pick in replayed:
        err.print(f"not verified: {pick.device} is a replay device (a published table; "
                  "nothing to run)", highlight=False)
    for sha in dict.fromkeys(p.model_sha256 for p in picks if p not in replayed):
        chosen = [by_name[p.device] for p in picks if p.model_sha256 == sha
                  and p not in replayed]
        record = ModelRecord.from_file(Path(files[sha].path))
        batch = next(p.batch for p in picks if p.model_sha256 == sha)
        err.print(f"verifying: {record.name} on {', '.join(d.name for d in chosen)}",
                  highlight=False)
        execute(store, chosen, [record], replace(settings, batch_size=batch))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    import json

    try:
        write_atomically(path, json.dumps(data, indent=2).encode())
    except OSError as exc:
        raise SettingsError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _levels_table(levels: dict[str, Any]) -> Table:
    constraint = levels["latency_constraint"]
    title = (f"{levels['device']}: the variant per DVFS level"
             + (f" ({constraint['statistic']} <= {constraint['limit_ms']:g} ms)"
                if constraint else ""))
    table = Table("DVFS level", "model", "latency ms", "mJ/inf", "accuracy", "why not",
                  title=title, title_justify="left")
    for level in levels["levels"]:
        table.add_row(level["dvfs"], level["model"] or "-",
                      format_ms(level.get("latency_ms")), number_text(level.get("energy_mj")),
                      number_text(level.get("accuracy")), level.get("why", ""))
    return table


def _story_line(verified: Verified, asked: bool | None) -> str:
    status = verified.status
    if status == "rounds exhausted" and not verified.rounds:
        return ("not verified: the pick is a prediction (--verify measures it)" if asked is
                False else "not verified: --max-rounds 0")
    if not verified.rounds:
        return f"verification: none needed ({status})"
    return (f"verification: {len(verified.rounds)} round(s), {verified.measurements} "
            f"measurement(s); {status}")


def number_text(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.{digits}g}"


def _table(frame: pandas.DataFrame, title: str, statistic: str) -> Table:
    from hilbench.selector.query import records

    table = Table(title=title, title_justify="left")
    battery = bool(frame["battery_h"].notna().any())
    columns = ["device", "model", "setting", "by", statistic, "upper", "accuracy", "mJ/inf",
               "W", "cost"] + (["battery h"] if battery else [])
    for column in columns:
        table.add_column(column, justify="left" if column in ("device", "model", "setting",
                                                              "by") else "right")
    for row in records(frame):
        table.add_row(str(row["device"]), str(row["model"]), str(row["setting"] or "-"),
                      str(row["source"]), format_ms(row["latency_ms"]),
                      format_ms(row["latency_upper_ms"]), number_text(row["accuracy"]),
                      number_text(row["energy_mj"]), number_text(row["power_w"]),
                      number_text(row["cost"]),
                      *([number_text(row["battery_h"])] if battery else []))
    return table


def _print(found: Answer, statistic: str) -> None:
    from hilbench.selector.query import cell_value

    selection, candidates = found.selection, found.table
    constraints = selection.constraints
    asked = [text for text in (constraints.describe_latency(statistic),
                               constraints.accuracy.describe() if constraints.accuracy
                               else None) if text]
    measured = int((candidates["source"] == "measured").sum())
    predicted = int((candidates["source"] == "predicted").sum())
    batch = int(candidates["batch"].iloc[0]) if len(candidates) else 1
    out.print(f"{len(candidates)} candidates at batch {batch} ({measured} measured, "
              f"{predicted} predicted), "
              f"{len(selection.ranked)} feasible for {' and '.join(asked) or 'no constraint'} "
              f"(risk: {constraints.risk}); objective: {selection.objective}", markup=False)
    best = selection.best
    if best is not None:
        battery = cell_value(best, "battery_h")
        out.print(f"best: {best['device']} running {best['model']} ({best['setting']}), "
                  f"{statistic} {format_ms(cell_value(best, 'latency_ms'))} ms "
                  f"[{best['source']}], accuracy {number_text(cell_value(best, 'accuracy'))}, "
                  f"{number_text(cell_value(best, 'energy_mj'))} mJ/inference"
                  + (f", {number_text(battery, 3)} h on its battery at "
                     f"{constraints.rate_per_s:g}/s" if battery is not None else ""),
                  markup=False)
    devices = Table("device", "why", title="devices", title_justify="left")
    for name, why in sorted(selection.devices.items()):
        devices.add_row(name, why)
    out.print(devices)
    if len(selection.pareto):
        out.print(_table(selection.pareto, "Pareto front (latency x accuracy x energy)",
                         statistic))
    if best is None:
        out.print(_table(selection.nearest, "nearest candidates", statistic))
    for note in selection.notes:
        out.print(f"note: {note}", markup=False)


def select_command(
    family_of: Annotated[str | None, typer.Option(
        "--family", help="A stored base model (name or sha256): it and all its variants.")
    ] = None,
    model: Annotated[list[Path] | None, typer.Option(
        "--model", "-m", help="Model file; repeat for several.")] = None,
    devices: DevicesOption = "all",
    lc: Annotated[str | None, typer.Option(
        "--lc", help="Latency constraint: 500us, 20ms, 1.5s.")] = None,
    statistic: PercentileOption = "p90",
    ac: AcOption = None,
    metric: Annotated[str | None, typer.Option(
        help="Accuracy metric (default: the one the models' records share).")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="Accuracy dataset name (default: any).")] = None,
    objective: Annotated[str, typer.Option(
        help="Minimise energy (per inference), latency, power or cost, or maximise "
        "accuracy or battery life (at --rate).")] = "energy",
    rate: Annotated[str | None, typer.Option(
        help="Inferences per second the device must sustain (30, 30/s): each must finish "
        "within 1/rate, and battery life is counted at this rate.", show_default=False)
    ] = None,
    cost: Annotated[list[str] | None, typer.Option(
        help="DEVICE=NUMBER, a device's cost for --objective cost; repeat.")] = None,
    battery: Annotated[list[str] | None, typer.Option(
        help="DEVICE=WH, a device's battery capacity in Wh (default: what its probe read "
        "from sysfs); repeat.", show_default=False)] = None,
    risk: RiskOption = "upper",
    batch: BatchOption = None,
    artifact: ArtifactOption = None,
    verify: Annotated[bool | None, typer.Option(
        "--verify/--no-verify", help="Measure predicted picks and select again until the "
        "pick is measured (default: on when the pick was only predicted).",
        show_default=False)] = None,
    top_k: Annotated[int, typer.Option(
        "--top-k", help="Predicted candidates measured per verification round.")] = 3,
    max_rounds: Annotated[int, typer.Option(help="Verification rounds at most.")] = 5,
    verify_time: Annotated[str, typer.Option(
        help="Minimum timed duration of a verification run.")] = "1s",
    max_cv: Annotated[float, typer.Option(
        help="A verification run is INVALID above this coefficient of variation.")] = 0.10,
    per_dvfs: Annotated[str | None, typer.Option(
        "--per-dvfs", help="DEVICE: the variant to run at each DVFS level it was measured at "
        "(bench run --dvfs sweep).", show_default=False)] = None,
    export_path: Annotated[Path | None, typer.Option(
        "--export", help="Write the --per-dvfs table to this JSON file.",
        show_default=False)] = None,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Pick the device, model and setting that meet LC and AC at the least energy (or
    latency, power, cost, or the longest battery life), from measurements and, where none
    exist, predictions."""
    from hilbench.devices.registry import select_devices
    from hilbench.selector.query import Query, answer, answer_json

    if export_path is not None and per_dvfs is None:
        raise SettingsError("--export writes the --per-dvfs table: name the device too")
    latency = LatencyConstraint(parse_duration(lc) * 1000, statistic) if lc else None
    accuracy = AccuracyConstraint(ac, metric, dataset) if ac is not None else None
    constraints = Constraints(latency, accuracy, risk, parse_rate(rate))
    check_objective(objective)
    from hilbench.predictor.loading import load_predictor

    predictor, why = load_predictor(artifact)
    check = BenchmarkSettings(min_duration_s=parse_duration(verify_time), max_cv=max_cv)
    with open_store(store) as opened:
        query = Query(tuple(select_devices(opened.list_devices(), devices)), constraints,
                      objective, family_of, tuple(model or []), statistic,
                      device_numbers(list(cost or []), "--cost"),
                      device_numbers(list(battery or []), "--battery"), batch, per_dvfs, top_k,
                      max_rounds if verify is not False else 0)
        found = answer(opened, query, predictor, why, partial(_measure, opened, settings=check))
    if export_path is not None and found.exported is not None:
        _write_json(export_path, found.exported)
    if json_output:
        print_json(answer_json(found))
    else:
        _print(found, statistic)
        out.print(_story_line(found.verified, verify), markup=False)
        if found.exported:
            out.print(_levels_table(found.exported))
    if found.selection.best is None:
        err.print("no candidate meets the constraints", highlight=False)
        raise typer.Exit(EXIT_NOTHING_FEASIBLE)
