"""`bench predictor train | eval | show | calibrate` and `bench predict` as a user runs them:
on a store filled by `bench demo`, with two emulated devices calibrated on the reference set
(one demo and one calibration for the whole module: they take most of its time)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import helper

from hilbench.core.records import ModelRecord
from hilbench.predictor.references import REFERENCES
from hilbench.predictor.spaces import nb201
from hilbench.profiles import Store
from tests.cli import bench, in_process, one_line_error
from tests.conftest import DemoStore
from tests.modelfiles import corrupt

TINY_BERT = Path(__file__).parents[1] / "hilbench/assets/tiny-bert.onnx"
CALIBRATED = ["emu-jetson", "emu-server"]
# short runs: this tests the flow, not the figures (and the shared host is noisy)
FAST = ["--warmup", "1", "--warmup-time", "0s", "--min-runs", "5", "--min-time", "0.02s",
        "--idle-time", "0s", "--max-cv", "1"]
NEW_CELL = "|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|"
OTHER_CELL = ("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|"
              "nor_conv_3x3~2|")


@dataclass(frozen=True)
class Lab:
    root: Path
    store: str
    demo_only: str
    env: dict[str, str]
    calibration: dict[str, Any]

    def bench(self, *args: str, store: str | None = None) -> subprocess.CompletedProcess[str]:
        storeless = args[:2] == ("predictor", "show")  # reads the artifact only
        return bench(*args, store=None if storeless else store or self.store, env=self.env)

    def json(self, *args: str, store: str | None = None) -> Any:
        result = self.bench(*args, "--json", store=store)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def main(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
             *args: str) -> subprocess.CompletedProcess[str]:
        return in_process(capsys, monkeypatch, self.env, *args)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, demo_store: DemoStore) -> Lab:
    root = tmp_path_factory.mktemp("predictor")
    env = {"XDG_DATA_HOME": str(root / "data"), "XDG_CACHE_HOME": str(root / "cache")}
    store = demo_store.copy(root)
    shutil.copy(root / "profiles.db", root / "demo-only.db")
    calibrated = bench("predictor", "calibrate", *CALIBRATED, *FAST, "--json", store=store,
                       env=env)
    assert calibrated.returncode == 0, calibrated.stderr
    return Lab(root, store, f"sqlite:///{root}/demo-only.db", env, json.loads(calibrated.stdout))


def _save(graph: onnx.GraphProto, path: Path, *domains: str) -> Path:
    imports = [helper.make_opsetid("", 17), *(helper.make_opsetid(d, 1) for d in domains)]
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def never_measured(path: Path, custom_op: bool = False) -> Path:
    """An NAS-Bench-201 network outside the reference set; with ``custom_op``, its logits go
    through an op of a custom domain (a kernel no training run has)."""
    model = nb201.build(NEW_CELL)
    graph = model.graph
    if custom_op:
        old = graph.output[0].name
        for node in graph.node:
            node.output[:] = ["pre_foo" if o == old else o for o in node.output]
        graph.node.append(helper.make_node("Foo", ["pre_foo"], [old], domain="com.example"))
    return _save(graph, path, *(["com.example"] if custom_op else []))


def test_the_new_networks_are_not_references() -> None:
    sources = {r.source for r in REFERENCES}
    assert f"nb201:{NEW_CELL}" not in sources and f"nb201:{OTHER_CELL}" not in sources


def test_too_little_data_is_one_clear_line(lab: Lab, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    refused = lab.main(capsys, monkeypatch, "predictor", "train", "--store", lab.demo_only)
    message = one_line_error(refused)
    assert "25 measurements on 5 devices are too few to train" in message
    assert "bench predictor calibrate DEVICE" in message
    empty = lab.main(capsys, monkeypatch, "predictor", "train", "--store",
                     f"sqlite:///{lab.root}/empty.db")
    assert "0 measurements on 0 devices are too few to train" in one_line_error(empty)


def test_calibrate_stores_the_reference_runs_and_the_devices_then_predict(lab: Lab) -> None:
    runs = lab.calibration["runs"]
    assert sorted({r["device"] for r in runs}) == CALIBRATED
    assert sorted(r["model"] for r in runs) == sorted([r.name for r in REFERENCES] * 2)
    assert all(r["status"] == "ok" for r in runs)
    with Store.open(lab.store) as store:  # normal runs, next to the demo's
        stored = store.runs(device="emu-server")
    assert {r.name for r in REFERENCES} <= set(stored.model)
    assert "tiny-bert" in set(stored.model)
    devices = lab.calibration["devices"]
    for name in CALIBRATED:
        assert devices[name]["references"] == len(REFERENCES)
        assert devices[name]["transfer"] and devices[name]["source"] == "device"
    assert Path(lab.calibration["artifact"]).is_file()


def test_train_writes_a_versioned_artifact_and_show_lists_the_devices(
        lab: Lab, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    out = lab.root / "trained.hbp"
    trained = lab.json("predictor", "train", "--out", str(out), "--coverage", "0.8")
    assert trained["artifact"] == str(out) and out.is_file()
    assert trained["coverage"] == 0.8 and trained["transfer_devices"] == CALIBRATED
    assert trained["rows"] == 5 * 5 + 2 * len(REFERENCES)
    assert len(trained["training_set_id"]) == 64
    showing = lab.main(capsys, monkeypatch, "predictor", "show", "--artifact", str(out),
                       "--json")
    assert showing.returncode == 0, showing.stderr
    shown = json.loads(showing.stdout)
    assert sorted(shown["devices"]) == ["emu-fpga", "emu-jetson", "emu-phone", "emu-server",
                                        "local"]
    assert shown["devices"]["emu-server"]["rows"] == 5 + len(REFERENCES)
    assert shown["devices"]["emu-phone"]["source"] is None
    for key in ("hilbench_version", "sklearn_version", "feature_schema_version",
                "feature_names_sha256", "payload_sha256", "created_at"):
        assert shown[key]
    text = lab.main(capsys, monkeypatch, "predictor", "show", "--artifact", str(out))
    assert text.returncode == 0, text.stderr
    assert "emu-server" in text.stdout and "device model (+ transfer)" in text.stdout


def test_predict_measured_new_and_unseen_models(
        lab: Lab, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    plain = never_measured(lab.root / "new-cell.onnx")
    custom = never_measured(lab.root / "new-cell-foo.onnx", custom_op=True)
    rows = lab.json("predict", "-m", str(TINY_BERT), "-m", str(plain), "-m", str(custom),
                    "--devices", "emu-server,emu-phone,emu-jetson")
    by = {(r["model"], r["device"]): r for r in rows}
    assert len(rows) == 9
    bert = by[("tiny-bert", "emu-server")]
    assert bert["source"] == "device" and bert["measured_ms"] is not None
    assert 1 / 3 < bert["predicted_ms"] / bert["measured_ms"] < 3
    assert bert["lower"] < bert["predicted_ms"] < bert["upper"]
    phone = by[("tiny-bert", "emu-phone")]
    assert phone["predicted_ms"] is None and phone["measured_ms"] is not None
    assert "bench predictor calibrate emu-phone" in phone["notes"][0]
    for device in ("emu-server", "emu-jetson"):
        new = by[("new-cell", device)]
        assert new["measured_ms"] is None and new["notes"] == []
        assert 0 < new["lower"] < new["predicted_ms"] < new["upper"]
        foo = by[("new-cell-foo", device)]
        assert "unseen op: com.example:Foo (1 node)" in foo["notes"]
        assert foo["lower"] < foo["predicted_ms"] < foo["upper"]
        widening = (foo["upper"] / foo["predicted_ms"]) / (new["upper"] / new["predicted_ms"])
        assert widening >= 1.9  # at least 2x on the upper side (medians differ a little)
    table = lab.main(capsys, monkeypatch, "predict", "-m", str(custom), "--devices",
                     "emu-server,local", "--store", lab.store)
    assert table.returncode == 0, table.stderr
    assert "unseen op: com.example:Foo (1 node)" in table.stdout
    assert "bench predictor calibrate local" in table.stdout


def test_a_model_unlike_the_training_set_says_so(lab: Lab) -> None:
    """The shipped TFLite MLP is hundreds of times smaller than any network the devices
    measured, and they measured with onnxruntime, not LiteRT: both are said, and the
    interval widens with the distance."""
    mlp = Path(__file__).parents[1] / "hilbench/assets/tiny-mlp.tflite"
    rows = lab.json("predict", "-m", str(mlp), "-m", str(TINY_BERT), "--devices", "emu-server")
    by = {r["model"]: r for r in rows}
    small, bert = by["tiny-mlp"], by["tiny-bert"]
    outside = [n for n in small["notes"] if n.startswith("extrapolated: ")]
    assert len(outside) == 1 and "below the smallest it was trained on" in outside[0]
    assert "trained on onnxruntime runs: the estimate is onnxruntime's latency, not " \
        "litert's" in small["notes"]
    assert small["upper"] / small["predicted_ms"] > 3 * bert["upper"] / bert["predicted_ms"]
    assert bert["notes"] == []


def test_select_ranks_predicted_candidates_by_their_upper_bound(lab: Lab) -> None:
    """A network nobody measured: the calibrated devices get predicted candidates (energy
    from their measured power), the others say what to run; the pick's upper bound meets LC
    and a tighter LC than every upper bound is nearest-only."""
    new = never_measured(lab.root / "select-cell.onnx")
    rows = lab.json("predict", "-m", str(new), "--devices", "emu-server,emu-jetson")
    upper = {r["device"]: r["upper"] for r in rows}
    result = lab.bench("select", "-m", str(new), "--lc", f"{max(upper.values()) * 1.01}ms",
                       "--devices", "emu-server,emu-jetson,emu-phone", "--objective",
                       "latency", "--percentile", "p50", "--no-verify", "--json")  # as predicted
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["predicted"] == 2 and answer["measured"] == 0
    best = answer["best"]
    assert best["source"] == "predicted" and best["device"] == min(
        upper, key=lambda d: next(r["predicted_ms"] for r in rows if r["device"] == d))
    assert best["latency_upper_ms"] == pytest.approx(upper[best["device"]], rel=1e-3)
    assert best["energy_mj"] > 0 and "measured average power" in best["note"]
    assert "bench predictor calibrate emu-phone" in answer["devices"]["emu-phone"]
    tight = lab.bench("select", "-m", str(new), "--lc", f"{min(upper.values()) * 0.99}ms",
                      "--devices", "emu-server,emu-jetson", "--no-verify", "--json")
    # p90: the device's own p90/p50 ratio (>= 1) times the predicted p50
    assert tight.returncode == 1
    told = json.loads(tight.stdout)["devices"]
    assert all("p90 upper bound" in why and "x LC" in why for why in told.values())


def test_select_measures_a_predicted_pick_before_believing_it(lab: Lab) -> None:
    """The closed loop: the pick was a prediction, so the best predicted candidates are
    run on their devices, stored, and the selection made again from the measurements."""
    new = never_measured(lab.root / "verify-cell.onnx")
    shutil.copy(lab.root / "profiles.db", lab.root / "verify.db")  # runs added: its own store
    store = f"sqlite:///{lab.root}/verify.db"
    result = lab.bench("select", "-m", str(new), "--lc", "10s", "--devices",
                       "emu-server,emu-jetson,emu-phone", "--top-k", "1", "--verify-time",
                       "0.05s", "--max-cv", "1", "--json", store=store)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    story = answer["verification"]
    assert story["status"] == "measured" and story["rounds"] >= 1
    assert story["measurements"] == story["rounds"]  # one candidate a round
    best = answer["best"]
    assert best["source"] == "measured"
    assert {"device": best["device"], "model": "verify-cell"} in [
        {"device": m["device"], "model": m["model"]} for m in story["measured"]]
    with Store.open(store) as opened:
        runs = opened.runs()
    sha = ModelRecord.from_file(new).sha256  # select-cell.onnx, the same bytes, may name it
    assert set(runs[runs.model_sha256 == sha].device) == {m["device"] for m in story["measured"]}
    again = lab.bench("select", "-m", str(new), "--lc", "10s", "--devices",
                      "emu-server,emu-jetson,emu-phone", "--json", store=store)
    assert json.loads(again.stdout)["verification"] == {
        "status": "was measured", "rounds": 0, "measurements": 0, "measured": []}


def test_a_measured_sibling_recalibrates_the_predictions(lab: Lab) -> None:
    """Two networks nobody measured, both predicted on emu-server; once one of them is
    measured there (as a verification round does), the other's prediction is multiplied by
    measured / predicted of the first, and says so."""
    from hilbench.devices.registry import select_devices
    from hilbench.predictor.artifact import load
    from hilbench.predictor.service import Predictor, read_model
    from hilbench.selector.query import Query, answer

    first = never_measured(lab.root / "sibling-a.onnx")
    second = _save(nb201.build(OTHER_CELL).graph, lab.root / "sibling-b.onnx")
    shutil.copy(lab.root / "profiles.db", lab.root / "sibling.db")
    store = f"sqlite:///{lab.root}/sibling.db"
    predictor = Predictor.from_artifact(load(Path(lab.calibration["artifact"])))

    def rows() -> dict[str, dict[str, Any]]:
        with Store.open(store) as opened:
            devices = tuple(select_devices(opened.list_devices(), "emu-server"))
            found = answer(opened, Query(devices, model_files=(first, second),
                                         statistic="p50", batch=1), predictor, "")
        return {str(row["model"]): row for row in found.table.to_dict(orient="records")}

    before = rows()
    assert {r["source"] for r in before.values()} == {"predicted"}
    assert all("recalibrated" not in r["note"] for r in before.values())
    ran = lab.bench("run", "-m", str(first), "--devices", "emu-server", *FAST, store=store)
    assert ran.returncode == 0, ran.stderr
    after = rows()
    measured, recalibrated = after["sibling-a"], after["sibling-b"]
    assert measured["source"] == "measured" and recalibrated["source"] == "predicted"
    estimate = predictor.estimate("emu-server", read_model(first, 1).features)
    assert estimate is not None
    factor = measured["latency_ms"] / estimate.median_ms
    assert recalibrated["latency_ms"] == pytest.approx(before["sibling-b"]["latency_ms"] * factor)
    assert recalibrated["latency_upper_ms"] == pytest.approx(
        before["sibling-b"]["latency_upper_ms"] * factor)
    assert f"recalibrated x{factor:.3g} on 1 measured model of these on emu-server" in \
        recalibrated["note"]


def test_damaged_or_foreign_artifacts_are_refused(
        lab: Lab, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    good = Path(lab.calibration["artifact"])
    data = good.read_bytes()
    flipped = lab.root / "flipped.hbp"
    damaged = bytearray(data)
    damaged[-10] ^= 0x01
    flipped.write_bytes(bytes(damaged))
    refused = lab.main(capsys, monkeypatch, "predict", "-m", str(TINY_BERT), "--artifact",
                       str(flipped), "--store", lab.store)
    assert "is corrupt: its payload does not match its sha256 checksum" in one_line_error(refused)
    other = lab.root / "other-sklearn.hbp"
    header, rest = data.split(b"\n", 2)[1], data.split(b"\n", 2)[2]
    fields = json.loads(header)
    fields["sklearn_version"] = "0.24.2"
    other.write_bytes(data.split(b"\n", 1)[0] + b"\n" + json.dumps(fields).encode() + b"\n"
                      + rest)
    message = one_line_error(lab.main(capsys, monkeypatch, "predictor", "show", "--artifact",
                                      str(other)))
    assert "trained with scikit-learn 0.24.2" in message and "retrain" in message
    truncated = lab.root / "truncated.hbp"
    truncated.write_bytes(data[: len(data) // 2])
    assert "truncated" in one_line_error(lab.main(capsys, monkeypatch, "predictor", "show",
                                                  "--artifact", str(truncated)))


def test_a_corrupt_model_is_one_line_and_changes_nothing(
        lab: Lab, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(lab.store) as store:
        before = len(store.runs())
    bad = corrupt(lab.root / "broken.onnx")
    message = one_line_error(lab.main(capsys, monkeypatch, "predict", "-m", str(bad),
                                      "--devices", "all", "--store", lab.store))
    assert "cannot read ONNX model" in message
    with Store.open(lab.store) as store:
        assert len(store.runs()) == before


def test_eval_cross_validates_over_models(lab: Lab, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    evaluated = lab.main(capsys, monkeypatch, "predictor", "eval", "--folds", "2", "--json",
                         "--store", lab.store)
    assert evaluated.returncode == 0, evaluated.stderr
    scores = json.loads(evaluated.stdout)
    by = {(s["device"], s["source"]): s for s in scores}
    assert set(by) == {(d, s) for d in CALIBRATED for s in ("device", "transfer")}
    for score in scores:
        assert score["measured"] == 5 and score["predicted"] == 5  # the demo's models
        assert 0.0 <= score["within_10pct"] <= 1.0
        assert 0.0 <= score["interval_coverage"] <= 1.0
        assert score["median_abs_pct_error"] >= 0.0
        assert score["spearman"] is None or -1.0 <= score["spearman"] <= 1.0
