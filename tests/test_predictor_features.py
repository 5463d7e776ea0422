"""Graph features for the latency predictor (hilbench.predictor.features / kernels), on the
shipped models, on variants made by hilbench.variants and on small graphs whose FLOPs are
checked by hand."""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hilbench.core.errors import ModelError, SettingsError
from hilbench.predictor.features import (
    FEATURE_SCHEMA_VERSION,
    KERNEL_BUCKETS,
    KERNEL_FEATURE_NAMES,
    MODEL_FEATURE_NAMES,
    ModelFeatures,
    extract_features,
    extract_tflite_features,
    kernel_bucket,
    kernel_vector,
    model_vector,
)
from hilbench.variants.quantize import convert_fp16, quantize_dynamic_int8
from hilbench.variants.sparsity import block_sparsify, hierarchical_sparsify, pattern_prune
from hilbench.variants.structured import prune_ffn
from tests import modelfiles

ASSETS = Path(__file__).resolve().parents[1] / "hilbench" / "assets"
TINY_BERT = ASSETS / "tiny-bert.onnx"
DIGITS = ASSETS / "digits-transformer.onnx"
TINY_MLP = ASSETS / "tiny-mlp.tflite"


def _model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
           outputs: list[onnx.ValueInfoProto], inits: list[onnx.TensorProto] | None = None,
           extra_opsets: list[onnx.OperatorSetIdProto] | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "test", inputs, outputs, inits or [])
    opsets = [helper.make_opsetid("", 17), *(extra_opsets or [])]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def _weight(name: str, *shape: int) -> onnx.TensorProto:
    rng = numpy.random.default_rng(0)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(numpy.float32), name)


def _conv(cin: int, cout: int, size: int, k: int, **attrs: Any) -> onnx.ModelProto:
    """One Conv without bias on x[batch, cin, size, size]."""
    group = int(attrs.get("group", 1))
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[k, k], **attrs)
    return _model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", cin, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [_weight("w", cout, cin // group, k, k)],
    )


def _tensor(name: str, shape: list[int | str] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


# -- FLOPs by hand ------------------------------------------------------------------------------


def test_conv_3x3_flops_by_hand() -> None:
    features = extract_features(_conv(16, 32, 32, 3, pads=[1, 1, 1, 1]))
    assert features.flops == 2 * 3 * 3 * 16 * 32 * 32 * 32
    assert features.macs == 3 * 3 * 16 * 32 * 32 * 32
    assert features.params == 32 * 16 * 3 * 3
    assert features.param_bytes == 4 * features.params
    (kernel,) = features.kernels
    assert kernel.kind == "conv"
    assert dict(kernel.attributes) == {
        "cin": 16, "cout": 32, "kh": 3, "kw": 3, "stride": 1, "dilation": 1, "groups": 1,
        "h": 32, "w": 32, "h_out": 32, "w_out": 32,
    }
    assert kernel.bytes_in == 16 * 32 * 32 * 4 and kernel.bytes_out == 32 * 32 * 32 * 4
    assert len(kernel_vector(kernel)) == len(KERNEL_FEATURE_NAMES["conv"])


def test_conv_groups_strides_dilation() -> None:
    model = _conv(16, 32, 32, 3, pads=[2, 2, 2, 2], strides=[2, 2], dilations=[2, 2], group=4)
    features = extract_features(model)
    # output 16 x 16; each output reads (16 / 4) * 3 * 3 inputs
    assert features.macs == 32 * 16 * 16 * (16 // 4) * 9
    (kernel,) = features.kernels
    assert kernel.kind == "gconv"
    assert (kernel.attribute("stride"), kernel.attribute("dilation")) == (2, 2)
    assert (kernel.attribute("groups"), kernel.attribute("h_out")) == (4, 16)
    depthwise = extract_features(_conv(16, 16, 8, 3, pads=[1, 1, 1, 1], group=16))
    assert depthwise.kernels[0].kind == "dwconv"
    assert depthwise.macs == 16 * 8 * 8 * 9


def test_conv_transpose_flops() -> None:
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2],
                            kernel_shape=[3, 3])
    model = _model([node], [_tensor("x", [1, 8, 8, 8])], [_tensor("y", None)],
                   [_weight("w", 8, 4, 3, 3)])
    features = extract_features(model)
    assert features.macs == 8 * 8 * 8 * 4 * 9  # every input pixel scatters Cout x 3 x 3
    assert features.kernels[0].kind == "convtranspose"


