"""TFLite models through LiteRT, on this machine's CPU and on emulated devices, with the
project's own model (scripts/make_tiny_tflite.py, no TensorFlow needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import bench, bench_json, one_line_error

MODEL = Path(__file__).parents[1] / "hilbench/assets/tiny-mlp.tflite"
QUICK = ["--min-runs", "20", "--min-time", "0.1s", "--warmup-time", "0.05s"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('store')}/profiles.db"
    assert bench("devices", "add", "local", "--kind", "local", store=url).returncode == 0
    assert bench("devices", "add", "phone", "--preset", "phone", store=url).returncode == 0
    return url


def test_tflite_model_runs_on_local_and_emulated_devices(store: str) -> None:
    rows = bench_json("run", "-m", str(MODEL), "-d", "all", "--batch", "4", *QUICK, store=store)
    assert sorted(r["device"] for r in rows) == ["local", "phone"]
    for row in rows:
        assert row["status"] == "ok" and row["runs"] >= 20
        assert row["runtime"].startswith("litert ")
        assert row["input_shapes"] == {"x": [4, 256]}
    devices = bench_json("devices", "show", "local", store=store)
    assert "litert" in devices["runtimes"]


def test_corrupt_tflite_is_one_line_and_stores_nothing(store: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer" * 64)
    before = bench_json("profiles", "show", store=store)
    error = one_line_error(bench("run", "-m", str(broken), *QUICK, store=store))
    assert "broken.tflite: LiteRT cannot load it" in error
    assert bench_json("profiles", "show", store=store) == before
