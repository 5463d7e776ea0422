"""`bench fleet`: several models at required rates on a shared set of devices, at the least
power (an assignment solved by OR-Tools CP-SAT)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from hilbench.campaign.rows import format_ms
from hilbench.cli.common import JsonOption, StoreOption, err, open_store, out, print_json
from hilbench.cli.parsing import parse_duration
from hilbench.cli.predictor import ArtifactOption
from hilbench.cli.select import (
    EXIT_NOTHING_FEASIBLE,
    AcOption,
    BatchOption,
    DevicesOption,
    PercentileOption,
    RiskOption,
    number_text,
)
from hilbench.core.constraints import AccuracyConstraint, Constraints, LatencyConstraint
from hilbench.core.errors import SettingsError

if TYPE_CHECKING:
    from hilbench.selector.fleet import FleetPlan, Job

_JOB = re.compile(r"^(?P<name>[^=]+)=(?P<rate>[0-9.eE+-]+)\s*(/s|hz|Hz)?(@(?P<lc>\S+))?$")


def parse_job(text: str, base: Constraints) -> Job:
    """``NAME=RATE[@LC]``: a stored model or family base, inferences per second (``200``,
    ``200/s``, ``200Hz``), and its own LC when it differs from ``--lc``."""
    from hilbench.selector.fleet import Job

    match = _JOB.match(text.strip())
    if not match:
        raise SettingsError(f"invalid --job {text!r}: expected MODEL=RATE[@LC], e.g. "
                            "digits-transformer=200/s@5ms")
    try:
        rate = float(match.group("rate"))
    except ValueError as exc:
        raise SettingsError(f"invalid --job {text!r}: the rate is not a number") from exc
    constraints = base
    if match.group("lc"):
        statistic = base.latency.statistic if base.latency else "p90"
        latency = LatencyConstraint(parse_duration(match.group("lc")) * 1000, statistic)
        constraints = replace(base, latency=latency)
    return Job(match.group("name").strip(), rate, constraints)


def _print(plan: FleetPlan, jobs: list[Job]) -> None:
    from hilbench.selector.query import cell_value

    if plan.status == "infeasible":
        out.print("no plan: " + "; ".join(plan.why), markup=False)
        return
    rates = {job.name: job.rate_hz for job in jobs}
    table = Table("job", "rate /s", "device", "model", "setting", "by", "latency ms",
                  "device share", "W", title=f"fleet plan ({plan.status})",
                  title_justify="left")
    for a in plan.assignments:
        row = a.candidate
        table.add_row(a.job, f"{rates[a.job]:g}", str(row["device"]), str(row["model"]),
                      str(row["setting"]), str(row["source"]),
                      format_ms(cell_value(row, "latency_ms")), f"{a.utilization:.1%}",
                      number_text(a.power_w))
    out.print(table)
    shares = ", ".join(f"{d} {u:.0%}" for d, u in sorted(plan.utilization.items()))
    total = f"{plan.power_w:.4g} W" if plan.power_w is not None else "unknown"
    out.print(f"devices used: {shares}; fleet power {total}", markup=False)
    for note in plan.notes:
        out.print(f"note: {note}", markup=False)


def _json(plan: FleetPlan, jobs: list[Job]) -> dict[str, Any]:
    from hilbench.selector.query import cell_value

    rates = {job.name: job.rate_hz for job in jobs}
    return {
        "status": plan.status, "why": list(plan.why), "notes": list(plan.notes),
        "power_w": plan.power_w, "utilization": plan.utilization,
        "assignments": [{"job": a.job, "rate_hz": rates[a.job], "utilization": a.utilization,
                         "power_w": a.power_w,
                         **{k: cell_value(a.candidate, k) for k in a.candidate}}
                        for a in plan.assignments],
    }


def fleet_command(
    job: Annotated[list[str], typer.Option(
        "--job", help="MODEL=RATE[@LC]: a stored model or family base, inferences per "
        "second, and its own LC; repeat for each model.")],
    devices: DevicesOption = "all",
    lc: Annotated[str | None, typer.Option(
        "--lc", help="Latency constraint for every job without its own.")] = None,
    statistic: PercentileOption = "p90",
    ac: AcOption = None,
    metric: Annotated[str | None, typer.Option(help="Accuracy metric.")] = None,
    risk: RiskOption = "upper",
    batch: BatchOption = None,
    max_utilization: Annotated[float, typer.Option(
        help="The share of each device the jobs may take together.")] = 0.8,
    time_limit: Annotated[str, typer.Option(help="Stop the solver after this long.")] = "10s",
    artifact: ArtifactOption = None,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Serve several models at their rates on shared devices at the least power: each job
    gets one device, variant and setting that meet its LC and AC, and no device is loaded
    past --max-utilization."""
    from hilbench.devices.registry import select_devices
    from hilbench.selector.candidates import accuracies, candidates
    from hilbench.selector.fleet import plan_fleet
    from hilbench.selector.query import model_choices

    base = Constraints(LatencyConstraint(parse_duration(lc) * 1000, statistic) if lc else None,
                       AccuracyConstraint(ac, metric) if ac is not None else None, risk)
    jobs = [parse_job(text, base) for text in job]
    if len({j.name for j in jobs}) != len(jobs):
        raise SettingsError("each --job names a different model")
    if any(j.constraints.latency is None for j in jobs):
        raise SettingsError("every job needs an LC: --lc, or MODEL=RATE@LC")
    from hilbench.predictor.loading import load_predictor

    predictor, why = load_predictor(artifact)
    tables = {}
    with open_store(store) as opened:
        chosen = select_devices(opened.list_devices(), devices)
        for index, item in enumerate(jobs):
            choices = model_choices(opened, item.name, [])
            scores, used = accuracies(opened, choices, item.constraints.accuracy)
            accuracy = item.constraints.accuracy
            if accuracy is not None and accuracy.metric is None and used is not None:
                jobs[index] = replace(item, constraints=replace(
                    item.constraints, accuracy=replace(accuracy, metric=used)))
            latency = item.constraints.latency
            assert latency is not None
            tables[item.name] = candidates(opened, choices, chosen, latency.statistic,
                                           predictor, why, batch, None, scores)
    plan = plan_fleet(jobs, tables, max_utilization, parse_duration(time_limit))
    if json_output:
        print_json(_json(plan, jobs))
    else:
        _print(plan, jobs)
    if plan.status == "infeasible":
        err.print("no assignment meets the constraints", highlight=False)
        raise typer.Exit(EXIT_NOTHING_FEASIBLE)
