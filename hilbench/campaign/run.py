"""Run every model on every chosen device: devices in parallel, one job at a time per
device, each result stored as soon as it arrives."""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hilbench.agents.benchmark import ProgressCallback
from hilbench.campaign.dvfs import DvfsRequest, Pin, plan
from hilbench.campaign.queue import QueuedDevice
from hilbench.campaign.retry import NO_RETRIES, RetryPolicy, final_error
from hilbench.campaign.rwlock import HostCpuLock
from hilbench.core.errors import HilbenchError, StoreError, TransportError
from hilbench.core.measurement import Measurement
from hilbench.core.records import RUN_FAILED, RUN_OK, DeviceRecord, ModelRecord, RunRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.devices.device import open_device
from hilbench.profiles.store import Store


class Target(Protocol):
    """Where jobs run: a device reached through its transport, or a coordinator queue."""

    @property
    def name(self) -> str: ...

    @property
    def exclusive_host_cpu(self) -> bool: ...

    def run_model(self, job_id: str, model: ModelRecord, settings: BenchmarkSettings,
                  progress: ProgressCallback, dvfs_pin: Pin | None = None) -> Measurement: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


DeviceOpener = Callable[[DeviceRecord, Path], Target]


@dataclass(frozen=True)
class Unreachable:
    """A device that could not even be opened (a key file gone, a bad stored setting): each
    of its jobs fails with why, and the other devices run as usual."""

    name: str
    reason: str
    exclusive_host_cpu: bool = False

    def run_model(self, job_id: str, model: ModelRecord, settings: BenchmarkSettings,
                  progress: ProgressCallback, dvfs_pin: Pin | None = None) -> Measurement:
        raise TransportError(self.reason)

    def cancel(self) -> None:
        """Nothing runs."""

    def close(self) -> None:
        """Nothing is open."""


@dataclass(frozen=True)
class Job:
    """One model on one device, at one DVFS level when ``dvfs_pin`` is set."""

    job_id: str
    device: str
    model: ModelRecord
    dvfs_pin: Pin | None = None


class CampaignObserver(Protocol):
    """Told what happens, e.g. to draw one progress bar per device."""

    def job_started(self, job: Job) -> None: ...

    def job_progress(self, job: Job, phase: str, fraction: float) -> None: ...

    def job_finished(self, job: Job, run: RunRecord) -> None: ...


class SilentObserver:
    def job_started(self, job: Job) -> None:
        pass

    def job_progress(self, job: Job, phase: str, fraction: float) -> None:
        pass

    def job_finished(self, job: Job, run: RunRecord) -> None:
        pass


@dataclass(frozen=True)
class CampaignResult:
    campaign_id: str
    runs: tuple[RunRecord, ...]

    @property
    def failed(self) -> tuple[RunRecord, ...]:
        return tuple(r for r in self.runs if r.status != RUN_OK)


