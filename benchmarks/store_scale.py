"""The store's queries with a lab's worth of data. Prints their timings.

A fresh store (SQLite and PostgreSQL) is filled with ``--runs`` runs of ``--samples`` raw
samples each (1,000,000 samples by default): ``--devices`` devices x ``--models`` models, the
runs spread over them, written in batches as the coordinator ingests them (``insert_runs``).
Then each query the dashboard and the selector make is timed (median of ``--rounds``):

* the fleet page (every device with its run count and last run: ``inventory.fleet_frame``),
* every run's summary (``Store.runs``, the runs page and ``bench profiles show``), and one
  device's,
* one run's raw samples (the latency histogram of the runs page: ``Store.samples``),
* the selector's measured candidates for a family of the models on every device
  (``selector.candidates.measured_groups``),
* the number of samples (``Store.sample_count``).

Run: python benchmarks/store_scale.py [--stores sqlite,postgresql] [--runs 2000]
     [--samples 500] [--devices 50] [--models 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from coordinator_load import _measurement, _store_url

from hilbench.core.records import RUN_OK, DeviceRecord, ModelRecord, RunRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.profiles.inventory import fleet_frame
from hilbench.profiles.store import Store
from hilbench.selector.candidates import ModelChoice, measured_groups

SETTINGS = BenchmarkSettings(min_runs=5, min_duration_s=0.0)
BATCH = 50


def _models(count: int) -> list[ModelRecord]:
    return [ModelRecord(f"{i:064x}", f"variant-{i}", "onnx", f"/models/variant-{i}.onnx",
                        1_000_000) for i in range(count)]


def fill(store: Store, runs: int, samples: int, devices: int, models: list[ModelRecord]
         ) -> float:
    """Write the runs in batches; returns the seconds it took."""
    for index in range(devices):
        store.add_device(DeviceRecord(f"board-{index}", "emulated", "server"))
    base = _measurement(samples, 0)
    rng = random.Random(0)
    started = time.perf_counter()
    batch: list[RunRecord] = []
    for index in range(runs):
        device, model = f"board-{index % devices}", models[rng.randrange(len(models))]
        measurement = replace(base, environment=replace(base.environment, device=device,
                                                        model_sha256=model.sha256))
        batch.append(RunRecord(f"run-{index}", device, model, SETTINGS, RUN_OK,
                               1_700_000_000.0 + index, 1_700_000_001.0 + index,
                               measurement=measurement))
        if len(batch) == BATCH:
            store.save_runs(batch)
            batch = []
    store.save_runs(batch)
    return time.perf_counter() - started


def timed(rounds: int, query: Callable[[], Any]) -> tuple[float, Any]:
    times, found = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        found = query()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, found


def measure(kind: str, args: argparse.Namespace) -> None:
    models = _models(args.models)
    with tempfile.TemporaryDirectory(prefix="hilbench-scale-") as folder, \
            _store_url(kind, Path(folder)) as url, Store.open(url) as store:
        seconds = fill(store, args.runs, args.samples, args.devices, models)
        count = store.sample_count()
        print(f"{kind}: {args.runs:,} runs, {count:,} samples written in {seconds:.1f} s "
              f"({count / seconds:,.0f} samples/s)")
        choices = [ModelChoice(m.sha256, m.name, m.path, m.format) for m in models]
        names = [f"board-{i}" for i in range(args.devices)]
        queries: list[tuple[str, Callable[[], Any], Callable[[Any], str]]] = [
            ("fleet page (inventory.fleet_frame)", lambda: fleet_frame(store),
             lambda f: f"{len(f)} devices"),
            ("every run's summary (Store.runs)", store.runs, lambda f: f"{len(f):,} runs"),
            ("one device's runs (Store.runs(device))", lambda: store.runs("board-7"),
             lambda f: f"{len(f):,} runs"),
            ("one run's raw samples (Store.samples)",
             lambda: store.samples(f"run-{args.runs // 2}"),
             lambda f: f"{len(f):,} samples"),
            ("selector's measured candidates (measured_groups)",
             lambda: measured_groups(store, choices, names),
             lambda found: f"{len(found[0]):,} candidates"),
            ("sample count (Store.sample_count)", store.sample_count, lambda n: f"{n:,}"),
        ]
        for label, query, describe in queries:
            ms, found = timed(args.rounds, query)
            print(f"   {label}: {ms:,.1f} ms ({describe(found)})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for kind in args.stores.split(","):
        measure(kind, args)


if __name__ == "__main__":
    main()
