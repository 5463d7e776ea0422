"""Fleet mode: several models, each needed at an inference rate, share a set of devices.
Which device (and variant and setting) serves each, at the least power?

An assignment problem solved by OR-Tools' CP-SAT. Each job takes exactly one of its
feasible candidates (meeting its LC and AC, as ``solve`` decides). A device's utilisation
is the sum, over the jobs it serves, of rate x latency (the statistic LC bounds, p90 by
default: a tail, so the figure errs on the safe side), and must stay at or below
``max_utilization`` (the headroom that keeps queueing from eating the latency budget). The
objective is the fleet's power: the sum of rate x energy per inference (W); a candidate
without an energy figure is priced at the highest known one among the job's candidates, so
that measured energy wins, and the plan says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy
import pandas

from hilbench.core.constraints import Constraints
from hilbench.core.errors import SettingsError
from hilbench.selector.solve import feasibility, solve

SCALE = 1_000_000  # CP-SAT takes integers: utilisation in ppm, power in microwatts
DEFAULT_MAX_UTILIZATION = 0.8
UNPRICED_W = 1.0  # per job, when no candidate of it has an energy figure


@dataclass(frozen=True)
class Job:
    """A model (or family) needed at ``rate_hz`` inferences per second."""

    name: str
    rate_hz: float
    constraints: Constraints

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise SettingsError(f"job {self.name}: the rate must be a positive number of "
                                f"inferences per second, not {self.rate_hz}")


@dataclass(frozen=True)
class Assignment:
    job: str
    candidate: dict[str, Any]
    utilization: float
    power_w: float | None


@dataclass(frozen=True)
class FleetPlan:
    """``status``: optimal, feasible (the time limit ended the search), or infeasible (with
    ``why``: jobs no candidate serves, or devices too small for the jobs together)."""

    status: str
    assignments: tuple[Assignment, ...]
    utilization: dict[str, float]
    power_w: float | None
    why: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class _Option:
    job: int
    row: dict[str, Any]
    utilization: int  # ppm of one device
    power: int  # microwatts
    priced: bool


def _options(job_index: int, job: Job, frame: pandas.DataFrame) -> list[_Option]:
    has, lc, ac = feasibility(frame, job.constraints)
    feasible = frame[has & lc & ac]
    energy = feasible["energy_mj"].to_numpy(dtype=float)
    known = energy[numpy.isfinite(energy)]
    fallback = float(known.max()) if len(known) else UNPRICED_W * 1000 / job.rate_hz
    options = []
    for row, mj in zip(feasible.to_dict(orient="records"), energy, strict=True):
        priced = bool(numpy.isfinite(mj))
        watts = job.rate_hz * (mj if priced else fallback) / 1000
        seconds = float(row["latency_ms"]) / 1000
        options.append(_Option(job_index, {str(k): v for k, v in row.items()},
                                math.ceil(job.rate_hz * seconds * SCALE),
                                round(watts * SCALE), priced))
    return options


def plan_fleet(jobs: Sequence[Job], candidates: Mapping[str, pandas.DataFrame],
               max_utilization: float = DEFAULT_MAX_UTILIZATION, time_limit_s: float = 10.0,
               objective: str = "energy") -> FleetPlan:
    """Assign every job to one of its feasible candidates (``candidates[job.name]``)."""
    from ortools.sat.python import cp_model

    if not 0 < max_utilization <= 1:
        raise SettingsError(f"--max-utilization must be in (0, 1], not {max_utilization}")
    options = [_options(i, job, candidates[job.name]) for i, job in enumerate(jobs)]
    unserved = [_unserved(job, candidates[job.name], objective)
                for job, found in zip(jobs, options, strict=True) if not found]
    if unserved:
        return FleetPlan("infeasible", (), {}, None, tuple(unserved))
    model = cp_model.CpModel()
    chosen = [[model.new_bool_var(f"j{j}o{k}") for k in range(len(found))]
              for j, found in enumerate(options)]
    for variables in chosen:
        model.add_exactly_one(variables)
    load: dict[str, list[tuple[Any, int]]] = {}
    for found, variables in zip(options, chosen, strict=True):
        for option, variable in zip(found, variables, strict=True):
            load.setdefault(str(option.row["device"]), []).append((variable, option.utilization))
    capacity = int(max_utilization * SCALE)
    for terms in load.values():
        model.add(sum(u * v for v, u in terms) <= capacity)
    model.minimize(sum(o.power * v for found, variables in zip(options, chosen, strict=True)
                       for o, v in zip(found, variables, strict=True)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 1
    solver.parameters.catch_sigint_signal = False  # Ctrl-C stays the caller's
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return FleetPlan("infeasible", (), {}, None, (_capacity_story(jobs, options,
                                                                      max_utilization),))
    return _plan(jobs, options, chosen, solver, "optimal" if status == cp_model.OPTIMAL
                 else "feasible")


def _plan(jobs: Sequence[Job], options: list[list[_Option]], chosen: list[list[Any]],
          solver: Any, status: str) -> FleetPlan:
    assignments = []
    utilization: dict[str, float] = {}
    unpriced = []
    for job, found, variables in zip(jobs, options, chosen, strict=True):
        option = next(o for o, v in zip(found, variables, strict=True) if solver.value(v))
        share = option.utilization / SCALE
        device = str(option.row["device"])
        utilization[device] = utilization.get(device, 0.0) + share
        assignments.append(Assignment(job.name, option.row, share,
                                      option.power / SCALE if option.priced else None))
        if not option.priced:
            unpriced.append(job.name)
    known = [a.power_w for a in assignments if a.power_w is not None]
    notes = tuple(f"{name}: no energy figure for its candidate; priced at its job's highest"
                  for name in unpriced)
    return FleetPlan(status, tuple(assignments), utilization,
                     sum(known) if known else None, (), notes)


def _unserved(job: Job, frame: pandas.DataFrame, objective: str) -> str:
    stories = solve(frame, job.constraints, objective).devices
    told = "; ".join(f"{device}: {why}" for device, why in sorted(stories.items()))
    return f"{job.name}: no candidate meets its constraints ({told})"


def _capacity_story(jobs: Sequence[Job], options: list[list[_Option]],
                    max_utilization: float) -> str:
    least = {job.name: min(o.utilization for o in found) / SCALE
             for job, found in zip(jobs, options, strict=True)}
    needs = ", ".join(f"{name} {share:.0%}" for name, share in least.items())
    return (f"the jobs do not fit the devices at {max_utilization:.0%} utilisation each: "
            f"the least each needs of one device is {needs}")
