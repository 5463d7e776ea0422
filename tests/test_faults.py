"""Faults, for real: an sshd killed mid-job (and one that comes back), an adb device
unplugged mid-job (and one plugged back), the coordinator killed and restarted mid-campaign,
PostgreSQL restarted while agents upload results, a read-only store and a full disk."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from hilbench.agents.coordinator import AgentConfig, PullingAgent
from hilbench.agents.protocol import JobSpec, ok_result
from hilbench.campaign.queue import QueuedDevice
from hilbench.campaign.retry import RetryPolicy
from hilbench.campaign.run import Campaign, CampaignResult
from hilbench.cli.results import retry_lines
from hilbench.core.errors import (
    CommandTimeoutError,
    HilbenchError,
    ModelError,
    StoreError,
    TransportError,
)
from hilbench.core.measurement import Measurement
from hilbench.core.records import DeviceRecord, ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.devices.device import adb_transport, ssh_transport
from hilbench.devices.registry import new_device_record
from hilbench.profiles import Store
from hilbench.profiles.jobs import DONE, LEASED, JobQueue
from hilbench.profiles.schema import jobs
from tests import factories, modelfiles
from tests.adblab import AdbLab, _wait_for
from tests.cli import in_process, one_line_error
from tests.faults import (
    Saboteur,
    file_size_limit,
    fill,
    kill_tree,
    remount,
    tmpfs,
    wait_for_job,
)
from tests.sshd import configure_sshd, start_sshd
from tests.test_coordinator import SECRET, Lab

QUICK = ("--min-runs", "10", "--warmup", "2", "--warmup-time", "0s")
FAST_RETRIES = ("--retries", "2", "--retry-backoff", "0.5s")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return modelfiles.mlp(tmp_path_factory.mktemp("models") / "mlp.onnx", width=64, layers=2)


def _bench(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
           *args: str) -> subprocess.CompletedProcess[str]:
    return in_process(capsys, monkeypatch, {}, *args)


def _rows(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    return {row["device"]: row for row in json.loads(result.stdout)}


def _stored(store: str) -> dict[str, list[str]]:
    with Store.open(store) as opened:
        frame = opened.runs()
    found: dict[str, list[str]] = {}
    for device, status in zip(frame["device"], frame["status"], strict=True):
        found.setdefault(device, []).append(status)
    return found


# ---- SSH and ADB: a device's transport fails mid-job, the others finish --------------------


def test_an_sshd_killed_mid_job_fails_after_its_retries_one_back_in_time_succeeds(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gone, back = configure_sshd(_folder(tmp_path, "gone")), configure_sshd(_folder(tmp_path, "b"))
    servers = {"ssh-gone": start_sshd(gone), "ssh-back": start_sshd(back)}
    store = f"sqlite:///{tmp_path}/profiles.db"
    with Store.open(store) as opened:
        opened.add_device(new_device_record("phone", "emulated", "phone"))
        for name, server in (("ssh-gone", gone), ("ssh-back", back)):
            transport = ssh_transport(server.target, str(server.key), sys.executable,
                                      str(server.known_hosts), str(tmp_path / name))
            opened.add_device(new_device_record(name, "ssh", transport=transport))

    def come_back() -> None:
        kill_tree(servers["ssh-back"])
        servers["ssh-back"] = start_sshd(back)  # before the first retry, 0.5 s later

    saboteurs = [Saboteur(servers["ssh-gone"], lambda: kill_tree(servers["ssh-gone"])),
                 Saboteur(servers["ssh-back"], come_back)]
    try:
        result = _bench(capsys, monkeypatch, "run", "-m", str(model), "-d",
                        "phone,ssh-gone,ssh-back", *QUICK, "--min-time", "1s", *FAST_RETRIES,
                        "--json", "--store", store)
        for saboteur in saboteurs:
            saboteur.join()
    finally:
        for process in servers.values():
            kill_tree(process)
    assert result.returncode == 1, result.stderr
    rows = _rows(result)
    assert (rows["phone"]["status"], rows["phone"]["attempts"]) == ("ok", 1)
    assert rows["ssh-back"]["status"] == "ok", rows["ssh-back"]["error"]
    assert rows["ssh-back"]["attempts"] in (2, 3)  # 3 when it took over 0.5 s to come back
    failed = rows["ssh-gone"]
    assert (failed["status"], failed["attempts"]) == ("failed", 3)
    error = str(failed["error"])
    assert error.startswith(f"{gone.target}: connection lost mid-command"), error
    assert f"(3 attempts, the last: {gone.target}: cannot connect: " in error
    assert "\n" not in error
    assert _stored(store) == {"phone": ["ok"], "ssh-gone": ["failed"], "ssh-back": ["ok"]}
    assert sorted(retry_lines(json.loads(result.stdout))) == [
        f"retried (ssh-back): {model.stem} took {rows['ssh-back']['attempts']} attempts, then ran",
        f"retried (ssh-gone): {model.stem} took 3 attempts, all failed",
    ]


@dataclass
class Flaky:
    """A device whose first ``failures`` attempts raise ``error``, then measure."""

    name: str
    error: HilbenchError
    failures: int = 99
    exclusive_host_cpu: bool = False
    calls: int = 0

    def run_model(self, job_id: str, model: ModelRecord, settings: BenchmarkSettings,
                  progress: object, dvfs_pin: object = None) -> Measurement:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return factories.measurement(count=20, device=self.name)

    def cancel(self) -> None:
        """Nothing runs in the background."""

    def close(self) -> None:
        """Nothing is open."""


def test_only_transport_errors_are_retried_within_the_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    targets = {t.name: t for t in (
        Flaky("flaky", TransportError("flaky: connection lost"), failures=2),
        Flaky("down", TransportError("down: cannot connect: refused")),
        Flaky("broken-model", ModelError("model.onnx: not an ONNX model")),
        Flaky("hung", CommandTimeoutError("hung: agent did not finish within 60 s")),
    )}
    with Store.open(f"sqlite:///{tmp_path}/profiles.db") as store:
        records = [new_device_record(name, "emulated", "phone") for name in targets]
        for record in records:
            store.add_device(record)
        result = Campaign(store, records, [factories.MODEL], factories.SETTINGS,
                          connect=lambda record, _: targets[record.name],
                          retry=RetryPolicy(retries=2, backoff_s=0.0)).run()
    runs = {run.device: run for run in result.runs}
    assert {name: (run.status, run.attempts) for name, run in runs.items()} == {
        "flaky": ("ok", 3), "down": ("failed", 3), "broken-model": ("failed", 1),
        "hung": ("failed", 1)}
    assert runs["down"].error == "down: cannot connect: refused (3 attempts)"
    assert RetryPolicy(retries=3, backoff_s=0.5).delay_s(3) == 2.0
    bad = _bench(capsys, monkeypatch, "run", "-m", "x.onnx", "--retries", "-1", "--store",
                 f"sqlite:///{tmp_path}/profiles.db")
    assert one_line_error(bad) == "error: retries must be >= 0, got -1"


def _folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder


def _emulator(port: int, sandbox: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "hilbench.devices.adb_emulator",
                                "--port", str(port), "--sandbox", str(sandbox)])
    _wait_for(port)
    return process


def test_an_adb_device_unplugged_mid_job_fails_after_its_retries_one_plugged_back_succeeds(
    adb_lab: AdbLab, tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.ports import free_port

    port, sandbox = free_port(), tmp_path / "second-sandbox"
    emulators = {"adb-gone": adb_lab.emulator, "adb-back": _emulator(port, sandbox)}
    serials = {"adb-gone": (adb_lab.serial, adb_lab.sandbox),
               "adb-back": (f"127.0.0.1:{port}", sandbox)}
    store = f"sqlite:///{tmp_path}/profiles.db"
    with Store.open(store) as opened:
        opened.add_device(new_device_record("phone", "emulated", "phone"))
        for name, (serial, folder) in serials.items():
            transport = adb_transport(serial, adb_lab.server, sys.executable,
                                      str(folder / "data/local/tmp/hilbench"))
            opened.add_device(new_device_record(name, "adb", transport=transport))

    def plug_back() -> None:
        kill_tree(emulators["adb-back"])
        emulators["adb-back"] = _emulator(port, sandbox)

    saboteurs = [Saboteur(emulators["adb-gone"], lambda: kill_tree(emulators["adb-gone"])),
                 Saboteur(emulators["adb-back"], plug_back)]
    try:
        result = _bench(capsys, monkeypatch, "run", "-m", str(model), "-d",
                        "phone,adb-gone,adb-back", *QUICK, "--min-time", "1s", *FAST_RETRIES,
                        "--json", "--store", store)
        for saboteur in saboteurs:
            saboteur.join()
    finally:
        kill_tree(emulators["adb-back"])
    assert result.returncode == 1, result.stderr
    rows = _rows(result)
    assert (rows["phone"]["status"], rows["phone"]["attempts"]) == ("ok", 1)
    assert rows["adb-back"]["status"] == "ok", rows["adb-back"]["error"]
    assert rows["adb-back"]["attempts"] in (2, 3)  # 3 when it took over 0.5 s to come back
    failed = rows["adb-gone"]
    assert (failed["status"], failed["attempts"]) == ("failed", 3)
    error = str(failed["error"])
    assert error.startswith(f"{adb_lab.serial}: device lost"), error
    assert "(3 attempts, the last: " in error and "\n" not in error
    assert _stored(store) == {"phone": ["ok"], "adb-gone": ["failed"], "adb-back": ["ok"]}


# ---- the coordinator killed and restarted mid-campaign --------------------------------------


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    running = Lab(tmp_path)
    running.start_server()
    try:
        yield running
    finally:
        running.stop()


def test_a_coordinator_restarted_mid_campaign_gets_the_spooled_result_and_the_campaign_ends(
    lab: Lab, tmp_path: Path
) -> None:
    server = lab.processes[0]
    agent = lab.agent("agent-r")
    lab.wait_for_device()
    models = [ModelRecord.from_file(modelfiles.mlp(tmp_path / f"m{i}.onnx", width=32 * (i + 1),
                                                   layers=2)) for i in range(2)]
    settings = BenchmarkSettings(warmup_runs=2, warmup_duration_s=0.0, min_runs=10,
                                 min_duration_s=0.5)
    outbox = lab.folder / "agent-r" / "outbox"
    queued: list[QueuedDevice] = []
    results: list[CampaignResult] = []
    with Store.open(lab.store) as store:

        def connect(record: DeviceRecord, _: Path) -> QueuedDevice:
            queued.append(QueuedDevice(record, store, campaign.campaign_id, queue_wait_s=60))
            return queued[-1]

        campaign = Campaign(store, [store.get_device("lab-cpu")], models, settings,
                            connect=connect)
        running = threading.Thread(target=lambda: results.append(campaign.run()), daemon=True)
        running.start()
        try:
            wait_for_job(agent)  # the agent's worker starts the first job (> 0.5 s)
            first = _leased(store, "agent-r")
            os.killpg(server.pid, signal.SIGKILL)  # the coordinator, mid-campaign
            server.wait(timeout=10)
            _wait_until(lambda: (outbox / f"{first}.json").exists(), "result not spooled")
            lab.start_server()
            running.join(timeout=90)
        finally:
            for device in queued:  # a failed test stops waiting for the queue at once
                device.cancel()
            running.join(timeout=10)
        assert results, "the campaign did not finish"
        queue = JobQueue(store)
        states = {job_id: queue.state(job_id).status for job_id in _job_ids(store)}
    runs = results[0].runs
    assert [run.status for run in runs] == ["ok", "ok"]
    assert states == {run.run_id: DONE for run in runs}
    assert _stored(lab.store) == {"lab-cpu": ["ok", "ok"]}  # each result stored once
    assert not list(outbox.iterdir())
    os.killpg(agent.pid, signal.SIGTERM)
    _, log = agent.communicate(timeout=30)
    assert f"uploaded {first} (stored)" in log, log


def _leased(store: Store, agent: str) -> str:
    """The first job ``agent`` leases, as soon as it does."""
    found: list[str] = []

    def leased() -> bool:
        with store.connection() as connection:
            found.extend(connection.execute(select(jobs.c.job_id).where(
                jobs.c.lease_agent == agent, jobs.c.status == LEASED)).scalars())
        return bool(found)

    _wait_until(leased, f"{agent} never leased a job")
    return str(found[0])


def _job_ids(store: Store) -> list[str]:
    with store.connection() as connection:
        return [str(v) for v in connection.execute(select(jobs.c.job_id)).scalars()]


def _wait_until(condition: Callable[[], bool], message: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(message)


# ---- PostgreSQL restarted while agents upload results ---------------------------------------


class _Stopped(Exception):
    """Ends a test agent's serve loop."""


