"""Who gets in, and what they may do: the coordinator app in-process (FastAPI's TestClient)
on real stores, and `bench serve` over TLS with a real agent process."""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from hilbench.agents.protocol import ok_result
from hilbench.core.records import ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.profiles import Store
from hilbench.profiles.jobs import DONE, QUEUED, JobQueue
from hilbench.server.app import Limits, create_app
from tests import factories
from tests.cli import BENCH, bench, in_process
from tests.ports import free_port

SECRET = "lab-enrollment-secret"
MODEL = Path(__file__).parents[1] / "hilbench/assets/tiny-bert.onnx"


class Coordinator:
    """The app on a store, and helpers to act as agents."""

    def __init__(self, store: Store, models_dir: Path) -> None:
        self.store = store
        self.queue = JobQueue(store)
        limits = Limits(lease_s=30, max_model_bytes=8 * 1024 * 1024, models_dir=models_dir,
                        token_ttl_s=0)
        self.client = TestClient(create_app(store, SECRET, limits=limits))

    def register(self, name: str, device: str) -> dict[str, str]:
        answer = self.client.post("/v1/register", json={
            "name": name, "device": device, "enroll_token": SECRET, "info": {}})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    def enqueue(self, job_id: str, device: str) -> None:
        self.queue.enqueue(job_id, None, device, ModelRecord.from_file(MODEL),
                           BenchmarkSettings())

    def result(self, job_id: str) -> dict[str, object]:
        return dict(json.loads(ok_result(job_id, factories.measurement())))


@pytest.fixture
def coordinator(store_url: str, tmp_path: Path) -> Iterator[Coordinator]:
    with Store.open(store_url) as store:
        yield Coordinator(store, tmp_path / "models")


def test_every_endpoint_but_health_needs_a_token(coordinator: Coordinator) -> None:
    client = coordinator.client
    assert client.get("/health").status_code == 200
    sha = hashlib.sha256(MODEL.read_bytes()).hexdigest()
    for method, path in (("post", "/v1/heartbeat"), ("post", "/v1/lease"),
                         ("post", "/v1/results/job-1"), ("post", "/v1/results"),
                         ("get", f"/v1/models/{sha}")):
        for headers in ({}, {"Authorization": "Bearer forged"}, {"Authorization": SECRET}):
            body = {"json": {}} if method == "post" else {}
            answer = client.request(method.upper(), path, headers=headers, **body)
            assert answer.status_code == 401, (method, path, headers, answer.text)
    agent = coordinator.register("agent-1", "board-1")
    upload = client.put(f"/v1/models/{sha}", content=MODEL.read_bytes(), headers=agent)
    assert upload.status_code == 401  # an agent's token uploads nothing


def test_an_agent_leases_and_reports_only_its_own_jobs(coordinator: Coordinator) -> None:
    """Jobs of another device are neither leased nor accepted from it; once a job is
    leased to one agent of a device, another agent of that device cannot report it; a
    batch holding one foreign result stores nothing of it."""
    mine, other_device = (coordinator.register("agent-a", "board-a"),
                          coordinator.register("agent-b", "board-b"))
    same_device = coordinator.register("agent-a2", "board-a")
    coordinator.enqueue("job-a", "board-a")
    coordinator.enqueue("job-a-2", "board-a")
    client = coordinator.client
    assert client.post("/v1/lease", headers=other_device).status_code == 204
    leased = client.post("/v1/lease", headers=mine).json()
    assert leased["job_id"] == "job-a"
    refused = client.post("/v1/results/job-a", json=coordinator.result("job-a"),
                          headers=other_device)
    assert refused.status_code == 404 and "not for device board-b" in refused.text
    taken = client.post("/v1/results/job-a", json=coordinator.result("job-a"),
                        headers=same_device)
    assert taken.status_code == 404 and "leased to another agent" in taken.text
    batch = {"results": [{"job_id": "job-a-2", "result": coordinator.result("job-a-2")},
                         {"job_id": "job-a", "result": coordinator.result("job-a")}]}
    assert client.post("/v1/results", json=batch, headers=same_device).status_code == 404
    assert coordinator.queue.state("job-a-2").status == QUEUED  # nothing of the batch stored
    assert coordinator.store.runs().empty
    stored = client.post("/v1/results/job-a", json=coordinator.result("job-a"), headers=mine)
    assert stored.json() == {"stored": True}
    assert coordinator.queue.state("job-a").status == DONE


def test_results_in_a_batch_are_stored_once(coordinator: Coordinator) -> None:
    agent = coordinator.register("agent-1", "board-1")
    for index in range(3):
        coordinator.enqueue(f"job-{index}", "board-1")
    batch = {"results": [{"job_id": f"job-{i}", "result": coordinator.result(f"job-{i}")}
                         for i in range(3)]}
    first = coordinator.client.post("/v1/results", json=batch, headers=agent)
    assert first.json() == {"stored": [True, True, True]}
    again = coordinator.client.post("/v1/results", json=batch, headers=agent)
    assert again.json() == {"stored": [False, False, False]}
    assert len(coordinator.store.runs()) == 3
    oversized = {"results": batch["results"] * 100}
    assert coordinator.client.post("/v1/results", json=oversized,
                                   headers=agent).status_code == 422


