"""An agent that registers with a coordinator and pulls jobs (stdlib HTTP only).

State lives in ``state_dir``: the agent's token, downloaded models (by sha256) and an outbox
of results not yet acknowledged, uploaded first thing after a restart."""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import hilbench
from hilbench.agents.protocol import SCHEMA_VERSION, JobSpec
from hilbench.agents.sysfs import probe
from hilbench.core.errors import AgentError
from hilbench.core.settings import BenchmarkSettings

LOAD_ALLOWANCE_S = 120.0
MAX_BACKOFF_S = 60.0
OUTBOX_BATCH = 100
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MODEL_FORMATS = ("onnx", "tflite")
Log = Callable[[str], None]


class RefusedError(AgentError):
    """The coordinator refused a request for good (4xx): retrying it cannot help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class CoordinatorClient:
    """The coordinator's HTTP API, with the agent's bearer token once it has one. An https
    URL is checked against ``ca_file`` (a lab's own CA) or the system's CAs."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 30.0,
                 ca_file: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.context = (ssl.create_default_context(cafile=ca_file)
                        if self.url.startswith("https:") else None)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None
              ) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers=headers,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s,
                                        context=self.context) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            message = f"coordinator answered {exc.code} to {path}: {detail}"
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise RefusedError(message, exc.code) from exc
            raise AgentError(message) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AgentError(f"cannot reach coordinator {self.url}: {reason}") from exc

    def register(self, name: str, device: str, enroll_token: str, info: dict[str, Any]) -> str:
        body = {"schema_version": SCHEMA_VERSION, "name": name, "device": device,
                "enroll_token": enroll_token, "info": info}
        _, answer = self._call("POST", "/v1/register", body)
        return str(json.loads(answer)["token"])

    def heartbeat(self, jobs: list[str]) -> None:
        """Keep the leases of ``jobs`` (the ones this agent is running; none when idle):
        a job leased before a crash is not among them, so its lease runs out."""
        self._call("POST", "/v1/heartbeat", {"jobs": jobs})

    def lease(self) -> dict[str, Any] | None:
        status, answer = self._call("POST", "/v1/lease", {})
        return None if status == 204 or not answer else dict(json.loads(answer))

    def upload(self, job_id: str, result: dict[str, Any]) -> bool:
        _, answer = self._call("POST", f"/v1/results/{job_id}", result)
        return bool(json.loads(answer)["stored"])

    def upload_many(self, results: list[tuple[str, dict[str, Any]]]) -> list[bool]:
        """Several results in one request (one transaction on the coordinator)."""
        body = {"results": [{"job_id": job_id, "result": r} for job_id, r in results]}
        _, answer = self._call("POST", "/v1/results", body)
        return [bool(stored) for stored in json.loads(answer)["stored"]]

    def model(self, sha256: str) -> bytes:
        return self._call("GET", f"/v1/models/{sha256}")[1]


@dataclass(frozen=True)
class AgentConfig:
    coordinator: str
    enroll_token: str
    name: str
    device: str
    state_dir: Path
    poll_s: float = 1.0
    sysfs_root: str = "/"  # where this device's sysfs/procfs are (an emulated tree in tests)
    power_command: str | None = None  # an external power meter: a command printing watts
    ca_file: str | None = None  # the CA that signed an https coordinator's certificate


