"""Fuzzing the coordinator's HTTP API in-process (the ASGI app on a SQLite store) with
schemathesis, from its own OpenAPI document: every operation, with no token (and whatever
Authorization header schemathesis makes up) and with a registered agent's token, valid and
invalid data. No response may be a server error or break the document; results posted for
the agent's leased jobs (random ones, and mutations of a valid result) are stored or
refused whole. Afterwards the store opens again and holds exactly what it held plus what
the coordinator acknowledged: no half-written run."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hilbench.agents.protocol import ok_result
from hilbench.core.errors import StoreError
from hilbench.core.records import RUN_OK, ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.profiles import Store
from hilbench.profiles.jobs import DONE, FAILED, JobQueue
from hilbench.server.app import create_app
from tests import factories
from tests.fuzzing import examples, mutated, ran

ENROLL = "lab-enrollment-secret"
DEVICE = "fuzz-dev"
MODEL = Path(__file__).parents[1] / "hilbench/assets/digits-transformer.onnx"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
JOBS = 160  # leased to the agent before the run: results for them are the agent's to give


@dataclass
class Lab:
    url: str
    store: Store
    client: TestClient
    schema: Any
    token: str
    jobs: list[str]
    devices: set[str]
    models: int
    model_sha256: str
    acknowledged: set[str] = field(default_factory=set)  # job ids the coordinator stored
    failures: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def record(self, case: Any, response: Any) -> None:
        """Check ``response``; count each failure by check and operation (not raised at
        once: a run reports every kind of failure it met, with one example each)."""
        try:
            case.validate_response(response, checks=CHECKS)
        except (Failure, FailureGroup) as exc:
            found = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
            for failure in found:
                key = f"{type(failure).__name__}: {case.operation.label} -> {response.status_code}"
                self.failures[key] += 1
                self.examples.setdefault(key, f"{failure.title}; request: {case.method} "
                                              f"{case.formatted_path} {str(case.body)[:200]}")
        self.note(case.operation.label, case.path_parameters or {}, case.body, response)

    def note(self, label: str, path: dict[str, Any], body: Any, response: Any) -> None:
        """What a successful request added to the store."""
        if response.status_code != 200:
            return
        if label == "POST /v1/register" and isinstance(body, dict):
            self.devices.add(body["device"])
        elif label == "POST /v1/results/{job_id}" and response.json()["stored"]:
            self.acknowledged.add(path["job_id"])
        elif label == "POST /v1/results":
            for item, stored in zip(body["results"], response.json()["stored"], strict=True):
                if stored:
                    self.acknowledged.add(item["job_id"])
        elif label == "PUT /v1/models/{sha256}":
            self.models += 1


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("fuzz-api")
    url = f"sqlite:///{folder}/profiles.db"
    with Store.open(url) as store:
        model = ModelRecord.from_file(MODEL)
        store.add_model(model)
        app = create_app(store, ENROLL, lease_s=3600)
        with TestClient(app) as client:
            registered = client.post("/v1/register", json={
                "name": "fuzz-agent", "device": DEVICE, "enroll_token": ENROLL})
            assert registered.status_code == 200, registered.text
            token = registered.json()["token"]
            queue = JobQueue(store)
            jobs = [f"job-{index:03d}" for index in range(JOBS)]
            settings_ = BenchmarkSettings(min_runs=5, min_duration_s=0.0)
            for job in jobs:
                queue.enqueue(job, "fuzz", DEVICE, model, settings_)
            agent = queue.authenticate(token)
            assert agent is not None
            leased = [queue.lease(agent, 3600) for _ in jobs]
            assert all(leased)
            schema = schemathesis.openapi.from_asgi("/openapi.json", app)
            yield Lab(url, store, client, schema, token, jobs, {DEVICE}, 1, model.sha256)


def operations(schema: Any) -> dict[str, Any]:
    """The schema's operations by label (``POST /v1/register``); an operation the document
    does not describe well enough fails here."""
    found: dict[str, Any] = {}
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        found[result.ok().label] = result.ok()
    return found


def _labels() -> list[str]:
    with Store.open("sqlite://") as store:
        return sorted(operations(schemathesis.openapi.from_asgi("/openapi.json",
                                                                create_app(store, ENROLL))))


OPERATIONS = _labels()


@pytest.mark.parametrize("auth", ["no token", "agent token"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_every_operation(lab: Lab, label: str, auth: str) -> None:
    operation = operations(lab.schema)[label]
    headers = {"Authorization": f"Bearer {lab.token}"} if auth == "agent token" else None
    cases = (operation.as_strategy(GenerationMode.POSITIVE, headers=headers)
             | operation.as_strategy(GenerationMode.NEGATIVE, headers=headers))

    @settings(max_examples=examples(30))
    @given(case=cases, data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        ran(f"API {label} ({auth})")
        if "job_id" in (case.path_parameters or {}) and data.draw(st.booleans()):
            case.path_parameters["job_id"] = data.draw(st.sampled_from(lab.jobs))
        if "sha256" in (case.path_parameters or {}) and data.draw(st.booleans()):
            case.path_parameters["sha256"] = lab.model_sha256
        lab.record(case, case.call())

    run()
    server_errors = {k: v for k, v in lab.failures.items() if k.startswith("ServerError")}
    assert not server_errors, [lab.examples[k] for k in server_errors]


VALID = json.loads(ok_result("x", factories.measurement(count=20)))


@settings(max_examples=examples(60))
@given(data=st.data())
def test_results_for_leased_jobs(lab: Lab, data: st.DataObject) -> None:
    """Mutations of a valid result, posted for a job the agent holds: stored (as a
    measurement, or as a failed run with the parse error) or refused, never a 5xx."""
    ran("API results for leased jobs, mutated from valid")
    job = data.draw(st.sampled_from(lab.jobs))
    body = data.draw(mutated({**VALID, "job_id": job}, ("measurement", "samples_ns", "status"))
                     | st.just({**VALID, "job_id": job}))
    response = lab.client.post(f"/v1/results/{job}", content=json.dumps(body),
                               headers={"Authorization": f"Bearer {lab.token}",
                                        "Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        lab.note("POST /v1/results/{job_id}", {"job_id": job}, body, response)


def test_the_store_holds_exactly_what_was_acknowledged(lab: Lab) -> None:
    with Store.open(lab.url) as store:  # opened anew: what is on disk, not in a session
        runs = store.runs()
        assert set(runs.run_id) == lab.acknowledged
        assert {device.name for device in store.list_devices()} == lab.devices
        for row in runs.itertuples():
            if row.status == RUN_OK:  # a measurement with all its samples, never a part
                measured = store.measurement(str(row.run_id))
                assert len(store.samples(str(row.run_id))) == len(measured.samples_ns)
        queue = JobQueue(store)
        for job in lab.jobs:  # a job is closed exactly when its run was stored
            closed = queue.state(job).status in (DONE, FAILED)
            assert closed == (job in lab.acknowledged), job
        assert queue.model_file(ModelRecord.from_file(MODEL).sha256) is not None
        ran("API store check, runs acknowledged and found whole")
    print(f"\n{len(lab.acknowledged)} results stored, {sum(lab.failures.values())} check "
          f"failures: " + "; ".join(f"{k} x{v} ({lab.examples[k]})"
                                    for k, v in sorted(lab.failures.items())))
    # what the OpenAPI document leaves out: test_every_response_is_documented
    failed = sorted(k for k in lab.failures
                    if not k.startswith(("UndefinedStatusCode", "UndefinedContentType")))
    assert not failed, [f"{k}: {lab.examples[k]}" for k in failed]


def test_every_response_is_documented(lab: Lab) -> None:
    document = lab.client.get("/openapi.json").json()
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation.get("responses", {})
            needs = {"401"} if path not in ("/health", "/v1/register") else set()
            needs |= {"204"} if path == "/v1/lease" else set()
            needs |= {"404"} if "{" in path else set()
            missing += [f"{method.upper()} {path} {code}"
                        for code in sorted(needs - set(responses))]
            if method == "get" and path == "/v1/models/{sha256}":
                content = responses.get("200", {}).get("content", {})
                if "application/octet-stream" not in content:
                    missing.append(f"GET {path} 200 application/octet-stream")
    assert not missing, missing


def test_a_result_the_store_cannot_write_now_is_not_refused_for_good(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(f"sqlite:///{tmp_path}/profiles.db") as store:
        model = ModelRecord.from_file(MODEL)
        store.add_model(model)
        with TestClient(create_app(store, ENROLL)) as client:
            token = client.post("/v1/register", json={
                "name": "agent", "device": DEVICE, "enroll_token": ENROLL}).json()["token"]
            queue = JobQueue(store)
            queue.enqueue("job-1", None, DEVICE, model, BenchmarkSettings())
            agent = queue.authenticate(token)
            assert agent is not None and queue.lease(agent, 600) is not None

            def disk_full(*args: object) -> list[bool]:
                raise StoreError(f"store {store.url}: write failed: database or disk is full")

            monkeypatch.setattr(JobQueue, "complete_many", disk_full)
            response = client.post("/v1/results/job-1", json={**VALID, "job_id": "job-1"},
                                   headers={"Authorization": f"Bearer {token}"})
    assert response.status_code >= 500, (response.status_code, response.text)
