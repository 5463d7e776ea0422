"""The profile store: devices, models, runs, measurements and raw samples, in SQLite or
PostgreSQL through SQLAlchemy. Queries return pandas DataFrames."""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas
from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    create_engine,
    event,
    false,
    func,
    insert,
    select,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    SQLAlchemyError,
)

from hilbench.core.energy import EnergyReport
from hilbench.core.errors import (
    DuplicateDeviceError,
    StoreError,
    StoreUnreachableError,
    UnknownDeviceError,
)
from hilbench.core.measurement import Environment, Measurement, combine
from hilbench.core.records import RUN_OK, DeviceRecord, ModelRecord, RunRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.core.stats import OPTIONAL_STATS, LatencySummary
from hilbench.core.telemetry import Telemetry
from hilbench.core.throttle import frequency_stats_mhz, temperature_span_c
from hilbench.profiles.location import default_store_url
from hilbench.profiles.migrations import migrate
from hilbench.profiles.schema import devices, measurements, models, runs, samples, schema_version

POSTGRES_CONNECT_TIMEOUT_S = 5
POOL_SIZE = 16  # PostgreSQL connections a store keeps open (at most 1.5 x that)
SUMMARY_COLUMNS = ("count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "std_ms", "min_ms",
                   "max_ms", "cv", "init_ms", "first_inference_ms", "peak_memory_mb",
                   "energy_per_inference_mj", "active_energy_per_inference_mj", "avg_power_w",
                   "idle_power_w", "temp_start_c", "temp_end_c")


def _short(exc: BaseException) -> str:
    """The first line of a driver's message, without SQLAlchemy's SQL and links."""
    cause = getattr(exc, "orig", None) or exc.__cause__ or exc
    text = str(cause).strip() or type(cause).__name__
    return text.splitlines()[0]