def test_matmul_broadcasting_and_gemm() -> None:
    matmul = _model([helper.make_node("MatMul", ["a", "b"], ["y"])],
                    [_tensor("a", [2, 1, 4, 5]), _tensor("b", [3, 5, 6])], [_tensor("y", None)])
    features = extract_features(matmul)
    assert features.macs == 2 * 3 * 4 * 6 * 5
    (kernel,) = features.kernels
    assert kernel.kind == "bmm" and kernel.params == 0
    assert dict(kernel.attributes) == {"batch": 6, "m": 4, "k": 5, "n": 6}
    gemm = _model([helper.make_node("Gemm", ["a", "w", "c"], ["y"], transA=1, transB=1)],
                  [_tensor("a", [7, 3])], [_tensor("y", None)],
                  [_weight("w", 9, 7), _weight("c", 9)])
    features = extract_features(gemm)
    assert features.macs == 3 * 9 * 7 and features.flops == 2 * features.macs
    assert features.kernels[0].kind == "fc" and features.params == 9 * 7 + 9


def test_digits_transformer_matmul_flops_of_one_layer() -> None:
    features = extract_features(DIGITS)
    assert features.input_shapes == {"pixels": (1, 8, 8)}
    layer = [n for n in features.nodes
             if n.op_type == "MatMul" and n.name.startswith("encoder.layer.0")]
    tokens, width, inner = 8, 64, 256
    projections = 4 * 2 * tokens * width * width  # Q, K, V, output
    ffn = 2 * 2 * tokens * width * inner
    attention = 2 * 2 * tokens * tokens * width  # scores and context, all heads together
    assert sum(n.flops for n in layer) == projections + ffn + attention
    attention_kernels = [k for k in features.kernels if k.kind == "attention"]
    assert len(attention_kernels) == 2
    first = attention_kernels[0]
    assert first.attribute("seq_q") == first.attribute("seq_k") == tokens
    assert first.attribute("heads") * first.attribute("head_dim") == width


# -- the shipped models -------------------------------------------------------------------------


def test_tiny_bert_kernels_and_totals() -> None:
    model = onnx.load(str(TINY_BERT))
    features = extract_features(TINY_BERT)
    histogram = features.kernel_histogram()
    assert histogram["attention"] == 4
    assert histogram["matmul-add-gelu"] == 4
    assert histogram["layernorm"] == 9  # embeddings + 2 per layer
    assert histogram["matmul-add"] == 4 * 5  # Q, K, V, attention output, FFN output
    assert histogram["embedding"] == 2
    assert features.unknown_ops == {}
    assert features.input_shapes == {"input_ids": (1, 128), "attention_mask": (1, 128)}
    assert features.sha256 == hashlib.sha256(TINY_BERT.read_bytes()).hexdigest()
    stored = sum(math.prod(t.dims) for t in model.graph.initializer
                 if t.data_type == TensorProto.FLOAT)
    assert features.params == stored
    assert sum(k.flops for k in features.kernels) == features.flops
    live = [n for n in features.nodes if not n.folded]
    assert sum(len(k.nodes) for k in features.kernels) == len(live)
    assert features.node_count == len(model.graph.node)
    ffn = next(k for k in features.kernels if k.kind == "matmul-add-gelu")
    hidden, inner = (int(d) for d in next(
        t.dims for t in model.graph.initializer
        if t.name == "encoder.layer.0.intermediate.dense.weight"))
    assert dict(ffn.attributes) == {"batch": 1, "m": 128, "k": hidden, "n": inner}
    assert ffn.ops == ("MatMul", "Add", "Div", "Erf", "Add", "Mul", "Mul")
    assert features.compute_depth >= 4 * 3 and features.depth > features.compute_depth