class CannedAgent(PullingAgent):
    """The real agent (lease, outbox, uploads, backoff) with a worker that answers at once
    with a canned measurement, so that results arrive many per second."""

    def __init__(self, config: AgentConfig, log: Callable[[str], None],
                 stop: threading.Event) -> None:
        super().__init__(config, log)
        self._stop = stop

    def run_once(self) -> bool:
        if self._stop.is_set():
            raise _Stopped
        return super().run_once()

    def _work(self, spec: JobSpec, lease_left_s: float) -> str:
        time.sleep(0.02)
        return ok_result(spec.job_id, factories.measurement(count=20, device=spec.device))


def _restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]
    try:
        subprocess.run([*command, "restart", "-m", "fast"], check=True, capture_output=True,
                       timeout=60)
    finally:  # whatever happened, leave PostgreSQL running for the other tests
        ready = subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"],
                               check=False, timeout=30)
        if ready.returncode != 0:
            subprocess.run([*command, "start"], check=False, capture_output=True, timeout=60)


def test_postgres_restarted_while_results_arrive_loses_no_acknowledged_result(
    postgres_url: str, tmp_path: Path
) -> None:
    lab = Lab(tmp_path)
    lab.store = postgres_url
    lab.start_server()
    log: list[str] = []
    stop = threading.Event()
    config = AgentConfig(lab.url, SECRET, "pg-agent", "pg-lab", tmp_path / "pg-agent",
                         poll_s=0.05)
    agent = CannedAgent(config, log.append, stop)
    serving = threading.Thread(target=_serve, args=(agent,), daemon=True)
    try:
        with Store.open(postgres_url) as store:
            serving.start()
            _wait_until(lambda: any(d.name == "pg-lab" for d in store.list_devices()),
                        "the agent did not register")
            model = ModelRecord.from_file(modelfiles.mlp(tmp_path / "m.onnx", 16, 1))
            queue = JobQueue(store)
            job_ids = [f"pg-job-{i:03d}" for i in range(60)]
            for job_id in job_ids:
                queue.enqueue(job_id, None, "pg-lab", model, BenchmarkSettings())
            _wait_until(lambda: len(_acknowledged(log)) >= 5, "no result was acknowledged")
            before_restart = len(_acknowledged(log))
            _restart_postgres()  # while the agent keeps uploading
            _wait_until(lambda: _all_done(queue, job_ids), "not every job completed", 90)
            acknowledged = _acknowledged(log)
            stored = {job_id: len(store.measurement(job_id).samples_ns) for job_id in acknowledged}
    finally:
        stop.set()
        serving.join(timeout=30)
        lab.stop()
    assert before_restart < len(job_ids) / 2  # most results arrived around and after it
    assert set(acknowledged) == set(job_ids)  # every job's result acknowledged, once...
    assert len(acknowledged) == len(job_ids)
    assert set(stored.values()) == {20}  # ...and each acknowledged result is in the store
    assert any(line.startswith(("coordinator answered", "cannot reach", "results kept",
                                "dropped")) for line in log), "no call met the restart"
    assert not list((tmp_path / "pg-agent" / "outbox").iterdir())
    # a result the store could not take is answered 503 and stays in the outbox (a 404
    # would have made the agent drop it)
    assert not [line for line in log if line.startswith("dropped ")], log


