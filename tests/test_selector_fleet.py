"""Fleet mode: jobs at rates sharing devices, solved by CP-SAT, checked against every
assignment enumerated; and `bench fleet` on the demo store."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy
import pytest

from hilbench.core.constraints import Constraints, LatencyConstraint
from hilbench.core.errors import SettingsError
from hilbench.selector.fleet import Job, plan_fleet
from tests.cli import bench, one_line_error
from tests.conftest import DemoStore
from tests.test_selector_solve import candidate, table


def _jobs_and_tables(seed: int) -> tuple[list[Job], dict]:
    rng = numpy.random.default_rng(seed)
    devices = ["phone", "board", "fpga"]
    jobs, tables = [], {}
    for j in range(4):
        rows = []
        for device in devices:
            for variant in range(2):
                latency = float(rng.uniform(1.0, 12.0))
                rows.append(candidate(device, f"m{j}v{variant}", latency,
                                      energy=float(rng.uniform(0.5, 20.0))))
        name = f"job{j}"
        jobs.append(Job(name, float(rng.uniform(20, 120)), Constraints(
            LatencyConstraint(10.0))))
        tables[name] = table(*rows)
    return jobs, tables


def _brute_force(jobs: list[Job], tables: dict, cap: float) -> float | None:
    best = None
    options = []
    for job in jobs:
        frame = tables[job.name]
        frame = frame[frame.latency_upper_ms <= 10.0]
        options.append([(r.device, job.rate_hz * r.latency_ms / 1000,
                         job.rate_hz * r.energy_mj / 1000) for r in frame.itertuples()])
    for combo in itertools.product(*options):
        load: dict[str, float] = {}
        for device, share, _ in combo:
            load[device] = load.get(device, 0.0) + share
        if all(v <= cap + 1e-6 for v in load.values()):
            power = sum(p for _, _, p in combo)
            best = power if best is None or power < best else best
    return best


@pytest.mark.parametrize("seed", range(4))
def test_the_plan_is_the_least_power_that_fits(seed: int) -> None:
    jobs, tables = _jobs_and_tables(seed)
    plan = plan_fleet(jobs, tables, max_utilization=0.8)
    expected = _brute_force(jobs, tables, 0.8)
    if expected is None:
        assert plan.status == "infeasible" and "do not fit" in plan.why[0]
        return
    assert plan.status == "optimal"
    assert plan.power_w == pytest.approx(expected, rel=1e-4)
    assert all(share <= 0.8 + 1e-6 for share in plan.utilization.values())
    assert {a.job for a in plan.assignments} == {j.name for j in jobs}
    assert all(a.candidate["latency_upper_ms"] <= 10.0 for a in plan.assignments)


def test_a_full_device_pushes_a_job_to_its_next_best() -> None:
    """Both jobs are cheapest on the phone, which cannot carry both at 80 %."""
    lc = Constraints(LatencyConstraint(10.0))
    tables = {"a": table(candidate("phone", "a", 6.0, energy=1.0),
                         candidate("board", "a", 4.0, energy=3.0)),
              "b": table(candidate("phone", "b", 5.0, energy=1.0),
                         candidate("board", "b", 5.0, energy=5.0))}
    plan = plan_fleet([Job("a", 100, lc), Job("b", 100, lc)], tables)
    placed = {a.job: a.candidate["device"] for a in plan.assignments}
    assert placed == {"a": "board", "b": "phone"}  # moving a costs 0.2 W, moving b 0.4 W
    assert plan.utilization == {"board": pytest.approx(0.4), "phone": pytest.approx(0.5)}
    assert plan.power_w == pytest.approx(0.3 + 0.1)


def test_a_job_nothing_serves_is_named_with_each_devices_story() -> None:
    lc = Constraints(LatencyConstraint(2.0))
    tables = {"a": table(candidate("phone", "a", 6.0, energy=1.0)),
              "b": table(candidate("phone", "b", 1.0, energy=1.0))}
    plan = plan_fleet([Job("a", 10, lc), Job("b", 10, lc)], tables)
    assert plan.status == "infeasible" and not plan.assignments
    assert plan.why == ("a: no candidate meets its constraints (phone: nearest feasible "
                        "variant is 3.00x LC: a (onnxruntime 1.20.0), p90 6 ms > 2 ms)",)
    with pytest.raises(SettingsError, match="positive number of inferences per second"):
        Job("c", 0, lc)
    with pytest.raises(SettingsError, match="max-utilization"):
        plan_fleet([Job("b", 10, lc)], tables, max_utilization=1.5)


def test_bench_fleet_on_the_demo_store(tmp_path: Path, demo_store: DemoStore) -> None:
    store = demo_store.copy(tmp_path)
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = bench("fleet", "--job", "digits-transformer=50/s@1s", "--job",
                   "tiny-bert=20", "--lc", "1s", "--devices", "kind=emulated", "--json",
                   store=store, env=env)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["status"] == "optimal"
    by_job = {a["job"]: a for a in plan["assignments"]}
    assert set(by_job) == {"digits-transformer", "tiny-bert"}
    assert by_job["digits-transformer"]["model"].startswith("digits-transformer")
    assert by_job["tiny-bert"]["batch"] == 1 and by_job["digits-transformer"]["batch"] == 64
    for item in by_job.values():
        assert item["utilization"] == pytest.approx(
            item["rate_hz"] * item["latency_ms"] / 1000, rel=1e-3)
    assert all(share <= 0.8 for share in plan["utilization"].values())
    crowded = bench("fleet", "--job", "tiny-bert=100000", "--lc", "1s", "--devices",
                    "kind=emulated", store=store, env=env)
    assert crowded.returncode == 1
    assert "the jobs do not fit the devices at 80% utilisation" in crowded.stdout
    assert "invalid --job" in one_line_error(bench("fleet", "--job", "tiny-bert", "--lc",
                                                   "1s", store=store, env=env))
    assert "every job needs an LC" in one_line_error(bench("fleet", "--job", "tiny-bert=5",
                                                           store=store, env=env))
