"""Structured pruning that really shrinks tensors, so every runtime gets faster.

Three methods, each taking an ``onnx.ModelProto`` and a ratio (the fraction of units to
remove, ``0 <= ratio < 1``) and returning a ``PruneResult``: the new model plus a
``PruneReport`` of what was removed where. The user's model is never modified.

* ``prune_ffn``: the intermediate neurons of Transformer feed-forward blocks
  ``MatMul/Gemm(W1) -> [Add b1] -> activation -> MatMul/Gemm(W2)``. The activation may be any
  chain of element-wise ops (Relu, Gelu, FastGelu, BiasGelu, the Erf or tanh Gelu subgraphs,
  Sigmoid/SiLU ...) whose other inputs are scalars or per-neuron constants. Neuron ``j`` is
  ranked by ``|W1[:, j]|_2 * |W2[j, :]|_2``; the lowest are removed from W1's columns, every
  per-neuron constant (b1, a FastGelu bias) and W2's rows.
* ``prune_heads``: attention heads. Around every Softmax it finds the Q/K/V projections
  (MatMul [+ Add bias]) split by ``Reshape [.., .., heads, head_dim]``, the context MatMul, the
  merge Reshape and the output projection. Head ``h`` is ranked by ``|W_v[:, h]|_F *
  |W_o[h, :]|_F`` (the size of what the head can add to the output); the lowest are removed
  from the Q/K/V columns and biases and the output projection's rows, and the head count in
  the Reshape shapes is rewritten. head_dim, hence the attention scale, is unchanged. Shapes
  held in an initializer, a Constant node or a Concat whose trailing inputs are constants (the
  Hugging Face export) are rewritten; a shape computed at run time is refused.
* ``prune_conv_channels``: output channels of a Conv (group 1), carried through
  BatchNormalization, element-wise activations, pooling and depthwise convolutions, into the
  input channels of the next Conv (or the Gemm after a global pool and Flatten). Filters are
  ranked by their L1 or L2 norm.

A structure a method does not recognise gives a ``CompressionError`` naming the node and op
type where the match stopped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy
import onnx

from hilbench.core.errors import CompressionError
from hilbench.variants.graph import (
    LINEAR_OPS,
    Array,
    GraphIndex,
    Linear,
    Unmatched,
    attribute,
    copy_model,
    describe,
    first_node,
    float_parameters,
    linear_at,
    require_unshared,
    set_int_attribute,
    weight_origin,
)
from hilbench.variants.sparsity import SPARSITY_METADATA_KEY

PRUNING_METADATA_KEY = "hilbench.pruning"

# Ops that act on every feature independently (their other inputs broadcast).
ACTIVATIONS = frozenset(
    [
        "Relu",
        "LeakyRelu",
        "PRelu",
        "Elu",
        "Selu",
        "Celu",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Erf",
        "Gelu",
        "FastGelu",
        "BiasGelu",
        "QuickGelu",
        "Softplus",
        "Softsign",
        "Mish",
        "Clip",
        "ThresholdedRelu",
        "Exp",
    ]
)
ELEMENTWISE = ACTIVATIONS | frozenset(
    [
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Pow",
        "Sqrt",
        "Neg",
        "Abs",
        "Reciprocal",
        "Identity",
        "Cast",
        "Dropout",
    ]
)
POOLS = frozenset({"MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool"})
GLOBAL_POOLS = frozenset({"GlobalAveragePool", "GlobalMaxPool"})
PER_CHANNEL_INPUTS = {"BatchNormalization": (1, 2, 3, 4), "InstanceNormalization": (1, 2)}


# --------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class LayerPrune:
    """What one block lost: ``original`` units (neurons, heads or channels), ``kept`` of them,
    and which (indices into the original order, ascending)."""

    layer: str
    op_type: str
    unit: str
    original: int
    kept: int
    kept_indices: tuple[int, ...]

    @property
    def removed(self) -> int:
        return self.original - self.kept


@dataclass(frozen=True)
class PruneReport:
    """One pruning step: method, parameters, per-block counts and the measured effect.

    ``params_before`` / ``params_after`` count every floating-point parameter of the model
    (initializers and Constant nodes), ``bytes_*`` their storage."""

    method: str
    ratio: float
    criterion: str
    layers: tuple[LayerPrune, ...]
    params_before: int
    params_after: int
    bytes_before: int
    bytes_after: int
    parameters: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def parameter_reduction(self) -> float:
        """Fraction of parameters removed (0.25 = a quarter fewer)."""
        return 1.0 - self.params_after / self.params_before if self.params_before else 0.0

    @property
    def removed_fraction(self) -> float:
        """Fraction of the prunable units removed over all blocks."""
        original = sum(layer.original for layer in self.layers)
        return 1.0 - sum(layer.kept for layer in self.layers) / original if original else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (what is stored in the model's ``hilbench.pruning`` metadata)."""
        data = asdict(self)
        data["layers"] = [
            dict(asdict(layer), kept_indices=list(layer.kept_indices)) for layer in self.layers
        ]
        data["parameter_reduction"] = round(self.parameter_reduction, 6)
        return data


