"""The emulated phone's own ``benchmark_model``: runs a TFLite model with LiteRT on this
machine and prints what TFLite's ``benchmark_model`` prints (a newer build: ``INFO:``
prefixes, percentiles on ``count=`` lines), on stderr as the real tool logs.

    python -m hilbench.devices.emulated_tools.benchmark_model --graph=model.tflite
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from hilbench.core.errors import HilbenchError
from hilbench.core.stats import percentile
from hilbench.devices.emulated_tools import load, peak_rss_bytes

DEFAULTS = {"graph": "", "num_threads": "-1", "warmup_runs": "1", "warmup_min_secs": "0.5",
            "num_runs": "50", "min_secs": "1", "max_secs": "150",
            "report_peak_memory_footprint": "false"}


@dataclass(frozen=True)
class Phase:
    """One ``Running benchmark for at least ...`` phase: its limits and its run times (µs)."""

    min_runs: int
    min_secs: float
    max_secs: float
    times_us: tuple[int, ...] = ()


def parse_flags(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``--name=value`` flags the tool knows, and the ones it does not (left unconsumed)."""
    flags = dict(DEFAULTS)
    unconsumed = []
    for arg in argv:
        name, equals, value = arg.removeprefix("--").partition("=")
        if arg.startswith("--") and equals and name in flags:
            flags[name] = value
        else:
            unconsumed.append(arg)
    return flags, unconsumed


def run_phase(invoke: Callable[[], None], phase: Phase) -> Phase:
    times: list[int] = []
    started = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - started
        if (len(times) >= phase.min_runs and elapsed >= phase.min_secs) or (
            times and elapsed >= phase.max_secs
        ):
            return Phase(phase.min_runs, phase.min_secs, phase.max_secs, tuple(times))
        begin = time.perf_counter_ns()
        invoke()
        times.append((time.perf_counter_ns() - begin) // 1000)


def count_line(times_us: Sequence[int]) -> str:
    """TFLite's Stat: population std, percentiles of the sorted values."""
    ordered = sorted(times_us)
    mean = sum(times_us) / len(times_us)
    std = math.sqrt(max(0.0, sum(t * t for t in times_us) / len(times_us) - mean * mean))
    pct = {name: int(percentile(ordered, q)) for name, q in (("p5", 0.05), ("median", 0.5),
                                                             ("p95", 0.95))}
    return (f"count={len(times_us)} first={times_us[0]} curr={times_us[-1]} min={ordered[0]} "
            f"max={ordered[-1]} avg={mean:g} std={int(std)} p5={pct['p5']} "
            f"median={pct['median']} p95={pct['p95']}")


def peak_rss_mb() -> float:
    return peak_rss_bytes() / (1024.0 * 1024.0)


class Log:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __call__(self, level: str, text: str) -> None:
        self._stream.write(f"{level}: {text}\n")


def benchmark(flags: dict[str, str], log: Log) -> int:
    path = Path(flags["graph"])
    threads = int(flags["num_threads"])
    log("INFO", f"Num threads: [{threads}]")
    log("INFO", f"Graph: [{path}]")
    if not path.is_file():
        log("ERROR", f"Failed to mmap model {path}")
        return 1
    if path.suffix.lower() != ".tflite":
        log("ERROR", "The model is not a valid Flatbuffer buffer")
        log("ERROR", f"Could not build model from {path}")
        return 1
    log("INFO", f"Loaded model {path}")
    log("INFO", f"The input model file size (MB): {path.stat().st_size / 1e6:g}")
    rss_start = peak_rss_mb()
    begin = time.perf_counter_ns()
    try:
        invoke = load(path, threads if threads > 0 else None)
    except HilbenchError as exc:
        log("ERROR", f"Could not build model from {path}: {exc}")
        return 1
    init_us = (time.perf_counter_ns() - begin) // 1000
    log("INFO", f"Initialized session in {init_us / 1000:g}ms.")
    rss_init = peak_rss_mb()
    max_secs = float(flags["max_secs"])
    phases = []
    for runs, secs in ((flags["warmup_runs"], flags["warmup_min_secs"]),
                       (flags["num_runs"], flags["min_secs"])):
        phase = Phase(int(runs), float(secs), max_secs)
        log("INFO", f"Running benchmark for at least {phase.min_runs} iterations and at least "
                    f"{phase.min_secs:g} seconds but terminate if exceeding {max_secs:g} seconds.")
        phases.append(run_phase(invoke, phase))
        log("INFO", count_line(phases[-1].times_us) + "\n")
    warmup, timed = phases
    log("INFO", f"Inference timings in us: Init: {init_us}, First inference: "
                f"{warmup.times_us[0]}, Warmup (avg): {_avg(warmup.times_us):g}, "
                f"Inference (avg): {_avg(timed.times_us):g}")
    log("INFO", "Note: as the benchmark tool itself affects memory footprint, the following is "
                "only APPROXIMATE to the actual memory footprint of the model at runtime. Take "
                "the information at your discretion.")
    log("INFO", f"Memory footprint delta from the start of the tool (MB): "
                f"init={rss_init - rss_start:g} overall={peak_rss_mb() - rss_start:g}")
    if flags["report_peak_memory_footprint"] == "true":
        log("INFO", f"Overall peak memory footprint (MB) via periodic monitoring: "
                    f"{peak_rss_mb():g}")
    return 0


def _avg(times_us: Sequence[int]) -> float:
    return sum(times_us) / len(times_us)


def main(argv: Sequence[str] | None = None) -> int:
    log = Log(sys.stderr)
    flags, unconsumed = parse_flags(sys.argv[1:] if argv is None else argv)
    log("INFO", "STARTING!")
    if unconsumed:
        log("WARNING", f"Unconsumed cmdline flags: {' '.join(unconsumed)}")
    log("INFO", "Log parameter values verbosely: [0]")
    if not flags["graph"]:
        log("ERROR", "Please specify the name of your TF Lite input file with --graph")
        return 1
    try:
        return benchmark(flags, log)
    except ValueError as exc:
        log("ERROR", f"Invalid flag value: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
