"""The speed model of an emulated device.

An emulated device runs the real model on the host's CPU (one host thread) and turns the
CPU time each inference took on this machine into the device's latency:

    device = host_cpu * slowdown * ((1 - m) * f_max / f_cur + m) / amdahl(threads) * noise

where ``f_cur`` and ``f_max`` are read from the device's (emulated) sysfs like on a real
device, ``m`` is the memory-bound fraction (time that does not scale with frequency),
``amdahl(n) = 1 / ((1 - p) + p / n)`` for the parallel fraction ``p`` over at most the
cluster's cores, and ``noise`` is seeded log-normal jitter. The job then sleeps for the
difference, so an emulated device is busy for as long as the real one would be.

CPU time (not wall time) is what gets scaled: several emulated devices share this machine's
cores, and time spent waiting for a core belongs to none of them. It is the CPU time of the
thread that runs the inference (one host thread): the job's sampler and the emulated board's
power model run on threads of their own, and their time is not the model's."""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, TypeVar

from hilbench.core.dvfs import DomainState, DvfsState
from hilbench.core.errors import AgentError
from hilbench.core.fields import FieldError, get_float, get_int, get_str

T = TypeVar("T")

PACE_CHUNK_NS = 10_000_000  # 10 ms
EMULATED_FIGURES = ("latency", "init_ms", "first_inference_ms", "peak_memory_mb",
                    "energy_per_inference_mj", "avg_power_w")


@dataclass(frozen=True)
class SpeedModel:
    """How much slower than one host core the device's cluster is, and how it scales."""

    preset: str
    cluster_cpu: int
    slowdown: float
    parallel_fraction: float
    memory_bound_fraction: float
    noise_sigma: float
    seed: int
    # The share of the dense model's time the device really spends on this model (below 1
    # where an accelerator skips the zero blocks of a sparse variant).
    time_fraction: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpeedModel:
        return cls(
            preset=get_str(data, "preset"),
            cluster_cpu=get_int(data, "cluster_cpu"),
            slowdown=get_float(data, "slowdown"),
            parallel_fraction=get_float(data, "parallel_fraction"),
            memory_bound_fraction=get_float(data, "memory_bound_fraction"),
            noise_sigma=get_float(data, "noise_sigma"),
            seed=get_int(data, "seed"),
            time_fraction=get_float(data, "time_fraction") if "time_fraction" in data else 1.0,
        )

    def cluster(self, dvfs: DvfsState) -> DomainState:
        for domain in dvfs.domains:
            if self.cluster_cpu in domain.cpus:
                return domain
        raise AgentError(
            f"emulated device {self.preset}: no cpufreq domain holds cpu{self.cluster_cpu}"
        )

    def default_threads(self, dvfs: DvfsState) -> int:
        return max(1, len(self.cluster(dvfs).cpus))

    def scale(self, dvfs: DvfsState, threads: int, cur_khz: int | None = None) -> float:
        """Device time / host single-thread time at the current frequency (``cur_khz``, else
        what the cluster's sysfs said), without noise."""
        domain = self.cluster(dvfs)
        cur = cur_khz or domain.cur_khz or domain.max_khz
        top = max(domain.available_khz) if domain.available_khz else domain.max_khz
        if not cur or not top:
            raise AgentError(f"emulated device {self.preset}: cluster has no frequency")
        frequency_factor = (1.0 - self.memory_bound_fraction) * top / cur
        frequency_factor += self.memory_bound_fraction
        cores = min(threads, max(1, len(domain.cpus)))
        p = self.parallel_fraction
        amdahl = 1.0 / ((1.0 - p) + p / cores)
        return self.slowdown * frequency_factor / amdahl * self.time_fraction


class EmulatedClock:
    """Times a call by this process's CPU time, scales it to the device and paces the job.
    ``scale`` is asked at every call (the frequency may change under it: throttling);
    ``on_busy`` is told how long the device computed. A call with ``pace=False`` is not an
    inference (loading the model): it is not paced, and an accelerator does not speed it up.

    Pacing sleeps once the device is ``PACE_CHUNK_NS`` ahead of this machine, not after every
    call: a thread that sleeps between every two inferences finds its caches cold and takes
    up to 3x the CPU time for the next one (seen on this project's VMs), which would make a
    slow emulated device slower still than its model says. The job's wall time stays the
    device's time to within one chunk."""

    def __init__(self, model: SpeedModel, scale: Callable[[], float],
                 on_busy: Callable[[float], None] | None = None) -> None:
        self._scale = scale
        self._on_busy = on_busy
        self._sigma = model.noise_sigma
        self._rng = random.Random(model.seed)
        self._time_fraction = model.time_fraction
        self._ahead_ns = 0  # device time not yet spent asleep

    def time_call(self, call: Callable[[], T], pace: bool = True) -> tuple[T, int]:
        wall_start = time.perf_counter_ns()
        cpu_start = time.thread_time_ns()
        result = call()
        cpu_ns = time.thread_time_ns() - cpu_start
        noise = math.exp(self._rng.gauss(0.0, self._sigma)) if self._sigma > 0 else 1.0
        scale = self._scale() if pace else self._scale() / self._time_fraction
        device_ns = int(cpu_ns * scale * noise)
        wall_ns = time.perf_counter_ns() - wall_start
        if pace:  # where this machine is slower than the device, nothing is owed
            self._ahead_ns = max(0, self._ahead_ns + device_ns - wall_ns)
            if self._ahead_ns >= PACE_CHUNK_NS:
                time.sleep(self._ahead_ns / 1e9)
                self._ahead_ns = 0
        if pace and self._on_busy is not None:
            self._on_busy(device_ns / 1e9)  # where this machine is slower, the device idles
        return result, device_ns


def parse_speed_model(data: Mapping[str, Any] | None) -> SpeedModel | None:
    if data is None:
        return None
    try:
        return SpeedModel.from_dict(data)
    except FieldError as exc:
        raise AgentError(f"malformed emulation spec in job: {exc}") from exc