def test_tiny_bert_extraction_is_fast() -> None:
    extract_features(TINY_BERT)  # warm imports
    start = time.perf_counter()
    extract_features(TINY_BERT)
    assert time.perf_counter() - start < 1.0


def test_weights_in_unloaded_external_data_count_by_dims(tmp_path: Path) -> None:
    """A model object whose initializers stay in external data (not loaded) has the features
    of the same model read from its file: weights by dims and type, zeros counted from the
    values only where they are present (here none are zero)."""
    model = _conv(8, 16, 12, 3)
    path = tmp_path / "conv.onnx"
    onnx.save_model(model, path, save_as_external_data=True, size_threshold=0,
                    location="conv.weights")
    unloaded = onnx.load_model(path, load_external_data=False)
    assert unloaded.graph.initializer[0].data_location == TensorProto.EXTERNAL
    bare, read = extract_features(unloaded), extract_features(path)
    assert bare.params == read.params == 16 * 8 * 9
    assert bare.param_bytes == read.param_bytes and bare.flops == read.flops > 0
    assert numpy.array_equal(model_vector(bare), model_vector(read))


def test_batch_scales_flops() -> None:
    one, eight = extract_features(TINY_BERT), extract_features(TINY_BERT, batch=8)
    assert eight.flops == 8 * one.flops and eight.macs == 8 * one.macs
    assert eight.params == one.params
    assert eight.input_shapes["input_ids"] == (8, 128)


def test_batch_scales_convnet(tmp_path: Path) -> None:
    path = modelfiles.convnet(tmp_path / "convnet.onnx", depthwise=True)
    one, eight = extract_features(path), extract_features(path, batch=8)
    assert eight.flops == 8 * one.flops
    assert eight.activation_bytes == 8 * one.activation_bytes


def test_dims_follow_the_agents_rule() -> None:
    model = onnx.load(str(TINY_BERT))
    assert extract_features(model, dims={"sequence": 16}).input_shapes["input_ids"] == (1, 16)
    assert extract_features(model, dims={"batch": 3}).input_shapes["input_ids"] == (3, 128)
    explicit = extract_features(model, input_shapes={"input_ids": [2, 8],
                                                     "attention_mask": [2, 8]})
    assert explicit.input_shapes == {"input_ids": (2, 8), "attention_mask": (2, 8)}
    for prop in model.metadata_props:
        if prop.key == "hilbench.default_dims":
            prop.value = "batch=1,sequence=32"
    short = extract_features(model)
    assert short.input_shapes["input_ids"] == (1, 32)
    del model.metadata_props[:]
    assert extract_features(model).input_shapes["input_ids"] == (1, 128)  # the default
    assert short.flops < extract_features(model).flops


def test_bad_shapes_are_settings_errors() -> None:
    with pytest.raises(SettingsError, match="unknown input"):
        extract_features(TINY_BERT, input_shapes={"pixels": [1, 2]})
    with pytest.raises(SettingsError, match="axes"):
        extract_features(TINY_BERT, input_shapes={"input_ids": [1, 2, 3]})


# -- variants -----------------------------------------------------------------------------------


def test_pruned_ffn_has_fewer_flops() -> None:
    base = onnx.load(str(DIGITS))
    pruned = prune_ffn(base, 0.5).model
    before, after = extract_features(base), extract_features(pruned)
    assert after.flops < before.flops and after.params < before.params
    ffn = [k for k in after.kernels if k.kind == "matmul-add-gelu"]
    assert [k.attribute("n") for k in ffn] == [128, 128]


def test_block_sparse_variant_reports_density() -> None:
    sparse = block_sparsify(onnx.load(str(DIGITS)), 0.5, block=(4, 4)).model
    features = extract_features(sparse)
    summary = features.sparsity
    assert summary.method == "block"
    assert summary.layout_layers > 0 and 0.0 < summary.sparse_param_fraction <= 1.0
    assert summary.block_density == pytest.approx(0.5, abs=0.05)
    assert summary.layout_density == pytest.approx(0.5, abs=0.05)
    assert summary.weight_zeros > 0.3
    laid = [n for n in features.nodes if n.layout is not None]
    assert laid and all(n.layout == "block" and n.weight_zeros > 0.4 for n in laid)
    assert any(k.layout_density is not None for k in features.kernels)
    dense = extract_features(DIGITS).sparsity
    assert dense.method is None and dense.layout_density is None and dense.weight_zeros == 0.0
    vector = dict(zip(MODEL_FEATURE_NAMES, model_vector(features), strict=True))
    assert vector["block_density"] == pytest.approx(summary.block_density)


