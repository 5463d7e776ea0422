"""Structured pruning and sparsity (hilbench.variants) against real onnxruntime sessions.

The strongest check here is equivalence: removing a neuron, head or channel is the same as
zeroing the weights that read it in the base model, so a pruned model must reproduce that
masked base model's outputs (up to float rounding).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from hilbench.core.errors import CompressionError, ModelError
from hilbench.variants.sparsity import (
    REMOVED_KERNEL,
    SPARSITY_METADATA_KEY,
    BlockLayout,
    PatternLayout,
    SparsityDescription,
    block_sparsify,
    embed_sparsity,
    hierarchical_sparsify,
    measure_sparsity,
    mismatches,
    pattern_prune,
    read_sparsity,
)
from hilbench.variants.structured import (
    PRUNING_METADATA_KEY,
    PruneResult,
    prune_conv_channels,
    prune_ffn,
    prune_heads,
)
from tests import modelfiles

TINY_BERT = Path(__file__).resolve().parents[1] / "hilbench" / "assets" / "tiny-bert.onnx"
Feeds = dict[str, numpy.ndarray]


@pytest.fixture(scope="module")
def bert() -> onnx.ModelProto:
    return onnx.load(str(TINY_BERT))


def _run(model: onnx.ModelProto, feeds: Feeds) -> list[numpy.ndarray]:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return [numpy.asarray(out) for out in session.run(None, feeds)]


def _bert_feeds(batch: int = 2, seq: int = 12) -> Feeds:
    ids = numpy.random.default_rng(7).integers(0, 2000, (batch, seq)).astype(numpy.int64)
    mask = numpy.ones_like(ids)
    mask[0, -3:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _feeds_for(model: onnx.ModelProto, batch: int = 2) -> Feeds:
    """Random float inputs for a test model (dynamic dims: batch, and 5 for a sequence)."""
    rng = numpy.random.default_rng(11)
    feeds = {}
    for value in model.graph.input:
        dims = [
            d.dim_value or (batch if d.dim_param == "batch" else 5)
            for d in value.type.tensor_type.shape.dim
        ]
        feeds[value.name] = rng.standard_normal(dims).astype(numpy.float32)
    return feeds


def _cosine(a: numpy.ndarray, b: numpy.ndarray) -> float:
    """The smallest per-example cosine similarity of two batched outputs."""
    a2 = a.reshape(a.shape[0], -1).astype(numpy.float64)
    b2 = b.reshape(b.shape[0], -1).astype(numpy.float64)
    cos = (a2 * b2).sum(1) / (numpy.linalg.norm(a2, axis=1) * numpy.linalg.norm(b2, axis=1))
    return float(cos.min())


def _weights(model: onnx.ModelProto) -> dict[str, numpy.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _masked(model: onnx.ModelProto, zeros: dict[str, tuple[list[int], int]]) -> onnx.ModelProto:
    """A copy of ``model`` whose initializers ``name`` have the entries ``indices`` along
    ``axis`` zeroed: the dense equivalent of removing those units."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for tensor in copy.graph.initializer:
        if tensor.name in zeros:
            indices, axis = zeros[tensor.name]
            value = numpy_helper.to_array(tensor).copy()
            index: list[Any] = [slice(None)] * value.ndim
            index[axis] = indices
            value[tuple(index)] = 0
            tensor.CopyFrom(numpy_helper.from_array(value, tensor.name))
    return copy


def _removed(result: PruneResult, layer: str) -> list[int]:
    entry = next(item for item in result.report.layers if item.layer == layer)
    return sorted(set(range(entry.original)) - set(entry.kept_indices))


def _assert_valid(result: onnx.ModelProto, base: onnx.ModelProto, feeds: Feeds) -> None:
    """Checker passes; onnxruntime runs it with the base model's output shapes."""
    onnx.checker.check_model(result)
    assert [o.shape for o in _run(result, feeds)] == [o.shape for o in _run(base, feeds)]


# -- FFN ------------------------------------------------------------------------------------