@dataclass(frozen=True)
class PruneResult:
    """The pruned model (a new object; the input is untouched) and what was done."""

    model: onnx.ModelProto
    report: PruneReport


# --------------------------------------------------------------------------------------------
# shared helpers


def validate_ratio(ratio: float, method: str) -> float:
    """``ratio`` as a float in [0, 1), or ``CompressionError``."""
    if isinstance(ratio, bool) or not isinstance(ratio, int | float):
        raise CompressionError(f"{method}: ratio must be a number, not {ratio!r}")
    value = float(ratio)
    if not (0.0 <= value < 1.0):  # also refuses NaN
        raise CompressionError(f"{method}: ratio must be in [0, 1), got {ratio!r}")
    return value


def kept_count(total: int, ratio: float, multiple_of: int = 1) -> int:
    """How many of ``total`` units to keep when removing ``ratio`` of them: at least one,
    rounded to a multiple of ``multiple_of`` (when ``total`` allows it)."""
    keep = max(1, round(total * (1.0 - ratio)))
    if multiple_of > 1 and total >= multiple_of:
        keep = max(multiple_of, round(keep / multiple_of) * multiple_of)
    return min(keep, total)


def top_indices(scores: Array, keep: int) -> Array:
    """The ``keep`` highest-scoring indices in ascending order (ties: the lower index)."""
    order = numpy.argsort(-scores, kind="stable")[:keep]
    return numpy.sort(order).astype(numpy.int64)


def _check_multiple(multiple_of: int, method: str) -> None:
    if isinstance(multiple_of, bool) or not isinstance(multiple_of, int) or multiple_of < 1:
        raise CompressionError(f"{method}: multiple_of must be a positive integer")


@dataclass(frozen=True)
class _Step:
    """What a method did, before its effect is measured."""

    method: str
    ratio: float
    criterion: str
    parameters: dict[str, Any]


def _finish(
    model: onnx.ModelProto,
    base: onnx.ModelProto,
    index: GraphIndex,
    step: _Step,
    layers: tuple[LayerPrune, ...],
) -> PruneResult:
    """Clean the graph, measure the effect, store the report in the model's metadata and
    check the result."""
    index.finish()
    before, bytes_before = float_parameters(base)
    after, bytes_after = float_parameters(model)
    done = PruneReport(
        step.method,
        step.ratio,
        step.criterion,
        layers,
        before,
        after,
        bytes_before,
        bytes_after,
        step.parameters,
    )
    _append_metadata(model, done)
    _check(model, base, done.method)
    return PruneResult(model, done)


def _check(model: onnx.ModelProto, base: onnx.ModelProto, method: str) -> None:
    """``onnx.checker`` on the result (below the 2 GiB protobuf limit). A failure is a bug
    here unless the base model fails the checker too; then the variant is held to no
    stricter standard than its base."""
    if model.ByteSize() >= 2**31 - 1:
        return
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        try:
            onnx.checker.check_model(base)
        except onnx.checker.ValidationError:
            return
        raise CompressionError(f"{method}: the pruned model fails onnx.checker: {exc}") from exc


def _append_metadata(model: onnx.ModelProto, report: PruneReport) -> None:
    """Add ``report`` to the JSON list under ``hilbench.pruning`` (one entry per step), and
    drop a sparsity layout, which describes the shapes before pruning."""
    entries: list[Any] = []
    for prop in list(model.metadata_props):
        if prop.key == SPARSITY_METADATA_KEY:
            model.metadata_props.remove(prop)
        if prop.key == PRUNING_METADATA_KEY:
            try:
                loaded = json.loads(prop.value)
            except json.JSONDecodeError:
                loaded = []
            entries = loaded if isinstance(loaded, list) else []
            model.metadata_props.remove(prop)
    entries.append(report.to_dict())
    entry = model.metadata_props.add()
    entry.key = PRUNING_METADATA_KEY
    entry.value = json.dumps(entries, separators=(",", ":"))


def _no_match(method: str, what: str, misses: list[Unmatched]) -> CompressionError:
    """The error for a model where no block matched: the most advanced failure."""
    best = max(misses, key=lambda miss: miss.depth)
    return CompressionError(f"{method}: no {what} found; stopped at {best.where}: {best.reason}")


# --------------------------------------------------------------------------------------------
# element-wise regions: the tensors that carry the pruned feature axis between two layers


@dataclass
class _Region:
    """Tensors carrying the pruned axis, the nodes between, the constants to slice, and the
    layers that consume the axis (the region's exits)."""

    tensors: dict[str, int] = field(default_factory=dict)  # name -> rank (-1: unknown)
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    slices: list[tuple[onnx.NodeProto, int, int]] = field(default_factory=list)
    exits: list[Any] = field(default_factory=list)
    depthwise: list[onnx.NodeProto] = field(default_factory=list)


ExitTest = Callable[[GraphIndex, onnx.NodeProto, str], Any]
PassTest = Callable[[onnx.NodeProto, _Region, str], int | None]