def test_int8_variant_reports_8_bit(tmp_path: Path) -> None:
    quantized = quantize_dynamic_int8(DIGITS, tmp_path / "int8.onnx")
    assert quantized.path is not None
    features = extract_features(quantized.path)
    assert features.precision.weight_bits == 8
    assert features.precision.params_fraction(8) > 0.9
    assert features.precision.macs_fraction(8) > 0.9
    integer = [n for n in features.nodes if n.op_type == "MatMulInteger"]
    assert integer and all(n.bits == 8 and n.weight_bits == 8 for n in integer)
    assert features.macs == extract_features(DIGITS).macs
    linear = [k for k in features.kernels if "MatMulInteger" in k.ops]
    assert linear and all(k.kind.startswith("matmul-add") and k.bits == 8 for k in linear)
    assert features.param_bytes < extract_features(DIGITS).param_bytes / 3


def test_hierarchical_and_pattern_layouts(tmp_path: Path) -> None:
    digits = onnx.load(str(DIGITS))
    features = extract_features(hierarchical_sparsify(digits, 0.5, 0.5, block=(8, 8)).model)
    assert features.sparsity.method == "hierarchical"
    assert {n.layout for n in features.nodes if n.layout} == {"hierarchical"}
    assert features.sparsity.layout_density == pytest.approx(0.25, abs=0.05)
    convnet = onnx.load(str(modelfiles.convnet(tmp_path / "c.onnx")))
    patterned = extract_features(pattern_prune(convnet, patterns=4, entries=4).model)
    assert {n.layout for n in patterned.nodes if n.layout} == {"pattern"}
    assert patterned.sparsity.layout_density == pytest.approx(4 / 9, abs=0.01)
    assert patterned.sparsity.block_density is None


def test_fp16_variant_reports_16_bit(tmp_path: Path) -> None:
    converted = convert_fp16(DIGITS, tmp_path / "fp16.onnx")
    assert converted.path is not None
    features = extract_features(converted.path)
    assert features.precision.weight_bits == 16
    assert features.precision.macs_fraction(16) == 1.0
    assert features.param_bytes == extract_features(DIGITS).param_bytes // 2


def test_qdq_weight_counts_at_its_conv() -> None:
    """A static-quantized (QDQ) Conv reads DequantizeLinear(int8 weight): the DQ of the weight
    is folded, and the Conv owns the 8-bit weight."""
    weight = numpy.ones((4, 2, 3, 3), numpy.int8)
    inits = [numpy_helper.from_array(weight, "w_q"),
             numpy_helper.from_array(numpy.array(0.1, numpy.float32), "scale"),
             numpy_helper.from_array(numpy.array(0, numpy.int8), "zero")]
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "scale", "zero"], ["w"]),
             helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])]
    model = _model(nodes, [_tensor("x", [1, 2, 6, 6])], [_tensor("y", None)], inits)
    features = extract_features(model)
    dq, conv = features.nodes
    assert dq.folded and dq.flops == 0
    assert conv.weight_bits == 8 and conv.params == 72 + 2 and conv.macs == 4 * 4 * 4 * 18
    assert [k.kind for k in features.kernels] == ["conv"]


# -- fusion rules -------------------------------------------------------------------------------


def test_convnet_kernels(tmp_path: Path) -> None:
    plain = extract_features(modelfiles.convnet(tmp_path / "c.onnx", depthwise=True))
    assert [k.kind for k in plain.kernels] == [
        "conv-bn-relu", "maxpool", "conv-relu", "dwconv-relu", "conv-relu", "global-avgpool",
        "reshape", "fc",
    ]
    residual = extract_features(modelfiles.convnet(tmp_path / "r.onnx", residual=True))
    assert "add-relu" in residual.kernel_histogram()
    first = plain.kernels[0]
    assert first.ops == ("Conv", "BatchNormalization", "Relu")
    assert first.bytes_out == 8 * 16 * 16 * 4  # the fused intermediates are not counted


