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
    """``window_*``: when the timed runs began and ended, on ``time.perf_counter``."""

    first_ns: int
    samples_ns: tuple[int, ...]
    window_start_s: float = 0.0
    window_end_s: float = 0.0

    @property
    def timed_ns(self) -> int:
        return sum(self.samples_ns)


def _time_one(model: LoadedModel, feeds: dict[str, Any], clock: Clock) -> int:
    return clock.time_call(lambda: model.run(feeds))[1]


def _fraction(runs: int, wanted_runs: int, elapsed_ns: int, wanted_s: float) -> float:
    """How far towards both minimums (count AND time) a loop is, in [0, 1]."""
    by_runs = runs / wanted_runs if wanted_runs > 0 else 1.0
    by_time = elapsed_ns / (wanted_s * 1e9) if wanted_s > 0 else 1.0
    return min(1.0, by_runs, by_time)


class _Throttled:
    """Reports progress at most every PROGRESS_INTERVAL_NS: each report wakes the host."""

    def __init__(self, progress: ProgressCallback, phase: str) -> None:
        self._progress = progress
        self._phase = phase
        self._last = time.perf_counter_ns()

    def __call__(self, fraction: float) -> None:
        now = time.perf_counter_ns()
        if now - self._last >= PROGRESS_INTERVAL_NS:
            self._progress(self._phase, fraction)
            self._last = now


def _warm_up(
    model: LoadedModel,
    feeds: dict[str, Any],
    settings: BenchmarkSettings,
    clock: Clock,
    progress: ProgressCallback,
) -> None:
    """Discard runs until both ``warmup_runs`` and ``warmup_duration_s`` are reached."""
    runs, elapsed_ns = 0, 0
    max_ns = settings.max_duration_s * 1e9
    report = _Throttled(progress, "warm-up")
    while elapsed_ns < max_ns:
        done = _fraction(runs, settings.warmup_runs, elapsed_ns, settings.warmup_duration_s)
        if done >= 1.0:
            break
        elapsed_ns += _time_one(model, feeds, clock)
        runs += 1
        report(done)


def run_benchmark(
    model: LoadedModel,
    feeds: dict[str, Any],
    settings: BenchmarkSettings,
    clock: Clock,
    progress: ProgressCallback,
) -> Timings:
    """Time the first inference alone, discard warm-up runs (at least ``warmup_runs`` and
    ``warmup_duration_s``), then time runs until ``min_runs`` AND ``min_duration_s`` are
    reached, or ``max_runs`` / ``max_duration_s``."""
    first_ns = _time_one(model, feeds, clock)
    _warm_up(model, feeds, settings, clock, progress)
    samples: list[int] = []
    timed_ns = 0
    min_ns = settings.min_duration_s * 1e9
    max_ns = settings.max_duration_s * 1e9
    report = _Throttled(progress, "measure")
    window_start = time.perf_counter()
    while len(samples) < settings.max_runs and timed_ns < max_ns:
        if len(samples) >= settings.min_runs and timed_ns >= min_ns:
            break
        latency = _time_one(model, feeds, clock)
        samples.append(latency)
        timed_ns += latency
        report(_fraction(len(samples), settings.min_runs, timed_ns, settings.min_duration_s))
    window_end = time.perf_counter()
    progress("measure", 1.0)
    return Timings(first_ns, tuple(samples), window_start, window_end)