def test_ffn_half_halves_the_intermediate_dimension(bert: onnx.ModelProto, tmp_path: Path) -> None:
    result = prune_ffn(bert, 0.5)
    weights = _weights(result.model)
    for layer in range(4):
        prefix = f"encoder.layer.{layer}"
        assert weights[f"{prefix}.intermediate.dense.weight"].shape == (128, 256)
        assert weights[f"{prefix}.intermediate.dense.bias"].shape == (256,)
        assert weights[f"{prefix}.output.dense.weight"].shape == (256, 128)
    assert [(lp.original, lp.kept) for lp in result.report.layers] == [(512, 256)] * 4
    assert result.report.method == "ffn"
    assert 0.2 < result.report.parameter_reduction < 0.3
    feeds = _bert_feeds()
    _assert_valid(result.model, bert, feeds)
    onnx.save(result.model, str(tmp_path / "ffn50.onnx"))
    assert (tmp_path / "ffn50.onnx").stat().st_size < 0.8 * TINY_BERT.stat().st_size
    history = json.loads(
        dict((p.key, p.value) for p in result.model.metadata_props)[PRUNING_METADATA_KEY]
    )
    assert history[0]["method"] == "ffn" and history[0]["layers"][0]["kept"] == 256


def test_ffn_pruning_equals_zeroing_the_removed_neurons(bert: onnx.ModelProto) -> None:
    result = prune_ffn(bert, 0.5)
    zeros = {
        f"encoder.layer.{i}.output.dense.weight": (
            _removed(result, f"encoder.layer.{i}.intermediate.dense/matmul"),
            0,
        )
        for i in range(4)
    }
    feeds = _bert_feeds()
    for pruned, dense in zip(
        _run(result.model, feeds), _run(_masked(bert, zeros), feeds), strict=True
    ):
        numpy.testing.assert_allclose(pruned, dense, atol=2e-5, rtol=1e-4)


def test_small_ffn_ratio_stays_close_to_the_base(bert: onnx.ModelProto) -> None:
    # tiny-bert has random weights and a strong residual path: 25 % of the FFN neurons cost
    # little (cosine ~0.999); the margin allows other seeds.
    feeds = _bert_feeds()
    base = _run(bert, feeds)
    pruned = _run(prune_ffn(bert, 0.25).model, feeds)
    for a, b in zip(base, pruned, strict=True):
        assert _cosine(a, b) > 0.99


@pytest.mark.parametrize("prune", [prune_ffn, prune_heads], ids=["ffn", "heads"])
def test_ratio_zero_gives_the_base_outputs(
    bert: onnx.ModelProto, prune: Callable[[onnx.ModelProto, float], PruneResult]
) -> None:
    feeds = _bert_feeds()
    result = prune(bert, 0.0)
    assert result.report.params_after == result.report.params_before
    for a, b in zip(_run(bert, feeds), _run(result.model, feeds), strict=True):
        numpy.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("activation", [*modelfiles.FFN_ACTIVATIONS[:-1], "gemm"])
def test_ffn_activations_and_gemm(tmp_path: Path, activation: str) -> None:
    gemm = activation == "gemm"
    path = modelfiles.ffn(tmp_path / "ffn.onnx", "relu" if gemm else activation, gemm=gemm)
    base = onnx.load(str(path))
    result = prune_ffn(base, 0.5)
    weights = _weights(result.model)
    assert weights["w1"].shape == ((32, 16) if gemm else (16, 32))
    assert weights["b1"].shape == (32,)
    feeds = _feeds_for(base)
    _assert_valid(result.model, base, feeds)
    removed = _removed(result, "fc1")
    dense = _masked(base, {"w2": (removed, 1 if gemm else 0)})
    numpy.testing.assert_allclose(
        _run(result.model, feeds)[0], _run(dense, feeds)[0], atol=1e-5, rtol=1e-4
    )


def test_ffn_multiple_of_rounds_the_kept_width(bert: onnx.ModelProto) -> None:
    result = prune_ffn(bert, 0.3, multiple_of=64)
    assert {lp.kept for lp in result.report.layers} == {384}
    with pytest.raises(CompressionError, match="multiple_of"):
        prune_ffn(bert, 0.3, multiple_of=0)


def test_pruning_leaves_the_input_model_untouched(bert: onnx.ModelProto) -> None:
    before = bert.SerializeToString()
    prune_ffn(bert, 0.5)
    prune_heads(bert, 0.5)
    block_sparsify(bert, 0.5)
    assert bert.SerializeToString() == before