@pytest.mark.parametrize(("activation", "kind"), [
    ("relu", "matmul-add-relu"), ("gelu_erf", "matmul-add-gelu"),
    ("gelu_tanh", "matmul-add-gelu"), ("gelu", "matmul-add-gelu"),
    ("fastgelu", "matmul-gelu"), ("silu", "matmul-add-silu"), ("none", "matmul-add"),
])
def test_ffn_activation_fusion(tmp_path: Path, activation: str, kind: str) -> None:
    features = extract_features(modelfiles.ffn(tmp_path / "ffn.onnx", activation), batch=2)
    assert [k.kind for k in features.kernels] == [kind, "matmul-add"]
    assert features.unknown_ops == {}  # com.microsoft FastGelu keeps its input's shape


def test_gemm_ffn_is_fc(tmp_path: Path) -> None:
    features = extract_features(modelfiles.ffn(tmp_path / "ffn.onnx", "relu", gemm=True))
    assert [k.kind for k in features.kernels] == ["fc-relu", "fc"]


@pytest.mark.parametrize("shapes", ["initializer", "constant", "concat"])
def test_attention_block(tmp_path: Path, shapes: str) -> None:
    path = modelfiles.attention(tmp_path / "attention.onnx", shapes, hidden=32, heads=4)
    features = extract_features(path, dims={"seq": 10})
    (block,) = [k for k in features.kernels if k.kind == "attention"]
    assert block.ops == ("MatMul", "Mul", "Softmax", "MatMul")
    assert dict(block.attributes) == {"batch": 4, "heads": 4, "seq_q": 10, "seq_k": 10,
                                      "head_dim": 8}
    assert block.macs == 2 * 4 * 10 * 10 * 8


def test_decomposed_layernorm_is_one_kernel() -> None:
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=[-1]),
        helper.make_node("Sub", ["x", "mean"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["var"], axes=[-1]),
        helper.make_node("Add", ["var", "eps"], ["var_eps"]),
        helper.make_node("Sqrt", ["var_eps"], ["std"]),
        helper.make_node("Div", ["d", "std"], ["normed"]),
        helper.make_node("Mul", ["normed", "gamma"], ["scaled"]),
        helper.make_node("Add", ["scaled", "beta"], ["y"]),
    ]
    inits = [numpy_helper.from_array(numpy.array(v, numpy.float32), n)
             for n, v in (("two", 2.0), ("eps", 1e-5))]
    model = _model(nodes, [_tensor("x", ["batch", 6, 16])], [_tensor("y", None)],
                   [*inits, _weight("gamma", 16), _weight("beta", 16)])
    (kernel,) = extract_features(model).kernels
    assert kernel.kind == "layernorm" and len(kernel.nodes) == 9
    assert dict(kernel.attributes) == {"rows": 6, "width": 16}


# -- unknown ops and bad input -----------------------------------------------------------------


def test_einsum_is_listed_as_unknown() -> None:
    node = helper.make_node("Einsum", ["a", "b"], ["y"], equation="ij,jk->ik")
    model = _model([node], [_tensor("a", [4, 5]), _tensor("b", [5, 6])], [_tensor("y", None)])
    features = extract_features(model)
    assert features.unknown_ops == {"Einsum": 1}
    (kernel,) = features.kernels
    assert kernel.kind == "unknown" and not kernel.known
    assert kernel.bytes_in == (20 + 30) * 4 and kernel.bytes_out == 24 * 4
    vector = dict(zip(MODEL_FEATURE_NAMES, model_vector(features), strict=True))
    assert vector["unknown_nodes"] == 1 and vector["count_unknown"] == 1


