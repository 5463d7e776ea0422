"""Coordinator HTTP API. Every endpoint but /health needs an agent's bearer token, except
registration, which needs the lab's enrollment token and hands out the agent's own token."""

from __future__ import annotations

import hmac
import json
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from hilbench.agents.protocol import SCHEMA_VERSION, parse_result
from hilbench.core.errors import HilbenchError, StoreError
from hilbench.core.records import RUN_FAILED, RUN_OK, DeviceRecord, RunRecord
from hilbench.profiles.jobs import Agent, JobQueue
from hilbench.profiles.store import Store

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"


class Registration(BaseModel):
    schema_version: int = SCHEMA_VERSION
    name: str = Field(pattern=NAME)
    device: str = Field(pattern=NAME)
    enroll_token: str
    info: dict[str, Any] = Field(default_factory=dict)


class Lease(BaseModel):
    job_id: str
    job: dict[str, Any]
    model_sha256: str
    model_format: str
    lease_expires_at: float


def current_agent(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Agent:
    """The agent whose bearer token the request carries; 401 otherwise."""
    scheme, _, token = (authorization or "").partition(" ")
    queue: JobQueue = request.app.state.queue
    found = queue.authenticate(token) if scheme.lower() == "bearer" and token else None
    if found is None:
        raise HTTPException(401, "missing or invalid agent token")
    return found


Authenticated = Annotated[Agent, Depends(current_agent)]


def create_app(store: Store, enroll_token: str, lease_s: float = 30.0) -> FastAPI:
    """The coordinator on ``store``; agents must present ``enroll_token`` to register."""
    queue = JobQueue(store)
    app = FastAPI(title="hilbench coordinator", version="1")
    app.state.queue = queue

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/register")
    def register(body: Registration) -> dict[str, str]:
        if not hmac.compare_digest(body.enroll_token, enroll_token):
            raise HTTPException(401, "invalid enrollment token")
        if body.schema_version != SCHEMA_VERSION:
            side = "the coordinator" if body.schema_version > SCHEMA_VERSION else "the device"
            raise HTTPException(426, f"agent speaks job schema {body.schema_version}, the "
                                f"coordinator {SCHEMA_VERSION}: upgrade hilbench on {side}")
        known = {d.name: d for d in store.list_devices()}
        if body.device in known and known[body.device].kind != "agent":
            raise HTTPException(409, f"device {body.device} exists and is not an agent device")
        if body.device not in known:
            store.add_device(DeviceRecord(body.device, "agent", None, {"coordinator": True},
                                          {**body.info, "class": "cpu"}))
        return {"token": queue.register_agent(body.name, body.device)}

    @app.post("/v1/heartbeat")
    def heartbeat(who: Authenticated) -> dict[str, int]:
        return {"leases_extended": queue.extend_leases(who, lease_s)}

    @app.post("/v1/lease", response_model=None)
    def lease(who: Authenticated) -> Lease | Response:
        job = queue.lease(who, lease_s)
        if job is None:
            return Response(status_code=204)
        spec = {"settings": job.settings.to_dict(), "device": job.device,
                "dvfs_pin": job.dvfs_pin}
        return Lease(job_id=job.job_id, job=spec, model_sha256=job.model_sha256,
                     model_format=job.model_format, lease_expires_at=job.lease_expires_at)

    @app.post("/v1/results/{job_id}")
    def result(job_id: str, body: dict[str, Any], who: Authenticated) -> dict[str, bool]:
        run = _run_record(queue, job_id, who, body)
        try:
            stored = queue.complete(job_id, who, run)
        except StoreError as exc:
            raise HTTPException(404, str(exc)) from exc
        return {"stored": stored}

    @app.get("/v1/models/{sha256}")
    def model(sha256: str, who: Authenticated) -> FileResponse:
        found = queue.model_file(sha256)
        if found is None or not Path(found.path).is_file():
            raise HTTPException(404, f"no model {sha256[:12]} on the coordinator")
        return FileResponse(found.path, media_type="application/octet-stream")

    return app


def _run_record(queue: JobQueue, job_id: str, who: Agent, body: dict[str, Any]) -> RunRecord:
    """The run an agent's result JSON describes: its measurement, or the error it reports."""
    try:
        job = queue.job(job_id)
    except StoreError as exc:
        raise HTTPException(404, str(exc)) from exc
    now = time.time()
    try:
        measurement = parse_result(json.dumps(body), job_id)
    except HilbenchError as exc:
        return RunRecord(job_id, who.device, job.model, job.settings, RUN_FAILED, now, now,
                         error=str(exc), campaign_id=job.campaign_id)
    return RunRecord(job_id, who.device, job.model, job.settings, RUN_OK, measurement.started_at,
                     measurement.finished_at, measurement=measurement,
                     campaign_id=job.campaign_id)
