"""Coordinator HTTP API. Every endpoint but /health needs a token: an agent's own bearer
token, except registration (the lab's enrollment token, in the body, hands out the agent's
token) and model uploads (the enrollment token as bearer: whoever may enroll agents runs
the lab).

Several workers may serve one PostgreSQL store (``bench serve --workers N``): each keeps no
state but a short-lived cache of token lookups (``TOKEN_TTL_S``; a revoked token stops
working within that time) and throttles the "last seen" writes of its agents
(``SEEN_EVERY_S``), so that a heartbeat is one indexed UPDATE of the agent's leases.
Results arrive one by one or in batches (``/v1/results``: one transaction per batch), and
are acknowledged only after their transaction committed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from hilbench.agents.protocol import SCHEMA_VERSION, parse_result
from hilbench.core.errors import (
    AgentRevokedError,
    DuplicateDeviceError,
    HilbenchError,
    NotYourJobError,
    StoreError,
    UnknownDeviceError,
)
from hilbench.core.records import RUN_FAILED, RUN_OK, DeviceRecord, ModelRecord, RunRecord
from hilbench.profiles.jobs import Agent, Completion, JobQueue, QueuedJob
from hilbench.profiles.store import POOL_SIZE, Store

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
SHA256 = r"^[0-9a-f]{64}$"
JOB_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
TOKEN_TTL_S = 5.0
SEEN_EVERY_S = 10.0
MAX_BATCH = 200
DEFAULT_MAX_MODEL_BYTES = 512 * 1024 * 1024
MODEL_FORMATS = ("onnx", "tflite")

# What each operation may answer besides 200 and 422, for the OpenAPI document.
Responses = dict[int | str, dict[str, Any]]
TOKEN: Responses = {401: {"description": "Missing, invalid or revoked agent token."},
                    503: {"description": "The store cannot be reached or written now: retry."}}
NOT_YOURS: Responses = {404: {"description": "Unknown job, another device's job, or a job "
                              "leased to another agent: retrying cannot help."}}


class Registration(BaseModel):
    schema_version: int = SCHEMA_VERSION
    name: str = Field(pattern=NAME)
    device: str = Field(pattern=NAME)
    enroll_token: str = Field(max_length=512)
    info: dict[str, Any] = Field(default_factory=dict)


class Lease(BaseModel):
    job_id: str
    job: dict[str, Any]
    model_sha256: str
    model_format: str
    lease_expires_at: float


class Heartbeat(BaseModel):
    """The jobs the agent is running (their leases are kept); without it, all it holds."""

    jobs: list[str] | None = Field(default=None, max_length=MAX_BATCH)


class BatchItem(BaseModel):
    job_id: str = Field(pattern=JOB_ID)
    result: dict[str, Any]


class Batch(BaseModel):
    results: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)


@dataclass(frozen=True)
class Limits:
    """What the coordinator accepts: lease length, uploaded model size, where uploaded
    models are kept (by their sha256, never by a name the client chose), and how long a
    token lookup is trusted."""

    lease_s: float = 30.0
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES
    models_dir: Path | None = None
    token_ttl_s: float = TOKEN_TTL_S  # how long a revoked token may still work


class TokenCache:
    """Token lookups kept ``ttl_s`` seconds, and "last seen" written for all the agents
    seen since the last write in one UPDATE, at most every ``seen_every_s``. Thread-safe
    (FastAPI runs sync endpoints in a thread pool)."""

    def __init__(self, queue: JobQueue, ttl_s: float = TOKEN_TTL_S,
                 seen_every_s: float = SEEN_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._queue, self._ttl_s, self._seen_every_s, self._clock = (
            queue, ttl_s, seen_every_s, clock)
        self._found: dict[str, tuple[Agent | None, float]] = {}
        self._pending: set[str] = set()
        self._written = -seen_every_s
        self._lock = threading.Lock()

    def agent(self, token: str) -> Agent | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            cached = self._found.get(digest)
        if cached is None or now - cached[1] > self._ttl_s:
            cached = (self._queue.authenticate(token), now)
            with self._lock:
                if len(self._found) > 100_000:
                    self._found.clear()
                self._found[digest] = cached
        found = cached[0]
        if found is not None:
            self._note_seen(found.name, now)
        return found

    def _note_seen(self, name: str, now: float) -> None:
        with self._lock:
            self._pending.add(name)
            if now - self._written < self._seen_every_s:
                return
            names, self._pending, self._written = sorted(self._pending), set(), now
        self._queue.seen(names)


def current_agent(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Agent:
    """The agent whose bearer token the request carries; 401 otherwise."""
    scheme, _, token = (authorization or "").partition(" ")
    cache: TokenCache = request.app.state.tokens
    found = cache.agent(token) if scheme.lower() == "bearer" and 0 < len(token) < 512 else None
    if found is None:
        raise HTTPException(401, "missing, invalid or revoked agent token")
    return found


Authenticated = Annotated[Agent, Depends(current_agent)]
Sha256 = Annotated[str, PathParameter(pattern=SHA256)]
JobId = Annotated[str, PathParameter(pattern=JOB_ID)]


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """As many requests in flight as the store has pooled connections (FastAPI runs sync
    endpoints in anyio's thread pool, 40 threads by default): a request never waits for a
    connection, nor opens one of its own."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = POOL_SIZE
    yield


def create_app(store: Store, enroll_token: str, lease_s: float = 30.0,
               limits: Limits | None = None) -> FastAPI:
    """The coordinator on ``store``; agents must present ``enroll_token`` to register."""
    limits = limits or Limits(lease_s=lease_s)
    queue = JobQueue(store)
    app = FastAPI(title="hilbench coordinator", version="1", lifespan=_lifespan)
    app.state.queue = queue
    app.state.tokens = TokenCache(queue, limits.token_ttl_s)

    @app.exception_handler(StoreError)
    def store_unavailable(request: Request, exc: StoreError) -> JSONResponse:
        """A store that cannot be read or written now (PostgreSQL restarting, a full disk):
        503, which an agent retries, never a 4xx it would drop its result for."""
        return JSONResponse({"detail": str(exc)}, status_code=503)

    def admin(authorization: Annotated[str | None, Header()] = None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(),
                                                                 enroll_token.encode()):
            raise HTTPException(401, "this needs the lab's enrollment token")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/register", responses={
        401: {"description": "Wrong enrollment token."},
        403: {"description": "This agent name was revoked."},
        409: {"description": "The device exists and is not an agent device."},
        426: {"description": "The agent's job schema differs from the coordinator's."},
        503: TOKEN[503]})
    def register(body: Registration) -> dict[str, str]:
        if not hmac.compare_digest(body.enroll_token.encode(), enroll_token.encode()):
            raise HTTPException(401, "invalid enrollment token")
        if body.schema_version != SCHEMA_VERSION:
            side = "the coordinator" if body.schema_version > SCHEMA_VERSION else "the device"
            raise HTTPException(426, f"agent speaks job schema {body.schema_version}, the "
                                f"coordinator {SCHEMA_VERSION}: upgrade hilbench on {side}")
        try:
            known: DeviceRecord | None = store.get_device(body.device)
        except UnknownDeviceError:
            known = None
        if known is not None and known.kind != "agent":
            raise HTTPException(409, f"device {body.device} exists and is not an agent device")
        if known is None:  # another agent of the device may register it at the same time
            with contextlib.suppress(DuplicateDeviceError):
                store.add_device(DeviceRecord(body.device, "agent", None,
                                              {"coordinator": True},
                                              {**body.info, "class": "cpu"}))
        try:
            return {"token": queue.register_agent(body.name, body.device)}
        except AgentRevokedError as exc:
            raise HTTPException(403, str(exc)) from exc

    @app.post("/v1/heartbeat", responses=TOKEN)
    def heartbeat(who: Authenticated, body: Heartbeat | None = None) -> dict[str, int]:
        jobs = body.jobs if body is not None else None
        return {"leases_extended": queue.extend_leases(who, limits.lease_s, jobs)}

    @app.post("/v1/lease", response_model=None,
              responses={204: {"description": "No job for this agent's device now."}, **TOKEN})
    def lease(who: Authenticated) -> Lease | Response:
        job = queue.lease(who, limits.lease_s)
        if job is None:
            return Response(status_code=204)
        spec = {"settings": job.settings.to_dict(), "device": job.device,
                "dvfs_pin": job.dvfs_pin}
        return Lease(job_id=job.job_id, job=spec, model_sha256=job.model_sha256,
                     model_format=job.model_format, lease_expires_at=job.lease_expires_at)

    @app.post("/v1/results/{job_id}", responses={**TOKEN, **NOT_YOURS})
    def result(job_id: JobId, body: dict[str, Any], who: Authenticated) -> dict[str, bool]:
        return {"stored": _complete(queue, who, [BatchItem(job_id=job_id, result=body)])[0]}

    @app.post("/v1/results", responses={**TOKEN, **NOT_YOURS})
    def results(body: Batch, who: Authenticated) -> dict[str, list[bool]]:
        return {"stored": _complete(queue, who, body.results)}

    @app.get("/v1/models/{sha256}", response_class=FileResponse, responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The model file."},
        404: {"description": "No such model on the coordinator."}, **TOKEN})
    def model(sha256: Sha256, who: Authenticated) -> FileResponse:
        found = queue.model_file(sha256)
        if found is None or not Path(found.path).is_file():
            raise HTTPException(404, f"no model {sha256[:12]} on the coordinator")
        return FileResponse(found.path, media_type="application/octet-stream")

    @app.put("/v1/models/{sha256}", dependencies=[Depends(admin)], responses={
        401: {"description": "This needs the lab's enrollment token."},
        404: {"description": "This coordinator takes no model uploads."},
        413: {"description": "The model is larger than the limit."}})
    async def upload(sha256: Sha256, request: Request,
                     name: Annotated[str, Query(pattern=NAME)] = "model",
                     format: str = "onnx") -> dict[str, Any]:
        if format not in MODEL_FORMATS:
            raise HTTPException(422, f"format must be one of {', '.join(MODEL_FORMATS)}")
        if limits.models_dir is None:
            raise HTTPException(404, "this coordinator takes no model uploads (--models-dir)")
        path = await _receive_model(request, sha256, format, limits)
        record = ModelRecord(sha256, name, format, str(path), path.stat().st_size)
        store.add_model(record)
        return {"sha256": sha256, "size_bytes": record.size_bytes}

    return app


