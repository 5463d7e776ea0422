"""The selector's figures. Prints them.

1. Closed loop on replayed measurements (``--part loop``): NAS-Bench-201 networks (the
   2,000 that ``benchmarks/predictor_public.py --networks 2000`` extracts, cached) on sets
   of four devices of the public table, where measuring a candidate means reading its
   recorded latency, so the true optimum is known. Each device has measured HELP's 20
   networks (10 references + 10 random); the transfer model, fitted on the other devices,
   predicts the rest with 90 % intervals. A query is a random LC (p50, uniform between the
   20th and 80th percentile of the set's latencies) and the objective "the most accurate
   network that meets LC" (CIFAR-100 top-1 from the table). The closed loop
   (``hilbench.selector.verify.closed_loop``, top 5 a round) measures until the pick is a
   measurement no prediction can beat; as in ``bench select``, each device's measured
   networks recalibrate its other predictions between rounds (``--no-recalibrate``: without).
   Printed: the share of queries whose verified pick is
   the true optimum (same accuracy; ties go by latency) and the share of candidates measured.
   Target: >= 0.95 optimal while measuring <= 5 %.
2. End to end on the demo (``--part demo``): ``bench demo`` into a temporary store, then
   ``bench select`` queries on the digits family (measured at batch 64 on this machine and
   the emulated devices) as a user types them: the pick, its measured p90, top-1 and energy
   (and battery life, for the battery query), and the time to answer (the command's wall
   time, Python start included).
3. Solve time: ``hilbench.selector.solve.solve`` on 100,000 candidates (a synthetic table
   shaped like a large lab's: 200 devices x 50 variants x 10 DVFS levels, latencies with
   predicted intervals on half of them, accuracy per variant, energy per candidate), with LC
   and AC set so that about a tenth are feasible: the best pick, the Pareto front and every
   device's explanation. Target: under 0.5 s.

Run: python benchmarks/selector.py [--part loop|demo|solve] [--queries 200]
     [--candidates 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy
import pandas
from predictor_public import REFERENCES, features

from hilbench.core.constraints import AccuracyConstraint, Constraints, LatencyConstraint
from hilbench.predictor.model import DeviceData, TransferModel
from hilbench.predictor.spaces.public import load_nb201
from hilbench.selector.recalibrate import recalibrate
from hilbench.selector.solve import CANDIDATE_COLUMNS, Selection, solve
from hilbench.selector.verify import Pick, closed_loop, unconfirmed

DEVICE_SETS = {
    "edge": ("pixel3", "raspi4", "samsung_a50", "eyeriss"),
    "servers": ("gold_6226", "gold_6240", "silver_4114", "titan_rtx_1"),
    "gpus": ("1080ti_1", "2080ti_1", "titanx_1", "titan_rtx_32"),
}
FEW_SHOT = 10
TOP_K = 5
MAX_ROUNDS = 200


@dataclass(frozen=True)
class Lab:
    """One device set: truth and predictions for every (device, network)."""

    devices: tuple[str, ...]
    archs: list[str]
    accuracy: numpy.ndarray
    truth: dict[str, numpy.ndarray]
    predicted: dict[str, tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]]
    measured: dict[str, set[int]]


def _nb201(count: int, seed: int) -> tuple[list[str], numpy.ndarray, pandas.DataFrame]:
    """The networks predictor_public.py picks (and caches the features of)."""
    table = load_nb201()
    wide = table.pivot(index="arch_index", columns="device", values="latency_ms").sort_index()
    first = table.drop_duplicates("arch_index").sort_values("arch_index")
    arches = first.arch.tolist()
    picked = numpy.sort(numpy.random.default_rng(seed).choice(len(arches), count,
                                                              replace=False))
    accuracy = first.cifar100_top1.to_numpy(dtype=float)[picked]
    return [arches[i] for i in picked], accuracy, wide.iloc[picked]


def build_lab(devices: Sequence[str], archs: list[str], accuracy: numpy.ndarray,
              wide: pandas.DataFrame, codes: numpy.ndarray, seed: int) -> Lab:
    rng = numpy.random.default_rng(seed)
    rows = numpy.arange(len(archs))
    references = rng.choice(len(archs), REFERENCES, replace=False)
    truth = {d: wide[d].to_numpy(dtype=float) for d in devices}
    predicted, measured = {}, {}
    for device in devices:
        known = {d: DeviceData(rows, wide[d].to_numpy(dtype=float)) for d in wide.columns
                 if d not in devices}
        model = TransferModel(references.tolist(), seed=seed).fit(codes, known,
                                                                  held_out=False)
        others = numpy.setdiff1d(rows, references)
        shots = numpy.concatenate([references, rng.choice(others, FEW_SHOT, replace=False)])
        model.adapt(device, codes, DeviceData(shots, truth[device][shots]))
        estimate = model.predict(device, codes)
        predicted[device] = (estimate.median_ms, estimate.lower_ms, estimate.upper_ms)
        measured[device] = set(shots.tolist())
    return Lab(tuple(devices), archs, accuracy, truth, predicted, measured)


def _frame(lab: Lab, measured: dict[str, set[int]], recalibrating: bool) -> pandas.DataFrame:
    blocks = []
    count = len(lab.archs)
    for device in lab.devices:
        median, lower, upper = lab.predicted[device]
        known = numpy.zeros(count, dtype=bool)
        known[list(measured[device])] = True
        truth = lab.truth[device]
        blocks.append(pandas.DataFrame({
            "device": device, "model": [f"nb201#{i}" for i in range(count)],
            "model_sha256": [str(i) for i in range(count)], "batch": 1, "setting": "",
            "dvfs": "default", "dvfs_levels": None,
            "source": numpy.where(known, "measured", "predicted"),
            "latency_ms": numpy.where(known, truth, median),
            "latency_lower_ms": numpy.where(known, truth, lower),
            "latency_upper_ms": numpy.where(known, truth, upper),
            "energy_mj": numpy.nan, "power_w": numpy.nan, "cost": numpy.nan,
            "accuracy": lab.accuracy, "note": ""}, columns=list(CANDIDATE_COLUMNS)))
    frame = pandas.concat(blocks, ignore_index=True)
    return recalibrate(frame, _estimates(lab, measured)) if recalibrating else frame


def _estimates(lab: Lab, measured: dict[str, set[int]]) -> pandas.DataFrame:
    """The predictions of the measured pairs: as bench select, the loop's measurements
    recalibrate each device's other predictions."""
    blocks = []
    for device in lab.devices:
        index = numpy.array(sorted(measured[device]), dtype=int)
        blocks.append(pandas.DataFrame({"device": device, "model_sha256": index.astype(str),
                                        "latency_ms": lab.predicted[device][0][index]}))
    return pandas.concat(blocks, ignore_index=True)