class Campaign:
    """Models x devices with one set of settings. A job that fails on its device's
    transport is run again as ``retry`` allows (the queue of a coordinator re-runs its own
    jobs; a device that could not be opened is not retried). A result the store cannot
    take stops the campaign: ``StoreError``, earlier results stay stored."""

    def __init__(
        self,
        store: Store,
        devices: Sequence[DeviceRecord],
        models: Sequence[ModelRecord],
        settings: BenchmarkSettings,
        observer: CampaignObserver | None = None,
        connect: DeviceOpener | None = None,
        dvfs: DvfsRequest | None = None,
        retry: RetryPolicy = NO_RETRIES,
    ) -> None:
        self._store = store
        self._retry = retry
        self._devices = list(devices)
        self._models = list(models)
        self._settings = settings
        self._observer = observer or SilentObserver()
        self._connect = connect or self._open
        self._plans = {record.name: plan(dvfs, record) for record in self._devices}
        self._host_cpu = HostCpuLock()
        self._store_lock = threading.Lock()
        self._cancelled = threading.Event()
        self.campaign_id = uuid.uuid4().hex

    def _open(self, record: DeviceRecord, workdir: Path) -> Target:
        if record.kind == "agent":
            return QueuedDevice(record, self._store, self.campaign_id)
        return open_device(record, workdir)

    def _open_or_unreachable(self, record: DeviceRecord, workdir: Path) -> Target:
        try:
            return self._connect(record, workdir)
        except HilbenchError as exc:
            return Unreachable(record.name, f"{record.name}: cannot open it: {exc}")

    def jobs_for(self, device: str) -> list[Job]:
        """Each model at each DVFS level the plan gives the device."""
        return [Job(uuid.uuid4().hex, device, model, pin)
                for model in self._models for pin in self._plans.get(device, [None])]

    def run(self) -> CampaignResult:
        """Run every job. On Ctrl-C: stop the jobs still running on every device, store
        nothing of them (finished jobs stay stored), and re-raise."""
        with tempfile.TemporaryDirectory(prefix="hilbench-") as workdir:
            devices = [self._open_or_unreachable(r, Path(workdir)) for r in self._devices]
            try:
                runs = self._run_all(devices)
            finally:
                for device in devices:
                    device.close()
        return CampaignResult(self.campaign_id, tuple(runs))

    def _run_all(self, devices: list[Target]) -> list[RunRecord]:
        with ThreadPoolExecutor(max_workers=len(devices) or 1) as pool:
            futures = [pool.submit(self._run_device, device) for device in devices]
            try:
                _raise_first_failure(futures)
            except (KeyboardInterrupt, StoreError):
                self._stop(devices)
                raise
            return [run for future in futures for run in future.result()]

    def _stop(self, devices: list[Target]) -> None:
        self._cancelled.set()
        for device in devices:
            device.cancel()

    def _run_device(self, device: Target) -> list[RunRecord]:
        runs = []
        for job in self.jobs_for(device.name):
            if self._cancelled.is_set():
                break
            self._observer.job_started(job)
            run = self._run_with_retries(device, job)
            with self._store_lock:
                if self._cancelled.is_set():
                    break
                self._save(run)
            self._observer.job_finished(job, run)
            runs.append(run)
        return runs

    def _save(self, run: RunRecord) -> None:
        try:
            self._store.save_run(run)
        except StoreError as exc:
            self._cancelled.set()  # the other devices stop before their next result
            raise StoreError(
                f"cannot store the run of {run.model.name} on {run.device}: {exc}; the "
                "campaign was stopped (runs stored before it are kept)"
            ) from exc

    def _run_with_retries(self, device: Target, job: Job) -> RunRecord:
        started = time.time()
        errors: list[HilbenchError] = []
        while True:
            with self._host_cpu.hold(device.exclusive_host_cpu):
                outcome = self._attempt(device, job)
            if isinstance(outcome, Measurement):
                return self._record(job, started, measurement=outcome, attempts=len(errors) + 1)
            errors.append(outcome)
            if not self._may_retry(device, job, errors):
                return self._record(job, started, error=final_error(errors),
                                    attempts=len(errors))

    def _attempt(self, device: Target, job: Job) -> Measurement | HilbenchError:
        def progress(phase: str, fraction: float) -> None:
            self._observer.job_progress(job, phase, fraction)

        try:
            return device.run_model(job.job_id, job.model, self._settings, progress,
                                    job.dvfs_pin)
        except HilbenchError as exc:
            return exc

    def _may_retry(self, device: Target, job: Job, errors: list[HilbenchError]) -> bool:
        """Wait before the next attempt when one is allowed; False when none is."""
        if isinstance(device, (QueuedDevice, Unreachable)) or self._cancelled.is_set():
            return False
        if not self._retry.allows(len(errors), errors[-1]):
            return False
        delay = self._retry.delay_s(len(errors))
        self._observer.job_progress(job, f"transport failed, retry {len(errors)} in {delay:g} s",
                                    0.0)
        return not self._cancelled.wait(delay)

    def _record(
        self,
        job: Job,
        started: float,
        measurement: Measurement | None = None,
        error: str | None = None,
        attempts: int = 1,
    ) -> RunRecord:
        return RunRecord(
            run_id=job.job_id,
            device=job.device,
            model=job.model,
            settings=self._settings,
            status=RUN_OK if error is None else RUN_FAILED,
            started_at=started,
            finished_at=time.time(),
            measurement=measurement,
            error=error,
            campaign_id=self.campaign_id,
            attempts=attempts,
        )


def _raise_first_failure(futures: list[Future[list[RunRecord]]]) -> None:
    """Wait for every device; raise the first error one of them raised, as soon as it does."""
    done, _ = wait(futures, return_when=FIRST_EXCEPTION)
    for future in done:
        error = future.exception()
        if error is not None:
            raise error
