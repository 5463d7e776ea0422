"""Run one job on this device and build its Measurement."""

from __future__ import annotations

import hashlib
import platform
import socket
import sys
import time
from pathlib import Path

from hilbench.agents import AGENT_VERSION
from hilbench.agents.benchmark import Clock, HostClock, ProgressCallback, run_benchmark
from hilbench.agents.emulation import (
    EMULATED_FIGURES,
    EmulatedClock,
    SpeedModel,
    parse_speed_model,
)
from hilbench.agents.inputs import input_shapes, make_feeds
from hilbench.agents.protocol import JobSpec
from hilbench.agents.runners import runner_for
from hilbench.agents.sysfs import read_dvfs
from hilbench.core.dvfs import DvfsState
from hilbench.core.errors import ModelError
from hilbench.core.measurement import Environment, Measurement

NS_PER_MS = 1e6


def peak_memory_mb() -> float | None:
    """Peak resident memory of this process, or None where the OS does not say."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _check_model(path: Path, expected_sha256: str) -> None:
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ModelError(f"cannot read model {path}: {exc.strerror or exc}") from exc
    if digest != expected_sha256:
        raise ModelError(f"model {path.name} changed: sha256 {digest[:12]}, job expects "
                         f"{expected_sha256[:12]}")


def _threads(job: JobSpec, speed: SpeedModel | None, dvfs: DvfsState) -> tuple[
    int | None, int | None
]:
    """(threads on the device, threads on this machine's runtime)."""
    if speed is None:
        return job.settings.threads, job.settings.threads
    return job.settings.threads or speed.default_threads(dvfs), 1


def _clock(speed: SpeedModel | None, dvfs: DvfsState, device_threads: int | None) -> Clock:
    if speed is None:
        return HostClock()
    return EmulatedClock(speed, speed.scale(dvfs, device_threads or 1))


def execute(job: JobSpec, progress: ProgressCallback) -> Measurement:
    """Load the model, generate inputs, time it, and describe the environment."""
    started = time.time()
    path = Path(job.model_path)
    runner = runner_for(path)
    _check_model(path, job.model_sha256)
    dvfs = read_dvfs(Path(job.sysfs_root))
    speed = parse_speed_model(job.emulation)
    device_threads, host_threads = _threads(job, speed, dvfs)
    clock = _clock(speed, dvfs, device_threads)
    progress("load", 0.0)
    model, init_ns = clock.time_call(
        lambda: runner.load(path, host_threads, job.execution_provider), pace=False
    )
    feeds = make_feeds(model.inputs, job.settings, model.default_dims)
    timings = run_benchmark(model, feeds, job.settings, clock, progress)
    environment = Environment(
        device=job.device,
        device_kind=job.device_kind,
        runtime=runner.name,
        runtime_version=runner.version(),
        execution_provider=job.execution_provider,
        model_sha256=job.model_sha256,
        threads=device_threads,
        input_shapes=tuple(input_shapes(feeds).items()),
        dvfs=read_dvfs(Path(job.sysfs_root)),
        agent_version=AGENT_VERSION,
        python_version=platform.python_version(),
        platform=platform.platform(),
        hostname=socket.gethostname(),
        emulation=speed.preset if speed else None,
    )
    memory = peak_memory_mb()
    return Measurement(
        environment=environment,
        settings=job.settings,
        samples_ns=timings.samples_ns,
        timed_duration_s=timings.timed_ns / 1e9,
        init_ms=init_ns / NS_PER_MS,
        first_inference_ms=timings.first_ns / NS_PER_MS,
        peak_memory_mb=memory,
        started_at=started,
        finished_at=time.time(),
        emulated_figures=EMULATED_FIGURES if speed else (),
        unavailable_figures=() if memory is not None else ("peak_memory_mb",),
    )
