"""Schema versions. A new store is created at the latest version (create-all + stamp);
an older one is upgraded step by step in one transaction; a newer one is refused."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect, select

from hilbench.core.errors import NotAStoreError, SchemaTooNewError
from hilbench.profiles.schema import (
    ADDED_IN_V3,
    NULLABLE_SINCE_V3,
    accuracy,
    agents,
    jobs,
    measurements,
    metadata,
    schema_version,
)

LATEST_VERSION = 5


def _add_coordinator_tables(connection: Connection) -> None:
    """Version 2: the coordinator's agents and job queue."""
    metadata.create_all(connection, tables=[agents, jobs])


def _nullable_tool_figures(connection: Connection) -> None:
    """Version 3: summary figures a device's benchmark tool may not print become nullable,
    and new columns keep sensors sampled beside a run, energy and temperatures. SQLite
    cannot drop a NOT NULL constraint: the table is rebuilt with its rows."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("ALTER TABLE measurements RENAME TO measurements_v2")
        measurements.create(connection)
        kept = ", ".join(f'"{c.name}"' for c in measurements.columns if c.name not in ADDED_IN_V3)
        connection.exec_driver_sql(
            f"INSERT INTO measurements ({kept}) SELECT {kept} FROM measurements_v2"
        )
        connection.exec_driver_sql("DROP TABLE measurements_v2")
        return
    for name in NULLABLE_SINCE_V3:
        connection.exec_driver_sql(f'ALTER TABLE measurements ALTER COLUMN "{name}" DROP NOT NULL')
    for column in measurements.columns:
        if column.name in ADDED_IN_V3:
            kind = column.type.compile(dialect=connection.dialect)
            connection.exec_driver_sql(
                f'ALTER TABLE measurements ADD COLUMN "{column.name}" {kind}'
            )


def _dvfs_pins_and_accuracy(connection: Connection) -> None:
    """Version 4: queued jobs carry the DVFS levels to pin; accuracy of models on datasets.
    (A store upgraded from version 1 got the jobs table with its version-4 columns.)"""
    if "dvfs_pin" not in {c["name"] for c in inspect(connection).get_columns("jobs")}:
        kind = jobs.c.dvfs_pin.type.compile(dialect=connection.dialect)
        connection.exec_driver_sql(f'ALTER TABLE jobs ADD COLUMN "dvfs_pin" {kind}')
    metadata.create_all(connection, tables=[accuracy])


def _revocable_agents(connection: Connection) -> None:
    """Version 5: agents can be revoked; heartbeats find an agent's leases by index. (A store
    upgraded from version 1 got the agents table with its version-5 column.)"""
    if "revoked_at" not in {c["name"] for c in inspect(connection).get_columns("agents")}:
        kind = agents.c.revoked_at.type.compile(dialect=connection.dialect)
        connection.exec_driver_sql(f'ALTER TABLE agents ADD COLUMN "revoked_at" {kind}')
    indexes = {i["name"] for i in inspect(connection).get_indexes("jobs")}
    for index in jobs.indexes:
        if index.name not in indexes:
            index.create(connection)


# (version reached, step from the version before). Version 1 is the base schema.
MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (2, _add_coordinator_tables),
    (3, _nullable_tool_figures),
    (4, _dvfs_pins_and_accuracy),
    (5, _revocable_agents),
]


def migrate(connection: Connection, url: str) -> int:
    """Bring the store at ``url`` to LATEST_VERSION; returns the version found."""
    tables = set(inspect(connection).get_table_names())
    if "schema_version" not in tables:
        if tables:
            raise NotAStoreError(
                f"{url} holds tables that are not a hilbench store "
                f"({', '.join(sorted(tables)[:5])}); use an empty database"
            )
        metadata.create_all(connection)
        connection.execute(schema_version.insert().values(version=LATEST_VERSION))
        return 0
    version = connection.execute(select(schema_version.c.version)).scalar() or 0
    if version > LATEST_VERSION:
        raise SchemaTooNewError(
            f"store at {url} has schema version {version}; this hilbench understands up to "
            f"{LATEST_VERSION}: upgrade hilbench"
        )
    for target, step in MIGRATIONS:
        if target > version:
            step(connection)
    if version < LATEST_VERSION:
        connection.execute(schema_version.update().values(version=LATEST_VERSION))
    return version