def _walk(
    index: GraphIndex, start: str, rank: int, is_exit: ExitTest, passes: PassTest, depth: int
) -> _Region:
    """Collect the region reachable from ``start`` through ops that ``passes`` accepts (it
    returns the output rank or None), stopping at consumers ``is_exit`` recognises."""
    region = _Region(tensors={start: rank})
    queue = [start]
    seen: set[int] = set()
    while queue:
        tensor = queue.pop(0)
        if tensor in index.outputs:
            producer = index.producer.get(tensor)
            where = describe(producer) if producer is not None else f"input '{tensor}'"
            raise Unmatched(where, "its output is a graph output", depth + len(region.nodes))
        for node in index.users(tensor):
            if id(node) in seen:
                continue
            seen.add(id(node))
            found = is_exit(index, node, tensor)
            if found is not None:
                region.exits.append(found)
                continue
            out_rank = passes(node, region, tensor)
            if out_rank is None:
                raise Unmatched(
                    describe(node),
                    "it is not element-wise over the pruned axis",
                    depth + len(region.nodes),
                )
            region.nodes.append(node)
            for extra in node.output[1:]:
                if extra and index.users(extra):
                    raise Unmatched(
                        describe(node),
                        f"its extra output '{extra}' is used",
                        depth + len(region.nodes),
                    )
            region.tensors[node.output[0]] = out_rank
            queue.append(node.output[0])
    return region


def _check_inputs(
    index: GraphIndex,
    region: _Region,
    size: int,
    axis_for: Callable[[onnx.NodeProto, int, Array], int | None],
    depth: int,
) -> None:
    """Every input of a region node must be in the region or a constant; constants that vary
    along the pruned axis (``axis_for`` says which of their axes) are queued for slicing."""
    for node in region.nodes:
        for position, name in enumerate(node.input):
            if not name or name in region.tensors:
                continue
            value = index.constant(name)
            if value is None:
                raise Unmatched(
                    describe(node),
                    f"its input '{name}' is computed outside the "
                    "block (a residual or gating branch?)",
                    depth,
                )
            axis = axis_for(node, position, value)
            if axis is None:
                continue
            if value.shape[axis] != size:
                raise Unmatched(
                    describe(node),
                    f"constant '{name}' of shape {list(value.shape)} does not broadcast per unit",
                    depth,
                )
            region.slices.append((node, position, axis))


def _slice_region(index: GraphIndex, region: _Region, keep: Array) -> None:
    for node, position, axis in region.slices:
        index.take(node, position, keep, axis)


# --------------------------------------------------------------------------------------------
# FFN neurons


def prune_ffn(model: onnx.ModelProto, ratio: float, *, multiple_of: int = 1) -> PruneResult:
    """Remove ``ratio`` of the intermediate neurons of every feed-forward block.

    ``multiple_of`` rounds the kept count per block (e.g. 8 or 16 for SIMD- and
    tensor-core-friendly widths). ``CompressionError`` when ``ratio`` is out of [0, 1) or no
    block is recognised (naming the op where the best match stopped)."""
    method = "prune ffn"
    ratio = validate_ratio(ratio, method)
    _check_multiple(multiple_of, method)
    result = copy_model(model)
    index = GraphIndex(result.graph)
    blocks, misses = _find_ffn_blocks(index)
    if not blocks:
        raise _no_ffn(result.graph, misses)
    layers = tuple(_prune_ffn_block(index, first, ratio, multiple_of) for first in blocks)

    step = _Step("ffn", ratio, "l2(W1 column) * l2(W2 row)", {"multiple_of": multiple_of})
    return _finish(result, model, index, step, layers)


def _no_ffn(graph: onnx.GraphProto, misses: list[Unmatched]) -> CompressionError:
    if misses:
        return _no_match("prune ffn", "FFN block", misses)
    first = graph.node[0] if graph.node else None
    where = f"; first op: {describe(first)}" if first is not None else ""
    return CompressionError(
        f"prune ffn: no FFN block found; the graph has no MatMul or Gemm{where}"
    )


def _find_ffn_blocks(index: GraphIndex) -> tuple[list[Linear], list[Unmatched]]:
    """The first linear layer of every FFN block in graph order, and the failed candidates."""
    blocks: list[Linear] = []
    misses: list[Unmatched] = []
    for node in index.nodes:
        if node.op_type not in LINEAR_OPS:
            continue
        try:
            first = linear_at(index, node)
            _ffn_region(index, first)
        except Unmatched as miss:
            misses.append(miss)
            continue
        blocks.append(first)
    return blocks, misses


def _ffn_is_exit(index: GraphIndex, node: onnx.NodeProto, tensor: str) -> Linear | None:
    if node.op_type not in LINEAR_OPS or node.input[0] != tensor:
        return None
    try:
        return linear_at(index, node, tensor)
    except Unmatched:
        return None


def _ffn_passes(node: onnx.NodeProto, region: _Region, tensor: str) -> int | None:
    return -1 if node.op_type in ELEMENTWISE else None


def _ffn_constant_axis(node: onnx.NodeProto, position: int, value: Array) -> int | None:
    """Features are the last axis: a constant varies per neuron when its last dim is > 1."""
    if value.ndim == 0 or value.shape[-1] == 1:
        return None
    return value.ndim - 1


