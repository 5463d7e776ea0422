"""`bench demo`: the first thing a new user runs, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from tests.cli import bench, bench_json

BUILTIN = ["emu-fpga", "emu-jetson", "emu-phone", "emu-server", "local"]


def test_demo_registers_builtin_devices_and_benchmarks_the_shipped_model(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    rows = bench_json("demo", store=store)
    assert sorted(r["device"] for r in rows) == BUILTIN
    assert {r["model"] for r in rows} == {"tiny-bert"}
    assert all(r["status"] == "ok" and r["runs"] >= 20 for r in rows)
    assert all(r["input_shapes"] == {"input_ids": [1, 128], "attention_mask": [1, 128]}
               for r in rows)
    by_device = {r["device"]: r for r in rows}
    # the speed models order the emulated devices: server fastest, phone slowest
    assert by_device["emu-server"]["p50_ms"] < by_device["emu-jetson"]["p50_ms"]
    assert by_device["emu-jetson"]["p50_ms"] < by_device["emu-phone"]["p50_ms"]
    again = bench("demo", store=store)
    assert again.returncode == 0, again.stderr
    assert "hilbench results" in again.stdout and "emu-phone" in again.stdout
    assert [d["device"] for d in bench_json("devices", "list", store=store)] == BUILTIN
    assert len(bench_json("profiles", "show", store=store)) == 10


def test_demo_on_postgresql(postgres_url: str) -> None:
    rows = bench_json("demo", store=postgres_url)
    assert sorted(r["device"] for r in rows) == BUILTIN
    stored = bench_json("profiles", "show", store=postgres_url)
    assert sorted(r["run_id"] for r in stored) == sorted(r["run_id"] for r in rows)
    model = Path(__file__).parents[1] / "hilbench/assets/tiny-bert.onnx"
    run_on_pg = bench("run", "-m", str(model), "-d", "kind=phone", "--min-runs", "5",
                      "--min-time", "0.05s", "--json", store=postgres_url)
    assert run_on_pg.returncode == 0, run_on_pg.stderr
    assert len(bench_json("profiles", "show", store=postgres_url)) == 6