def _optimum(lab: Lab, limit: float) -> float:
    best = -numpy.inf
    for device in lab.devices:
        fits = lab.truth[device] <= limit
        if fits.any():
            best = max(best, float(lab.accuracy[fits].max()))
    return best


def query(lab: Lab, limit: float, recalibrating: bool) -> tuple[bool, int]:
    """One LC: whether the verified pick is the true optimum, and how many it measured."""
    measured = {d: set(v) for d, v in lab.measured.items()}
    constraints = Constraints(LatencyConstraint(limit, "p50"))

    def select(tried: frozenset[tuple[str, str]]) -> Selection:
        return solve(unconfirmed(_frame(lab, measured, recalibrating), tried), constraints,
                     "accuracy")

    def measure(picks: Sequence[Pick]) -> None:
        for pick in picks:
            measured[pick.device].add(int(pick.model_sha256))

    verified = closed_loop(select, measure, TOP_K, MAX_ROUNDS)
    best = verified.selection.best
    optimum = _optimum(lab, limit)
    found = best is not None and float(best["accuracy"]) == optimum
    return found or (best is None and optimum == -numpy.inf), verified.measurements


def loop_figures(queries: int, seed: int, recalibrating: bool) -> None:
    archs, accuracy, wide = _nb201(2000, 0)
    codes = features("nb201", archs)
    print(f"1. closed loop: {len(archs)} NB201 networks, {queries} random LC per device set, "
          f"objective: the most accurate network that meets LC (p50), "
          f"{'recalibrating' if recalibrating else 'not recalibrating'} between rounds")
    total_optimal, total_queries, total_measured, total_candidates = 0, 0, 0, 0
    for name, devices in DEVICE_SETS.items():
        started = time.perf_counter()
        lab = build_lab(devices, archs, accuracy, wide, codes, seed)
        latencies = numpy.concatenate([lab.truth[d] for d in devices])
        low, high = numpy.quantile(latencies, [0.2, 0.8])
        limits = numpy.random.default_rng(seed + 1).uniform(low, high, queries)
        results = [query(lab, float(limit), recalibrating) for limit in limits]
        optimal = sum(found for found, _ in results)
        spent = [count for _, count in results]
        candidates = len(archs) * len(devices)
        few = FEW_SHOT + REFERENCES
        total_optimal += optimal
        total_queries += queries
        total_measured += sum(spent)
        total_candidates += candidates * queries
        print(f"   {name:8s} ({', '.join(devices)}): optimal {optimal / queries:.3f}, "
              f"measured per query: mean {numpy.mean(spent):.1f}, max {max(spent)} of "
              f"{candidates} candidates ({numpy.mean(spent) / candidates:.2%} mean, "
              f"{max(spent) / candidates:.2%} max; plus {few} per device measured before), "
              f"{time.perf_counter() - started:.0f} s")
    print(f"   all: optimal {total_optimal / total_queries:.3f}, measured "
          f"{total_measured / total_candidates:.2%} of the candidates (target >= 0.95 "
          f"optimal, <= 5 %)")