def _ffn_region(index: GraphIndex, first: Linear) -> _Region:
    """The element-wise region after ``first`` up to the second linear layer(s)."""
    start = first.node.output[0]
    region = _walk(index, start, -1, _ffn_is_exit, _ffn_passes, depth=1)
    depth = 2 + len(region.nodes)
    if not region.exits:
        raise Unmatched(describe(first.node), "its output reaches no second MatMul/Gemm", depth)
    if not any(node.op_type in ACTIVATIONS for node in region.nodes):
        exit_node = region.exits[0].node
        raise Unmatched(
            describe(exit_node),
            f"no activation between {describe(first.node)} "
            "and it (a linear pair is not an FFN block)",
            depth + 10,
        )
    neurons = first.features(index)[1]
    _check_inputs(index, region, neurons, _ffn_constant_axis, depth + 10)
    require_unshared(index, first.node, first.weight_index, depth + 20)
    for second in region.exits:
        require_unshared(index, second.node, second.weight_index, depth + 20)
        if second.features(index)[0] != neurons:
            raise Unmatched(
                describe(second.node),
                f"takes {second.features(index)[0]} inputs, "
                f"not the {neurons} neurons of {describe(first.node)}",
                depth + 10,
            )
    return region


def _prune_ffn_block(index: GraphIndex, first: Linear, ratio: float, multiple: int) -> LayerPrune:
    """Rank and remove the neurons of one block (re-reading weights an earlier block of a
    chained MLP may already have sliced)."""
    region = _ffn_region(index, first)
    w1 = first.weight(index).astype(numpy.float64)
    neurons = w1.shape[first.out_axis]
    incoming = numpy.linalg.norm(w1, axis=first.in_axis)
    outgoing_sq = numpy.zeros(neurons)
    for second in region.exits:
        w2 = second.weight(index).astype(numpy.float64)
        outgoing_sq += numpy.sum(w2 * w2, axis=second.out_axis)
    keep = top_indices(incoming * numpy.sqrt(outgoing_sq), kept_count(neurons, ratio, multiple))
    first.take_outputs(index, keep)
    _slice_region(index, region, keep)
    for second in region.exits:
        second.take_inputs(index, keep)
    return LayerPrune(
        first.node.name or first.node.output[0],
        first.node.op_type,
        "neurons",
        neurons,
        len(keep),
        tuple(int(i) for i in keep),
    )


# --------------------------------------------------------------------------------------------
# attention heads


@dataclass(frozen=True)
class _ShapeSlot:
    """Where one element of a Reshape's target shape is stored: input ``position`` of
    ``node`` (the Reshape or a Concat) holds a constant whose element ``element`` it is."""

    node: onnx.NodeProto
    position: int
    element: int


@dataclass(frozen=True)
class _Projection:
    """One of Q/K/V: the linear layer, its bias Add (node, input position) and the split."""

    linear: Linear
    bias: tuple[onnx.NodeProto, int] | None
    reshape: onnx.NodeProto
    heads: int
    head_dim: int
    heads_slot: _ShapeSlot | None  # None: the shape says -1 there, nothing to rewrite


@dataclass(frozen=True)
class _Attention:
    query: _Projection
    key: _Projection
    value: _Projection
    merge: onnx.NodeProto
    merge_slot: _ShapeSlot | None
    output: Linear

    @property
    def heads(self) -> int:
        return self.value.heads

    @property
    def head_dim(self) -> int:
        return self.value.head_dim


def prune_heads(model: onnx.ModelProto, ratio: float) -> PruneResult:
    """Remove ``ratio`` of the attention heads of every multi-head attention block (at least
    one head stays per block).

    ``CompressionError`` when ``ratio`` is out of [0, 1), when no attention block is
    recognised, or when a block's Reshape takes a shape computed at run time."""
    method = "prune heads"
    ratio = validate_ratio(ratio, method)
    result = copy_model(model)
    index = GraphIndex(result.graph)
    blocks, misses = _find_attention(index)
    if not blocks:
        if misses:
            raise _no_match(method, "attention block", misses)
        raise CompressionError(f"{method}: no attention block found; {_no_softmax(result.graph)}")
    layers = tuple(_prune_attention(index, block, ratio) for block in blocks)

    step = _Step("heads", ratio, "frobenius(W_v head) * frobenius(W_o head)", {})
    return _finish(result, model, index, step, layers)


FUSED_ATTENTION = ("Attention", "MultiHeadAttention", "PackedAttention", "GroupQueryAttention")


def _no_softmax(graph: onnx.GraphProto) -> str:
    """Why a graph without a matching Softmax has no attention to prune."""
    fused = first_node(graph, FUSED_ATTENTION)
    if fused is not None:
        return (
            f"stopped at {describe(fused)}: fused attention ops are not supported; prune the "
            "model before optimizing it with onnxruntime's transformer fusions"
        )
    return "the graph has no Softmax"


def _find_attention(index: GraphIndex) -> tuple[list[_Attention], list[Unmatched]]:
    blocks: list[_Attention] = []
    misses: list[Unmatched] = []
    for node in index.nodes:
        if node.op_type != "Softmax":
            continue
        try:
            blocks.append(_attention_at(index, node))
        except Unmatched as miss:
            misses.append(miss)
    return blocks, misses


_PASS_THROUGH = ("Cast", "Dropout", "Identity")