def test_chained_steps_are_all_recorded(bert: onnx.ModelProto) -> None:
    both = prune_heads(prune_ffn(bert, 0.5).model, 0.5)
    props = {p.key: p.value for p in both.model.metadata_props}
    assert [step["method"] for step in json.loads(props[PRUNING_METADATA_KEY])] == ["ffn", "heads"]
    _assert_valid(both.model, bert, _bert_feeds())


# -- attention heads ------------------------------------------------------------------------


def test_head_pruning_keeps_shapes_right(bert: onnx.ModelProto) -> None:
    result = prune_heads(bert, 0.5)
    weights = _weights(result.model)
    for layer in range(4):
        prefix = f"encoder.layer.{layer}.attention"
        for role in ("query", "key", "value"):
            assert weights[f"{prefix}.self.{role}.weight"].shape == (128, 64)
            assert weights[f"{prefix}.self.{role}.bias"].shape == (64,)
            assert weights[f"{prefix}/{role}/shape"].tolist() == [0, 0, 2, 32]
        assert weights[f"{prefix}/merge"].tolist() == [0, 0, 64]
        assert weights[f"{prefix}.output.dense.weight"].shape == (64, 128)
        assert math.isclose(float(weights[f"{prefix}/scale"]), 32**-0.5, rel_tol=1e-6)
    assert [(lp.original, lp.kept) for lp in result.report.layers] == [(4, 2)] * 4
    feeds = _bert_feeds()
    _assert_valid(result.model, bert, feeds)
    zeros = {
        f"encoder.layer.{i}.attention.output.dense.weight": (
            [
                h * 32 + j
                for h in _removed(result, f"encoder.layer.{i}.attention.output.dense/matmul")
                for j in range(32)
            ],
            0,
        )
        for i in range(4)
    }
    for pruned, dense in zip(
        _run(result.model, feeds), _run(_masked(bert, zeros), feeds), strict=True
    ):
        numpy.testing.assert_allclose(pruned, dense, atol=2e-5, rtol=1e-4)


def test_small_head_ratio_stays_close_to_the_base(bert: onnx.ModelProto) -> None:
    feeds = _bert_feeds()
    pruned = _run(prune_heads(bert, 0.25).model, feeds)
    for a, b in zip(_run(bert, feeds), pruned, strict=True):
        assert _cosine(a, b) > 0.99


@pytest.mark.parametrize("shapes", ["initializer", "constant", "concat"])
def test_head_pruning_rewrites_each_kind_of_shape(tmp_path: Path, shapes: str) -> None:
    base = onnx.load(str(modelfiles.attention(tmp_path / "att.onnx", shapes)))
    result = prune_heads(base, 0.5)
    assert [(lp.original, lp.kept) for lp in result.report.layers] == [(4, 2)]
    feeds = _feeds_for(base)
    _assert_valid(result.model, base, feeds)
    removed = [h * 8 + j for h in _removed(result, "output") for j in range(8)]
    dense = _masked(base, {"output.weight": (removed, 0)})
    numpy.testing.assert_allclose(
        _run(result.model, feeds)[0], _run(dense, feeds)[0], atol=1e-5, rtol=1e-4
    )


def test_head_pruning_refuses_a_shape_computed_at_run_time(tmp_path: Path) -> None:
    base = onnx.load(str(modelfiles.attention(tmp_path / "att.onnx", "computed")))
    with pytest.raises(CompressionError, match=r"Reshape 'query/reshape'.*computed at run time"):
        prune_heads(base, 0.5)


def test_one_head_always_stays(tmp_path: Path) -> None:
    base = onnx.load(str(modelfiles.attention(tmp_path / "att.onnx")))
    result = prune_heads(base, 0.99)
    assert result.report.layers[0].kept == 1
    _assert_valid(result.model, base, _feeds_for(base))


# -- conv channels --------------------------------------------------------------------------


