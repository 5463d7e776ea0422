"""The coordinator with real uvicorn on loopback and real agent processes: registration
with tokens, leases that expire when an agent dies, idempotent uploads, spooled results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hilbench.agents.protocol import ok_result
from hilbench.core.records import ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.profiles import Store
from hilbench.profiles.jobs import DONE, LEASED, JobQueue
from tests.cli import BENCH, bench, bench_json
from tests.ports import free_port

MODEL = Path(__file__).parents[1] / "hilbench/assets/tiny-bert.onnx"
SECRET = "lab-enrollment-secret"


def _http(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body or {}).encode(), headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
            return response.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class Lab:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.store = f"sqlite:///{folder}/profiles.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[str]] = []

    def start_server(self) -> None:
        server = self.spawn([BENCH, "serve", "--port", str(self.port), "--enroll-token", SECRET,
                             "--lease-seconds", "2", "--store", self.store])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=1).close()
                return
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                time.sleep(0.1)
        raise AssertionError("coordinator did not start")

    def spawn(self, argv: list[str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True)
        self.processes.append(process)
        return process

    def agent(self, name: str, device: str = "lab-cpu") -> subprocess.Popen[str]:
        return self.spawn([BENCH, "agent", "--coordinator", self.url, "--enroll-token", SECRET,
                           "--name", name, "--device", device, "--poll", "0.2",
                           "--state-dir", str(self.folder / name)])

    def wait_for_device(self, device: str = "lab-cpu") -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(d["device"] == device for d in bench_json("devices", "list", store=self.store)):
                return
            time.sleep(0.2)
        raise AssertionError(f"{device} never registered")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    running = Lab(tmp_path)
    running.start_server()
    try:
        yield running
    finally:
        running.stop()


QUICK = ["--min-runs", "10", "--min-time", "0.1s", "--warmup", "2", "--warmup-time", "0s"]


def test_agent_registers_and_runs_jobs_from_bench_run(lab: Lab) -> None:
    lab.agent("agent-1")
    lab.wait_for_device()
    device = bench_json("devices", "show", "lab-cpu", store=lab.store)
    assert device["kind"] == "agent" and device["cpu_count"] >= 1
    rows = bench_json("run", "-m", str(MODEL), "-d", "lab-cpu", *QUICK, store=lab.store)
    assert rows[0]["status"] == "ok" and rows[0]["runs"] >= 10
    assert len(bench_json("profiles", "show", store=lab.store)) == 1

    # the same result uploaded again is acknowledged and stored no second time
    token = (lab.folder / "agent-1" / "token").read_text()
    with Store.open(lab.store) as store:
        result = json.loads(ok_result(rows[0]["run_id"], store.measurement(rows[0]["run_id"])))
    status, answer = _http(f"{lab.url}/v1/results/{rows[0]['run_id']}", result, token)
    assert (status, answer) == (200, {"stored": False})
    assert len(bench_json("profiles", "show", store=lab.store)) == 1


def test_tokens_are_required(lab: Lab) -> None:
    assert _http(f"{lab.url}/v1/lease")[0] == 401
    assert _http(f"{lab.url}/v1/lease", token="forged")[0] == 401
    wrong = {"name": "x", "device": "d", "enroll_token": "guess", "info": {}}
    assert _http(f"{lab.url}/v1/register", wrong)[0] == 401
    hostile = {**wrong, "enroll_token": SECRET, "name": "../../etc"}
    assert _http(f"{lab.url}/v1/register", hostile)[0] == 422
    newer = {**wrong, "enroll_token": SECRET, "schema_version": 99}
    status, answer = _http(f"{lab.url}/v1/register", newer)
    assert status == 426 and "upgrade hilbench on the coordinator" in answer["detail"]
    ok = {**wrong, "enroll_token": SECRET}
    status, answer = _http(f"{lab.url}/v1/register", ok)
    assert status == 200 and len(answer["token"]) > 20
    assert _http(f"{lab.url}/v1/lease", token=answer["token"])[0] == 204


def test_a_killed_agent_loses_its_lease_and_another_finishes_the_job(lab: Lab) -> None:
    first = lab.agent("agent-a")
    lab.wait_for_device()
    run = lab.spawn([BENCH, "run", "-m", str(MODEL), "-d", "lab-cpu", "--min-time", "4s",
                     "--json", "--store", lab.store])
    with Store.open(lab.store) as store:
        queue = JobQueue(store)
        job_id = _wait_for_lease(store, "agent-a")
        os.killpg(first.pid, signal.SIGKILL)  # the agent and its worker, mid-job
        lab.agent("agent-b")
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
        state = queue.state(job_id)
    rows = json.loads(stdout)
    assert rows[0]["status"] == "ok" and rows[0]["run_id"] == job_id
    assert state.status == DONE and state.attempts == 2
    assert len(bench_json("profiles", "show", store=lab.store)) == 1


def _wait_for_lease(store: Store, agent: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with store.connection() as connection:
            from sqlalchemy import text

            row = connection.execute(
                text("SELECT job_id, status, lease_agent FROM jobs ORDER BY id DESC LIMIT 1")
            ).first()
        if row is not None and row.status == LEASED and row.lease_agent == agent:
            time.sleep(1.0)  # let its worker start measuring
            return str(row.job_id)
        time.sleep(0.1)
    raise AssertionError(f"{agent} never leased the job")


def test_results_spooled_before_a_restart_are_uploaded(lab: Lab) -> None:
    lab.agent("agent-s")
    lab.wait_for_device()
    rows = bench_json("run", "-m", str(MODEL), "-d", "lab-cpu", *QUICK, store=lab.store)
    lab.stop()  # agent and coordinator gone
    lab.processes.clear()
    with Store.open(lab.store) as store:
        measurement = store.measurement(rows[0]["run_id"])
        JobQueue(store).enqueue("job-spooled", None, "lab-cpu", ModelRecord.from_file(MODEL),
                                BenchmarkSettings())
    outbox = lab.folder / "agent-s" / "outbox"
    (outbox / "job-spooled.json").write_text(ok_result("job-spooled", measurement))
    lab.start_server()
    restarted = bench("agent", "--coordinator", lab.url, "--enroll-token", SECRET, "--name",
                      "agent-s", "--device", "lab-cpu", "--state-dir", str(lab.folder / "agent-s"),
                      "--once")
    assert restarted.returncode == 0, restarted.stderr
    assert "uploaded job-spooled (stored)" in restarted.stderr
    assert not list(outbox.iterdir())
    with Store.open(lab.store) as store:
        assert JobQueue(store).state("job-spooled").status == DONE
        assert store.measurement("job-spooled").samples_ns == measurement.samples_ns


def test_a_cancelled_run_takes_its_job_out_of_the_queue(tmp_path: Path) -> None:
    import threading

    from hilbench.campaign.queue import QueuedDevice
    from hilbench.core.errors import TransportError
    from hilbench.core.records import DeviceRecord
    from hilbench.profiles.jobs import CANCELLED, Agent

    with Store.open(f"sqlite:///{tmp_path}/profiles.db") as store:
        device = QueuedDevice(DeviceRecord("lab-cpu", "agent"), store)
        failures: list[Exception] = []

        def wait_for_result() -> None:
            try:
                device.run_model("job-c", ModelRecord.from_file(MODEL), BenchmarkSettings(),
                                 lambda phase, fraction: None)
            except TransportError as exc:
                failures.append(exc)

        waiter = threading.Thread(target=wait_for_result)
        waiter.start()
        queue = JobQueue(store)
        deadline = time.monotonic() + 30
        while not _queued(queue, "job-c") and time.monotonic() < deadline:
            time.sleep(0.05)
        device.cancel()
        waiter.join(timeout=10)
        assert failures and "cancelled" in str(failures[0])
        assert queue.state("job-c").status == CANCELLED
        assert queue.lease(Agent("a", "lab-cpu"), 30) is None


def _queued(queue: JobQueue, job_id: str) -> bool:
    from hilbench.core.errors import StoreError

    try:
        return queue.state(job_id).status == "queued"
    except StoreError:
        return False


def test_dvfs_levels_travel_with_a_queued_job(lab: Lab) -> None:
    """An agent whose device has cpufreq (here an emulated phone's tree, named with
    --sysfs-root) pins the level the run asks for, measures, and restores it."""
    from hilbench.devices.emulated import write_sysfs
    from hilbench.devices.presets import get_preset

    root = write_sysfs(get_preset("phone"), lab.folder / "phone-sysfs")
    policy = root / "sys/devices/system/cpu/cpufreq/policy4"
    before = [(policy / n).read_text() for n in ("scaling_min_freq", "scaling_max_freq")]
    lab.spawn([BENCH, "agent", "--coordinator", lab.url, "--enroll-token", SECRET, "--name",
               "board-agent", "--device", "board", "--poll", "0.2", "--sysfs-root", str(root),
               "--state-dir", str(lab.folder / "board-agent")])
    lab.wait_for_device("board")
    shown = bench_json("devices", "show", "board", store=lab.store)
    assert shown["dvfs_domains"] == ["cpu0-3", "cpu4-7"]
    rows = bench_json("run", "-m", str(MODEL), "-d", "board", "--dvfs", "cpu4-7=1.5GHz",
                      *QUICK, store=lab.store)
    assert rows[0]["status"] == "ok", rows[0]["error"]
    assert rows[0]["dvfs_pinned_mhz"] == {"cpu4-7": 1401}
    assert [(policy / n).read_text() for n in ("scaling_min_freq", "scaling_max_freq")] == before
    bad = bench("run", "-m", str(MODEL), "-d", "board", "--dvfs", "gpu=max", store=lab.store)
    assert bad.returncode == 2 and "board has no DVFS domain 'gpu'" in bad.stderr
