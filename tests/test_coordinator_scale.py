"""Leasing under concurrency: many agents of one device leasing at once from one store
(threads on the queue itself, and HTTP clients against `bench serve --workers 2` on
PostgreSQL) take every job exactly once."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from hilbench.agents.protocol import ok_result
from hilbench.core.records import ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.profiles import Store
from hilbench.profiles.jobs import DONE, Agent, JobQueue, NewJob
from tests import factories
from tests.cli import BENCH
from tests.ports import free_port

MODEL = ModelRecord.from_file(Path(__file__).parents[1] / "hilbench/assets/tiny-bert.onnx")
SECRET = "scale-secret"


def _queue(store: Store, count: int, devices: int = 1) -> None:
    JobQueue(store).enqueue_many([NewJob(f"job-{i}", "c", f"board-{i % devices}", MODEL,
                                         BenchmarkSettings()) for i in range(count)])


def test_concurrent_leases_take_each_job_once(store_url: str) -> None:
    with Store.open(store_url) as store:
        _queue(store, 60)
        queue = JobQueue(store)
        taken: list[str] = []
        lock = threading.Lock()

        def agent(index: int) -> None:
            me = Agent(f"agent-{index}", "board-0")
            while (job := queue.lease(me, 60)) is not None:
                with lock:
                    taken.append(job.job_id)

        threads = [threading.Thread(target=agent, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert sorted(taken) == sorted(f"job-{i}" for i in range(60))


def _post(url: str, body: dict[str, object], token: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json",
               **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.postgres
def test_several_workers_on_postgresql_serve_each_job_once(postgres_url: str) -> None:
    with Store.open(postgres_url) as store:
        _queue(store, 40, devices=2)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([BENCH, "serve", "--port", str(port), "--enroll-token", SECRET,
                               "--workers", "2", "--store", postgres_url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, \
                    server.stderr.read() if server.stderr else ""
                time.sleep(0.2)
        acknowledged: list[str] = []
        lock = threading.Lock()
        result = json.loads(ok_result("JOB", factories.measurement(count=50)))

        def agent(index: int) -> None:
            status, answer = _post(f"{base}/v1/register", {
                "name": f"agent-{index}", "device": f"board-{index % 2}",
                "enroll_token": SECRET, "info": {}})
            assert status == 200, answer
            token = json.loads(answer)["token"]
            held: list[str] = []
            while True:
                status, answer = _post(f"{base}/v1/lease", {}, token)
                if status == 204:
                    break
                held.append(json.loads(answer)["job_id"])
            if held:
                status, answer = _post(f"{base}/v1/results", {"results": [
                    {"job_id": job_id, "result": {**result, "job_id": job_id}}
                    for job_id in held]}, token)
                assert status == 200, answer
                with lock:
                    acknowledged.extend(j for j, new in zip(held, json.loads(answer)["stored"],
                                                            strict=True) if new)

        threads = [threading.Thread(target=agent, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert Counter(acknowledged) == Counter(f"job-{i}" for i in range(40))
    with Store.open(postgres_url) as store:
        runs = store.runs()
        assert sorted(runs.run_id) == sorted(f"job-{i}" for i in range(40))
        queue = JobQueue(store)
        assert {queue.state(f"job-{i}").status for i in range(40)} == {DONE}
