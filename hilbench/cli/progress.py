"""One Rich progress bar per device while a campaign runs."""

from __future__ import annotations

import threading

from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from hilbench.campaign.run import Job
from hilbench.cli.common import err
from hilbench.core.records import RUN_OK, RunRecord


class DeviceProgress:
    """A ``CampaignObserver`` drawing to stderr (stdout stays clean for --json)."""

    def __init__(self, jobs_per_device: dict[str, int]) -> None:
        self.progress = Progress(
            TextColumn("{task.fields[device]:<14}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        )
        self._done: dict[str, int] = {}
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {
            device: self.progress.add_task(device, total=float(jobs), device=device,
                                           status="waiting")
            for device, jobs in jobs_per_device.items()
        }

    def job_started(self, job: Job) -> None:
        self._update(job.device, 0.0, f"{_label(job)}: starting")

    def job_progress(self, job: Job, phase: str, fraction: float) -> None:
        self._update(job.device, fraction, f"{_label(job)}: {phase}")

    def job_finished(self, job: Job, run: RunRecord) -> None:
        with self._lock:
            self._done[job.device] = self._done.get(job.device, 0) + 1
        status = "done" if run.status == RUN_OK else "[red]failed[/]"
        self._update(job.device, 0.0, f"{_label(job)}: {status}")

    def _update(self, device: str, fraction: float, status: str) -> None:
        with self._lock:
            done = self._done.get(device, 0)
        self.progress.update(self._tasks[device], completed=done + fraction, status=status)


def _label(job: Job) -> str:
    if not job.dvfs_pin:
        return job.model.name
    levels = ",".join(f"{khz / 1000:.0f}MHz" for khz in job.dvfs_pin.values())
    return f"{job.model.name} @ {levels}"