def _engine_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _create_engine(parsed: URL) -> Engine:
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args = (
        {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
        if parsed.get_backend_name() == "postgresql"
        else {}
    )
    # A coordinator worker serves POOL_SIZE requests at a time (server/app.py): each finds
    # a pooled connection, so none waits for one or opens a new one per request.
    return create_engine(parsed, connect_args=connect_args, pool_pre_ping=True,
                         pool_size=POOL_SIZE, max_overflow=POOL_SIZE // 2)


def _unwritable(parsed: URL) -> str:
    """Why an SQLite file cannot be written, when the file system says so (a read-only
    mount, a folder without write permission): `` (... is not writable)`` or ``""``."""
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return ""
    path = Path(database).expanduser()
    target = path if path.exists() else path.parent
    return "" if os.access(target, os.W_OK) else f" ({target} is not writable)"


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Store:
    """Open with ``Store.open(url)``; every write is one transaction."""

    def __init__(self, engine: Engine, url: str, parsed: URL | None = None) -> None:
        self._engine = engine
        self._url = url
        self._parsed = parsed

    @classmethod
    def open(cls, url: str | None = None) -> Store:
        """Connect and migrate; ``StoreUnreachableError`` if the URL cannot be used."""
        text = url or default_store_url()
        try:
            parsed = _engine_url(text)
        except ArgumentError as exc:
            raise StoreUnreachableError(f"invalid store URL {text!r}: {_short(exc)}") from exc
        masked = parsed.render_as_string(hide_password=True)
        try:
            engine = _create_engine(parsed)
            with engine.begin() as connection:
                migrate(connection, masked)
        except (NoSuchModuleError, ImportError) as exc:
            raise StoreUnreachableError(
                f"cannot open store {masked}: unknown database driver {parsed.drivername!r}"
            ) from exc
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnreachableError(
                f"cannot open store {masked}: {_short(exc)}{_unwritable(parsed)}"
            ) from exc
        return cls(engine, masked, parsed)

    @property
    def url(self) -> str:
        """The store URL with its password masked."""
        return self._url

    def close(self) -> None:
        self._engine.dispose()

    def check_writable(self) -> None:
        """``StoreUnreachableError`` when the store can be read but not written (a database
        file on a read-only mount, a read-only database user): a run checks this before it
        measures anything. The probe takes the write lock and changes no row."""
        probe = schema_version.update().where(false()).values(version=schema_version.c.version)
        try:
            with self._engine.begin() as connection:
                connection.execute(probe)
        except SQLAlchemyError as exc:
            hint = _unwritable(self._parsed) if self._parsed is not None else ""
            raise StoreUnreachableError(
                f"cannot write to store {self._url}: {_short(exc)}{hint}"
            ) from exc

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction; database errors become ``StoreError``."""
        try:
            with self._engine.begin() as connection:
                yield connection
        except IntegrityError:
            raise
        except (SQLAlchemyError, OverflowError) as exc:  # sqlite3 raises OverflowError raw
            raise StoreError(f"store {self._url}: write failed: {_short(exc)}") from exc

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A read connection; database errors become ``StoreError``."""
        try:
            with self._engine.connect() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self._url}: read failed: {_short(exc)}") from exc

    # devices -----------------------------------------------------------------------------

    def add_device(self, device: DeviceRecord) -> None:
        """Register ``device``; ``DuplicateDeviceError`` if the name is taken."""
        duplicate = DuplicateDeviceError(f"device {device.name} is already registered")
        try:
            with self.transaction() as connection:
                if _device_id(connection, device.name) is not None:
                    raise duplicate
                connection.execute(
                    insert(devices).values(
                        name=device.name, kind=device.kind, preset=device.preset,
                        transport=device.transport, info=device.info, added_at=time.time(),
                    )
                )
        except IntegrityError as exc:
            raise duplicate from exc

    def get_device(self, name: str) -> DeviceRecord:
        with self.connection() as connection:
            row = connection.execute(select(devices).where(devices.c.name == name)).first()
            if row is None:
                raise self._unknown(connection, name)
        return _device_record(row._mapping)

    def list_devices(self) -> list[DeviceRecord]:
        with self.connection() as connection:
            rows = connection.execute(select(devices).order_by(devices.c.name)).all()
        return [_device_record(row._mapping) for row in rows]

    def remove_device(self, name: str) -> None:
        """Unregister a device; its runs stay (with the device's name)."""
        with self.transaction() as connection:
            removed = connection.execute(devices.delete().where(devices.c.name == name))
            if removed.rowcount == 0:
                raise self._unknown(connection, name)

    def update_device_info(self, name: str, info: dict[str, Any]) -> None:
        with self.transaction() as connection:
            updated = connection.execute(
                devices.update().where(devices.c.name == name).values(info=info)
            )
            if updated.rowcount == 0:
                raise self._unknown(connection, name)

    @staticmethod
    def _unknown(connection: Connection, name: str) -> UnknownDeviceError:
        names = connection.execute(select(devices.c.name).order_by(devices.c.name)).scalars()
        return UnknownDeviceError(
            f"unknown device {name}; registered: {', '.join(names) or 'none'}"
        )

    # models and runs ---------------------------------------------------------------------

    def add_model(self, model: ModelRecord) -> None:
        """Record a model; a model already known by its sha256 is kept as it is."""
        with self.transaction() as connection:
            model_id(connection, model)

    def save_run(self, run: RunRecord) -> bool:
        """Store a run with its measurement and every raw sample, all or nothing.
        Returns False when a run with this ``run_id`` is already stored."""
        return self.save_runs([run]) == 1

    def save_runs(self, records: Sequence[RunRecord]) -> int:
        """Store several runs in one transaction; returns how many were new."""
        with self.transaction() as connection:
            return sum(insert_runs(connection, records))

    # queries -----------------------------------------------------------------------------

    def runs(self, device: str | None = None, model: str | None = None) -> pandas.DataFrame:
        """One row per run, newest first, with its summary and verdict (NaN when failed)."""
        query = _runs_query()
        if device is not None:
            query = query.where(runs.c.device_name == device)
        if model is not None:
            query = query.where((models.c.name == model) | models.c.sha256.startswith(model))
        with self.connection() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        frame = pandas.DataFrame(rows, columns=list(query.selected_columns.keys()))
        for column in SUMMARY_COLUMNS:  # failed runs have no summary: NaN, not None
            frame[column] = pandas.to_numeric(frame[column]).astype(float)
        for column in ("reasons", "emulated_figures"):
            separator = "; " if column == "reasons" else ","
            frame[column] = [separator.join(v) if v else "" for v in frame[column]]
        return frame

    def samples(self, run_id: str) -> pandas.DataFrame:
        """The raw latencies of one run, in the order they were measured."""
        query = (
            select(runs.c.run_id, samples.c.idx, (samples.c.latency_ns / 1e6).label("latency_ms"))
            .join(runs, runs.c.id == samples.c.run_id)
            .where(runs.c.run_id == run_id)
            .order_by(samples.c.idx)
        )
        with self.connection() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        return pandas.DataFrame(rows, columns=["run_id", "idx", "latency_ms"])

    def measurement(self, run_id: str) -> Measurement:
        """Rebuild a stored measurement, raw samples included."""
        with self.connection() as connection:
            found = _load_measurements(connection, [run_id])
        if run_id not in found:
            raise StoreError(f"no measurement stored for run {run_id}")
        return found[run_id]

    def run_records(self) -> list[RunRecord]:
        """Every stored run as a record (used by export)."""
        with self.connection() as connection:
            rows = connection.execute(_records_query()).all()
            loaded = _load_measurements(connection, [r.run_id for r in rows if r.status == RUN_OK])
        return [_run_record(row._mapping, loaded.get(row.run_id)) for row in rows]

    def pooled(self, device: str, model_sha256: str) -> Measurement:
        """All successful runs of a model on a device as one measurement; raises
        ``IncompatibleMeasurementsError`` when they were taken in different environments."""
        query = (
            select(runs.c.run_id)
            .join(models, models.c.id == runs.c.model_id)
            .where(runs.c.device_name == device, models.c.sha256 == model_sha256,
                   runs.c.status == RUN_OK)
            .order_by(runs.c.started_at)
        )
        with self.connection() as connection:
            run_ids = list(connection.execute(query).scalars())
            loaded = _load_measurements(connection, run_ids)
        if not loaded:
            raise StoreError(f"no successful run of model {model_sha256[:12]} on {device}")
        return combine([loaded[r] for r in run_ids])

    def sample_count(self) -> int:
        with self.connection() as connection:
            return int(connection.execute(select(func.count()).select_from(samples)).scalar() or 0)


# ---- rows <-> records -------------------------------------------------------------------


def _device_id(connection: Connection, name: str) -> int | None:
    return connection.execute(select(devices.c.id).where(devices.c.name == name)).scalar()


def _device_record(row: Any) -> DeviceRecord:
    return DeviceRecord(
        name=row["name"], kind=row["kind"], preset=row["preset"],
        transport=dict(row["transport"] or {}), info=dict(row["info"] or {}),
    )


def model_id(connection: Connection, model: ModelRecord) -> int:
    query = select(models.c.id).where(models.c.sha256 == model.sha256)
    found = connection.execute(query).scalar()
    if found is not None:
        return int(found)
    values = {
        "sha256": model.sha256, "name": model.name, "format": model.format, "path": model.path,
        "size_bytes": model.size_bytes, "parent_sha256": model.parent_sha256,
        "compression": model.compression, "added_at": time.time(),
    }
    try:
        with connection.begin_nested():
            return _inserted_id(connection.execute(insert(models).values(**values)))
    except IntegrityError:  # another writer added the same model just now
        return int(connection.execute(query).scalar_one())


def _inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise StoreError("the database did not return the new row's id")
    return int(key[0])


def insert_run(connection: Connection, run: RunRecord) -> int:
    return sum(insert_runs(connection, [run]))


def insert_runs(connection: Connection, records: Sequence[RunRecord]) -> list[bool]:
    """Insert runs not stored yet (by ``run_id``, a retried upload is no duplicate) in the
    caller's transaction; per run, whether it was new. Device and model ids are looked up
    once per batch, and every raw sample of the batch goes in one bulk write (COPY on
    PostgreSQL): a coordinator ingests an agent's outbox in one round of statements."""
    ids = [run.run_id for run in records]
    stored = set(connection.execute(select(runs.c.run_id).where(runs.c.run_id.in_(ids)))
                 .scalars())
    device_ids = {name: _device_id(connection, name) for name in {r.device for r in records}}
    model_ids = {r.model.sha256: model_id(connection, r.model) for r in records}
    new, fresh = [], []
    for run in records:
        new.append(run.run_id not in stored)
        if new[-1]:
            stored.add(run.run_id)
            fresh.append(run)
    if not fresh:
        return new
    returned = connection.execute(
        insert(runs).returning(runs.c.id, runs.c.run_id, sort_by_parameter_order=True),
        [_run_values(run, device_ids[run.device], model_ids[run.model.sha256])
         for run in fresh]).all()
    pks = {row.run_id: int(row.id) for row in returned}
    measured = [(pks[run.run_id], run.measurement) for run in fresh
                if run.measurement is not None]
    if measured:
        connection.execute(insert(measurements),
                           [_measurement_values(pk, m) for pk, m in measured])
    _insert_samples(connection, [(pk, i, ns) for pk, m in measured
                                 for i, ns in enumerate(m.samples_ns)])
    return new


ENVIRONMENT_COLUMNS = ("environment", "env_key", "runtime", "runtime_version",
                       "execution_provider", "threads", "dvfs")


def _run_values(run: RunRecord, device_pk: int | None, model_pk: int) -> dict[str, Any]:
    """A run's row (every column given, so that rows insert together)."""
    environment = run.measurement.environment if run.measurement else None
    values: dict[str, Any] = {
        "run_id": run.run_id, "campaign_id": run.campaign_id, "device_id": device_pk,
        "device_name": run.device, "model_id": model_pk, "status": run.status,
        "error": run.error, "settings": run.settings.to_dict(), "started_at": run.started_at,
        "finished_at": run.finished_at,
        **(_environment_columns(environment) if environment is not None
           else dict.fromkeys(ENVIRONMENT_COLUMNS)),
    }
    return values


def _insert_samples(connection: Connection, rows: list[tuple[int, int, int]]) -> None:
    """Raw samples, (run pk, index, ns) each: COPY on PostgreSQL, executemany elsewhere."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        import psycopg

        driver = connection.connection.driver_connection
        assert driver is not None
        statement = "COPY samples (run_id, idx, latency_ns) FROM STDIN"
        try:
            with driver.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as exc:  # below SQLAlchemy: make it one of its errors
            raise DBAPIError(statement, None, exc) from exc
        return
    connection.execute(insert(samples), [{"run_id": r, "idx": i, "latency_ns": ns}
                                         for r, i, ns in rows])


def _environment_columns(environment: Environment) -> dict[str, Any]:
    return {
        "environment": environment.to_dict(), "env_key": environment.compatibility_key(),
        "runtime": environment.runtime, "runtime_version": environment.runtime_version,
        "execution_provider": environment.execution_provider, "threads": environment.threads,
        "dvfs": environment.dvfs.to_dict(),
    }


def pack_telemetry(telemetry: Telemetry | None) -> bytes | None:
    if telemetry is None:
        return None
    return zlib.compress(json.dumps(telemetry.to_dict(), separators=(",", ":")).encode(), 6)


def unpack_telemetry(packed: bytes | None) -> Telemetry | None:
    if not packed:
        return None
    return Telemetry.from_dict(json.loads(zlib.decompress(packed)))


def _energy_columns(measurement: Measurement) -> dict[str, Any]:
    energy = measurement.energy
    start_c, end_c = temperature_span_c(measurement.telemetry)
    return {
        "telemetry": pack_telemetry(measurement.telemetry),
        "energy": energy.to_dict() if energy else None,
        "energy_per_inference_mj": energy.energy_per_inference_mj if energy else None,
        "active_energy_per_inference_mj": energy.active_energy_per_inference_mj
        if energy else None,
        "avg_power_w": energy.avg_power_w if energy else None,
        "idle_power_w": energy.idle_power_w if energy else None,
        "temp_start_c": start_c, "temp_end_c": end_c,
        "frequencies_mhz": frequency_stats_mhz(measurement.telemetry),
        "notes": list(measurement.notes),
    }


def _measurement_values(run_pk: int, measurement: Measurement) -> dict[str, Any]:
    summary = measurement.summary
    verdict = measurement.verdict
    return dict(
        run_id=run_pk, count=summary.count, mean_ms=summary.mean_ms, p50_ms=summary.p50_ms,
        p90_ms=summary.p90_ms, p99_ms=summary.p99_ms, std_ms=summary.std_ms,
        min_ms=summary.min_ms, max_ms=summary.max_ms, cv=summary.cv,
        timed_duration_s=measurement.timed_duration_s, init_ms=measurement.init_ms,
        first_inference_ms=measurement.first_inference_ms,
        peak_memory_mb=measurement.peak_memory_mb, verdict=verdict.label,
        reasons=list(verdict.reasons), emulated_figures=list(measurement.emulated_figures),
        unavailable_figures=list(measurement.unavailable_figures),
        started_at=measurement.started_at, finished_at=measurement.finished_at,
        **_energy_columns(measurement),
    )


def _runs_query() -> Any:
    return (
        select(
            runs.c.run_id, runs.c.campaign_id, runs.c.device_name.label("device"),
            models.c.name.label("model"), models.c.sha256.label("model_sha256"), runs.c.status,
            runs.c.error, runs.c.runtime, runs.c.runtime_version, runs.c.threads, runs.c.env_key,
            runs.c.started_at, runs.c.finished_at,
            *(measurements.c[name] for name in SUMMARY_COLUMNS),
            measurements.c.verdict, measurements.c.reasons, measurements.c.emulated_figures,
        )
        .join(models, models.c.id == runs.c.model_id)
        .outerjoin(measurements, measurements.c.run_id == runs.c.id)
        .order_by(runs.c.started_at.desc(), runs.c.id.desc())
    )


def _records_query() -> Any:
    return (
        select(runs, models.c.sha256, models.c.name.label("model_name"), models.c.format,
               models.c.path, models.c.size_bytes, models.c.parent_sha256, models.c.compression)
        .join(models, models.c.id == runs.c.model_id)
        .order_by(runs.c.started_at, runs.c.id)
    )


def _load_measurements(connection: Connection, run_ids: Iterable[str]) -> dict[str, Measurement]:
    wanted = list(run_ids)
    if not wanted:
        return {}
    query = (
        select(runs.c.id, runs.c.run_id, runs.c.settings, runs.c.environment, measurements)
        .join(measurements, measurements.c.run_id == runs.c.id)
        .where(runs.c.run_id.in_(wanted))
    )
    found: dict[str, Measurement] = {}
    for row in connection.execute(query):
        latencies = connection.execute(
            select(samples.c.latency_ns).where(samples.c.run_id == row.id).order_by(samples.c.idx)
        ).scalars()
        found[row.run_id] = _measurement(row._mapping, tuple(int(v) for v in latencies))
    return found


def _reported(row: Any) -> LatencySummary:
    """The summary a device's benchmark tool printed, as stored (no raw samples)."""
    return LatencySummary(
        count=row["count"], mean_ms=row["mean_ms"], **{name: row[name] for name in OPTIONAL_STATS}
    )


def _measurement(row: Any, latencies: tuple[int, ...]) -> Measurement:
    return Measurement(
        environment=Environment.from_dict(row["environment"]),
        settings=BenchmarkSettings.from_dict(row["settings"]), samples_ns=latencies,
        timed_duration_s=row["timed_duration_s"], init_ms=row["init_ms"],
        first_inference_ms=row["first_inference_ms"], peak_memory_mb=row["peak_memory_mb"],
        started_at=row["started_at"], finished_at=row["finished_at"],
        emulated_figures=tuple(row["emulated_figures"]),
        unavailable_figures=tuple(row["unavailable_figures"]),
        reported=None if latencies else _reported(row),
        telemetry=unpack_telemetry(row["telemetry"]),
        energy=EnergyReport.from_dict(row["energy"]) if row["energy"] else None,
        notes=tuple(row["notes"] or ()),
    )


def _run_record(row: Any, measurement: Measurement | None) -> RunRecord:
    model = ModelRecord(
        sha256=row["sha256"], name=row["model_name"], format=row["format"], path=row["path"],
        size_bytes=row["size_bytes"], parent_sha256=row["parent_sha256"],
        compression=dict(row["compression"] or {}),
    )
    return RunRecord(
        run_id=row["run_id"], device=row["device_name"], model=model,
        settings=BenchmarkSettings.from_dict(row["settings"]), status=row["status"],
        started_at=row["started_at"], finished_at=row["finished_at"], measurement=measurement,
        error=row["error"], campaign_id=row["campaign_id"],
    )
