"""The migration mechanism: an older store is upgraded in place, keeping its data."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, create_engine, inspect, text

from hilbench.profiles import Store, migrations
from tests import factories


def _add_notes_column(connection: Connection) -> None:
    connection.execute(text("ALTER TABLE runs ADD COLUMN notes TEXT"))


def test_an_older_store_is_migrated_and_keeps_its_runs(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = factories.ok_run()
    with Store.open(store_url) as store:  # written at version 1
        store.save_run(run)
    monkeypatch.setattr(migrations, "LATEST_VERSION", 2)
    monkeypatch.setattr(migrations, "MIGRATIONS", [(2, _add_notes_column)])
    with Store.open(store_url) as store:
        assert store.measurement(run.run_id) == run.measurement
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version FROM schema_version")).scalar() == 2
        assert "notes" in {c["name"] for c in inspect(connection).get_columns("runs")}
    engine.dispose()
    with Store.open(store_url) as store:  # opening again runs nothing twice
        assert len(store.runs()) == 1