def test_custom_domain_op_is_unknown() -> None:
    nodes = [helper.make_node("Mystery", ["x"], ["m"], domain="com.example"),
             helper.make_node("Relu", ["m"], ["y"])]
    model = _model(nodes, [_tensor("x", ["batch", 4])], [_tensor("y", None)],
                   extra_opsets=[helper.make_opsetid("com.example", 1)])
    features = extract_features(model, batch=2)
    # the Relu has no input shape either: it is listed rather than guessed
    assert features.unknown_ops == {"com.example:Mystery": 1, "Relu": 1}
    assert [k.kind for k in features.kernels] == ["unknown", "relu"]
    # annotating the custom op's output lets everything after it be costed
    model.graph.value_info.append(_tensor("m", ["batch", 3]))
    features = extract_features(model, batch=2)
    assert features.unknown_ops == {"com.example:Mystery": 1}
    relu = next(n for n in features.nodes if n.op_type == "Relu")
    assert relu.known and relu.flops == 6


def test_corrupt_model_is_a_one_line_model_error(tmp_path: Path) -> None:
    path = modelfiles.corrupt(tmp_path / "broken.onnx")
    with pytest.raises(ModelError) as caught:
        extract_features(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    assert caught.value.__cause__ is not None
    with pytest.raises(ModelError):
        extract_features(tmp_path / "missing.onnx")


def test_shape_inference_failure_is_a_model_error() -> None:
    model = _model([helper.make_node("MatMul", ["a", "w"], ["y"])], [_tensor("a", [1, 4])],
                   [_tensor("y", None)], [_weight("w", 5, 3)])
    with pytest.raises(ModelError, match="cannot infer the shapes") as caught:
        extract_features(model)
    assert "\n" not in str(caught.value) and caught.value.__cause__ is not None


# -- records and vectors ------------------------------------------------------------------------


def test_round_trip_through_json() -> None:
    features = extract_features(block_sparsify(onnx.load(str(DIGITS)), 0.25).model)
    again = ModelFeatures.from_dict(json.loads(json.dumps(features.to_dict())))
    assert again == features
    stale = {**features.to_dict(), "schema_version": FEATURE_SCHEMA_VERSION + 1}
    with pytest.raises(ModelError, match="schema version"):
        ModelFeatures.from_dict(stale)
    with pytest.raises(ModelError, match="malformed"):
        ModelFeatures.from_dict({"schema_version": FEATURE_SCHEMA_VERSION})


def test_vectors_have_fixed_names() -> None:
    assert len(set(MODEL_FEATURE_NAMES)) == len(MODEL_FEATURE_NAMES)
    bert, digits = extract_features(TINY_BERT), extract_features(DIGITS)
    for features in (bert, digits):
        vector = model_vector(features)
        assert vector.shape == (len(MODEL_FEATURE_NAMES),) and numpy.isfinite(vector).all()
        for kernel in features.kernels:
            assert kernel_bucket(kernel.kind) in KERNEL_BUCKETS
            values = kernel_vector(kernel)
            assert values.shape == (len(KERNEL_FEATURE_NAMES[kernel.family]),)
            assert numpy.isfinite(values).all()
    named = dict(zip(MODEL_FEATURE_NAMES, model_vector(bert), strict=True))
    assert named["count_attention"] == 4 and named["log_flops"] == pytest.approx(
        math.log1p(bert.flops))


# -- TFLite -------------------------------------------------------------------------------------


def test_tflite_features() -> None:
    features = extract_tflite_features(TINY_MLP, batch=4)
    assert features.source == "tflite"
    assert features.op_histogram == {"Gemm": 3}
    assert [k.kind for k in features.kernels] == ["fc", "fc", "fc"]
    assert features.macs == 4 * (256 * 512 + 512 * 512 + 512 * 10)
    assert features.params == 256 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10
    assert features.unknown_ops == {} and features.input_shapes == {"x": (4, 256)}
    assert features.sha256 == hashlib.sha256(TINY_MLP.read_bytes()).hexdigest()
    assert extract_tflite_features(TINY_MLP).macs * 4 == features.macs


def test_tflite_bad_file_is_a_model_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.tflite"
    path.write_bytes(b"not a flatbuffer" * 4)
    with pytest.raises(ModelError, match="cannot read TFLite model"):
        extract_tflite_features(path)
