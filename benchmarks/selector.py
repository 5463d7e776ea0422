"""The selector's figures. Prints them.

3. Solve time: ``hilbench.selector.solve.solve`` on 100,000 candidates (a synthetic table
   shaped like a large lab's: 200 devices x 50 variants x 10 DVFS levels, latencies with
   predicted intervals on half of them, accuracy per variant, energy per candidate), with LC
   and AC set so that about a tenth are feasible: the best pick, the Pareto front and every
   device's explanation. Target: under 0.5 s.

(Figures 1 and 2 of issue 7, the closed loop on replay devices and end-to-end queries on the
demo family, come with the closed loop.)

Run: python benchmarks/selector.py [--candidates 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import numpy
import pandas

from hilbench.core.constraints import AccuracyConstraint, Constraints, LatencyConstraint
from hilbench.selector.solve import CANDIDATE_COLUMNS, solve


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = synthetic(args.candidates, args.seed)
    limit = float(numpy.quantile(frame.latency_upper_ms, 0.2))
    constraints = Constraints(LatencyConstraint(limit), AccuracyConstraint(0.9))
    times = []
    for _ in range(args.rounds):
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


if __name__ == "__main__":
    main()