def _follow(index: GraphIndex, tensor: str, through: Iterable[str]) -> onnx.NodeProto | None:
    """The first single consumer of ``tensor`` that is not one of ``through``."""
    allowed = set(through)
    node = index.single_user(tensor)
    while node is not None and node.op_type in allowed:
        node = index.single_user(node.output[0])
    return node


def _attention_at(index: GraphIndex, softmax: onnx.NodeProto) -> _Attention:
    """The attention block around ``softmax``, or ``Unmatched``."""
    context = _follow(index, softmax.output[0], _PASS_THROUGH)
    if context is None or context.op_type != "MatMul" or index.is_constant(context.input[1]):
        raise Unmatched(describe(softmax), "its output does not feed a MatMul with the values")
    scores = _scores_matmul(index, softmax)
    query = _projection(index, scores.input[0], scores, depth=2)
    key = _projection(index, scores.input[1], scores, depth=3)
    value = _projection(index, context.input[1], context, depth=4)
    merge, output = _merge(index, context)
    for name, proj in (("key", key), ("value", value)):
        if (proj.heads, proj.head_dim) != (query.heads, query.head_dim):
            raise Unmatched(
                describe(proj.reshape),
                f"{name} has {proj.heads}x{proj.head_dim} "
                f"heads, query {query.heads}x{query.head_dim}",
                5,
            )
    width = query.heads * query.head_dim
    for proj in (query, key, value):
        if proj.linear.features(index)[1] != width:
            raise Unmatched(describe(proj.linear.node), f"does not produce {width} features", 5)
    if output.features(index)[0] != width:
        raise Unmatched(describe(output.node), f"does not take {width} features", 6)
    merge_slot = _merge_slot(index, merge, width)
    for linear in (query.linear, key.linear, value.linear, output):
        require_unshared(index, linear.node, linear.weight_index, 10)
    return _Attention(query, key, value, merge, merge_slot, output)


def _scores_matmul(index: GraphIndex, softmax: onnx.NodeProto) -> onnx.NodeProto:
    """The Q x K^T MatMul feeding ``softmax`` through scale, mask and casts."""
    found = _trace_back(index, softmax.input[0], depth=6)
    if found is None:
        raise Unmatched(describe(softmax), "no Q x K MatMul found before it", 1)
    return found


def _trace_back(index: GraphIndex, tensor: str, depth: int) -> onnx.NodeProto | None:
    """Search back from ``tensor`` through Add/Sub/Mul/Div/Where/Cast for a MatMul of two
    computed tensors."""
    node = index.producer.get(tensor)
    if node is None or depth == 0:
        return None
    if node.op_type == "MatMul":
        computed = not any(index.is_constant(name) for name in node.input)
        return node if computed else None
    if node.op_type not in ("Add", "Sub", "Mul", "Div", "Where", "Cast", "Identity"):
        return None
    for name in node.input:
        if name and not index.is_constant(name):
            found = _trace_back(index, name, depth - 1)
            if found is not None:
                return found
    return None


def _projection(index: GraphIndex, tensor: str, user: onnx.NodeProto, depth: int) -> _Projection:
    """Q, K or V: back from ``tensor`` through Transposes and scalar scalings to the splitting
    Reshape, then to the (biased) linear projection."""
    node = index.producer.get(tensor)
    while node is not None and node.op_type in ("Transpose", "Mul", "Div", "Cast"):
        if node.op_type in ("Mul", "Div"):
            scale = index.constant(node.input[1])
            if scale is None or scale.size != 1:
                break
        node = index.producer.get(node.input[0])
    if node is None or node.op_type != "Reshape":
        where = describe(node) if node is not None else describe(user)
        raise Unmatched(where, "not a Reshape splitting heads", depth)
    reshape = node
    heads, head_dim, slot = _split_shape(index, reshape, depth)
    linear, bias = _linear_before(index, reshape.input[0], reshape, depth)
    if bias is not None:
        value = index.constant(bias[0].input[bias[1]])
        if value is None or value.ndim == 0 or value.shape[-1] != heads * head_dim:
            raise Unmatched(describe(bias[0]), "its bias is not per feature", depth)
    return _Projection(linear, bias, reshape, heads, head_dim, slot)


def _linear_before(
    index: GraphIndex, tensor: str, reshape: onnx.NodeProto, depth: int
) -> tuple[Linear, tuple[onnx.NodeProto, int] | None]:
    """The linear layer (and its bias Add) producing ``tensor``."""
    node = index.producer.get(tensor)
    bias: tuple[onnx.NodeProto, int] | None = None
    if node is not None and node.op_type == "Add":
        constants = [i for i, name in enumerate(node.input) if index.constant(name) is not None]
        if len(constants) != 1:
            raise Unmatched(describe(node), "not a bias Add of the projection", depth)
        bias = (node, constants[0])
        node = index.producer.get(node.input[1 - constants[0]])
    if node is None or node.op_type not in LINEAR_OPS:
        where = describe(node) if node is not None else describe(reshape)
        raise Unmatched(
            where,
            "the split heads do not come from a MatMul/Gemm projection "
            "(a packed QKV projection is not supported)",
            depth,
        )
    linear = linear_at(index, node)
    if bias is not None and index.single_user(node.output[0]) is None:
        raise Unmatched(describe(node), "its output has other users than the bias Add", depth)
    for user in index.users(reshape.input[0]):
        if user is not reshape and user.op_type != "Shape":  # HF exports read batch and length
            raise Unmatched(
                describe(user), f"uses '{reshape.input[0]}' besides the attention", depth
            )
    if reshape.input[0] in index.outputs:
        raise Unmatched(describe(node), "its output is a graph output", depth)
    return linear, bias