def synthetic(count: int, seed: int) -> pandas.DataFrame:
    """``count`` candidates: devices x variants x DVFS levels, half of them predicted."""
    rng = numpy.random.default_rng(seed)
    devices, variants = 200, 50
    levels = max(1, count // (devices * variants))
    device = numpy.repeat(numpy.arange(devices), variants * levels)[:count]
    variant = numpy.tile(numpy.repeat(numpy.arange(variants), levels), devices)[:count]
    level = numpy.tile(numpy.arange(levels), devices * variants)[:count]
    speed = rng.lognormal(0.0, 1.0, devices)[device]
    cost = rng.uniform(0.3, 1.0, variants)[variant]
    frequency = 0.4 + 0.6 * (level + 1) / levels
    latency = 10.0 * speed * cost / frequency * rng.lognormal(0.0, 0.05, count)
    predicted = rng.random(count) < 0.5
    width = numpy.where(predicted, rng.uniform(1.1, 1.6, count), 1.0)
    accuracy = (0.95 - 0.1 * (1 - cost) + rng.normal(0, 0.005, variants)[variant])
    power = rng.uniform(1.0, 30.0, devices)[device] * frequency ** 2
    return pandas.DataFrame({
        "device": numpy.char.add("dev-", device.astype(str)),
        "model": numpy.char.add("variant-", variant.astype(str)),
        "model_sha256": numpy.char.add("sha-", variant.astype(str)),
        "batch": 1, "setting": "onnxruntime", "dvfs": numpy.char.add("level-", level.astype(str)),
        "dvfs_levels": None,
        "source": numpy.where(predicted, "predicted", "measured"),
        "latency_ms": latency, "latency_lower_ms": latency / width,
        "latency_upper_ms": latency * width, "energy_mj": power * latency, "power_w": power,
        "cost": numpy.nan, "accuracy": accuracy, "note": "",
    }, columns=list(CANDIDATE_COLUMNS))


DEMO_QUERIES = (
    ("--lc", "3ms", "--ac", "0.98"),
    ("--lc", "3ms", "--ac", "0.97"),
    ("--lc", "1ms", "--ac", "0.97", "--objective", "latency"),
    ("--lc", "2ms", "--ac", "0.97", "--percentile", "p99", "--objective", "power"),
    ("--lc", "100us", "--ac", "0.97"),
    ("--lc", "3ms", "--ac", "0.97", "--objective", "battery", "--rate", "100"),
)


def demo_figures() -> None:
    with tempfile.TemporaryDirectory(prefix="hilbench-selector-") as folder:
        root = Path(folder)
        env = {**os.environ, "XDG_DATA_HOME": str(root / "data"),
               "XDG_CACHE_HOME": str(root / "cache")}
        store = f"sqlite:///{root}/profiles.db"

        def bench(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "hilbench.cli", *args, "--store",
                                   store], capture_output=True, text=True, env=env,
                                  check=False)

        started = time.perf_counter()
        demo = bench("demo")
        if demo.returncode != 0:
            raise SystemExit(f"bench demo failed: {demo.stderr.strip()[-300:]}")
        print(f"2. end to end: bench demo {time.perf_counter() - started:.1f} s, then "
              "bench select --family digits-transformer ...")
        for query in DEMO_QUERIES:
            started = time.perf_counter()
            result = bench("select", "--family", "digits-transformer", *query, "--json")
            seconds = time.perf_counter() - started
            answer = json.loads(result.stdout)
            best = answer["best"]
            asked = " ".join(query)
            if best is None:
                nearest = answer["nearest"][0] if answer["nearest"] else None
                near = (f"nearest {nearest['device']} {nearest['model']} p90 "
                        f"{nearest['latency_ms']:.3g} ms" if nearest else "no candidate")
                print(f"   {asked}: nothing feasible (exit {result.returncode}); {near}; "
                      f"{seconds:.2f} s")
                continue
            energy, hours = best["energy_mj"], best["battery_h"]
            statistic = answer["latency_constraint"]["statistic"]
            print(f"   {asked}: {best['device']} {best['model']} ({best['source']}) "
                  f"{statistic} {best['latency_ms']:.3g} ms, top-1 {best['accuracy']:.4f}, "
                  f"{'-' if energy is None else f'{energy:.3g}'} mJ/inference"
                  f"{'' if hours is None else f', {hours:.3g} h on its battery'}; "
                  f"{answer['feasible']} of {answer['candidates']} feasible; {seconds:.2f} s")