@pytest.mark.parametrize("depthwise", [False, True], ids=["plain", "depthwise"])
def test_conv_channel_pruning_slices_the_chain(tmp_path: Path, depthwise: bool) -> None:
    base = onnx.load(str(modelfiles.convnet(tmp_path / "cnn.onnx", depthwise=depthwise)))
    result = prune_conv_channels(base, 0.5)
    weights = _weights(result.model)
    assert weights["conv1.weight"].shape == (4, 3, 3, 3)
    assert all(weights[f"bn.{p}"].shape == (4,) for p in ("scale", "bias", "mean", "var"))
    assert weights["conv2.weight"].shape == (8, 4, 3, 3)
    assert weights["conv3.weight"].shape == (4, 8, 1, 1)
    assert weights["fc.weight"].shape == (10, 4)
    if depthwise:
        assert weights["dw.weight"].shape == (8, 1, 3, 3)
    feeds = _feeds_for(base)
    _assert_valid(result.model, base, feeds)
    zeros = {
        "conv2.weight": (_removed(result, "conv1"), 1),
        "conv3.weight": (_removed(result, "conv2"), 1),
        "fc.weight": (_removed(result, "conv3"), 1),
    }
    numpy.testing.assert_allclose(
        _run(result.model, feeds)[0], _run(_masked(base, zeros), feeds)[0], atol=1e-5, rtol=1e-4
    )
    identity = prune_conv_channels(base, 0.0, criterion="l1")
    numpy.testing.assert_allclose(_run(identity.model, feeds)[0], _run(base, feeds)[0], atol=1e-6)


def test_conv_channels_tied_by_a_residual_add_are_left_alone(tmp_path: Path) -> None:
    base = onnx.load(str(modelfiles.convnet(tmp_path / "cnn.onnx", residual=True)))
    result = prune_conv_channels(base, 0.5)
    assert [lp.layer for lp in result.report.layers] == ["conv1", "conv2"]
    weights = _weights(result.model)
    assert weights["conv3.weight"].shape == (8, 8, 1, 1)
    assert weights["conv_res.weight"].shape == (8, 8, 3, 3)
    _assert_valid(result.model, base, _feeds_for(base))


def test_conv_criterion_must_be_known(tmp_path: Path) -> None:
    base = onnx.load(str(modelfiles.convnet(tmp_path / "cnn.onnx")))
    with pytest.raises(CompressionError, match="criterion"):
        prune_conv_channels(base, 0.5, criterion="l3")


# -- what the methods refuse ----------------------------------------------------------------