def _split_shape(
    index: GraphIndex, reshape: onnx.NodeProto, depth: int
) -> tuple[int, int, _ShapeSlot | None]:
    """(heads, head_dim, where the head count is stored) of a ``[.., .., heads, head_dim]``
    Reshape. The count may be -1 (then nothing is rewritten)."""
    slots = _shape_slots(index, reshape, count=2)
    values = [_slot_value(index, slot) for slot in slots]
    heads, head_dim = values
    if head_dim <= 0 or heads == 0 or heads < -1:
        raise Unmatched(
            describe(reshape), f"its shape ends in {values}, not [heads, head_dim]", depth
        )
    if heads == -1:
        linear_in = index.producer.get(reshape.input[0])
        width = _projection_width(index, linear_in)
        if width is None or width % head_dim:
            raise Unmatched(describe(reshape), "cannot tell the head count", depth)
        return width // head_dim, head_dim, None
    return heads, head_dim, slots[0]


def _projection_width(index: GraphIndex, node: onnx.NodeProto | None) -> int | None:
    """Output features of the projection producing a Reshape's input (through its Add)."""
    if node is not None and node.op_type == "Add":
        for name in node.input:
            producer = index.producer.get(name)
            if producer is not None and producer.op_type in LINEAR_OPS:
                node = producer
    if node is None or node.op_type not in LINEAR_OPS:
        return None
    try:
        return linear_at(index, node).features(index)[1]
    except Unmatched:
        return None


def _main_user(index: GraphIndex, tensor: str) -> onnx.NodeProto | None:
    """The one consumer of ``tensor`` besides Shape ops (Hugging Face exports read the batch
    and sequence length off the attention tensors)."""
    users = [user for user in index.users(tensor) if user.op_type != "Shape"]
    return users[0] if len(users) == 1 and tensor not in index.outputs else None


def _merge(index: GraphIndex, context: onnx.NodeProto) -> tuple[onnx.NodeProto, Linear]:
    """The Reshape merging heads after the context MatMul, and the output projection."""
    node = _main_user(index, context.output[0])
    while node is not None and node.op_type in ("Transpose", "Cast"):
        node = _main_user(index, node.output[0])
    if node is None or node.op_type != "Reshape":
        raise Unmatched(describe(context), "its output is not merged by a Reshape", 5)
    output = index.single_user(node.output[0])
    if output is None or output.op_type not in LINEAR_OPS:
        raise Unmatched(describe(node), "the merged heads do not feed one MatMul/Gemm", 5)
    return node, linear_at(index, output, node.output[0])


def _merge_slot(index: GraphIndex, merge: onnx.NodeProto, width: int) -> _ShapeSlot | None:
    """Where the merge Reshape stores ``heads * head_dim`` (None when it says -1)."""
    slot = _shape_slots(index, merge, count=1)[0]
    last = _slot_value(index, slot)
    if last == -1:
        return None
    if last != width:
        raise Unmatched(describe(merge), f"its shape ends in {last}, not {width}", 6)
    return slot


def _shape_slots(index: GraphIndex, reshape: onnx.NodeProto, count: int) -> list[_ShapeSlot]:
    """Where the last ``count`` elements of ``reshape``'s target shape are stored. A shape
    computed at run time is a ``CompressionError``: the block is attention, but its head count
    cannot be rewritten."""
    shape_name = reshape.input[1]
    value = index.constant(shape_name)
    if value is not None:
        if value.ndim != 1 or value.size < count:
            raise Unmatched(describe(reshape), f"unexpected shape {value.tolist()}", 2)
        return [_ShapeSlot(reshape, 1, value.size - count + i) for i in range(count)]
    producer = index.producer.get(shape_name)
    if producer is not None and producer.op_type == "Concat":
        slots = _concat_slots(index, producer, count)
        if slots is not None:
            return slots
    source = describe(producer) if producer is not None else f"input '{shape_name}'"
    raise CompressionError(
        f"prune heads: {describe(reshape)} takes its shape from {source}, which is computed at "
        "run time; only shapes held in an initializer, a Constant node or a Concat ending in "
        "constants can be rewritten"
    )


def _concat_slots(index: GraphIndex, concat: onnx.NodeProto, count: int) -> list[_ShapeSlot] | None:
    """The last ``count`` elements of a 1-D Concat, when its trailing inputs are constants."""
    if attribute(concat, "axis", 0) not in (0, -1):
        return None
    slots: list[_ShapeSlot] = []
    for position in range(len(concat.input) - 1, -1, -1):
        value = index.constant(concat.input[position])
        if value is None or value.ndim != 1:
            return None
        for element in range(value.size - 1, -1, -1):
            slots.insert(0, _ShapeSlot(concat, position, element))
            if len(slots) == count:
                return slots
    return None