def solve_figures(count: int, rounds: int, seed: int) -> None:
    frame = synthetic(count, seed)
    limit = float(numpy.quantile(frame.latency_upper_ms, 0.2))
    constraints = Constraints(LatencyConstraint(limit), AccuracyConstraint(0.9))
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        selection = solve(frame, constraints, "energy")
        times.append(time.perf_counter() - started)
    assert selection.best is not None
    print(f"3. solve: {len(frame):,} candidates, {frame.device.nunique()} devices, "
          f"LC p90 <= {limit:.3g} ms, AC >= 0.9: {len(selection.ranked):,} feasible, "
          f"Pareto front {len(selection.pareto):,}, {len(selection.devices)} devices explained")
    print(f"   best {selection.best['device']} {selection.best['model']} "
          f"{selection.best['dvfs']}: {selection.best['latency_upper_ms']:.3g} ms, "
          f"{selection.best['energy_mj']:.3g} mJ")
    print(f"   solve time: median {numpy.median(times) * 1e3:.0f} ms, min "
          f"{min(times) * 1e3:.0f} ms over {len(times)} rounds (target < 500 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["loop", "demo", "solve"], action="append")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-recalibrate", action="store_true",
                        help="The loop without recalibrating predictions on its measurements.")
    args = parser.parse_args()
    parts = args.part or ["loop", "demo", "solve"]
    if "loop" in parts:
        loop_figures(args.queries, args.seed, not args.no_recalibrate)
    if "demo" in parts:
        demo_figures()
    if "solve" in parts:
        solve_figures(args.candidates, args.rounds, args.seed)


if __name__ == "__main__":
    main()