def test_an_agent_killed_and_restarted_under_its_name_runs_its_lost_job_again(
    lab: Lab, tmp_path: Path
) -> None:
    log: list[str] = []
    stop = threading.Event()
    config = AgentConfig(lab.url, SECRET, "agent-k", "lab-cpu", tmp_path / "agent-k",
                         poll_s=0.1)
    killed = PullingAgent(config, log.append)
    killed.connect()
    with Store.open(lab.store) as store:
        queue = JobQueue(store)
        model = ModelRecord.from_file(modelfiles.mlp(tmp_path / "m.onnx", 16, 1))
        queue.enqueue("lost-job", None, "lab-cpu", model, BenchmarkSettings())
        lease = killed.client.lease()
        assert lease is not None and lease["job_id"] == "lost-job"  # ...and it dies here
        restarted = CannedAgent(config, log.append, stop)  # same token
        serving = threading.Thread(target=_serve, args=(restarted,), daemon=True)
        serving.start()
        try:  # the lease is 2 s: the job should have run again within two
            _wait_until(lambda: queue.state("lost-job").status == DONE, "never re-run", 4)
        finally:
            stop.set()
            serving.join(timeout=10)


def _serve(agent: CannedAgent) -> None:
    try:
        agent.serve()
    except _Stopped:
        return


