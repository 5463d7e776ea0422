"""An emulated device's ``onnxruntime_perf_test``: runs the model with onnxruntime on this
machine and prints what the real tool prints (a build with ``-s`` percentiles).

    python -m hilbench.devices.emulated_tools.onnxruntime_perf_test -I -s -m times -r 50 m.onnx
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from hilbench.core.errors import HilbenchError
from hilbench.devices.emulated_tools import Invoke, load, peak_rss_bytes

CPUS = os.cpu_count() or 1
PERCENTILES = (("P50", 0.5), ("P90", 0.9), ("P95", 0.95), ("P99", 0.99), ("P999", 0.999))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onnxruntime_perf_test", add_help=True)
    parser.add_argument("-m", dest="mode", choices=("duration", "times"), default="duration")
    parser.add_argument("-r", dest="repeat", type=int, default=1000)
    parser.add_argument("-t", dest="seconds", type=float, default=600.0)
    parser.add_argument("-x", dest="threads", type=int, default=0)
    parser.add_argument("-f", dest="free_dims", action="append", default=[])
    parser.add_argument("-e", dest="provider", default="cpu")
    parser.add_argument("-I", dest="generate", action="store_true")
    parser.add_argument("-s", dest="statistics", action="store_true")
    parser.add_argument("model")
    parser.add_argument("result_file", nargs="?")
    return parser


def _dims(pairs: Sequence[str]) -> dict[str, int]:
    dims = {}
    for pair in pairs:
        name, _, size = pair.rpartition(":")
        dims[name] = int(size)
    return dims


def _time(invoke: Invoke, mode: str, repeat: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    started = time.perf_counter()
    while (len(latencies) < repeat) if mode == "times" else (
        time.perf_counter() - started < seconds
    ):
        begin = time.perf_counter()
        invoke()
        latencies.append(time.perf_counter() - begin)
    return latencies


def report(session_s: float, first_ms: float, latencies: list[float], cpu_percent: float,
           statistics: bool) -> str:
    total = sum(latencies)
    lines = [
        f"Session creation time cost: {session_s:g} s",
        f"First inference time cost: {first_ms:.0f} ms",
        f"Total inference time cost: {total:g} s",
        f"Total inference requests: {len(latencies)}",
        f"Average inference time cost total: {total / len(latencies) * 1000:f} ms",
        f"Total inference run time: {total:g} s",
        f"Number of inferences per second: {len(latencies) / total:.3f}",
        f"Avg CPU usage: {cpu_percent:.0f} %",
        f"Peak working set size: {peak_rss_bytes()} bytes",
    ]
    if statistics:
        ordered = sorted(latencies)
        lines += [f"Min Latency: {ordered[0]:g} s", f"Max Latency: {ordered[-1]:g} s"]
        lines += [f"{name} Latency: {ordered[min(int(len(ordered) * q), len(ordered) - 1)]:g} s"
                  for name, q in PERCENTILES]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    path = Path(args.model)
    if not args.generate:
        sys.stderr.write("this emulated tool has no test data folders: pass -I\n")
        return 1
    begin = time.perf_counter()
    try:
        invoke = load(path, args.threads or None, _dims(args.free_dims))
    except HilbenchError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    session_s = time.perf_counter() - begin
    first = time.perf_counter()
    invoke()
    first_ms = (time.perf_counter() - first) * 1000
    cpu, wall = time.process_time(), time.perf_counter()
    latencies = _time(invoke, args.mode, max(1, args.repeat), args.seconds)
    cpu_percent = (time.process_time() - cpu) / (time.perf_counter() - wall) / CPUS * 100
    sys.stdout.write(report(session_s, first_ms, latencies, cpu_percent, args.statistics) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
