"""Does sampling sensors beside a run slow the run down? Prints figures.

The shipped model on this machine's CPU, timed in this process (``session.run`` around
``perf_counter_ns``), with the sampler off, at 10 Hz and at 100 Hz, in alternating rounds.
The sampler reads the sensors this machine has plus an emulated phone's sysfs tree (two
cpufreq clusters, three thermal zones, a battery: the files a phone's sampler reads), so it
does the same work on a machine without sensors. Target: under 2 % difference at 10 Hz.

Run: python benchmarks/sampler_overhead.py [--rounds 5] [--time 2s] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hilbench.agents.inputs import make_feeds
from hilbench.agents.power import power_sensors
from hilbench.agents.runners.onnx import OnnxRuntimeRunner
from hilbench.agents.sampler import Channel, Sampler, file_channels, power_channel
from hilbench.cli.demo import demo_model_path
from hilbench.cli.parsing import parse_duration
from hilbench.core.settings import BenchmarkSettings
from hilbench.devices.emulated import write_sysfs
from hilbench.devices.presets import get_preset

RATES = {"off": None, "10 Hz": 0.1, "100 Hz": 0.01}


def timed_median_ms(run: Callable[[], None], seconds: float) -> tuple[float, int]:
    samples: list[int] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter_ns()
        run()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e6, len(samples)


def channels(folder: Path) -> list[Channel]:
    phone = write_sysfs(get_preset("phone"), folder / "phone")
    found = file_channels(Path("/")) + [power_channel(s) for s in power_sensors(Path("/"))]
    return found + file_channels(phone) + [power_channel(s) for s in power_sensors(phone)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--time", default="2s", help="timed length of each round")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    seconds = parse_duration(args.time)
    settings = BenchmarkSettings(threads=args.threads)
    path = demo_model_path()
    model = OnnxRuntimeRunner().load(path, args.threads, "CPUExecutionProvider")
    feeds = make_feeds(model.inputs, settings, model.default_dims)
    for _ in range(50):
        model.run(feeds)
    medians: dict[str, list[float]] = {name: [] for name in RATES}
    with tempfile.TemporaryDirectory() as folder:
        sensors = channels(Path(folder))
        print(f"model {path.name}, {args.threads} thread(s), {len(sensors)} sensor files "
              f"sampled, {args.rounds} rounds of {seconds:g} s per setting")
        for round_index in range(args.rounds):
            for name, interval in RATES.items():
                sampler = Sampler(sensors, interval).start() if interval else None
                median, count = timed_median_ms(lambda: model.run(feeds), seconds)
                points = 0
                if sampler is not None:
                    points = sum(len(s.values) for s in sampler.stop().series)
                medians[name].append(median)
                print(f"  round {round_index + 1} {name:>6}: median {median:.4f} ms over "
                      f"{count} runs, {points} readings")
    base = statistics.median(medians["off"])
    for name in ("10 Hz", "100 Hz"):
        ratio = statistics.median(medians[name]) / base
        print(f"sampler at {name}: median latency {ratio:.4f} x off ({(ratio - 1) * 100:+.2f} %)")


if __name__ == "__main__":
    main()
