"""Devices served by pulling agents: a job goes into the coordinator's queue (the store),
an agent leases and runs it, and the campaign waits for the result to be stored."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from hilbench.agents.benchmark import ProgressCallback
from hilbench.core.errors import AgentError, TransportError
from hilbench.core.measurement import Measurement
from hilbench.core.records import DeviceRecord, ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.profiles.jobs import DONE, FAILED, LEASED, JobQueue
from hilbench.profiles.store import Store

POLL_S = 0.2
QUEUE_WAIT_S = 600.0


@dataclass
class QueuedDevice:
    """Runs jobs through the coordinator's queue. ``queue_wait_s``: how long a job may
    wait for an agent before the run gives up on it."""

    record: DeviceRecord
    store: Store
    campaign_id: str | None = None
    queue_wait_s: float = QUEUE_WAIT_S
    exclusive_host_cpu: bool = False
    _cancelled: threading.Event = field(default_factory=threading.Event)
    _current: str | None = None

    @property
    def name(self) -> str:
        return self.record.name

    def run_model(self, job_id: str, model: ModelRecord, settings: BenchmarkSettings,
                  progress: ProgressCallback, dvfs_pin: dict[str, int] | None = None
                  ) -> Measurement:
        queue = JobQueue(self.store)
        queue.enqueue(job_id, self.campaign_id, self.name, model, settings, dvfs_pin)
        self._current = job_id
        deadline = time.monotonic() + self.queue_wait_s + settings.max_duration_s
        progress("queued", 0.0)
        while not self._cancelled.is_set():
            state = queue.state(job_id)
            if state.status == DONE:
                return self.store.measurement(job_id)
            if state.status == FAILED:
                raise AgentError(state.error or f"{self.name}: job failed on the agent")
            if state.status == LEASED:
                progress("running on agent", 0.5)
            if time.monotonic() > deadline:
                raise TransportError(
                    f"{self.name}: no agent finished the job within {self.queue_wait_s:g} s "
                    "of queueing (is `bench agent` running for this device?)"
                )
            time.sleep(POLL_S)
        raise TransportError(f"{self.name}: the run was cancelled")

    def cancel(self) -> None:
        """Stop waiting, and take the job out of the queue so that no agent runs it."""
        self._cancelled.set()
        if self._current is not None:
            JobQueue(self.store).cancel(self._current)

    def close(self) -> None:
        """Nothing held open."""