class PullingAgent:
    """Registers once, then leases jobs, runs each in a worker process and uploads."""

    def __init__(self, config: AgentConfig, log: Log) -> None:
        self.config = config
        self.log = log
        self.client = CoordinatorClient(config.coordinator, ca_file=config.ca_file)
        for folder in ("models", "outbox"):
            (config.state_dir / folder).mkdir(parents=True, exist_ok=True)

    def connect(self) -> None:
        token_file = self.config.state_dir / "token"
        if token_file.exists():
            self.client.token = token_file.read_text().strip()
            return
        info = probe(Path(self.config.sysfs_root))
        self.client.token = self.client.register(
            self.config.name, self.config.device, self.config.enroll_token, info
        )
        token_file.write_text(self.client.token)
        os.chmod(token_file, 0o600)
        self.log(f"registered as {self.config.name} for device {self.config.device}")

    def flush_outbox(self) -> int:
        """Upload every result not yet acknowledged, in batches; returns how many were
        sent. A result is deleted only once the coordinator acknowledged it; one it refuses
        for good (a job that is not this agent's any more) is dropped, with a log line."""
        spooled = sorted((self.config.state_dir / "outbox").glob("*.json"))
        sent = 0
        for start in range(0, len(spooled), OUTBOX_BATCH):
            batch = spooled[start:start + OUTBOX_BATCH]
            try:
                stored = self.client.upload_many(
                    [(path.stem, json.loads(path.read_text())) for path in batch])
            except RefusedError:
                sent += sum(self._upload_alone(path) for path in batch)
                continue
            for path, was_new in zip(batch, stored):
                path.unlink()
                self.log(f"uploaded {path.stem} ({'stored' if was_new else 'already stored'})")
            sent += len(batch)
        return sent

    def _upload_alone(self, path: Path) -> int:
        try:
            stored = self.client.upload(path.stem, json.loads(path.read_text()))
        except RefusedError as exc:
            if exc.status == 401:
                raise
            path.unlink()
            self.log(f"dropped {path.stem}: {exc}")
            return 0
        path.unlink()
        self.log(f"uploaded {path.stem} ({'stored' if stored else 'already stored'})")
        return 1

    def run_once(self) -> bool:
        """Lease and run one job; False when there was none."""
        lease = self.client.lease()
        if lease is None:
            return False
        job_id = str(lease["job_id"])
        model = self._model(str(lease["model_sha256"]), str(lease["model_format"]))
        settings = BenchmarkSettings.from_dict(lease["job"]["settings"])
        pin = lease["job"].get("dvfs_pin")
        spec = JobSpec(job_id, self.config.device, "agent", str(model),
                       str(lease["model_sha256"]), settings, sysfs_root=self.config.sysfs_root,
                       dvfs_pin={str(k): int(v) for k, v in pin.items()} if pin else None,
                       power_command=self.config.power_command)
        self.log(f"running {job_id}")
        result = self._work(spec, float(lease["lease_expires_at"]) - time.time())
        spool = self.config.state_dir / "outbox" / f"{job_id}.json"
        spool.write_text(result)
        self.flush_outbox()
        return True

    def serve(self, once: bool = False) -> None:
        """Run jobs until stopped (or, with ``once``, until the queue is empty). A
        coordinator that cannot be reached is retried with backoff, up to a minute apart;
        results stay in the outbox until it acknowledges them."""
        self.connect()
        self.flush_outbox()
        backoff = self.config.poll_s
        while True:
            try:
                ran = self.run_once()
                if once and not ran:
                    return
                if not ran:
                    self.client.heartbeat([])
                backoff = self.config.poll_s
            except AgentError as exc:
                if once:
                    raise
                self.log(f"{exc}; retrying in {backoff:.0f} s")
                ran = False
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            if not ran:
                time.sleep(backoff)
                self._retry_outbox()

    def _retry_outbox(self) -> None:
        try:
            self.flush_outbox()
        except AgentError as exc:
            self.log(f"results kept for later: {exc}")

    def _model(self, sha256: str, fmt: str) -> Path:
        """The job's model from the cache, else downloaded and checked; its file is named
        by its sha256 only once both are known to be what they claim."""
        if not SHA256.match(sha256) or fmt not in MODEL_FORMATS:
            raise AgentError(f"lease names an invalid model ({sha256[:70]!r}, {fmt[:20]!r})")
        path = self.config.state_dir / "models" / f"{sha256}.{fmt}"
        if not path.exists():
            data = self.client.model(sha256)
            if hashlib.sha256(data).hexdigest() != sha256:
                raise AgentError(f"model {sha256[:12]} arrived corrupted (sha256 mismatch)")
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(path)
        return path

    def _work(self, spec: JobSpec, lease_left_s: float) -> str:
        """Run the job in a worker process, heartbeating so that the lease stays ours."""
        stop = threading.Event()
        beat = threading.Thread(target=self._beat,
                                args=(stop, spec.job_id, max(0.5, lease_left_s / 3)))
        beat.daemon = True
        beat.start()
        try:
            root = str(Path(hilbench.__file__).resolve().parents[1])
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                filter(None, [root, os.environ.get("PYTHONPATH")])))
            worker = subprocess.run(
                [sys.executable, "-m", "hilbench.agents", "run"], input=spec.to_json(),
                capture_output=True, text=True, env=env,
                timeout=spec.settings.max_duration_s + LOAD_ALLOWANCE_S,
            )
        finally:
            stop.set()
        if worker.returncode != 0 or not worker.stdout.strip():
            tail = worker.stderr.strip().splitlines()[-1:] or [f"exit {worker.returncode}"]
            return json.dumps({"schema_version": SCHEMA_VERSION, "job_id": spec.job_id,
                               "status": "error",
                               "error": {"kind": "agent", "message": f"worker: {tail[0]}"}})
        return worker.stdout

    def _beat(self, stop: threading.Event, job_id: str, every_s: float) -> None:
        while not stop.wait(every_s):
            try:
                self.client.heartbeat([job_id])
            except AgentError as exc:
                self.log(f"heartbeat failed: {exc}")
