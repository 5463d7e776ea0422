"""int8 / fp16 variants, datasets, metrics and accuracy, with the real onnxruntime and the
shipped digits-transformer model and eval set."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from hilbench.core.errors import CompressionError, DatasetError, ModelError, SettingsError
from hilbench.variants.accuracy import measure_accuracy
from hilbench.variants.dataset import (
    Dataset,
    InputSpec,
    check_inputs,
    load_dataset,
    make_dataset,
)
from hilbench.variants.metrics import (
    agreement,
    cosine_similarity,
    macro_f1,
    resolve_metric,
    top_k_accuracy,
)
from hilbench.variants.quantize import (
    DYNAMIC_INT8,
    FP16,
    STATIC_INT8,
    convert_fp16,
    quantize_dynamic_int8,
    quantize_static_int8,
)

ASSETS = Path(__file__).resolve().parents[1] / "hilbench" / "assets"
DIGITS = ASSETS / "digits-transformer.onnx"
DIGITS_EVAL = ASSETS / "digits-eval.npz"
TINY_BERT = ASSETS / "tiny-bert.onnx"
INT8_TOLERANCE = 0.03  # int8 may lose at most 3 points of top-1 on the digits eval set


@pytest.fixture(scope="module")
def digits_eval() -> Dataset:
    return load_dataset(DIGITS_EVAL)


@pytest.fixture(scope="module")
def base_top1(digits_eval: Dataset) -> float:
    return measure_accuracy(DIGITS, digits_eval, ["top1"]).value("top1")


def _session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# --- the shipped demo model -------------------------------------------------------------------


def test_shipped_model_accuracy_is_what_the_script_recorded(digits_eval: Dataset) -> None:
    model = onnx.load(str(DIGITS))
    props = {p.key: p.value for p in model.metadata_props}
    report = measure_accuracy(DIGITS, digits_eval, ["top1", "top3", "macro_f1"])
    assert len(digits_eval) == 360 and report.examples == 360
    assert report.value("top1") >= 0.95
    assert report.value("top1") == pytest.approx(float(props["hilbench.eval_accuracy"]), abs=1e-6)
    assert report.value("top3") >= report.value("top1")
    assert report.value("macro_f1") >= 0.9
    assert report.runtime == "onnxruntime"
    assert report.runtime_version == onnxruntime.__version__
    assert report.execution_provider == "CPUExecutionProvider"
    assert report.output_name == "logits"
    assert report.dataset_sha256 == digits_eval.sha256 and len(report.model_sha256) == 64
    assert {r.examples for r in report.results} == {360}
    assert props["hilbench.default_dims"] == "batch=1" and "hilbench.seed" in props


def test_shipped_model_is_a_plain_prunable_encoder() -> None:
    model = onnx.load(str(DIGITS))
    assert DIGITS.stat().st_size < 1_000_000
    ops = [n.op_type for n in model.graph.node]
    assert "Shape" not in ops and ops.count("Erf") == 2 and ops.count("Softmax") == 2
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    reshapes = [n for n in model.graph.node if n.op_type == "Reshape"]
    for node in reshapes:
        shape = inits[node.input[1]]
        assert shape[0] == -1 and (shape[1:] > 0).all()
    assert any(list(inits[n.input[1]]) == [-1, 8, 4, 16] for n in reshapes)
    assert inits["encoder.layer.0.intermediate.dense.weight"].shape == (64, 256)
    assert inits["encoder.layer.0.output.dense.weight"].shape == (256, 64)
    (pixels,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in pixels.type.tensor_type.shape.dim]
    assert pixels.name == "pixels" and dims == ["batch", 8, 8]
    assert [o.name for o in model.graph.output] == ["logits"]


# --- quantization -----------------------------------------------------------------------------


def test_dynamic_int8_of_digits_is_smaller_and_keeps_accuracy(
        tmp_path: Path, digits_eval: Dataset, base_top1: float) -> None:
    out = tmp_path / "variants" / "digits-int8.onnx"
    variant = quantize_dynamic_int8(DIGITS, out)
    assert variant.path == out and out.is_file()
    assert out.stat().st_size < 0.5 * DIGITS.stat().st_size
    assert variant.quantization.method == DYNAMIC_INT8
    assert variant.quantization.weight_type == "int8"
    assert variant.quantization.tool_version == onnxruntime.__version__
    assert [p.name for p in out.parent.iterdir()] == ["digits-int8.onnx"]  # no temp file left
    ops = {n.op_type for n in variant.model.graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul"}
    report = measure_accuracy(out, digits_eval, ["top1", "agreement", "cosine"],
                              base_model_path=DIGITS)
    assert report.value("top1") >= base_top1 - INT8_TOLERANCE
    assert report.value("agreement") >= 0.95
    assert report.value("cosine") > 0.95
    assert report.base_model_sha256 is not None


def test_static_int8_of_digits_calibrates_on_a_bounded_number_of_examples(
        tmp_path: Path, digits_eval: Dataset, base_top1: float) -> None:
    out = tmp_path / "digits-static.onnx"
    variant = quantize_static_int8(DIGITS, digits_eval, out, examples=64, batch_size=16)
    q = variant.quantization
    assert q.method == STATIC_INT8 and q.quant_format == "QDQ"
    assert q.calibration_examples == 64 and q.calibration_sha256 == digits_eval.limit(64).sha256
    assert q.as_dict()["calibration_method"] == "MinMax"
    assert out.stat().st_size < 0.6 * DIGITS.stat().st_size
    ops = {n.op_type for n in variant.model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    top1 = measure_accuracy(out, digits_eval, ["top1"]).value("top1")
    assert top1 >= base_top1 - INT8_TOLERANCE


def test_dynamic_int8_of_tiny_bert_runs_and_is_smaller(tmp_path: Path) -> None:
    variant = quantize_dynamic_int8(onnx.load(str(TINY_BERT)))  # a ModelProto in, no file out
    assert variant.path is None
    assert variant.size_bytes < 0.5 * TINY_BERT.stat().st_size
    out = tmp_path / "tiny-bert-int8.onnx"
    onnx.save(variant.model, str(out))
    ids = numpy.arange(2 * 16, dtype=numpy.int64).reshape(2, 16) % 2000
    mask = numpy.ones_like(ids)
    hidden, pooled = _session(out).run(None, {"input_ids": ids, "attention_mask": mask})
    base_hidden, _ = _session(TINY_BERT).run(None, {"input_ids": ids, "attention_mask": mask})
    assert hidden.shape == (2, 16, 128) and pooled.shape == (2, 128)
    assert cosine_similarity(hidden, base_hidden) > 0.9


def test_fp16_keeps_float32_inputs_and_outputs(tmp_path: Path, digits_eval: Dataset,
                                               base_top1: float) -> None:
    out = tmp_path / "digits-fp16.onnx"
    variant = convert_fp16(DIGITS, out)
    assert variant.quantization.method == FP16 and variant.quantization.keep_io_types
    session = _session(out)
    assert [i.type for i in session.get_inputs()] == ["tensor(float)"]
    assert [o.type for o in session.get_outputs()] == ["tensor(float)"]
    assert any(i.data_type == TensorProto.FLOAT16 for i in variant.model.graph.initializer)
    assert out.stat().st_size < 0.6 * DIGITS.stat().st_size
    report = measure_accuracy(out, digits_eval, ["top1", "agreement"], base_model_path=DIGITS)
    assert report.value("top1") >= base_top1 - 0.01 and report.value("agreement") >= 0.99


def test_fp16_of_tiny_bert_runs_on_cpu() -> None:
    variant = convert_fp16(TINY_BERT)
    session = onnxruntime.InferenceSession(variant.model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    ids = numpy.ones((1, 8), numpy.int64)
    hidden, _ = session.run(None, {"input_ids": ids, "attention_mask": ids})
    assert hidden.dtype == numpy.float32 and numpy.isfinite(hidden).all()


def test_static_int8_with_calibration_data_that_does_not_match_is_a_dataset_error(
        tmp_path: Path) -> None:
    wrong = make_dataset({"pixels": numpy.zeros((4, 8, 7), numpy.float32)}, name="wrong")
    with pytest.raises(DatasetError, match=r"'pixels'.*\[8, 7\].*\[8, 8\]"):
        quantize_static_int8(DIGITS, wrong, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
    other = make_dataset({"image": numpy.zeros((4, 8, 8), numpy.float32)}, name="other")
    with pytest.raises(DatasetError, match="no array for model input 'pixels'"):
        quantize_static_int8(DIGITS, other)


def test_a_model_with_nothing_to_quantize_is_a_compression_error(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    out = tmp_path / "relu-int8.onnx"
    with pytest.raises(CompressionError, match="nothing to quantize") as caught:
        quantize_dynamic_int8(model, out)
    assert "\n" not in str(caught.value)
    assert not out.exists()


def test_a_corrupt_or_missing_model_is_refused_in_one_line(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a protobuf at all \x00\xff" * 10)
    with pytest.raises(CompressionError) as caught:
        quantize_dynamic_int8(corrupt)
    assert "\n" not in str(caught.value) and caught.value.__cause__ is not None
    with pytest.raises(ModelError, match="does not exist"):
        convert_fp16(tmp_path / "missing.onnx")


def test_an_existing_output_is_replaced_whole(tmp_path: Path) -> None:
    out = tmp_path / "variant.onnx"
    out.write_bytes(b"old")
    quantize_dynamic_int8(DIGITS, out)
    assert onnx.load(str(out)).graph.name == "digits-transformer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["variant.onnx"]


# --- metrics ----------------------------------------------------------------------------------

LOGITS = numpy.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
LABELS = numpy.array([1, 0, 1, 2])


def test_top_k_accuracy_by_hand() -> None:
    assert top_k_accuracy(LOGITS, LABELS, 1) == 0.5  # argmax 1, 0, 2, 0
    assert top_k_accuracy(LOGITS, LABELS, 2) == 0.75  # the last label (2) is third
    assert top_k_accuracy(LOGITS, LABELS, 3) == 1.0
    assert resolve_metric("top2")(LOGITS, LABELS, None) == 0.75
    assert resolve_metric("accuracy")(LOGITS, LABELS, None) == 0.5
    with pytest.raises(SettingsError, match="k <= 3"):
        top_k_accuracy(LOGITS, LABELS, 4)
    with pytest.raises(DatasetError, match="3 classes"):
        top_k_accuracy(LOGITS, numpy.array([0, 1, 2, 3]), 1)


def test_macro_f1_counts_a_class_never_predicted_as_zero() -> None:
    # labels 0 1 2 2, predictions 0 1 1 0: class 2 is never predicted.
    # F1 = 2TP / (2TP + FP + FN): class 0 -> 2/3, class 1 -> 2/3, class 2 -> 0; mean 4/9.
    outputs = numpy.eye(3)[[0, 1, 1, 0]]
    assert macro_f1(outputs, numpy.array([0, 1, 2, 2])) == pytest.approx(4 / 9)
    assert macro_f1(LOGITS, LABELS) == pytest.approx(4 / 9)
    assert macro_f1(numpy.eye(3), numpy.array([0, 1, 2])) == 1.0
    with pytest.raises(DatasetError, match="integer label"):
        macro_f1(LOGITS, numpy.array([0.5, 1, 2, 2]))


def test_cosine_and_agreement_by_hand() -> None:
    a = numpy.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    b = numpy.array([[1.0, 0.0], [0.0, -1.0], [2.0, 0.0]])
    # cosines 1, -1, 1/sqrt(2); argmax a = 0 1 0, b = 0 0 0
    assert cosine_similarity(a, b) == pytest.approx((1 - 1 + 1 / math.sqrt(2)) / 3)
    assert cosine_similarity(a, a) == pytest.approx(1.0)
    assert agreement(a, b) == pytest.approx(2 / 3)
    assert cosine_similarity(numpy.zeros((2, 3)), numpy.zeros((2, 3))) == 1.0
    with pytest.raises(ModelError, match="cannot be compared"):
        cosine_similarity(a, b[:2])


def test_metrics_that_need_what_is_missing_say_so(digits_eval: Dataset) -> None:
    unlabeled = make_dataset(dict(digits_eval.inputs), None, "unlabeled")
    with pytest.raises(DatasetError, match="top1 needs labels"):
        measure_accuracy(DIGITS, unlabeled, ["top1"])
    with pytest.raises(SettingsError, match="agreement compares with the base model"):
        measure_accuracy(DIGITS, digits_eval, ["agreement"])
    with pytest.raises(SettingsError, match="unknown metric 'precision'"):
        measure_accuracy(DIGITS, digits_eval, ["precision"])
    # an embedding model without labels: cosine against the base model
    report = measure_accuracy(DIGITS, unlabeled.limit(20), ["cosine"], base_model_path=DIGITS)
    assert report.value("cosine") == pytest.approx(1.0) and report.examples == 20


def test_custom_metric_entry_point(digits_eval: Dataset, base_top1: float) -> None:
    report = measure_accuracy(DIGITS, digits_eval, ["top1", "tests.custom_metric:error_rate",
                                                    "tests.custom_metric:max_abs_difference"])
    assert report.value("tests.custom_metric:error_rate") == pytest.approx(1 - base_top1)
    assert report.value("tests.custom_metric:max_abs_difference") == 0.0


@pytest.mark.parametrize(("spec", "message"), [
    ("tests.no_such_module:f", "cannot import module 'tests.no_such_module'"),
    ("tests.custom_metric:missing", "has no 'missing'"),
    ("tests.custom_metric:NOT_A_FUNCTION", "is not callable"),
    ("not an entry point:", "not an entry point"),
])
def test_bad_custom_metric_entry_point_is_a_clear_error(spec: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        resolve_metric(spec)
    assert "\n" not in str(caught.value)


def test_a_custom_metric_that_fails_is_reported(digits_eval: Dataset) -> None:
    with pytest.raises(SettingsError, match="broken failed: ValueError: this metric always fails"):
        measure_accuracy(DIGITS, digits_eval.limit(8), ["tests.custom_metric:broken"])


# --- accuracy options -------------------------------------------------------------------------


def test_output_choice_and_batch_size_do_not_change_results(digits_eval: Dataset) -> None:
    small = digits_eval.limit(50)
    one = measure_accuracy(DIGITS, small, ["top1"], batch_size=1)
    many = measure_accuracy(DIGITS, small, ["top1"], output_name="logits", batch_size=64)
    assert one.value("top1") == many.value("top1") and one.examples == 50
    with pytest.raises(ModelError, match=r"no output 'probs'.*logits"):
        measure_accuracy(DIGITS, small, ["top1"], output_name="probs")
    ids = numpy.ones((3, 8), numpy.int64)
    bert = make_dataset({"input_ids": ids, "attention_mask": ids}, name="ids")
    pooled = measure_accuracy(TINY_BERT, bert, ["cosine"], base_model_path=TINY_BERT,
                              output_name="pooler_output")
    assert pooled.output_name == "pooler_output" and pooled.value("cosine") == pytest.approx(1.0)


# --- datasets ---------------------------------------------------------------------------------


def test_npz_and_folder_of_npy_load_identically(tmp_path: Path, digits_eval: Dataset) -> None:
    folder = tmp_path / "digits"
    folder.mkdir()
    pixels, labels = digits_eval.inputs["pixels"], digits_eval.labels
    assert labels is not None
    numpy.save(folder / "pixels.npy", pixels)
    numpy.save(folder / "labels.npy", labels)
    npz = tmp_path / "digits.npz"
    numpy.savez(npz, pixels=pixels, labels=labels)
    from_folder, from_npz = load_dataset(folder), load_dataset(npz)
    assert from_folder.sha256 == from_npz.sha256 == digits_eval.sha256
    assert list(from_folder.inputs) == ["pixels"] and len(from_folder) == 360
    numpy.testing.assert_array_equal(from_folder.inputs["pixels"], from_npz.inputs["pixels"])
    numpy.testing.assert_array_equal(from_folder.labels, from_npz.labels)
    assert not from_npz.inputs["pixels"].flags.writeable


def test_limit_and_batches(digits_eval: Dataset) -> None:
    first = digits_eval.limit(10)
    assert len(first) == 10 and first.sha256 != digits_eval.sha256
    assert digits_eval.limit(None) is digits_eval and digits_eval.limit(10_000) is digits_eval
    batches = list(first.batches(4))
    assert [(b.start, b.size) for b in batches] == [(0, 4), (4, 4), (8, 2)]
    assert batches[-1].labels is not None and len(batches[-1].labels) == 2
    with pytest.raises(DatasetError, match="at least 1"):
        digits_eval.limit(0)


SPEC = (InputSpec("pixels", "float32", ("batch", 8, 8)),)


def test_dataset_validation_names_the_mismatch() -> None:
    good = make_dataset({"pixels": numpy.zeros((2, 8, 8), numpy.float32), "extra": numpy.ones(2)})
    check_inputs(good, SPEC)  # arrays that are no model input are not fed, and allowed
    cases: list[tuple[dict[str, numpy.ndarray], str]] = [
        ({"image": numpy.zeros((2, 8, 8), numpy.float32)}, "no array for model input 'pixels'"),
        ({"pixels": numpy.zeros((2, 8, 6), numpy.float32)}, r"axis 2 is 6, not 8"),
        ({"pixels": numpy.zeros((2, 64), numpy.float32)}, r"shape \[64\].*\[8, 8\]"),
        ({"pixels": numpy.zeros((2, 8, 8), numpy.float64)}, "float64, the model wants float32"),
    ]
    for arrays, message in cases:
        with pytest.raises(DatasetError, match=message):
            check_inputs(make_dataset(arrays, name="bad"), SPEC)


def test_inconsistent_datasets_are_refused() -> None:
    with pytest.raises(DatasetError, match="different example counts"):
        make_dataset({"a": numpy.zeros((3, 2)), "b": numpy.zeros((4, 2))})
    with pytest.raises(DatasetError, match="2 labels for 3 examples"):
        make_dataset({"a": numpy.zeros((3, 2))}, numpy.array([0, 1]))
    with pytest.raises(DatasetError, match="no input arrays"):
        make_dataset({})


def test_bad_dataset_files_are_dataset_errors(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(DIGITS_EVAL.read_bytes()[:5000])
    bad_member = tmp_path / "member.npz"
    with zipfile.ZipFile(bad_member, "w") as archive:
        archive.writestr("pixels.npy", b"\x93NUMPY garbage")
    labels_only = tmp_path / "labels.npz"
    numpy.savez(labels_only, labels=numpy.arange(3))
    empty = tmp_path / "empty"
    empty.mkdir()
    text = tmp_path / "data.csv"
    text.write_text("1,2,3\n")
    cases = [
        (corrupt, "cannot read dataset"),
        (truncated, "cannot read dataset"),
        (bad_member, "cannot read dataset"),
        (labels_only, "no input arrays"),
        (empty, "holds no .npy files"),
        (text, "not an .npz file"),
        (tmp_path / "missing.npz", "does not exist"),
    ]
    for path, message in cases:
        with pytest.raises(DatasetError, match=message) as caught:
            load_dataset(path)
        assert "\n" not in str(caught.value), path


def test_a_dataset_that_does_not_fit_the_model_is_refused_before_running(tmp_path: Path) -> None:
    path = tmp_path / "wrong.npz"
    numpy.savez(path, pixels=numpy.zeros((5, 8, 8), numpy.float64), labels=numpy.zeros(5, int))
    with pytest.raises(DatasetError, match="float64, the model wants float32"):
        measure_accuracy(DIGITS, load_dataset(path), ["top1"])
