"""Shared fixtures: a fresh profile store on SQLite and on the local PostgreSQL server."""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.adblab import AdbLab, run_adb_lab
from tests.cli import InProcess, bench
from tests.sshd import SshServer, run_sshd

POSTGRES_ADMIN_URL = os.environ.get(
    "HILBENCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"hilbench_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store, once per backend. PostgreSQL is required: the project's
    machines and CI run it at 127.0.0.1:5432."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/profiles.db"
    else:
        yield from _postgres_database()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_database()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> InProcess:
    """`bench` in this process, for tests of quick commands (a new process costs a second
    or two of imports)."""
    return InProcess(capsys, monkeypatch)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A real OpenSSH sshd on loopback, for this test module."""
    yield from run_sshd(tmp_path_factory.mktemp("sshd"))


@pytest.fixture
def adb_lab(tmp_path: Path) -> Iterator[AdbLab]:
    """The real adb server and an emulated Android device, for one test."""
    yield from run_adb_lab(tmp_path)


@dataclass(frozen=True)
class DemoStore:
    """A store `bench demo` filled once per test session (its variants in ``root``):
    ``copy`` gives a test module its own store to change."""

    root: Path
    database: Path
    rows: tuple[dict[str, Any], ...] = ()  # what its `bench demo --json` printed

    def copy(self, folder: Path) -> str:
        target = folder / "profiles.db"
        shutil.copy(self.database, target)
        return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    root = tmp_path_factory.mktemp("demo-store")
    env = {"XDG_DATA_HOME": str(root / "data"), "XDG_CACHE_HOME": str(root / "cache")}
    database = root / "profiles.db"
    demo = bench("demo", "--variants-dir", str(root / "variants"), "--json",
                 store=f"sqlite:///{database}", env=env)
    assert demo.returncode == 0, demo.stderr
    return DemoStore(root, database, tuple(json.loads(demo.stdout)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many cases each fuzz target ran (tests/fuzzing.py counts them), if any ran."""
    fuzzing = sys.modules.get("tests.fuzzing")
    lines: list[str] = fuzzing.summary() if fuzzing is not None else []
    if lines:
        terminalreporter.section("fuzz cases run")
        for line in lines:
            terminalreporter.write_line(line)
