"""Campaigns: devices in parallel, a failing device does not stop the others, and the local
device never shares this CPU with emulated jobs."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from hilbench.campaign.run import Campaign, Job
from hilbench.core.records import RUN_FAILED, RUN_OK, DeviceRecord, ModelRecord, RunRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.devices.device import Device, LocalFiles, open_device, ssh_transport
from hilbench.devices.registry import new_device_record
from hilbench.profiles import Store
from tests import modelfiles

SETTINGS = BenchmarkSettings(warmup_runs=1, min_runs=10, min_duration_s=0.1)


@pytest.fixture
def model(tmp_path: Path) -> ModelRecord:
    return ModelRecord.from_file(modelfiles.mlp(tmp_path / "mlp.onnx", width=256, layers=4))


class Recorder:
    """Observer that notes which devices were timing inferences at the same time."""

    def __init__(self) -> None:
        self.measuring: set[str] = set()
        self.overlaps: set[frozenset[str]] = set()
        self.finished: list[RunRecord] = []
        self._lock = threading.Lock()

    def job_started(self, job: Job) -> None:
        pass

    def job_progress(self, job: Job, phase: str, fraction: float) -> None:
        with self._lock:
            if phase in ("load", "warm-up") or fraction < 1.0:
                self.measuring.add(job.device)
            else:
                self.measuring.discard(job.device)
            self.overlaps.add(frozenset(self.measuring))

    def job_finished(self, job: Job, run: RunRecord) -> None:
        with self._lock:
            self.finished.append(run)


def test_a_device_that_fails_does_not_stop_the_others(tmp_path: Path, model: ModelRecord) -> None:
    records = [new_device_record("phone", "emulated", "phone"),
               new_device_record("broken", "emulated", "jetson")]

    def connect(record: DeviceRecord, workdir: Path) -> Device:
        device = open_device(record, workdir)
        if record.name == "broken":
            return replace(device, files=LocalFiles(python=str(tmp_path / "no-python")))
        return device

    with Store.open(f"sqlite:///{tmp_path}/s.db") as store:
        result = Campaign(store, records, [model], SETTINGS, connect=connect).run()
        stored = store.runs()
    statuses = {run.device: run.status for run in result.runs}
    assert statuses == {"phone": RUN_OK, "broken": RUN_FAILED}
    failed = result.failed[0]
    assert failed.error is not None and "cannot start" in failed.error
    assert sorted(stored["status"]) == ["failed", "ok"]


def test_local_device_runs_alone_emulated_devices_together(
    tmp_path: Path, model: ModelRecord
) -> None:
    records = [new_device_record("local", "local"),
               new_device_record("phone", "emulated", "phone"),
               new_device_record("fpga", "emulated", "fpga")]
    recorder = Recorder()
    with Store.open(f"sqlite:///{tmp_path}/s.db") as store:
        Campaign(store, records, [model, model], SETTINGS, observer=recorder).run()
    assert len(recorder.finished) == 6
    assert frozenset({"phone", "fpga"}) in recorder.overlaps
    assert not any("local" in overlap and len(overlap) > 1 for overlap in recorder.overlaps)


def test_a_device_that_cannot_be_opened_fails_alone(tmp_path: Path, model: ModelRecord) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("not really a key")
    ssh = new_device_record("ssh-dev", "ssh", transport=ssh_transport("me@10.0.0.7", str(key)))
    key.unlink()  # the key file is gone by the time of the run
    records = [ssh, new_device_record("phone", "emulated", "phone")]
    with Store.open(f"sqlite:///{tmp_path}/s.db") as store:
        result = Campaign(store, records, [model], SETTINGS).run()
    runs = {run.device: run for run in result.runs}
    assert runs["phone"].status == RUN_OK
    assert runs["ssh-dev"].status == RUN_FAILED
    assert runs["ssh-dev"].error == f"ssh-dev: cannot open it: SSH key not found: {key}"
