"""`bench demo`: the first thing a new user runs, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from tests.cli import bench, bench_json
from tests.conftest import DemoStore

BUILTIN = ["emu-fpga", "emu-jetson", "emu-phone", "emu-server", "local"]


FAMILY = ["digits-transformer", "digits-transformer-int8", "digits-transformer-ffn50",
          "digits-transformer-ffn50-int8"]


def test_demo_registers_builtin_devices_and_benchmarks_the_shipped_model(
        tmp_path: Path, demo_store: DemoStore) -> None:
    """The session's demo store (tests/conftest.py) is a first `bench demo`; a copy of it
    gets the second."""
    store = demo_store.copy(tmp_path)
    variants = str(demo_store.root / "variants")
    everything = list(demo_store.rows)
    rows = [r for r in everything if r["model"] == "tiny-bert"]
    assert sorted(r["device"] for r in rows) == BUILTIN
    assert all(r["status"] == "ok" and r["runs"] >= 20 for r in everything)
    assert all(r["input_shapes"] == {"input_ids": [1, 128], "attention_mask": [1, 128]}
               for r in rows)
    by_device = {r["device"]: r for r in rows}
    # the speed models order the emulated devices: server fastest, phone slowest
    assert by_device["emu-server"]["p50_ms"] < by_device["emu-jetson"]["p50_ms"]
    assert by_device["emu-jetson"]["p50_ms"] < by_device["emu-phone"]["p50_ms"]
    family = [r for r in everything if r["model"] != "tiny-bert"]
    assert list(dict.fromkeys(r["model"] for r in family)) == FAMILY
    assert all(r["input_shapes"] == {"pixels": [64, 8, 8]} for r in family)
    top1 = {r["model"]: r["accuracy"]["top1"] for r in family}
    assert top1["digits-transformer"] > 0.98 and top1["digits-transformer-ffn50"] > 0.95
    again = bench("demo", "--variants-dir", variants, store=store)
    assert again.returncode == 0, again.stderr
    assert "hilbench results" in again.stdout and "emu-phone" in again.stdout
    assert "digits family: accuracy and latency" in again.stdout
    assert [d["device"] for d in bench_json("devices", "list", store=store)] == BUILTIN
    stored = bench_json("profiles", "show", "--limit", "500", store=store)
    assert len(stored) == 2 * 5 * 5
    # the pruned variant is faster on the phone: the faster of the two demos' runs of each
    # (a slow job of this shared host only ever raises a figure)
    p50: dict[str, float] = {}
    for r in stored:
        if r["device"] == "emu-phone":
            p50[r["model"]] = min(p50.get(r["model"], float("inf")), r["p50_ms"])
    assert p50["digits-transformer-ffn50"] < p50["digits-transformer"]


def test_demo_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    rows = bench_json("demo", "--variants-dir", str(tmp_path), store=postgres_url)
    assert sorted(r["device"] for r in rows if r["model"] == "tiny-bert") == BUILTIN
    stored = bench_json("profiles", "show", store=postgres_url)
    assert sorted(r["run_id"] for r in stored) == sorted(r["run_id"] for r in rows)
    model = Path(__file__).parents[1] / "hilbench/assets/tiny-bert.onnx"
    run_on_pg = bench("run", "-m", str(model), "-d", "kind=phone", "--min-runs", "5",
                      "--min-time", "0.05s", "--json", store=postgres_url)
    assert run_on_pg.returncode == 0, run_on_pg.stderr
    assert len(bench_json("profiles", "show", "--limit", "500", store=postgres_url)) == 5 * 5 + 1
