"""Migrations: an older store is upgraded in place, keeping its data."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Connection, create_engine, inspect, text

from hilbench.profiles import Store, migrations
from hilbench.profiles.schema import ADDED_IN_V3, NULLABLE_SINCE_V3
from tests import factories


def _engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def _require_summary_figures(connection: Connection) -> None:
    """Put back version 2's NOT NULL on every summary figure of ``measurements``."""
    if connection.dialect.name != "sqlite":
        for name in NULLABLE_SINCE_V3:
            connection.execute(text(f'ALTER TABLE measurements ALTER COLUMN "{name}" SET NOT NULL'))
        for name in ADDED_IN_V3:
            connection.execute(text(f"ALTER TABLE measurements DROP COLUMN {name}"))
        return
    ddl = connection.execute(
        text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'measurements'")
    ).scalar_one()
    for name in NULLABLE_SINCE_V3:
        ddl, found = re.subn(rf"\b{name} FLOAT,", f"{name} FLOAT NOT NULL,", ddl)
        assert found == 1, name
    for name in ADDED_IN_V3:
        ddl, found = re.subn(rf",\s*{name} [A-Z]+", "", ddl)
        assert found == 1, name
    connection.execute(text("ALTER TABLE measurements RENAME TO measurements_v3"))
    connection.execute(text(ddl))
    names = ", ".join(c["name"] for c in inspect(connection).get_columns("measurements"))
    connection.execute(text(f"INSERT INTO measurements SELECT {names} FROM measurements_v3"))
    connection.execute(text("DROP TABLE measurements_v3"))


def _make_version(url: str, version: int) -> None:
    """A store as an older hilbench left it: 4 before revocable agents, 3 also before DVFS
    pins in queued jobs and accuracy records, 2 also before tool-reported summaries, 1 also
    before the coordinator tables."""
    engine = _engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_jobs_lease_agent"))
        connection.execute(text("ALTER TABLE agents DROP COLUMN revoked_at"))
        if version <= 3:
            connection.execute(text("DROP TABLE accuracy"))
            connection.execute(text("ALTER TABLE jobs DROP COLUMN dvfs_pin"))
        if version <= 2:
            _require_summary_figures(connection)
        if version == 1:
            connection.execute(text("DROP TABLE jobs"))
            connection.execute(text("DROP TABLE agents"))
        connection.execute(text(f"UPDATE schema_version SET version = {version}"))
    engine.dispose()


def _nullable(connection: Connection) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns("measurements") if c["nullable"]}


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_older_store_is_upgraded_keeping_its_runs(store_url: str, version: int) -> None:
    run = factories.ok_run()
    with Store.open(store_url) as store:
        store.save_run(run)
    _make_version(store_url, version)
    engine = _engine(store_url)
    with engine.connect() as connection:
        if version <= 2:  # the old constraint is there
            assert not _nullable(connection) & set(NULLABLE_SINCE_V3)
    with Store.open(store_url) as store:
        assert store.measurement(run.run_id) == run.measurement
        tool_run = factories.tool_reported_run()
        store.save_run(tool_run)  # a summary without percentiles now fits
        assert store.measurement(tool_run.run_id) == tool_run.measurement
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version FROM schema_version")).scalar() == 5
        assert {"agents", "jobs", "accuracy"} <= set(inspect(connection).get_table_names())
        assert "revoked_at" in {c["name"] for c in inspect(connection).get_columns("agents")}
        assert "ix_jobs_lease_agent" in {i["name"] for i in inspect(connection).get_indexes("jobs")}
        assert "dvfs_pin" in {c["name"] for c in inspect(connection).get_columns("jobs")}
        assert set(NULLABLE_SINCE_V3) <= _nullable(connection)
    engine.dispose()


def _add_notes_column(connection: Connection) -> None:
    connection.execute(text("ALTER TABLE runs ADD COLUMN notes TEXT"))


def test_steps_run_once_in_order(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run = factories.ok_run()
    with Store.open(store_url) as store:
        store.save_run(run)
    latest = migrations.LATEST_VERSION
    monkeypatch.setattr(migrations, "LATEST_VERSION", latest + 1)
    monkeypatch.setattr(migrations, "MIGRATIONS",
                        [*migrations.MIGRATIONS, (latest + 1, _add_notes_column)])
    with Store.open(store_url) as store:
        assert store.measurement(run.run_id) == run.measurement
    with Store.open(store_url) as store:  # opening again runs nothing twice
        assert len(store.runs()) == 1
    engine = _engine(store_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version FROM schema_version")).scalar() == latest + 1
        assert "notes" in {c["name"] for c in inspect(connection).get_columns("runs")}
    engine.dispose()