def _slot_value(index: GraphIndex, slot: _ShapeSlot) -> int:
    value = index.constant(slot.node.input[slot.position])
    if value is None:
        raise Unmatched(describe(slot.node), "its shape input is no longer constant", 2)
    return int(value[slot.element])


def _set_slot(index: GraphIndex, slot: _ShapeSlot, number: int) -> None:
    value = index.constant(slot.node.input[slot.position])
    if value is None:
        raise Unmatched(describe(slot.node), "its shape input is no longer constant", 2)
    value = value.copy()
    value[slot.element] = number
    index.set_input(slot.node, slot.position, value, "_heads")


def _head_scores(index: GraphIndex, block: _Attention) -> Array:
    value = block.value.linear
    w_v = value.weight(index).astype(numpy.float64)
    w_o = block.output.weight(index).astype(numpy.float64)
    v_sq = numpy.sum(w_v * w_v, axis=value.in_axis).reshape(block.heads, block.head_dim)
    o_sq = numpy.sum(w_o * w_o, axis=block.output.out_axis).reshape(block.heads, block.head_dim)
    result: Array = numpy.sqrt(v_sq.sum(axis=1)) * numpy.sqrt(o_sq.sum(axis=1))
    return result


def _prune_attention(index: GraphIndex, block: _Attention, ratio: float) -> LayerPrune:
    """Remove the lowest-ranked heads of one block and rewrite its shapes."""
    keep_heads = top_indices(_head_scores(index, block), kept_count(block.heads, ratio))
    columns = (keep_heads[:, None] * block.head_dim + numpy.arange(block.head_dim)).ravel()
    for proj in (block.query, block.key, block.value):
        proj.linear.take_outputs(index, columns)
        if proj.bias is not None:
            index.take(proj.bias[0], proj.bias[1], columns, -1)
        if proj.heads_slot is not None:
            _set_slot(index, proj.heads_slot, len(keep_heads))
    block.output.take_inputs(index, columns)
    if block.merge_slot is not None:
        _set_slot(index, block.merge_slot, len(keep_heads) * block.head_dim)
    node = block.output.node
    return LayerPrune(
        node.name or node.output[0],
        "Attention",
        "heads",
        block.heads,
        len(keep_heads),
        tuple(int(h) for h in keep_heads),
    )


# --------------------------------------------------------------------------------------------
# conv channels


def prune_conv_channels(
    model: onnx.ModelProto, ratio: float, *, criterion: str = "l2", multiple_of: int = 1
) -> PruneResult:
    """Remove ``ratio`` of the output channels of every prunable Conv (group 1, weight a
    constant) whose channels flow only through BatchNormalization, element-wise ops, pooling
    and depthwise convs into the next Conv or a Gemm after global pooling. ``criterion`` is
    ``"l1"`` or ``"l2"`` (filter norm). A Conv whose channels reach a residual Add, a Concat or
    the graph output is left as it is; ``CompressionError`` when no Conv can be pruned."""
    method = "prune conv channels"
    ratio = validate_ratio(ratio, method)
    _check_multiple(multiple_of, method)
    if criterion not in ("l1", "l2"):
        raise CompressionError(f"{method}: criterion must be 'l1' or 'l2', not {criterion!r}")
    result = copy_model(model)
    index = GraphIndex(result.graph)
    convs, misses = _find_conv_chains(index)
    if not convs:
        raise _no_conv(result.graph, misses)
    layers = tuple(_prune_conv(index, conv, ratio, criterion, multiple_of) for conv in convs)

    step = _Step("conv_channels", ratio, f"{criterion}(filter)", {"multiple_of": multiple_of})
    return _finish(result, model, index, step, layers)


def _no_conv(graph: onnx.GraphProto, misses: list[Unmatched]) -> CompressionError:
    if misses:
        return _no_match("prune conv channels", "prunable Conv", misses)
    first = graph.node[0] if graph.node else None
    where = f"; first op: {describe(first)}" if first is not None else ""
    return CompressionError(f"prune conv channels: no Conv in the graph{where}")


def _conv_weight(index: GraphIndex, node: onnx.NodeProto) -> Array:
    weight = index.float_constant(node.input[1]) if len(node.input) > 1 else None
    if weight is None or weight.ndim < 3:
        raise Unmatched(describe(node), f"its {weight_origin(index, node.input[1])}")
    return weight


def _find_conv_chains(index: GraphIndex) -> tuple[list[onnx.NodeProto], list[Unmatched]]:
    convs: list[onnx.NodeProto] = []
    misses: list[Unmatched] = []
    for node in index.nodes:
        if node.op_type != "Conv":
            continue
        try:
            _conv_region(index, node)
        except Unmatched as miss:
            misses.append(miss)
            continue
        convs.append(node)
    return convs, misses


def _is_depthwise(node: onnx.NodeProto, weight: Array) -> bool:
    group = int(attribute(node, "group", 1))
    return group > 1 and weight.shape[1] == 1 and weight.shape[0] == group


