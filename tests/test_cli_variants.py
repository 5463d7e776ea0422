"""`bench compress` and `bench accuracy` as a user runs them, on the shipped models, with
the store on SQLite and PostgreSQL; and the emulated FPGA board that skips zero blocks."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from hilbench.profiles import Store
from hilbench.profiles.family import accuracy_frame, family, models_frame
from hilbench.variants.sparsity import read_sparsity
from tests.cli import bench, bench_json, one_line_error

ASSETS = Path(__file__).parents[1] / "hilbench/assets"
DIGITS = ASSETS / "digits-transformer.onnx"
EVAL = ASSETS / "digits-eval.npz"
TINY_BERT = ASSETS / "tiny-bert.onnx"


def test_a_grid_of_variants_with_their_lineage(store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "family"
    rows = bench_json("compress", "-m", str(DIGITS), "--prune", "ffn=0.25,0.5", "--sparsify",
                      "block=0.25", "--quantize", "int8", "--out", str(out), store=store_url)
    names = [row["name"] for row in rows]
    assert names == [f"digits-transformer-{s}" for s in (
        "ffn25", "ffn25-block25", "ffn25-block25-int8", "ffn50", "ffn50-block25",
        "ffn50-block25-int8")]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.onnx" for n in names)
    by_name = {row["name"]: row for row in rows}
    ffn50 = onnx.load(str(out / "digits-transformer-ffn50.onnx"))
    weight = next(t for t in ffn50.graph.initializer
                  if t.name.endswith("layer.0.intermediate.dense.weight"))
    assert list(weight.dims) == [64, 128]  # really shrunk: 256 -> 128 neurons
    assert by_name["digits-transformer-ffn50"]["parameter_reduction"] > 0.3
    assert by_name["digits-transformer-ffn50-block25"]["sparsity"] == pytest.approx(0.25, abs=0.03)
    sparse_int8 = read_sparsity(out / "digits-transformer-ffn50-block25-int8.onnx")
    assert sparse_int8 is not None and sparse_int8.method == "block"  # the layout carries over
    with Store.open(store_url) as store:
        members = family(store, by_name["digits-transformer-ffn25"]["parent_sha256"])
        assert len(members) == 7  # the base and its six variants
        parents = dict(zip(members.name, members.parent_sha256, strict=True))
        shas = dict(zip(members.name, members.sha256, strict=True))
        assert parents["digits-transformer-ffn50-block25-int8"] == shas[
            "digits-transformer-ffn50-block25"]
        assert parents["digits-transformer-ffn50"] == shas["digits-transformer"]
        compression = members.compression[members.name == "digits-transformer-ffn50"].iloc[0]
        assert compression["method"] == "ffn" and compression["parameters"] == {"value": 0.5}
        assert compression["report"]["layers"][0]["kept"] == 128


def test_a_structure_the_method_does_not_know_is_refused_whole(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    out = tmp_path / "out"
    refused = bench("compress", "-m", str(DIGITS), "--prune", "ffn=0.5", "--prune", "conv=0.5",
                    "--out", str(out), store=store)
    assert "prune conv channels: no Conv in the graph; first op: MatMul" in one_line_error(refused)
    assert list(out.iterdir()) == []  # the ffn variant made before the failure is not kept
    with Store.open(store) as opened:
        assert len(models_frame(opened)) == 1  # only the base
    bad_ratio = bench("compress", "-m", str(DIGITS), "--prune", "ffn=1.5", "--out", str(out),
                      store=store)
    assert "ffn=1.5: a ratio is in [0, 1)" in one_line_error(bad_ratio)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a model")
    broken = bench("compress", "-m", str(corrupt), "--quantize", "int8", "--out", str(out),
                   store=store)
    assert "cannot read model" in one_line_error(broken)
    static = bench("compress", "-m", str(DIGITS), "--quantize", "int8-static", "--out",
                   str(out), store=store)
    assert "int8-static needs --calibration" in one_line_error(static)


def test_accuracy_of_a_family_is_stored_once_per_metric(store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "family"
    assert bench("compress", "-m", str(DIGITS), "--prune", "ffn=0.5", "--quantize",
                 "int8,int8-static", "--calibration", str(EVAL), "--out", str(out),
                 store=store_url).returncode == 0
    reports = bench_json("accuracy", "--family", "digits-transformer", "--dataset", str(EVAL),
                         "--metric", "top1", "--metric", "agreement", store=store_url)
    scores = {Path(r["model_path"]).stem: r["metrics"] for r in reports}
    assert scores["digits-transformer"]["top1"]["value"] == pytest.approx(0.9889, abs=1e-3)
    assert scores["digits-transformer"]["agreement"]["value"] == 1.0
    assert scores["digits-transformer-ffn50"]["top1"]["value"] > 0.9
    assert scores["digits-transformer-ffn50-int8"]["agreement"]["value"] > 0.95
    assert all(r["runtime"] == "onnxruntime" for r in reports)
    again = bench_json("accuracy", "-m", str(out / "digits-transformer-ffn50.onnx"),
                       "--dataset", str(EVAL), "--limit", "100", store=store_url)
    assert again[0]["examples"] == 100
    with Store.open(store_url) as store:
        frame = accuracy_frame(store)
    assert len(frame) == 4 * 2 + 1  # a second top1 on the same data would replace, not add
    ffn50 = frame[(frame.model == "digits-transformer-ffn50") & (frame.metric == "top1")]
    assert sorted(ffn50.examples) == [100, 360]  # 100 examples are another dataset
    missing = bench("accuracy", "-m", str(DIGITS), "--dataset", str(tmp_path / "none.npz"),
                    store=store_url)
    assert "none.npz" in one_line_error(missing)


def test_the_fpga_board_skips_zero_blocks_where_a_cpu_does_not(tmp_path: Path) -> None:
    """Block sparsity (16x16, the board's PE tile) makes the model faster on the emulated
    FPGA board only; FFN pruning, which shrinks the tensors, makes it faster on both."""
    store = f"sqlite:///{tmp_path}/profiles.db"
    for name, option in (("local", ["--kind", "local"]), ("emu-fpga", ["--preset", "fpga"])):
        assert bench("devices", "add", name, *option, store=store).returncode == 0
    out = tmp_path / "family"
    assert bench("compress", "-m", str(TINY_BERT), "--prune", "ffn=0.5", "--sparsify",
                 "block=0.5", "--out", str(out), store=store).returncode == 0
    models = [TINY_BERT, out / "tiny-bert-ffn50.onnx", out / "tiny-bert-ffn50-block50.onnx"]
    # Twice: a job this shared host ran slowly only ever raises a figure, so each (device,
    # model) keeps the faster of its two runs.
    p50: dict[tuple[str, str], float] = {}
    for _ in range(2):
        for row in bench_json("run", *(a for m in models for a in ("-m", str(m))), "-d",
                              "local,emu-fpga", "--threads", "1", "--min-time", "0.5s",
                              "--idle-time", "0s", store=store):
            key = (row["device"], row["model"])
            p50[key] = min(p50.get(key, float("inf")), row["p50_ms"])
    for device in ("local", "emu-fpga"):
        assert p50[(device, "tiny-bert-ffn50")] < 0.9 * p50[(device, "tiny-bert")]
    fpga_gain = p50[("emu-fpga", "tiny-bert-ffn50")] / p50[("emu-fpga", "tiny-bert-ffn50-block50")]
    cpu_gain = p50[("local", "tiny-bert-ffn50")] / p50[("local", "tiny-bert-ffn50-block50")]
    assert fpga_gain > 1.4
    # the same work on the CPU: equal up to this shared 2-core host's noise (a CI run with
    # other jobs on the cores measured 1.25), and well below the board's gain
    assert 0.8 < cpu_gain < 1.3
    assert fpga_gain > cpu_gain + 0.15
