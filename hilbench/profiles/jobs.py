"""The coordinator's state in the store: agents with hashed tokens (revocable), and a job
queue with leases that expire, so that a job whose agent died goes back to the queue.

Leasing is safe under concurrency: on PostgreSQL the candidate rows are locked with ``FOR
UPDATE SKIP LOCKED`` (two coordinator workers never wait on, nor take, the same job), and
everywhere the claim is a conditional UPDATE that only one transaction can win. A result is
acknowledged only after the transaction that stores it committed; a job's result is taken
only from the agent that holds (or last held) its lease."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, or_, select, update

from hilbench.core.errors import AgentRevokedError, NotYourJobError, StoreError
from hilbench.core.records import RUN_FAILED, RUN_OK, ModelRecord, RunRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.profiles.schema import agents, jobs, models
from hilbench.profiles.store import Store, insert_runs, model_id

QUEUED, LEASED, DONE, FAILED, CANCELLED = "queued", "leased", "done", "failed", "cancelled"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Agent:
    name: str
    device: str


@dataclass(frozen=True)
class AgentState:
    """An agent as ``bench agent list`` shows it."""

    name: str
    device: str
    registered_at: float
    last_seen: float
    revoked_at: float | None
    leased_jobs: int


@dataclass(frozen=True)
class NewJob:
    """A job to queue."""

    job_id: str
    campaign_id: str | None
    device: str
    model: ModelRecord
    settings: BenchmarkSettings
    dvfs_pin: dict[str, int] | None = None


@dataclass(frozen=True)
class Completion:
    """One result to store: the job, the run it produced."""

    job_id: str
    run: RunRecord


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
        """(Re-)register an agent; returns its new token (only its hash is kept). A revoked
        agent's name stays revoked: ``StoreError``."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._store.transaction() as connection:
            found = connection.execute(
                select(agents.c.id, agents.c.revoked_at).where(agents.c.name == name)).first()
            if found is not None and found.revoked_at is not None:
                raise AgentRevokedError(f"agent {name} was revoked; register it under a new "
                                        "name")
            values = {"device_name": device, "token_sha256": token_digest(token), "last_seen": now}
            if found is None:
                connection.execute(insert(agents).values(name=name, registered_at=now, **values))
            else:
                connection.execute(update(agents).where(agents.c.name == name).values(**values))
        return token

    def authenticate(self, token: str) -> Agent | None:
        """The agent holding ``token``, or None (unknown or revoked). Reads only: seeing an
        agent is ``seen``'s job, throttled by the caller."""
        digest = token_digest(token)
        with self._store.connection() as connection:
            row = connection.execute(
                select(agents.c.name, agents.c.device_name)
                .where(agents.c.token_sha256 == digest, agents.c.revoked_at.is_(None))
            ).first()
        return Agent(row.name, row.device_name) if row is not None else None

    def seen(self, names: list[str], at: float | None = None) -> None:
        """Note that these agents were seen (one UPDATE for all of them)."""
        if not names:
            return
        with self._store.transaction() as connection:
            connection.execute(update(agents).where(agents.c.name.in_(names))
                               .values(last_seen=at if at is not None else time.time()))

    def revoke(self, name: str) -> bool:
        """Revoke an agent: its token opens nothing from now on, its leases go back to the
        queue. False when there is no such agent (or it was revoked already)."""
        now = time.time()
        with self._store.transaction() as connection:
            revoked = connection.execute(
                update(agents).where(agents.c.name == name, agents.c.revoked_at.is_(None))
                .values(revoked_at=now))
            connection.execute(
                update(jobs).where(jobs.c.lease_agent == name, jobs.c.status == LEASED)
                .values(lease_expires_at=now))
        return bool(revoked.rowcount)

    def agents(self) -> list[AgentState]:
        """Every registered agent, with how many jobs it holds."""
        held = (select(jobs.c.lease_agent, func.count().label("leased"))
                .where(jobs.c.status == LEASED).group_by(jobs.c.lease_agent).subquery())
        query = (select(agents, func.coalesce(held.c.leased, 0).label("leased"))
                 .outerjoin(held, held.c.lease_agent == agents.c.name).order_by(agents.c.name))
        with self._store.connection() as connection:
            rows = connection.execute(query).all()
        return [AgentState(r.name, r.device_name, r.registered_at, r.last_seen, r.revoked_at,
                           int(r.leased)) for r in rows]

    # jobs --------------------------------------------------------------------------------

    def enqueue(self, job_id: str, campaign_id: str | None, device: str, model: ModelRecord,
                settings: BenchmarkSettings, dvfs_pin: dict[str, int] | None = None) -> None:
        self.enqueue_many([NewJob(job_id, campaign_id, device, model, settings, dvfs_pin)])

    def enqueue_many(self, new: Sequence[NewJob]) -> None:
        """Queue jobs in one transaction (one INSERT for all of them)."""
        if not new:
            return
        now = time.time()
        with self._store.transaction() as connection:
            for sha in {job.model.sha256: job.model for job in new}.values():
                model_id(connection, sha)
            connection.execute(insert(jobs), [dict(
                job_id=job.job_id, campaign_id=job.campaign_id, device_name=job.device,
                model_sha256=job.model.sha256, settings=job.settings.to_dict(), status=QUEUED,
                attempts=0, created_at=now, dvfs_pin=job.dvfs_pin or None,
                lease_agent=None, lease_expires_at=None, error=None, finished_at=None,
            ) for job in new])

    def lease(self, agent: Agent, lease_s: float) -> LeasedJob | None:
        """The oldest job for the agent's device that is queued or whose lease expired."""
        now = time.time()
        available = or_(jobs.c.status == QUEUED,
                        (jobs.c.status == LEASED) & (jobs.c.lease_expires_at < now))
        with self._store.transaction() as connection:
            candidates = connection.execute(
                select(jobs.c.id).where(jobs.c.device_name == agent.device, available)
                .order_by(jobs.c.created_at, jobs.c.id).limit(5)
                .with_for_update(skip_locked=True)  # PostgreSQL; SQLite locks the database
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

    def extend_leases(self, agent: Agent, lease_s: float,
                      job_ids: Sequence[str] | None = None) -> int:
        """Heartbeat: keep the agent's running jobs leased (those of ``job_ids`` only, when
        given: an agent restarted after a crash names none, and the job it lost goes back to
        the queue when its lease runs out). A lease is extended once a quarter of it has
        passed: an agent beating every third of a lease extends at every beat (one lost
        beat does no harm), one beating every second writes every few seconds, and an idle
        agent's beat writes nothing (an UPDATE that matches no row costs a lookup in the
        lease index, no commit to disk)."""
        now = time.time()
        held = jobs.c.lease_agent == agent.name
        if job_ids is not None:
            if not job_ids:
                return 0
            held &= jobs.c.job_id.in_(list(job_ids))
        with self._store.transaction() as connection:
            result = connection.execute(
                update(jobs).where(held, jobs.c.status == LEASED,
                                   jobs.c.lease_expires_at < now + lease_s * 3 / 4)
                .values(lease_expires_at=now + lease_s)
            )
        return int(result.rowcount)

    def complete(self, job_id: str, agent: Agent, run: RunRecord) -> bool:
        """Store the job's run and close it, in one transaction. False (and nothing
        stored) when the job was already closed: a retried upload never duplicates."""
        return self.complete_many(agent, [Completion(job_id, run)])[0]

    def complete_many(self, agent: Agent, done: list[Completion]) -> list[bool]:
        """Several results in one transaction (an agent's outbox, a batch): per result,
        whether it was stored. Any result that is not the agent's to give (unknown job,
        another device's, leased to another agent) fails the whole batch with
        ``NotYourJobError`` and stores nothing; a write that fails is ``StoreError``."""
        with self._store.transaction() as connection:
            rows = {row.job_id: row for row in connection.execute(
                select(jobs.c.job_id, jobs.c.status, jobs.c.device_name, jobs.c.lease_agent)
                .where(jobs.c.job_id.in_([d.job_id for d in done])))}
            fresh: dict[str, Completion] = {}
            for item in done:
                row = _owned(item.job_id, rows.get(item.job_id), agent)
                if row.status not in (DONE, FAILED, CANCELLED):
                    fresh.setdefault(item.job_id, item)  # a retried upload never duplicates
            insert_runs(connection, [item.run for item in fresh.values()])
            now = time.time()
            for outcome in (RUN_OK, RUN_FAILED):
                closing = [i.job_id for i in fresh.values() if (i.run.status == RUN_OK) ==
                           (outcome == RUN_OK)]
                if closing:
                    connection.execute(update(jobs).where(jobs.c.job_id.in_(closing)).values(
                        status=DONE if outcome == RUN_OK else FAILED, finished_at=now,
                        lease_agent=agent.name))
            failed = {i.job_id: i.run.error for i in fresh.values() if i.run.error}
            for job_id, error in failed.items():
                connection.execute(update(jobs).where(jobs.c.job_id == job_id)
                                   .values(error=error))
        return [fresh.get(item.job_id) is item for item in done]

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
        found = self.jobs_by_id([job_id])
        if job_id not in found:
            raise StoreError(f"unknown job {job_id}")
        return found[job_id]

    def jobs_by_id(self, job_ids: Sequence[str]) -> dict[str, QueuedJob]:
        """The jobs among ``job_ids`` that exist (one query)."""
        query = select(jobs, models.c.name, models.c.format, models.c.path,
                       models.c.size_bytes).join(models, models.c.sha256 == jobs.c.model_sha256)
        with self._store.connection() as connection:
            rows = connection.execute(query.where(jobs.c.job_id.in_(list(job_ids)))).all()
        return {row.job_id: QueuedJob(
            row.job_id, row.campaign_id, row.device_name,
            ModelRecord(sha256=row.model_sha256, name=row.name, format=row.format,
                        path=row.path, size_bytes=row.size_bytes),
            BenchmarkSettings.from_dict(row.settings)) for row in rows}

    def model_file(self, sha256: str) -> ModelRecord | None:
        with self._store.connection() as connection:
            row = connection.execute(select(models).where(models.c.sha256 == sha256)).first()
        if row is None:
            return None
        return ModelRecord(sha256=row.sha256, name=row.name, format=row.format, path=row.path,
                           size_bytes=row.size_bytes)


def _owned(job_id: str, row: Any, agent: Agent) -> Any:
    """A result is the agent's to give when the job is for its device and was last leased
    to it (or never leased: a job done by hand)."""
    if row is None:
        raise NotYourJobError(f"unknown job {job_id}")
    if row.device_name != agent.device:
        raise NotYourJobError(f"job {job_id} is not for device {agent.device}")
    if row.lease_agent is not None and row.lease_agent != agent.name:
        raise NotYourJobError(f"job {job_id} is leased to another agent")
    return row


def _leased(row: Any) -> LeasedJob:
    return LeasedJob(
        job_id=row["job_id"], device=row["device_name"], model_sha256=row["model_sha256"],
        model_format=row["format"], settings=BenchmarkSettings.from_dict(row["settings"]),
        lease_expires_at=row["lease_expires_at"],
        dvfs_pin={str(k): int(v) for k, v in row["dvfs_pin"].items()} if row["dvfs_pin"] else None,
    )