def test_a_revoked_agent_is_locked_out_and_its_jobs_go_back(
        coordinator: Coordinator, store_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return in_process(capsys, monkeypatch, {}, *args, "--store", store_url)

    agent = coordinator.register("agent-1", "board-1")
    coordinator.enqueue("job-1", "board-1")
    assert coordinator.client.post("/v1/lease", headers=agent).status_code == 200
    revoked = run("agent", "revoke", "agent-1")
    assert revoked.returncode == 0 and "revoked agent-1" in revoked.stdout, revoked.stderr
    assert coordinator.client.post("/v1/heartbeat", headers=agent).status_code == 401
    again = coordinator.client.post("/v1/register", json={
        "name": "agent-1", "device": "board-1", "enroll_token": SECRET, "info": {}})
    assert again.status_code == 403 and "was revoked" in again.text
    newcomer = coordinator.register("agent-2", "board-1")
    assert coordinator.client.post("/v1/lease", headers=newcomer).json()["job_id"] == "job-1"
    listed = {a["name"]: a for a in json.loads(run("agent", "list", "--json").stdout)}
    assert listed["agent-1"]["revoked_at"] is not None and listed["agent-2"]["leased_jobs"] == 1
    twice = run("agent", "revoke", "agent-1")
    assert twice.returncode == 2 and twice.stderr.strip() == \
        "error: agent agent-1 was revoked already"


def test_uploaded_models_are_kept_by_hash_within_the_limit(
        coordinator: Coordinator, tmp_path: Path) -> None:
    client, admin = coordinator.client, {"Authorization": f"Bearer {SECRET}"}
    data = MODEL.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    models = tmp_path / "models"
    wrong = client.put(f"/v1/models/{'0' * 64}", content=data, headers=admin)
    assert wrong.status_code == 422 and "do not hash to the sha256" in wrong.text
    for traversal in ("..%2F..%2Fetc%2Fpasswd", "../../escape", f"{sha}%2F..%2Fx",
                      sha.upper()):
        answer = client.put(f"/v1/models/{traversal}", content=data, headers=admin)
        assert answer.status_code in (404, 422), (traversal, answer.status_code)
    named = client.put(f"/v1/models/{sha}", params={"name": "../../escape"}, content=data,
                       headers=admin)
    assert named.status_code == 422
    big = b"\0" * (8 * 1024 * 1024 + 1)
    too_big = client.put(f"/v1/models/{hashlib.sha256(big).hexdigest()}", content=big,
                         headers=admin)
    assert too_big.status_code == 413
    assert not list(models.glob("*")) and not (tmp_path / "escape").exists()
    stored = client.put(f"/v1/models/{sha}", params={"name": "tiny-bert", "format": "onnx"},
                        content=data, headers=admin)
    assert stored.json() == {"sha256": sha, "size_bytes": len(data)}
    assert [p.name for p in models.iterdir()] == [f"{sha}.onnx"]
    agent = coordinator.register("agent-1", "board-1")
    assert client.get(f"/v1/models/{sha}", headers=agent).content == data


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hilbench test coordinator")])
    now = datetime.datetime.now(datetime.timezone.utc)
    import ipaddress

    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "coordinator.pem", folder / "coordinator.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_the_coordinator_over_tls(tmp_path: Path) -> None:
    """`bench serve --certfile --keyfile` serves https; an agent that trusts the lab's CA
    (--ca-cert) registers and runs a job; one that does not is refused with a clear
    certificate error."""
    cert, key = _certificate(tmp_path)
    store = f"sqlite:///{tmp_path}/profiles.db"
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    server = subprocess.Popen([BENCH, "serve", "--port", str(port), "--enroll-token", SECRET,
                               "--certfile", str(cert), "--keyfile", str(key), "--store",
                               store], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        import ssl

        context = ssl.create_default_context(cafile=str(cert))
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1, context=context).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, \
                    server.stderr.read() if server.stderr else ""
                time.sleep(0.1)
        with Store.open(store) as opened:
            JobQueue(opened).enqueue("tls-job", None, "tls-board", ModelRecord.from_file(MODEL),
                                     BenchmarkSettings(min_runs=5, min_duration_s=0.05,
                                                       warmup_runs=1, warmup_duration_s=0,
                                                       idle_power_s=0))
        common = ["agent", "--coordinator", url, "--enroll-token", SECRET, "--device",
                  "tls-board", "--once", "--poll", "0.2"]
        untrusting = bench(*common, "--name", "agent-x", "--state-dir",
                           str(tmp_path / "x"), timeout=60)
        assert untrusting.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in untrusting.stderr
        trusting = bench(*common, "--name", "agent-y", "--state-dir", str(tmp_path / "y"),
                         "--ca-cert", str(cert), timeout=120)
        assert trusting.returncode == 0, trusting.stderr
        with Store.open(store) as opened:
            assert JobQueue(opened).state("tls-job").status == DONE
    finally:
        server.kill()
        server.wait(timeout=10)


def test_bad_serve_options_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    sqlite = f"sqlite:///{tmp_path}/profiles.db"

    def bench(*args: str, store: str) -> subprocess.CompletedProcess[str]:
        return in_process(capsys, monkeypatch, {}, *args, "--store", store)

    several = bench("serve", "--enroll-token", SECRET, "--workers", "2", store=sqlite)
    assert several.returncode == 2
    assert several.stderr.strip() == ("error: several workers need a PostgreSQL store "
                                      "(--store postgresql://...): SQLite takes one writer at "
                                      "a time")
    half = bench("serve", "--enroll-token", SECRET, "--certfile", str(tmp_path / "c.pem"),
                 store=sqlite)
    assert half.stderr.strip() == "error: TLS needs both --certfile and --keyfile"
    tokenless = bench("serve", store=sqlite)
    assert "needs --enroll-token" in tokenless.stderr