def _complete(queue: JobQueue, who: Agent, items: list[BatchItem]) -> list[bool]:
    """Store results (one transaction); 404 for a job that is not the agent's to report,
    503 (the app's handler) when the store fails."""
    known = queue.jobs_by_id([item.job_id for item in items])
    unknown = [item.job_id for item in items if item.job_id not in known]
    if unknown:
        raise HTTPException(404, f"unknown job {unknown[0]}")
    try:
        done = [Completion(item.job_id, _run_record(known[item.job_id], who, item.result))
                for item in items]
        return queue.complete_many(who, done)
    except NotYourJobError as exc:
        raise HTTPException(404, str(exc)) from exc  # any other StoreError: 503


async def _receive_model(request: Request, sha256: str, fmt: str, limits: Limits) -> Path:
    """The request body written under ``models_dir`` as ``<sha256>.<format>``, once its size
    is within the limit and its bytes hash to ``sha256``; nothing is left otherwise."""
    assert limits.models_dir is not None
    limits.models_dir.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    handle, temporary = tempfile.mkstemp(dir=limits.models_dir, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_model_bytes:
                    raise HTTPException(413, f"model larger than {limits.max_model_bytes} "
                                        "bytes")
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise HTTPException(422, "the uploaded bytes do not hash to the sha256 in the URL")
        target = limits.models_dir / f"{sha256}.{fmt}"
        os.replace(temporary, target)
        return target
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _run_record(job: QueuedJob, who: Agent, body: dict[str, Any]) -> RunRecord:
    """The run an agent's result JSON describes: its measurement, or the error it reports."""
    job_id = job.job_id
    now = time.time()
    try:
        measurement = parse_result(json.dumps(body), job_id)
    except HilbenchError as exc:
        return RunRecord(job_id, who.device, job.model, job.settings, RUN_FAILED, now, now,
                         error=str(exc), campaign_id=job.campaign_id)
    return RunRecord(job_id, who.device, job.model, job.settings, RUN_OK, measurement.started_at,
                     measurement.finished_at, measurement=measurement,
                     campaign_id=job.campaign_id)


def app_from_environment() -> FastAPI:
    """The app a uvicorn worker builds (``bench serve --workers N``): the store URL, the
    enrollment token and the limits come from the environment ``bench serve`` set."""
    from hilbench.profiles.store import Store

    environment = os.environ
    store = Store.open(environment["HILBENCH_STORE"])
    models_dir = environment.get("HILBENCH_MODELS_DIR")
    limits = Limits(float(environment.get("HILBENCH_LEASE_S", "30")),
                    int(environment.get("HILBENCH_MAX_MODEL_BYTES",
                                        str(DEFAULT_MAX_MODEL_BYTES))),
                    Path(models_dir) if models_dir else None)
    return create_app(store, environment["HILBENCH_ENROLL_TOKEN"], limits.lease_s, limits)
