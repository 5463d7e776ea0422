"""Harness overhead and parallelism of hilbench, printed as figures.

1. The shipped model on the `local` device: the median latency hilbench reports (worker
   process, full agent path) next to the median of a bare ``session.run`` loop timed in
   this process with the same inputs and threads. Target: ratio within 3 %.
2. Wall time of `bench run --devices <all emulated>` against the slowest emulated device
   alone. Target: ratio under 1.3 (devices run in parallel, not one after another).

Run: python benchmarks/harness_overhead.py [--part overhead|parallel] [--rounds 5]
         [--threads 1] [--overhead-time 2s] [--parallel-time 1s]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnxruntime

from hilbench.agents.inputs import make_feeds
from hilbench.agents.runners.onnx import OnnxRuntimeRunner
from hilbench.cli.demo import demo_model_path
from hilbench.cli.parsing import parse_duration
from hilbench.core.records import ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.core.stats import LatencySummary
from hilbench.devices.device import Device, open_device
from hilbench.devices.registry import builtin_devices

EMULATED = [d.name for d in builtin_devices() if d.kind == "emulated"]


def bare_loop_median_ms(model_path: Path, settings: BenchmarkSettings, runs: int) -> float:
    """session.run in this process, timed with perf_counter_ns, nothing else."""
    model = OnnxRuntimeRunner().load(model_path, settings.threads, "CPUExecutionProvider")
    feeds = make_feeds(model.inputs, settings, model.default_dims)
    options = onnxruntime.SessionOptions()  # the options hilbench's runner sets, no more
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    if settings.threads is not None:
        options.intra_op_num_threads = settings.threads
    session = onnxruntime.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    for _ in range(settings.warmup_runs + 1):
        session.run(None, feeds)
    samples: list[int] = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        session.run(None, feeds)
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e6


def hilbench_median_ms(model: ModelRecord, settings: BenchmarkSettings) -> tuple[float, int]:
    record = next(d for d in builtin_devices() if d.name == "local")
    with tempfile.TemporaryDirectory() as workdir:
        device = open_device(record, Path(workdir))
        assert isinstance(device, Device)  # `local` runs the Python agent
        job = device.job_spec("overhead", model, settings)
        measurement = device.run_job(job, lambda phase, fraction: None)
    summary = LatencySummary.from_ns(measurement.samples_ns)  # the agent keeps raw samples
    assert summary.p50_ms is not None  # always known from raw samples
    return summary.p50_ms, summary.count


def overhead(rounds: int, min_time_s: float, threads: int | None) -> None:
    path = demo_model_path()
    model = ModelRecord.from_file(path)
    settings = BenchmarkSettings(
        threads=threads, warmup_runs=10, min_runs=200, min_duration_s=min_time_s
    )
    print(f"model {path.name} ({model.size_bytes / 1e6:.1f} MB), onnxruntime "
          f"{onnxruntime.__version__}, local device, threads {threads or 'default'}")
    ratios = []
    for round_index in range(rounds):
        reported, count = hilbench_median_ms(model, settings)
        bare = bare_loop_median_ms(path, settings, count)
        ratios.append(reported / bare)
        print(f"  round {round_index + 1}: hilbench median {reported:.4f} ms ({count} runs), "
              f"bare session.run median {bare:.4f} ms, ratio {reported / bare:.4f}")
    print(f"harness overhead: median ratio {statistics.median(ratios):.4f} (target within 1.03)")


def bench_run_wall_s(store: str, devices: list[str], min_time: str) -> float:
    argv = [sys.executable, "-m", "hilbench.cli", "run", "--model", str(demo_model_path()),
            "--devices", ",".join(devices), "--store", store, "--min-time", min_time, "--json"]
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def parallelism(min_time: str) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        store = f"sqlite:///{workdir}/bench.db"
        for name in EMULATED:
            preset = name.removeprefix("emu-")
            subprocess.run([sys.executable, "-m", "hilbench.cli", "devices", "add", name,
                            "--kind", "emulated", "--preset", preset, "--store", store],
                           check=True, stdout=subprocess.DEVNULL)
        singles = {name: bench_run_wall_s(store, [name], min_time) for name in EMULATED}
        together = bench_run_wall_s(store, EMULATED, min_time)
    slowest = max(singles, key=lambda n: singles[n])
    for name, wall in singles.items():
        print(f"  bench run --devices {name}: {wall:.2f} s wall")
    print(f"  bench run --devices {','.join(EMULATED)}: {together:.2f} s wall")
    serial = sum(singles.values())
    print(f"  one after another would take {serial:.2f} s ({serial / singles[slowest]:.2f}x)")
    print(f"parallel run: all / slowest alone ({slowest}) = {together / singles[slowest]:.3f} "
          f"(target under 1.3) on {os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("overhead", "parallel", "all"), default="all")
    parser.add_argument("--rounds", type=int, default=5, help="overhead rounds (alternating)")
    parser.add_argument("--threads", type=int, default=1, help="0: the runtime's default")
    parser.add_argument("--overhead-time", default="2s", help="timed duration per round")
    parser.add_argument("--parallel-time", default="1s", help="bench run --min-time")
    args = parser.parse_args()
    if args.part in ("overhead", "all"):
        overhead(args.rounds, parse_duration(args.overhead_time), args.threads or None)
    if args.part in ("parallel", "all"):
        parallelism(args.parallel_time)


if __name__ == "__main__":
    main()
