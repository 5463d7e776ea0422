"""`bench devices ...` through the real entry point."""

from __future__ import annotations

import pytest

from tests.cli import InProcess, bench, one_line_error


@pytest.fixture
def store(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path}/profiles.db"


def test_add_probes_and_lists_devices(store: str, cli: InProcess) -> None:
    added = cli.bench("devices", "add", "bench-phone", "--preset", "phone", store=store)
    assert added.returncode == 0, added.stderr
    assert cli.bench("devices", "add", "me", "--kind", "local", store=store).returncode == 0
    rows = cli.json("devices", "list", store=store)
    assert [r["device"] for r in rows] == ["bench-phone", "me"]
    phone = rows[0]
    assert (phone["kind"], phone["preset"], phone["class"]) == ("emulated", "phone", "phone")
    assert phone["cpu_count"] == 8 and phone["dvfs_domains"] == ["cpu0-3", "cpu4-7"]
    assert phone["os"] == "Android 14 (emulated)"
    assert "onnxruntime" in phone["runtimes"]
    assert rows[1]["class"] == "cpu" and rows[1]["cpu_count"] >= 1
    table = cli.bench("devices", "list", store=store).stdout
    assert "bench-phone" in table and "cpu4-7" in table


def test_show_prints_dvfs_levels_and_runtimes(store: str, cli: InProcess) -> None:
    cli.bench("devices", "add", "j", "--preset", "jetson", store=store)
    shown = cli.bench("devices", "show", "j", store=store)
    assert shown.returncode == 0, shown.stderr
    assert "levels(MHz)=[115, 422, 729, 1036, 1344, 1510]" in shown.stdout
    assert "onnxruntime" in shown.stdout and "runs:     0" in shown.stdout
    data = cli.json("devices", "show", "j", store=store)
    assert data["info"]["memory_mb"] == 8192 and data["runs"] == 0


def test_duplicate_is_refused_and_store_unchanged(store: str, cli: InProcess) -> None:
    cli.bench("devices", "add", "p", "--preset", "phone", store=store)
    before = cli.json("devices", "list", store=store)
    error = one_line_error(cli.bench("devices", "add", "p", "--preset", "server", store=store))
    assert error == "error: device p is already registered"
    assert cli.json("devices", "list", store=store) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad;name", "--preset", "phone"], "invalid device name 'bad;name'"),
        (["x", "--preset", "toaster"], "unknown emulated preset 'toaster'; choose one of: fpga"),
        (["x", "--kind", "teleporter"], "unknown device kind 'teleporter'"),
        (["x", "--kind", "emulated"], "an emulated device needs --preset"),
        (["x", "--kind", "local", "--preset", "phone"], "--preset applies to emulated devices"),
    ],
)
def test_invalid_definitions_are_refused(store: str, args: list[str], message: str,
                                         cli: InProcess) -> None:
    assert message in one_line_error(cli.bench("devices", "add", *args, store=store))
    assert cli.json("devices", "list", store=store) == []


def test_remove_and_unknown_names(store: str, cli: InProcess) -> None:
    cli.bench("devices", "add", "a", "--preset", "fpga", store=store)
    cli.bench("devices", "add", "b", "--preset", "server", store=store)
    assert cli.bench("devices", "remove", "a", store=store).returncode == 0
    assert [r["device"] for r in cli.json("devices", "list", store=store)] == ["b"]
    error = one_line_error(cli.bench("devices", "remove", "a", store=store))
    assert error == "error: unknown device a; registered: b"
    unknown = cli.bench("devices", "show", "nope", store=store)
    assert "unknown device nope" in one_line_error(unknown)


def test_default_store_lives_in_the_user_data_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    assert bench("devices", "add", "p", "--preset", "phone", env=env).returncode == 0
    assert (tmp_path / "data" / "hilbench" / "profiles.db").is_file()
    via_env = bench("devices", "list", "--json", env={"HILBENCH_STORE": f"sqlite:///{tmp_path}/x.db"})
    assert via_env.returncode == 0 and via_env.stdout.strip() == "[]"
