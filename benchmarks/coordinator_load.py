"""The coordinator under a lab's load. Prints its figures.

For each store (SQLite, PostgreSQL) and each agent count, a fresh store gets ``--jobs-per-
agent`` queued jobs per device, ``bench serve`` starts on a free loopback port (``--workers``
processes on PostgreSQL, one on SQLite), and ``--processes`` client processes run the
simulated agents, each an asyncio task with its own HTTP connection (aiohttp): it registers with the
enrollment token (all of them before the timed window starts), heartbeats once a second
(timed), and meanwhile leases a job, "runs" it at
once and keeps its result (a real measurement record with ``--samples`` raw latency
samples), uploading its kept results in one request when it has ``--batch`` of them or the
queue is empty. After ``--duration`` seconds every agent uploads what it holds and stops.

Printed per configuration: heartbeat latency p50 / p99 (ms), results acknowledged as stored
per second (over the time the results took to arrive), jobs lost (acknowledged but not in
the store, or leased and never finished) and duplicated (stored twice, or acknowledged as
new twice). Targets (issue 9): 1,000 agents with heartbeat p99 under 100 ms and >= 2,000
results/s on PostgreSQL; zero lost, zero duplicated. Loopback only; the machine running it
also runs the clients, so on a small machine the clients take CPU from the coordinator.

Run: python benchmarks/coordinator_load.py [--agents 100,500,1000] [--stores sqlite,postgresql]
     [--duration 20] [--workers 2] [--processes 2] [--samples 100] [--batch 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import numpy
from sqlalchemy import create_engine, func, select, text

from hilbench.agents.protocol import ok_result
from hilbench.core.dvfs import DvfsState
from hilbench.core.measurement import Environment, Measurement
from hilbench.core.records import ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.profiles.jobs import DONE, LEASED, JobQueue, NewJob
from hilbench.profiles.schema import jobs, runs
from hilbench.profiles.store import Store

SECRET = "load-test-enrollment"
POSTGRES_ADMIN = os.environ.get("HILBENCH_TEST_POSTGRES",
                                "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MODEL = ModelRecord("7" * 64, "load-model", "onnx", "/nonexistent/load-model.onnx", 1_000_000)
SETTINGS = BenchmarkSettings(min_runs=5, min_duration_s=0.0)
REGISTRATION_S = 40.0  # allowed for 1,000 registrations before the timed window starts


@dataclass(frozen=True)
class Config:
    agents: int
    store: str
    duration_s: float
    workers: int
    processes: int
    samples: int
    batch: int
    jobs_per_agent: int


@dataclass(frozen=True)
class ClientFigures:
    """What one client process saw."""

    heartbeat_ms: list[float]
    acknowledged_new: list[str]
    acknowledged_again: list[str]
    first_upload: float | None
    last_upload: float | None
    errors: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _store_url(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder}/load.db"
        return
    name = f"hilbench_load_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _measurement(samples: int, seed: int) -> Measurement:
    rng = random.Random(seed)
    values = tuple(int(rng.gauss(3_000_000, 60_000)) for _ in range(samples))
    environment = Environment(
        device="load", device_kind="agent", runtime="onnxruntime", runtime_version="1.20.0",
        execution_provider="CPUExecutionProvider", model_sha256=MODEL.sha256, threads=1,
        input_shapes=(("x", (1, 8)),), dvfs=DvfsState(()), agent_version="0.1.0",
        python_version="3.11", platform="Linux", hostname="load")
    return Measurement(environment=environment, settings=SETTINGS, samples_ns=values,
                       timed_duration_s=sum(values) / 1e9, init_ms=1.0,
                       first_inference_ms=3.0, peak_memory_mb=10.0, started_at=time.time(),
                       finished_at=time.time())


def _queue_jobs(url: str, agents: int, per_agent: int) -> None:
    with Store.open(url) as store:
        JobQueue(store).enqueue_many([
            NewJob(f"load-{a}-{j}", "load", f"load-dev-{a}", MODEL, SETTINGS)
            for a in range(agents) for j in range(per_agent)])


@contextmanager
def _coordinator(url: str, workers: int) -> Iterator[str]:
    port = _free_port()
    argv = [sys.executable, "-m", "hilbench.cli", "serve", "--port", str(port),
            "--enroll-token", SECRET, "--workers", str(workers), "--lease-seconds", "60",
            "--store", url]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1):
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"coordinator did not start: {server.stderr.read()[-500:]}"
                                 if server.stderr else "coordinator did not start")
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=15)


class SimulatedAgent:
    def __init__(self, index: int, base: str, config: Config, deadline: float,
                 result_text: str) -> None:
        self.index, self.base, self.config, self.deadline = index, base, config, deadline
        self.result_text = result_text
        self.heartbeat_ms: list[float] = []
        self.new: list[str] = []
        self.again: list[str] = []
        self.kept: list[dict[str, Any]] = []
        self.upload_times: list[float] = []
        self.errors = 0

    async def register(self, client: aiohttp.ClientSession) -> dict[str, str]:
        async with client.post(f"{self.base}/v1/register", json={
                "name": f"load-agent-{self.index}", "device": f"load-dev-{self.index}",
                "enroll_token": SECRET, "info": {}}) as answer:
            if answer.status != 200:  # a plain error: it crosses the process boundary
                raise RuntimeError(f"registration answered {answer.status}: "
                                   f"{(await answer.text())[:300]}")
            return {"Authorization": f"Bearer {(await answer.json())['token']}"}

    async def run(self, client: aiohttp.ClientSession, headers: dict[str, str]) -> None:
        beating = asyncio.create_task(self._heartbeats(client, headers))
        try:
            await self._work(client, headers)
        finally:
            beating.cancel()

    async def _heartbeats(self, client: aiohttp.ClientSession, headers: dict[str, str]
                          ) -> None:
        await asyncio.sleep(random.random())  # agents do not beat in lockstep
        while time.time() < self.deadline:
            started = time.perf_counter()
            try:
                held = {"jobs": [item["job_id"] for item in self.kept]}
                async with client.post(f"{self.base}/v1/heartbeat", headers=headers,
                                       json=held) as answer:
                    await answer.read()
                    if answer.status != 200:
                        raise aiohttp.ClientError(f"heartbeat answered {answer.status}")
                self.heartbeat_ms.append((time.perf_counter() - started) * 1000)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                self.errors += 1
            await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - started)))

    async def _work(self, client: aiohttp.ClientSession, headers: dict[str, str]) -> None:
        while time.time() < self.deadline:
            try:
                async with client.post(f"{self.base}/v1/lease", headers=headers) as leased:
                    status = leased.status
                    body = await leased.json() if status == 200 else None
            except (aiohttp.ClientError, asyncio.TimeoutError):
                self.errors += 1
                await asyncio.sleep(0.5)
                continue
            if body is None:
                await self._upload(client, headers)
                await asyncio.sleep(1.0)
                continue
            job_id = body["job_id"]
            self.kept.append({"job_id": job_id, "result": json.loads(
                self.result_text.replace("__JOB__", job_id))})
            if len(self.kept) >= self.config.batch:
                await self._upload(client, headers)
        await self._upload(client, headers)

    async def _upload(self, client: aiohttp.ClientSession, headers: dict[str, str]) -> None:
        while self.kept:
            try:
                async with client.post(f"{self.base}/v1/results", headers=headers,
                                       json={"results": self.kept}) as answer:
                    if answer.status != 200:
                        raise aiohttp.ClientError(f"upload answered {answer.status}")
                    stored = (await answer.json())["stored"]
            except (aiohttp.ClientError, asyncio.TimeoutError):
                self.errors += 1
                await asyncio.sleep(0.5)
                continue
            for item, was_new in zip(self.kept, stored, strict=True):
                (self.new if was_new else self.again).append(item["job_id"])
            self.upload_times.append(time.time())
            self.kept = []


async def _client_main(indexes: list[int], base: str, config: Config, start: float
                       ) -> ClientFigures:
    """Register every agent (a few at a time), wait for the common start, then run them
    for the duration."""
    result_text = ok_result("__JOB__", _measurement(config.samples, 0))
    deadline = start + config.duration_s
    agents = [SimulatedAgent(i, base, config, deadline, result_text) for i in indexes]
    connector = aiohttp.TCPConnector(limit=len(indexes) * 2)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        entry = asyncio.Semaphore(20)

        async def register(agent: SimulatedAgent) -> dict[str, str]:
            async with entry:
                return await agent.register(client)

        tokens = await asyncio.gather(*(register(agent) for agent in agents))
        await asyncio.sleep(max(0.0, start - time.time()))
        await asyncio.gather(*(agent.run(client, headers)
                               for agent, headers in zip(agents, tokens, strict=True)))
    uploads = [t for agent in agents for t in agent.upload_times]
    return ClientFigures([ms for a in agents for ms in a.heartbeat_ms],
                         [j for a in agents for j in a.new],
                         [j for a in agents for j in a.again],
                         min(uploads) if uploads else None, max(uploads) if uploads else None,
                         sum(a.errors for a in agents))


def _client_process(indexes: list[int], base: str, config: Config, start: float
                    ) -> ClientFigures:
    return asyncio.run(_client_main(indexes, base, config, start))


def _store_counts(url: str) -> tuple[int, int, int]:
    """(runs stored, jobs done, jobs still leased)."""
    engine = create_engine(url)
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(runs)).scalar_one()
        done = connection.execute(select(func.count()).select_from(jobs)
                                  .where(jobs.c.status == DONE)).scalar_one()
        leased = connection.execute(select(func.count()).select_from(jobs)
                                    .where(jobs.c.status == LEASED)).scalar_one()
    engine.dispose()
    return int(stored), int(done), int(leased)


def measure(config: Config, folder: Path) -> str:
    with _store_url(config.store, folder) as url:
        _queue_jobs(url, config.agents, config.jobs_per_agent)
        workers = config.workers if config.store == "postgresql" else 1
        with _coordinator(url, workers) as base:
            start = time.time() + REGISTRATION_S * config.agents / 1000 + 5
            chunks = [list(range(config.agents))[i::config.processes]
                      for i in range(config.processes)]
            with multiprocessing.get_context("spawn").Pool(config.processes) as pool:
                figures = pool.starmap(_client_process,
                                       [(c, base, config, start) for c in chunks if c])
        stored, done, leased = _store_counts(url)
    beats = numpy.array([ms for f in figures for ms in f.heartbeat_ms])
    new = [j for f in figures for j in f.acknowledged_new]
    starts = [f.first_upload for f in figures if f.first_upload]
    ends = [f.last_upload for f in figures if f.last_upload]
    span = max(ends) - min(starts) if starts and ends and max(ends) > min(starts) else 0.0
    rate = len(new) / span if span else 0.0
    duplicated = (len(new) - len(set(new))) + max(0, stored - done)
    lost = max(0, len(set(new)) - stored) + leased
    p50, p99 = (numpy.percentile(beats, [50, 99]) if len(beats) else (numpy.nan, numpy.nan))
    errors = sum(f.errors for f in figures)
    return (f"{config.store:10s} {config.agents:5d} agents ({workers} worker"
            f"{'s' if workers > 1 else ''}): heartbeat p50 {p50:.1f} ms, p99 {p99:.1f} ms "
            f"({len(beats)} beats); {len(new)} results stored in {span:.1f} s = {rate:.0f}/s; "
            f"lost {lost}, duplicated {duplicated}; client errors {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="100,500,1000")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--jobs-per-agent", type=int, default=60)
    args = parser.parse_args()
    print(f"coordinator load: {args.duration:g} s per configuration, {args.samples} raw "
          f"samples per result, batches of {args.batch}, {args.processes} client processes, "
          f"{os.cpu_count()} CPUs shared by coordinator and clients")
    base = Config(0, "", args.duration, args.workers, args.processes, args.samples,
                  args.batch, args.jobs_per_agent)
    for store in args.stores.split(","):
        for agents in (int(a) for a in args.agents.split(",")):
            with tempfile.TemporaryDirectory(prefix="hilbench-load-") as folder:
                print("  " + measure(replace(base, agents=agents, store=store), Path(folder)),
                      flush=True)


if __name__ == "__main__":
    main()
