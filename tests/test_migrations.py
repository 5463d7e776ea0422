"""Migrations: an older store is upgraded in place, keeping its data."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, create_engine, inspect, text

from hilbench.profiles import Store, migrations
from tests import factories


def _engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def _make_version_1(url: str) -> None:
    """A store as hilbench 0.1 left it: no coordinator tables, version 1."""
    engine = _engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE jobs"))
        connection.execute(text("DROP TABLE agents"))
        connection.execute(text("UPDATE schema_version SET version = 1"))
    engine.dispose()


def test_version_1_store_gains_the_coordinator_tables(store_url: str) -> None:
    run = factories.ok_run()
    with Store.open(store_url) as store:
        store.save_run(run)
    _make_version_1(store_url)
    with Store.open(store_url) as store:
        assert store.measurement(run.run_id) == run.measurement
    engine = _engine(store_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version FROM schema_version")).scalar() == 2
        assert {"agents", "jobs"} <= set(inspect(connection).get_table_names())
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
