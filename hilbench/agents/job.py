"""Run one job on this device and build its Measurement."""

from __future__ import annotations

import contextlib
import hashlib
import platform
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from hilbench.agents import AGENT_VERSION
from hilbench.agents.benchmark import Clock, HostClock, ProgressCallback, Timings, run_benchmark
from hilbench.agents.cooldown import cool_down
from hilbench.agents.dvfs_control import FrequencyPin
from hilbench.agents.emulated_board import EmulatedBoard, parse_power_model
from hilbench.agents.emulation import (
    EMULATED_FIGURES,
    EmulatedClock,
    SpeedModel,
    parse_speed_model,
)
from hilbench.agents.inputs import input_shapes, make_feeds
from hilbench.agents.jetson import BoardPowerPin, split_pin
from hilbench.agents.metering import ENERGY_FIGURES, Meter, Metered
from hilbench.agents.protocol import JobSpec
from hilbench.agents.runners import runner_for
from hilbench.agents.runners.base import LoadedModel
from hilbench.agents.sysfs import read_dvfs
from hilbench.core.dvfs import DvfsState
from hilbench.core.errors import ModelError
from hilbench.core.measurement import Environment, Measurement

NS_PER_MS = 1e6
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


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


@contextlib.contextmanager
def _board(job: JobSpec, speed: SpeedModel | None, dvfs: DvfsState,
           threads: int | None) -> Iterator[EmulatedBoard | None]:
    """An emulated device's power and thermal model, running for the job's length."""
    model = parse_power_model((job.emulation or {}).get("power"))
    if speed is None or model is None:
        yield None
        return
    root = Path(job.sysfs_root)
    domain = speed.cluster(dvfs)
    policy = root / "sys/devices/system/cpu/cpufreq" / f"policy{domain.cpus[0]}"
    board = EmulatedBoard(model, speed, root, domain.available_khz, policy,
                          active_fraction=min(1.0, (threads or 1) / len(domain.cpus)))
    board.start()
    try:
        yield board
    finally:
        board.stop()


def _clock(speed: SpeedModel | None, dvfs: DvfsState, device_threads: int | None,
           board: EmulatedBoard | None) -> Clock:
    if speed is None:
        return HostClock()
    threads = device_threads or 1
    if board is None:
        fixed = speed.scale(dvfs, threads)
        return EmulatedClock(speed, lambda: fixed)
    return EmulatedClock(speed, lambda: speed.scale(dvfs, threads, board.current_khz()),
                         on_busy=board.add_busy)


def execute(job: JobSpec, progress: ProgressCallback) -> Measurement:
    """Set the power mode and pin the DVFS levels asked for (all restored whatever
    happens, in the reverse order), then measure."""
    root = Path(job.sysfs_root)
    levels, power_mode, max_clocks = split_pin(job.dvfs_pin or {})
    with BoardPowerPin(root, power_mode, max_clocks) as board, \
            FrequencyPin(root, levels) as pin:
        measurement = _measure(job, progress)
    notes = tuple(board.notes + pin.notes)
    return _with_notes(measurement, notes) if notes else measurement


def _with_notes(measurement: Measurement, notes: tuple[str, ...]) -> Measurement:
    return replace(measurement, notes=measurement.notes + notes)


def _measure(job: JobSpec, progress: ProgressCallback) -> Measurement:
    started = time.time()
    path = Path(job.model_path)
    runner = runner_for(path)
    _check_model(path, job.model_sha256)
    root = Path(job.sysfs_root)
    dvfs = read_dvfs(root)
    speed = parse_speed_model(job.emulation)
    device_threads, host_threads = _threads(job, speed, dvfs)
    settings = job.settings
    with _board(job, speed, dvfs, device_threads) as board:
        meter = Meter(root, settings.sample_interval_s, settings.idle_power_s,
                      job.power_command, job.execution_provider in GPU_PROVIDERS).start()
        cooling = cool_down(root, settings, progress)
        meter.measure_idle()
        clock = _clock(speed, dvfs, device_threads, board)
        progress("load", 0.0)
        model, init_ns = clock.time_call(
            lambda: runner.load(path, host_threads, job.execution_provider), pace=False
        )
        feeds = make_feeds(model.inputs, settings, model.default_dims)
        timings = run_benchmark(model, feeds, settings, clock, progress)
        metered = meter.finish(meter.window(timings.window_start_s, timings.window_end_s),
                               len(timings.samples_ns))
    return _measurement(job, runner.name, runner.version(), model, feeds, timings, metered,
                        device_threads, speed, init_ns, started, cooling)


def _measurement(job: JobSpec, runtime: str, version: str, model: LoadedModel,
                 feeds: dict[str, object], timings: Timings, metered: Metered,
                 device_threads: int | None, speed: SpeedModel | None, init_ns: int,
                 started: float, cooling: tuple[str, ...]) -> Measurement:
    environment = Environment(
        device=job.device,
        device_kind=job.device_kind,
        runtime=runtime,
        runtime_version=version,
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
    missing: tuple[str, ...] = () if memory is not None else ("peak_memory_mb",)
    if metered.energy is None:
        missing += ENERGY_FIGURES
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
        unavailable_figures=missing,
        telemetry=metered.telemetry,
        energy=metered.energy,
        notes=cooling + metered.notes,
    )
