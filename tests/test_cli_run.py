"""`bench run` and `bench profiles` through the real entry point, on real onnxruntime."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hilbench.profiles import Store
from tests import modelfiles
from tests.cli import bench, bench_json, in_process, one_line_error

QUICK = ["--min-runs", "10", "--min-time", "0.05s", "--warmup", "1"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        "mlp": modelfiles.mlp(folder / "mlp.onnx", width=512, layers=4),
        "small": modelfiles.mlp(folder / "small.onnx", width=128, layers=2),
        "strings": modelfiles.string_input(folder / "strings.onnx"),
        "corrupt": modelfiles.corrupt(folder / "corrupt.onnx"),
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('store')}/profiles.db"
    for args in (["local", "--kind", "local"], ["phone", "--preset", "phone"],
                 ["board", "--preset", "jetson"]):
        assert bench("devices", "add", *args, store=url).returncode == 0
    return url


def run_ids(store: str) -> list[str]:
    with Store.open(store) as opened:
        return sorted(opened.runs().run_id)


def stored_runs(store: str) -> list[dict]:
    return bench_json("profiles", "show", "--limit", "100000", store=store)  # type: ignore[no-any-return]


def test_run_on_all_devices_gives_one_row_per_model_and_device(
    store: str, models: dict[str, Path]
) -> None:
    before = len(stored_runs(store))
    rows = bench_json("run", "--model", str(models["mlp"]), "--model", str(models["small"]),
                      "--devices", "all", *QUICK, store=store)
    assert sorted((r["model"], r["device"]) for r in rows) == [
        (m, d) for m in ("mlp", "small") for d in ("board", "local", "phone")
    ]
    for row in rows:
        assert row["status"] == "ok" and row["runs"] >= 10
        assert row["min_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
        assert row["init_ms"] > 0 and row["first_inference_ms"] > 0
        assert row["verdict"] in ("VALID", "INVALID")
        assert (row["verdict"] == "VALID") == (row["reasons"] == [])
        assert bool(row["emulated_figures"]) == (row["device"] != "local")
    assert len(stored_runs(store)) == before + 6


def test_raw_samples_are_stored(store: str, models: dict[str, Path]) -> None:
    rows = bench_json("run", "-m", str(models["small"]), "-d", "phone", *QUICK, store=store)
    stored = next(r for r in stored_runs(store) if r["run_id"] == rows[0]["run_id"])
    assert stored["count"] == rows[0]["runs"]
    assert stored["p50_ms"] == pytest.approx(rows[0]["p50_ms"])


def test_devices_by_kind_and_by_name(store: str, models: dict[str, Path]) -> None:
    by_kind = bench_json("run", "-m", str(models["small"]), "-d", "kind=phone", *QUICK, store=store)
    assert [r["device"] for r in by_kind] == ["phone"]
    by_names = bench_json("run", "-m", str(models["small"]), "-d", "local,board", *QUICK,
                          store=store)
    assert sorted(r["device"] for r in by_names) == ["board", "local"]


def test_threads_batch_and_shapes_are_applied_and_recorded(
    store: str, models: dict[str, Path]
) -> None:
    rows = bench_json("run", "-m", str(models["small"]), "-d", "local", "--threads", "1",
                      "--batch", "4", *QUICK, store=store)
    assert rows[0]["threads"] == 1 and rows[0]["input_shapes"] == {"x": [4, 128]}
    rows = bench_json("run", "-m", str(models["small"]), "-d", "local", "--shape", "x=3x128",
                      *QUICK, store=store)
    assert rows[0]["input_shapes"] == {"x": [3, 128]}


def test_verdict_names_the_rule_that_failed(store: str, models: dict[str, Path]) -> None:
    rows = bench_json("run", "-m", str(models["small"]), "-d", "local", "--min-runs", "100000",
                      "--max-time", "20ms", store=store)
    assert rows[0]["verdict"] == "INVALID"
    assert rows[0]["reasons"][0].startswith("too few runs: ")
    table = bench("run", "-m", str(models["small"]), "-d", "local", "--min-runs", "5",
                  "--max-runs", "5", "--min-time", "10s", store=store)
    assert table.returncode == 0
    assert "INVALID: too short" in table.stdout.replace("\n", " ").replace("│", "")


@pytest.mark.parametrize(
    ("model", "extra", "message"),
    [
        ("missing", [], "model file not found"),
        ("corrupt", [], "corrupt.onnx: onnxruntime cannot load it"),
        ("strings", [], "input 'text' has type tensor(string)"),
        ("small", ["-d", "nosuch"], "unknown device nosuch; registered: board, local, phone"),
        ("small", ["-d", "kind=toaster"], "no registered device of kind 'toaster'"),
        ("small", ["--shape", "y=1x2"], "--shape names unknown input(s) y"),
        ("small", ["--shape", "x=1x2x3"], "has 3 axes; the model declares 2"),
        ("small", ["--min-time", "soon"], "invalid duration 'soon'"),
        ("small", ["--threads", "0"], "threads must be >= 1"),
    ],
)
def test_bad_input_is_one_line_and_stores_nothing(
    store: str, models: dict[str, Path], tmp_path: Path, model: str, extra: list[str],
    message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = models.get(model, tmp_path / "missing.onnx")
    before = run_ids(store)
    error = one_line_error(in_process(capsys, monkeypatch, {}, "run", "-m", str(path), *QUICK,
                                      *extra, "--store", store))
    assert message in error
    assert run_ids(store) == before


def test_unreachable_store_is_one_line(models: dict[str, Path]) -> None:
    url = "postgresql://hilbench:secret@127.0.0.1:1/nowhere"
    error = one_line_error(bench("run", "-m", str(models["small"]), store=url))
    assert "127.0.0.1:1" in error and "secret" not in error


def test_export_and_import_round_trip(store: str, tmp_path: Path, models: dict[str, Path],
                                     capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def bench(*args: str, store: str) -> subprocess.CompletedProcess[str]:
        return in_process(capsys, monkeypatch, {}, *args, "--store", store)

    def stored_runs(store: str) -> list[dict]:
        shown = bench("profiles", "show", "--limit", "100000", "--json", store=store)
        return json.loads(shown.stdout)  # type: ignore[no-any-return]

    assert bench("run", "-m", str(models["small"]), "-d", "local", *QUICK,
                 store=store).returncode == 0
    original = stored_runs(store)
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"runs.{fmt}"
        exported = bench("profiles", "export", "--format", fmt, "--out", str(out), store=store)
        assert exported.returncode == 0, exported.stderr
        fresh = f"sqlite:///{tmp_path}/fresh-{fmt}.db"
        imported = bench("profiles", "import", str(out), store=fresh)
        assert f"Imported {len(original)} runs" in imported.stdout
        again = bench("profiles", "import", str(out), store=fresh)
        assert "Imported 0 runs" in again.stdout
        copied = {r["run_id"]: r for r in stored_runs(fresh)}
        for row in original:
            assert copied[row["run_id"]]["p99_ms"] == pytest.approx(row["p99_ms"], nan_ok=True)
    assert "unknown format" in one_line_error(
        bench("profiles", "export", "--format", "xlsx", "--out", str(tmp_path / "x"), store=store)
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert "missing columns" in one_line_error(bench("profiles", "import", str(bad), store=store))


def test_progress_goes_to_stderr_and_json_stays_clean(store: str, models: dict[str, Path]) -> None:
    result = bench("run", "-m", str(models["small"]), "-d", "phone", *QUICK, "--json", store=store)
    assert json.loads(result.stdout)[0]["device"] == "phone"
    assert "phone" in result.stderr


def test_usage_errors_exit_2_without_traceback(store: str) -> None:
    result = bench("run", store=store)
    assert result.returncode == 2
    assert "Missing option '--model'" in result.stderr and "Traceback" not in result.stderr
    unknown = bench("frobnicate", store=store)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