def _weights_as_inputs(path: Path) -> onnx.ModelProto:
    """An FFN whose weights are graph inputs, not initializers."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
            helper.make_node("Relu", ["h"], ["a"], name="relu"),
            helper.make_node("MatMul", ["a", "w2"], ["y"], name="fc2"),
        ],
        "inputs_as_weights",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8]),
            helper.make_tensor_value_info("w1", TensorProto.FLOAT, [8, 16]),
            helper.make_tensor_value_info("w2", TensorProto.FLOAT, [16, 8]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_refusals_name_the_op(tmp_path: Path, bert: onnx.ModelProto) -> None:
    linear = onnx.load(str(modelfiles.ffn(tmp_path / "linear.onnx", "none")))
    with pytest.raises(CompressionError, match=r"stopped at MatMul 'fc2': no activation"):
        prune_ffn(linear, 0.5)
    with pytest.raises(
        CompressionError, match=r"MatMul 'fc1'.*weight 'w1' is a graph input, not an initializer"
    ):
        prune_ffn(_weights_as_inputs(tmp_path), 0.5)
    mlp = onnx.load(str(modelfiles.mlp(tmp_path / "mlp.onnx")))
    with pytest.raises(CompressionError, match="no attention block found; the graph has no Soft"):
        prune_heads(mlp, 0.5)
    with pytest.raises(CompressionError, match=r"no Conv in the graph; first op: MatMul 'h0'"):
        prune_conv_channels(mlp, 0.5)
    with pytest.raises(CompressionError, match=r"no Conv in the graph; first op: Gather"):
        prune_conv_channels(bert, 0.5)
    with pytest.raises(CompressionError, match=r"pattern pruning: .*no Conv \(first op: Gather"):
        pattern_prune(bert)


def test_a_lone_conv_reports_where_it_stopped(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="only")],
        "one_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [numpy_helper.from_array(numpy.ones((4, 3, 1, 1), numpy.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(CompressionError, match=r"stopped at Conv 'only': its output is a graph"):
        prune_conv_channels(model, 0.5)


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, float("nan"), "0.5", True, None])
def test_ratio_is_validated(bert: onnx.ModelProto, ratio: Any) -> None:
    for method in (prune_ffn, prune_heads, prune_conv_channels, block_sparsify):
        with pytest.raises(CompressionError, match="ratio"):
            method(bert, ratio)


# -- block, hierarchical and pattern sparsity -----------------------------------------------


@pytest.mark.parametrize("block", [(4, 4), (16, 16), (8, 32)])
def test_block_sparsity_zeroes_exactly_the_masked_blocks(
    bert: onnx.ModelProto, block: tuple[int, int]
) -> None:
    result = block_sparsify(bert, 0.5, block=block)
    base, sparse = _weights(bert), _weights(result.model)
    assert len(result.description.layers) == 25  # 6 matrices x 4 layers + the pooler
    for layout in result.description.layers:
        assert isinstance(layout, BlockLayout) and layout.block == block
        mask = layout.element_mask()
        numpy.testing.assert_array_equal(sparse[layout.weight][mask], base[layout.weight][mask])
        assert not sparse[layout.weight][~mask].any()
        blocks = layout.blocks()
        assert blocks.size - blocks.sum() == round(0.5 * blocks.size)
        assert layout.zeros == pytest.approx(1 - mask.mean())
    assert mismatches(result.model, result.description) == ()
    numpy.testing.assert_array_equal(
        sparse["embeddings.word_embeddings.weight"], base["embeddings.word_embeddings.weight"]
    )
    _assert_valid(result.model, bert, _bert_feeds())


def test_block_sparsity_per_layer_ratio(bert: onnx.ModelProto) -> None:
    name = "encoder.layer.0.intermediate.dense.weight"
    result = block_sparsify(bert, {name: 0.75}, block=4)
    assert [layout.weight for layout in result.description.layers] == [name]
    stats = {t.name: t.fraction for t in measure_sparsity(result.model).tensors}
    assert stats[name] == pytest.approx(0.75)
    assert stats["encoder.layer.1.intermediate.dense.weight"] == 0.0
    with pytest.raises(CompressionError, match="no sparsifiable weight named 'nope'"):
        block_sparsify(bert, {"nope": 0.5})
    with pytest.raises(CompressionError, match="block"):
        block_sparsify(bert, 0.5, block=(0, 4))


def test_hierarchical_sparsity_prunes_columns_inside_kept_blocks(bert: onnx.ModelProto) -> None:
    result = hierarchical_sparsify(bert, 0.5, 0.25, block=16)
    sparse = _weights(result.model)
    for layout in result.description.layers:
        assert isinstance(layout, BlockLayout)
        columns = layout.columns()
        assert columns is not None
        assert columns.shape == (int(layout.blocks().sum()), 16)
        assert set(columns.sum(axis=1).tolist()) == {12}
        assert not sparse[layout.weight][~layout.element_mask()].any()
        assert layout.zeros == pytest.approx(1 - 0.5 * 0.75, abs=0.01)
    assert mismatches(result.model, result.description) == ()
    assert read_sparsity(result.model) == result.description
    _assert_valid(result.model, bert, _bert_feeds())


def test_pattern_pruning_keeps_few_kernel_shapes(tmp_path: Path) -> None:
    base = onnx.load(str(modelfiles.convnet(tmp_path / "cnn.onnx", depthwise=True)))
    result = pattern_prune(base, patterns=4, entries=4, connectivity=0.25)
    sparse = _weights(result.model)
    assert {layout.weight for layout in result.description.layers} == {
        "conv1.weight",
        "conv2.weight",
        "dw.weight",
    }  # conv3 is 1x1
    for layout in result.description.layers:
        assert isinstance(layout, PatternLayout) and len(layout.patterns) <= 4
        kernels = sparse[layout.weight].reshape(-1, 9)
        ids = layout.ids().ravel()
        assert (ids == REMOVED_KERNEL).sum() == round(0.25 * len(kernels))
        assert not kernels[ids == REMOVED_KERNEL].any()
        shapes = {tuple(row) for row in (kernels[ids != REMOVED_KERNEL] != 0)}
        assert len(shapes) <= 4 and all(sum(shape) <= 4 for shape in shapes)
        for kernel, number in zip(kernels, ids, strict=True):
            if number != REMOVED_KERNEL:
                allowed = [(layout.patterns[number] >> i) & 1 for i in range(9)]
                assert not kernel[numpy.array(allowed) == 0].any()
    numpy.testing.assert_array_equal(sparse["conv3.weight"], _weights(base)["conv3.weight"])
    assert mismatches(result.model, result.description) == ()
    _assert_valid(result.model, base, _feeds_for(base))
    with pytest.raises(CompressionError, match="entries"):
        pattern_prune(base, entries=9)


def test_sparsity_description_round_trips(bert: onnx.ModelProto, tmp_path: Path) -> None:
    result = block_sparsify(bert, 0.5, block=(4, 4))
    text = json.dumps(result.description.to_dict())
    assert SparsityDescription.from_dict(json.loads(text)) == result.description
    onnx.save(result.model, str(tmp_path / "sparse.onnx"))
    assert read_sparsity(tmp_path / "sparse.onnx") == result.description
    assert read_sparsity(bert) is None
    cnn = onnx.load(str(modelfiles.convnet(tmp_path / "cnn.onnx")))
    patterns = pattern_prune(cnn).description
    moved = embed_sparsity(cnn, patterns)
    assert read_sparsity(moved) == patterns and read_sparsity(cnn) is None
    onnx.save(moved, str(tmp_path / "patterns.onnx"))
    assert read_sparsity(str(tmp_path / "patterns.onnx")) == patterns


def test_malformed_sparsity_metadata_is_a_model_error(bert: onnx.ModelProto) -> None:
    for text in (
        "{not json",
        "[1, 2]",
        json.dumps({"version": 1, "method": "block"}),
        json.dumps({"version": 99, "method": "block", "parameters": {}, "layers": []}),
    ):
        model = onnx.ModelProto()
        model.CopyFrom(bert)
        entry = model.metadata_props.add()
        entry.key, entry.value = SPARSITY_METADATA_KEY, text
        with pytest.raises(ModelError):
            read_sparsity(model)


def test_measure_sparsity_counts_zeros_of_any_variant(bert: onnx.ModelProto) -> None:
    base = measure_sparsity(bert)
    matrices = {t.name for t in bert.graph.initializer if len(t.dims) >= 2}
    assert {t.name for t in base.tensors} == matrices
    assert base.zeros == 0 and base.fraction == 0.0
    model = onnx.ModelProto()
    model.CopyFrom(bert)
    for tensor in model.graph.initializer:  # unstructured: 30 % of one matrix
        if tensor.name == "pooler.dense.weight":
            value = numpy_helper.to_array(tensor).copy()
            value.ravel()[: int(0.3 * value.size)] = 0
            tensor.CopyFrom(numpy_helper.from_array(value, tensor.name))
    stats = measure_sparsity(model)
    by_name = {t.name: t for t in stats.tensors}
    assert by_name["pooler.dense.weight"].fraction == pytest.approx(0.3, abs=1e-3)
    assert by_name["pooler.dense.weight"].op_type == "MatMul"
    assert stats.fraction == pytest.approx(by_name["pooler.dense.weight"].zeros / base.size)
    assert stats.to_dict()["tensors"][0]["name"] == base.tensors[0].name


def test_shared_weights_are_not_pruned() -> None:
    rng = numpy.random.default_rng(5)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h1"], name="fc1"),
            helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
            helper.make_node("MatMul", ["a1", "w2"], ["o1"], name="fc2"),
            helper.make_node("MatMul", ["o1", "w1"], ["h2"], name="fc1_again"),
            helper.make_node("Relu", ["h2"], ["a2"], name="relu2"),
            helper.make_node("MatMul", ["a2", "w2"], ["y"], name="fc2_again"),
        ],
        "tied",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        [
            numpy_helper.from_array(rng.standard_normal((8, 16)).astype(numpy.float32), "w1"),
            numpy_helper.from_array(rng.standard_normal((16, 8)).astype(numpy.float32), "w2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(CompressionError, match=r"weight 'w\d' is shared with MatMul"):
        prune_ffn(model, 0.5)
    sparse = block_sparsify(model, 0.5, block=4)  # zeros suit every user of a tied weight
    assert mismatches(sparse.model, sparse.description) == ()


def test_pruning_drops_a_sparsity_layout_it_would_make_stale(bert: onnx.ModelProto) -> None:
    sparse = block_sparsify(bert, 0.5).model
    assert read_sparsity(sparse) is not None
    assert read_sparsity(prune_ffn(sparse, 0.5).model) is None
