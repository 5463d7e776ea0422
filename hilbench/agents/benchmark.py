"""The timing loop: first inference, warm-up, then timed runs until both minimums are met."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, TypeVar

from hilbench.agents.runners.base import LoadedModel
from hilbench.core.settings import BenchmarkSettings

ProgressCallback = Callable[[str, float], None]
PROGRESS_INTERVAL_NS = 100_000_000


T = TypeVar("T")


class Clock(Protocol):
    """Times a call on this machine and says how long it took on the device."""

    def time_call(self, call: Callable[[], T], pace: bool = True) -> tuple[T, int]: ...


class HostClock:
    """A real device: wall time around the call, with ``time.perf_counter_ns``."""

    def time_call(self, call: Callable[[], T], pace: bool = True) -> tuple[T, int]:
        start = time.perf_counter_ns()
        result = call()
        return result, time.perf_counter_ns() - start


@dataclass(frozen=True)
class Timings:
    first_ns: int
    samples_ns: tuple[int, ...]

    @property
    def timed_ns(self) -> int:
        return sum(self.samples_ns)


def _time_one(model: LoadedModel, feeds: dict[str, Any], clock: Clock) -> int:
    return clock.time_call(lambda: model.run(feeds))[1]


def _progress_fraction(settings: BenchmarkSettings, runs: int, timed_ns: int) -> float:
    by_runs = runs / settings.min_runs
    by_time = timed_ns / (settings.min_duration_s * 1e9) if settings.min_duration_s > 0 else 1.0
    return min(1.0, by_runs, by_time)


def run_benchmark(
    model: LoadedModel,
    feeds: dict[str, Any],
    settings: BenchmarkSettings,
    clock: Clock,
    progress: ProgressCallback,
) -> Timings:
    """Time the first inference alone, discard ``warmup_runs`` more, then time runs until
    ``min_runs`` AND ``min_duration_s`` are reached, or ``max_runs`` / ``max_duration_s``."""
    first_ns = _time_one(model, feeds, clock)
    for index in range(settings.warmup_runs):
        _time_one(model, feeds, clock)
        progress("warm-up", (index + 1) / settings.warmup_runs)
    samples: list[int] = []
    timed_ns = 0
    min_ns = settings.min_duration_s * 1e9
    max_ns = settings.max_duration_s * 1e9
    last_report = time.perf_counter_ns()
    while len(samples) < settings.max_runs and timed_ns < max_ns:
        if len(samples) >= settings.min_runs and timed_ns >= min_ns:
            break
        latency = _time_one(model, feeds, clock)
        samples.append(latency)
        timed_ns += latency
        now = time.perf_counter_ns()
        if now - last_report >= PROGRESS_INTERVAL_NS:
            progress("measure", _progress_fraction(settings, len(samples), timed_ns))
            last_report = now
    progress("measure", 1.0)
    return Timings(first_ns=first_ns, samples_ns=tuple(samples))