def _acknowledged(log: list[str]) -> list[str]:
    """Jobs the coordinator answered ``stored: true`` for, as the agent logged them."""
    return [line.split()[1] for line in list(log)
            if line.startswith("uploaded ") and line.endswith("(stored)")]


def _all_done(queue: JobQueue, job_ids: list[str]) -> bool:
    try:
        return all(queue.state(job_id).status == DONE for job_id in job_ids)
    except StoreError:  # the server is still starting
        return False


# ---- a read-only store, a full disk ---------------------------------------------------------


def test_a_read_only_store_is_one_line_and_nothing_is_written(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "ro"
    with tmpfs(folder, "4m") as mounted:
        if not mounted:
            pytest.skip("mounting a tmpfs needs CAP_SYS_ADMIN")
        store = f"sqlite:///{folder}/profiles.db"
        with Store.open(store) as opened:
            opened.add_device(new_device_record("phone", "emulated", "phone"))
        before = (folder / "profiles.db").read_bytes()
        remount(folder, read_only=True)
        run = _bench(capsys, monkeypatch, "run", "-m", str(model), "-d", "phone", "--store",
                     store)
        new = _bench(capsys, monkeypatch, "run", "-m", str(model), "-d", "phone", "--store",
                     f"sqlite:///{folder}/new.db")
        demo = _bench(capsys, monkeypatch, "demo", "--store", store)
        assert (folder / "profiles.db").read_bytes() == before
        assert sorted(p.name for p in folder.iterdir()) == ["profiles.db"]
    assert one_line_error(run) == (
        f"error: cannot write to store {store}: attempt to write a readonly database "
        f"({folder}/profiles.db is not writable)")
    assert one_line_error(new) == (
        f"error: cannot open store sqlite:///{folder}/new.db: unable to open database file "
        f"({folder} is not writable)")
    assert one_line_error(demo) == one_line_error(run)


def test_a_full_disk_stops_the_run_with_one_line_and_keeps_every_earlier_run(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "small"
    store = f"sqlite:///{folder}/profiles.db"
    run = ("run", "-m", str(model), "-d", "phone", "--min-runs", "2000", "--min-time", "0s",
           "--warmup", "0", "--warmup-time", "0s", "--json", "--store", store)
    with tmpfs(folder, "2m") as mounted:
        with Store.open(store) as opened:
            opened.add_device(new_device_record("phone", "emulated", "phone"))
        earlier = _bench(capsys, monkeypatch, *run)
        assert earlier.returncode == 0, earlier.stderr
        if mounted:
            filler = fill(folder, leave_bytes=16_384)
            full = _bench(capsys, monkeypatch, *run)
            filler.unlink()
        else:  # no mount allowed here: writes past the file's current size fail (EFBIG)
            limit = (folder / "profiles.db").stat().st_size + 16_384
            full = subprocess.run([str(Path(sys.executable).parent / "bench"), *run],
                                  capture_output=True, text=True, check=False,
                                  preexec_fn=file_size_limit(limit))
        assert full.returncode == 1, full.stderr
        errors = [line for line in full.stderr.splitlines() if line.startswith("error")]
        assert len(errors) == 1 and "Traceback" not in full.stderr, full.stderr  # and bars
        assert errors[0].startswith("error: cannot store the run of mlp on phone: store "), errors
        assert errors[0].endswith("the campaign was stopped (runs stored before it are kept)")
        assert not full.stdout
        database = folder / "profiles.db"
        with sqlite3.connect(database) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            counts = connection.execute(
                "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM measurements), "
                "(SELECT count(*) FROM samples)").fetchone()
        earlier_row = json.loads(earlier.stdout)[0]
        assert counts == (1, 1, earlier_row["runs"])  # the earlier run whole, nothing of the other
        assert _stored(store) == {"phone": ["ok"]}
        assert not list(folder.glob("*-journal"))
