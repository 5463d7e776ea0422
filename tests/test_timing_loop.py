"""The timing loop's rules, on a model whose latency is known (it sleeps)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from hilbench.agents.benchmark import HostClock, run_benchmark
from hilbench.agents.runners.base import TensorSpec
from hilbench.core.settings import BenchmarkSettings


class SleepingModel:
    """Each run takes ``seconds``; counts its runs."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.runs = 0

    @property
    def inputs(self) -> Sequence[TensorSpec]:
        return ()

    @property
    def default_dims(self) -> Mapping[str, int]:
        return {}

    @property
    def threads(self) -> int | None:
        return None

    def run(self, feeds: dict[str, Any]) -> None:
        self.runs += 1
        time.sleep(self.seconds)


def test_warm_up_lasts_both_its_count_and_its_time() -> None:
    model = SleepingModel(0.005)
    settings = BenchmarkSettings(warmup_runs=2, warmup_duration_s=0.1, min_runs=3,
                                 min_duration_s=0.0)
    phases: list[str] = []
    timings = run_benchmark(model, {}, settings, HostClock(), lambda p, f: phases.append(p))
    assert len(timings.samples_ns) == 3
    warm_up_runs = model.runs - 1 - 3
    assert 10 <= warm_up_runs <= 21  # about 100 ms of 5 ms runs, not just 2
    assert "warm-up" in phases and phases[-1] == "measure"
    assert timings.first_ns >= 5_000_000


def test_timed_runs_meet_both_minimums() -> None:
    model = SleepingModel(0.002)
    settings = BenchmarkSettings(warmup_runs=0, warmup_duration_s=0.0, min_runs=5,
                                 min_duration_s=0.05)
    timings = run_benchmark(model, {}, settings, HostClock(), lambda p, f: None)
    assert timings.timed_ns >= 50_000_000
    assert 10 <= len(timings.samples_ns) <= 26
    assert all(s >= 2_000_000 for s in timings.samples_ns)
