"""The coordinator's state in the store: agents with hashed tokens, and a job queue with
leases that expire, so that a job whose agent died goes back to the queue."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, or_, select, update

from hilbench.core.errors import StoreError
from hilbench.core.records import RUN_OK, ModelRecord, RunRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.profiles.schema import agents, jobs, models
from hilbench.profiles.store import Store, insert_run, model_id

QUEUED, LEASED, DONE, FAILED, CANCELLED = "queued", "leased", "done", "failed", "cancelled"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Agent:
    name: str
    device: str


@dataclass(frozen=True)
class LeasedJob:
    job_id: str
    device: str
    model_sha256: str
    model_format: str
    settings: BenchmarkSettings
    lease_expires_at: float
    dvfs_pin: dict[str, int] | None = None


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    campaign_id: str | None
    device: str
    model: ModelRecord
    settings: BenchmarkSettings


@dataclass(frozen=True)
class JobState:
    status: str
    error: str | None
    attempts: int


class JobQueue:
    """Queue operations, each one transaction on the store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # agents ------------------------------------------------------------------------------

    def register_agent(self, name: str, device: str) -> str:
        """(Re-)register an agent; returns its new token (only its hash is kept)."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._store.transaction() as connection:
            found = connection.execute(select(agents.c.id).where(agents.c.name == name)).first()
            values = {"device_name": device, "token_sha256": token_digest(token), "last_seen": now}
            if found is None:
                connection.execute(insert(agents).values(name=name, registered_at=now, **values))
            else:
                connection.execute(update(agents).where(agents.c.name == name).values(**values))
        return token

    def authenticate(self, token: str) -> Agent | None:
        """The agent holding ``token`` (and note that it was seen), or None."""
        digest = token_digest(token)
        with self._store.transaction() as connection:
            row = connection.execute(
                select(agents.c.name, agents.c.device_name).where(agents.c.token_sha256 == digest)
            ).first()
            if row is None:
                return None
            connection.execute(
                update(agents).where(agents.c.name == row.name).values(last_seen=time.time())
            )
        return Agent(row.name, row.device_name)

    # jobs --------------------------------------------------------------------------------

    def enqueue(self, job_id: str, campaign_id: str | None, device: str, model: ModelRecord,
                settings: BenchmarkSettings, dvfs_pin: dict[str, int] | None = None) -> None:
        with self._store.transaction() as connection:
            model_id(connection, model)
            connection.execute(insert(jobs).values(
                job_id=job_id, campaign_id=campaign_id, device_name=device,
                model_sha256=model.sha256, settings=settings.to_dict(), status=QUEUED,
                attempts=0, created_at=time.time(), dvfs_pin=dvfs_pin or None,
            ))

    def lease(self, agent: Agent, lease_s: float) -> LeasedJob | None:
        """The oldest job for the agent's device that is queued or whose lease expired."""
        now = time.time()
        available = or_(jobs.c.status == QUEUED,
                        (jobs.c.status == LEASED) & (jobs.c.lease_expires_at < now))
        with self._store.transaction() as connection:
            candidates = connection.execute(
                select(jobs.c.id).where(jobs.c.device_name == agent.device, available)
                .order_by(jobs.c.created_at, jobs.c.id).limit(5)
            ).scalars().all()
            for job_pk in candidates:
                taken = connection.execute(
                    update(jobs).where(jobs.c.id == job_pk, available).values(
                        status=LEASED, lease_agent=agent.name, lease_expires_at=now + lease_s,
                        attempts=jobs.c.attempts + 1,
                    )
                )
                if taken.rowcount == 1:
                    return _leased(connection.execute(
                        select(jobs, models.c.format).join(models,
                                                           models.c.sha256 == jobs.c.model_sha256)
                        .where(jobs.c.id == job_pk)
                    ).one()._mapping)
        return None

    def extend_leases(self, agent: Agent, lease_s: float) -> int:
        """Heartbeat: keep the agent's running jobs leased."""
        with self._store.transaction() as connection:
            result = connection.execute(
                update(jobs).where(jobs.c.lease_agent == agent.name, jobs.c.status == LEASED)
                .values(lease_expires_at=time.time() + lease_s)
            )
        return int(result.rowcount)

    def complete(self, job_id: str, agent: Agent, run: RunRecord) -> bool:
        """Store the job's run and close it, in one transaction. False (and nothing
        stored) when the job was already closed: a retried upload never duplicates."""
        with self._store.transaction() as connection:
            row = connection.execute(
                select(jobs.c.status, jobs.c.device_name).where(jobs.c.job_id == job_id)
            ).first()
            if row is None:
                raise StoreError(f"unknown job {job_id}")
            if row.device_name != agent.device:
                raise StoreError(f"job {job_id} is not for device {agent.device}")
            if row.status in (DONE, FAILED, CANCELLED):
                return False
            insert_run(connection, run)
            connection.execute(update(jobs).where(jobs.c.job_id == job_id).values(
                status=DONE if run.status == RUN_OK else FAILED, error=run.error,
                finished_at=time.time(), lease_agent=agent.name,
            ))
        return True

    def cancel(self, job_id: str) -> bool:
        """Take a job that has not finished out of the queue; its result, should an agent
        still send one, is not stored."""
        with self._store.transaction() as connection:
            result = connection.execute(
                update(jobs).where(jobs.c.job_id == job_id, jobs.c.status.in_([QUEUED, LEASED]))
                .values(status=CANCELLED, finished_at=time.time())
            )
        return bool(result.rowcount)

    def state(self, job_id: str) -> JobState:
        with self._store.connection() as connection:
            row = connection.execute(
                select(jobs.c.status, jobs.c.error, jobs.c.attempts).where(jobs.c.job_id == job_id)
            ).first()
        if row is None:
            raise StoreError(f"unknown job {job_id}")
        return JobState(row.status, row.error, row.attempts)

    def job(self, job_id: str) -> QueuedJob:
        query = select(jobs, models.c.name, models.c.format, models.c.path,
                       models.c.size_bytes).join(models, models.c.sha256 == jobs.c.model_sha256)
        with self._store.connection() as connection:
            row = connection.execute(query.where(jobs.c.job_id == job_id)).first()
        if row is None:
            raise StoreError(f"unknown job {job_id}")
        model = ModelRecord(sha256=row.model_sha256, name=row.name, format=row.format,
                            path=row.path, size_bytes=row.size_bytes)
        return QueuedJob(row.job_id, row.campaign_id, row.device_name, model,
                         BenchmarkSettings.from_dict(row.settings))

    def model_file(self, sha256: str) -> ModelRecord | None:
        with self._store.connection() as connection:
            row = connection.execute(select(models).where(models.c.sha256 == sha256)).first()
        if row is None:
            return None
        return ModelRecord(sha256=row.sha256, name=row.name, format=row.format, path=row.path,
                           size_bytes=row.size_bytes)


def _leased(row: Any) -> LeasedJob:
    return LeasedJob(
        job_id=row["job_id"], device=row["device_name"], model_sha256=row["model_sha256"],
        model_format=row["format"], settings=BenchmarkSettings.from_dict(row["settings"]),
        lease_expires_at=row["lease_expires_at"],
        dvfs_pin={str(k): int(v) for k, v in row["dvfs_pin"].items()} if row["dvfs_pin"] else None,
    )
