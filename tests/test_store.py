"""The profile store on SQLite and on PostgreSQL, as a user of the Python API sees it."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hilbench.core.errors import (
    DuplicateDeviceError,
    IncompatibleMeasurementsError,
    NotAStoreError,
    SchemaTooNewError,
    StoreError,
    StoreUnreachableError,
    UnknownDeviceError,
)
from hilbench.core.records import DeviceRecord
from hilbench.profiles import Store
from hilbench.profiles.migrations import LATEST_VERSION
from hilbench.profiles.transfer import export_runs, import_runs
from tests import factories

PHONE = DeviceRecord("phone", "emulated", "phone", info={"cpu_count": 8, "class": "phone"})
SERVER = DeviceRecord("server", "emulated", "server")


def _engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def test_devices_add_list_get_remove(store_url: str) -> None:
    with Store.open(store_url) as store:
        store.add_device(SERVER)
        store.add_device(PHONE)
        assert [d.name for d in store.list_devices()] == ["phone", "server"]
        assert store.get_device("phone") == PHONE
        store.remove_device("server")
        assert store.list_devices() == [PHONE]
        store.update_device_info("phone", {"cpu_count": 4})
        assert store.get_device("phone").info == {"cpu_count": 4}


def test_duplicates_and_unknown_names(store_url: str) -> None:
    with Store.open(store_url) as store:
        store.add_device(PHONE)
        with pytest.raises(DuplicateDeviceError, match="device phone is already registered"):
            store.add_device(replace(PHONE, kind="local", preset=None))
        assert store.list_devices() == [PHONE]
        with pytest.raises(UnknownDeviceError, match="unknown device jetson; registered: phone"):
            store.get_device("jetson")
        with pytest.raises(UnknownDeviceError, match="registered: phone"):
            store.remove_device("jetson")


def test_run_round_trip_keeps_summary_verdict_and_every_sample(store_url: str) -> None:
    run = factories.ok_run(count=20_000)
    with Store.open(store_url) as store:
        store.add_device(PHONE)
        assert store.save_run(run)
        assert not store.save_run(run)  # idempotent by run_id
    with Store.open(store_url) as reopened:
        assert reopened.measurement(run.run_id) == run.measurement
        frame = reopened.runs()
        samples = reopened.samples(run.run_id)
        assert reopened.sample_count() == 20_000
    assert len(frame) == 1
    row = frame.iloc[0]
    assert run.measurement is not None
    summary = run.measurement.summary
    assert row["count"] == 20_000 and row["p99_ms"] == pytest.approx(summary.p99_ms)
    assert row["verdict"] == run.measurement.verdict.label
    assert row["env_key"] == run.measurement.environment.compatibility_key()
    assert list(samples["latency_ms"] * 1e6) == pytest.approx(list(run.measurement.samples_ns))


def test_failed_run_is_stored_with_its_error(store_url: str) -> None:
    with Store.open(store_url) as store:
        store.save_run(factories.failed_run())
        row = store.runs().iloc[0]
    assert row["status"] == "failed" and row["error"] == "phone: agent failed: Killed"
    assert math.isnan(row["mean_ms"])


def test_removing_a_device_keeps_its_runs(store_url: str) -> None:
    with Store.open(store_url) as store:
        store.add_device(PHONE)
        run = factories.ok_run()
        store.save_run(run)
        store.remove_device("phone")
        assert list(store.runs(device="phone")["run_id"]) == [run.run_id]
        assert store.measurement(run.run_id) == run.measurement


def test_query_filters(store_url: str) -> None:
    with Store.open(store_url) as store:
        store.save_run(factories.ok_run("phone", seed=1))
        store.save_run(factories.ok_run("server", seed=2))
        assert list(store.runs(device="server")["device"]) == ["server"]
        assert len(store.runs(model="encoder")) == 2
        assert len(store.runs(model=factories.MODEL.sha256[:10])) == 2
        assert store.runs(model="other").empty
        assert list(store.runs()["device"]) == ["server", "phone"]  # newest first


def test_pooled_combines_compatible_runs_and_refuses_others(store_url: str) -> None:
    with Store.open(store_url) as store:
        store.save_run(factories.ok_run(count=100, seed=1))
        store.save_run(factories.ok_run(count=50, seed=2))
        pooled = store.pooled("phone", factories.MODEL.sha256)
        assert pooled.summary.count == 150
        store.save_run(factories.ok_run(count=10, seed=3, threads=1))
        with pytest.raises(IncompatibleMeasurementsError, match="differ in threads"):
            store.pooled("phone", factories.MODEL.sha256)


def test_a_failing_write_leaves_nothing_of_the_run(store_url: str) -> None:
    good = factories.ok_run(count=10)
    assert good.measurement is not None
    broken_measurement = replace(good.measurement, samples_ns=(*good.measurement.samples_ns, 2**63))
    broken = replace(good, measurement=broken_measurement)
    with Store.open(store_url) as store:
        with pytest.raises(StoreError, match="write failed"):
            store.save_run(broken)
        assert store.runs().empty and store.sample_count() == 0
        assert store.save_run(good)


def test_schema_newer_than_this_hilbench_is_refused_untouched(store_url: str) -> None:
    Store.open(store_url).close()
    engine = _engine(store_url)
    with engine.begin() as connection:
        newer = {"v": LATEST_VERSION + 1}
        connection.execute(text("UPDATE schema_version SET version = :v"), newer)
    with pytest.raises(SchemaTooNewError, match="upgrade hilbench"):
        Store.open(store_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version FROM schema_version")).scalar() == (
            LATEST_VERSION + 1
        )
    engine.dispose()


def test_a_database_that_is_not_a_store_is_refused(store_url: str) -> None:
    engine = _engine(store_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    with pytest.raises(NotAStoreError, match="not a hilbench store"):
        Store.open(store_url)
    engine.dispose()


def test_reopening_keeps_data(store_url: str) -> None:
    with Store.open(store_url) as store:
        store.add_device(PHONE)
    with Store.open(store_url) as store:
        assert store.list_devices() == [PHONE]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://ann:hunter2@127.0.0.1:1/x", "cannot open store postgresql+psycopg://ann:***@"),
        ("nosuchdriver://x", "unknown database driver 'nosuchdriver'"),
        ("not a url", "invalid store URL 'not a url'"),
    ],
)
def test_unreachable_stores_give_one_line(url: str, message: str) -> None:
    with pytest.raises(StoreUnreachableError) as caught:
        Store.open(url)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value) and "hunter2" not in str(caught.value)


def test_sqlite_path_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreUnreachableError, match="cannot open store sqlite:///"):
        Store.open(f"sqlite:///{blocker}/sub/profiles.db")


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_export_import_round_trip(store_url: str, tmp_path: Path, suffix: str) -> None:
    runs = [factories.ok_run(seed=1), factories.failed_run(), factories.ok_run("server", seed=2),
            factories.tool_reported_run()]
    with Store.open(store_url) as store:
        store.save_runs(runs)
        assert export_runs(store, tmp_path / f"runs.{suffix}", suffix) == 4
    with Store.open(f"sqlite:///{tmp_path}/copy.db") as copy:
        assert import_runs(copy, tmp_path / f"runs.{suffix}") == 4
        assert import_runs(copy, tmp_path / f"runs.{suffix}") == 0
        for run in runs:
            if run.measurement is not None:
                assert copy.measurement(run.run_id) == run.measurement
        assert sorted(copy.runs()["status"]) == ["failed", "ok", "ok", "ok"]


def test_a_tool_reported_summary_is_stored_as_reported(store_url: str) -> None:
    run = factories.tool_reported_run()
    with Store.open(store_url) as store:
        store.save_run(run)
        row = store.runs().iloc[0]
        assert (row["count"], row["mean_ms"], row["std_ms"]) == (50, 112.533, 0.778)
        assert row["p99_ms"] is None or row["p99_ms"] != row["p99_ms"]  # missing, not invented
        assert row["verdict"] == "VALID"
        assert store.samples(run.run_id).empty
        assert store.measurement(run.run_id) == run.measurement
        assert store.pooled("phone", run.model.sha256) == run.measurement
        store.save_run(factories.tool_reported_run())
        with pytest.raises(IncompatibleMeasurementsError, match="no raw samples"):
            store.pooled("phone", run.model.sha256)