def _conv_exit(index: GraphIndex, node: onnx.NodeProto, tensor: str) -> Any:
    """The next layer consuming the channels: a group-1 Conv or a linear layer."""
    if node.op_type == "Conv" and node.input[0] == tensor:
        try:
            weight = _conv_weight(index, node)
        except Unmatched:
            return None
        return node if int(attribute(node, "group", 1)) == 1 and weight.ndim >= 3 else None
    if node.op_type in LINEAR_OPS:
        return _ffn_is_exit(index, node, tensor)
    return None


def _conv_passes_for(index: GraphIndex) -> PassTest:
    def passes(node: onnx.NodeProto, region: _Region, tensor: str) -> int | None:
        rank = region.tensors[tensor]
        if node.op_type in ELEMENTWISE or node.op_type in PER_CHANNEL_INPUTS:
            return rank if node.input[0] == tensor or node.op_type in ELEMENTWISE else None
        if node.op_type in POOLS:
            return rank
        if node.op_type == "Flatten":
            producer = index.producer.get(tensor)
            flat = producer is not None and producer.op_type in GLOBAL_POOLS
            return 2 if flat and int(attribute(node, "axis", 1)) == 1 else None
        if node.op_type == "Conv" and node.input[0] == tensor:
            weight = index.float_constant(node.input[1])
            if weight is not None and _is_depthwise(node, weight):
                region.depthwise.append(node)
                return rank
        return None

    return passes


def _conv_constant_axis_for(region: _Region, rank: int) -> Callable[..., int | None]:
    def axis_for(node: onnx.NodeProto, position: int, value: Array) -> int | None:
        if node.op_type in PER_CHANNEL_INPUTS:
            return 0 if position in PER_CHANNEL_INPUTS[node.op_type] else None
        if node in region.depthwise:
            return 0 if position in (1, 2) else None
        tensor_rank = max((region.tensors.get(name, 0) for name in node.input), default=rank)
        axis = value.ndim - (tensor_rank - 1)
        if value.size == 1 or axis < 0 or value.shape[axis] == 1:
            return None
        return axis

    return axis_for


def _conv_region(index: GraphIndex, conv: onnx.NodeProto) -> _Region:
    """The channel region after ``conv``: what must be sliced along with its filters."""
    weight = _conv_weight(index, conv)
    if int(attribute(conv, "group", 1)) != 1:
        raise Unmatched(describe(conv), "grouped convolution (its channels are tied to its inputs)")
    region = _walk(index, conv.output[0], weight.ndim, _conv_exit, _conv_passes_for(index), 1)
    depth = 2 + len(region.nodes)
    if not region.exits:
        raise Unmatched(describe(conv), "its channels reach no further Conv or Gemm", depth)
    channels = int(weight.shape[0])
    _check_inputs(index, region, channels, _conv_constant_axis_for(region, weight.ndim), depth)
    for node in [conv, *region.depthwise]:
        require_unshared(index, node, 1, depth + 20)
    for node in region.exits:
        if isinstance(node, Linear):
            require_unshared(index, node.node, node.weight_index, depth + 20)
        else:
            require_unshared(index, node, 1, depth + 20)
        size = (
            node.features(index)[0]
            if isinstance(node, Linear)
            else int(_conv_weight(index, node).shape[1])
        )
        if size != channels:
            target = node.node if isinstance(node, Linear) else node
            raise Unmatched(describe(target), f"takes {size} channels, not {channels}", depth)
    return region


def _prune_conv(
    index: GraphIndex, conv: onnx.NodeProto, ratio: float, criterion: str, multiple: int
) -> LayerPrune:
    """Rank the filters of ``conv`` and remove the weakest through its channel region."""
    region = _conv_region(index, conv)
    weight = _conv_weight(index, conv).astype(numpy.float64)
    flat = weight.reshape(weight.shape[0], -1)
    scores = numpy.abs(flat).sum(axis=1) if criterion == "l1" else numpy.linalg.norm(flat, axis=1)
    channels = int(weight.shape[0])
    keep = top_indices(scores, kept_count(channels, ratio, multiple))
    index.take(conv, 1, keep, 0)
    if len(conv.input) > 2 and conv.input[2]:
        index.take(conv, 2, keep, 0)
    _slice_region(index, region, keep)
    for node in region.depthwise:
        set_int_attribute(node, "group", len(keep))
    for node in region.exits:
        if isinstance(node, Linear):
            node.take_inputs(index, keep)
        else:
            index.take(node, 1, keep, 1)
    return LayerPrune(
        conv.name or conv.output[0],
        "Conv",
        "channels",
        channels,
        len(keep),
        tuple(int(c) for c in keep),
    )


def describe_report(report: PruneReport) -> str:
    """One line for logs and the CLI: method, ratio and effect."""
    return (
        f"{report.method} {report.ratio:.0%}: {len(report.layers)} blocks, "
        f"{report.removed_fraction:.0%} of units removed, parameters "
        f"{report.params_before:,} -> {report.params_after:,} "
        f"(-{report.parameter_reduction:.1%}), "
        f"{math.ceil(report.bytes_before / 1024):,} KiB -> "
        f"{math.ceil(report.bytes_after / 1024):,} KiB"
    )
