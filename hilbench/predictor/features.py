"""Latency features read from the model graph itself, so that any model a user brings (and
every generated NAS network) goes through the same code.

``extract_features`` resolves the dynamic input dimensions with the rule hilbench's agent
uses (explicit ``input_shapes``; then ``dims`` by symbol; the first axis = ``batch``; the
model's ``hilbench.default_dims`` metadata ``name=value,...``; else 128), runs ONNX shape
inference on a weightless copy with those concrete shapes, then computes per node its FLOPs
and MACs, parameters, activation bytes, weight precision and sparsity (``NodeFeatures``), and
groups the nodes into fused kernels (``hilbench.predictor.kernels``). ``extract_tflite_features``
builds the same ``ModelFeatures`` from a TFLite flatbuffer through LiteRT's interpreter.

Conventions: a multiply-add is 2 FLOPs; Conv/Gemm bias additions are not counted; element-wise
ops count one FLOP per output element (a few transcendental ones more, see ``ELEMENT_FLOPS``);
data movement (Reshape, Transpose, Concat, Gather ...) counts 0 FLOPs but its bytes. An op
without a cost formula, or whose shapes could not be inferred, is never dropped: it is listed
in ``ModelFeatures.unknown_ops`` and counted by its bytes only, so a predictor can widen its
interval or refuse and name the op. The bodies of If / Loop / Scan are not counted (the op is
listed as unknown).

``model_vector`` and ``kernel_vector`` turn the records into fixed numeric vectors whose
names (``MODEL_FEATURE_NAMES``, ``KERNEL_FEATURE_NAMES``) and meaning are versioned by
``FEATURE_SCHEMA_VERSION``: bump it when either changes.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy
import onnx
from onnx import helper, numpy_helper

from hilbench.core.errors import ModelError, SettingsError, first_line
from hilbench.core.fields import shown
from hilbench.predictor.kernels import (
    ACTIVATIONS,
    CONV_OPS,
    CONV_TRANSPOSE_OPS,
    DATA_KINDS,
    ELEMENTWISE,
    FAMILY_ATTRIBUTES,
    GEMM_OPS,
    MATMUL_OPS,
    NORM_OPS,
    STANDARD_DOMAINS,
    Array,
    GraphNode,
    GraphView,
    Kernel,
    NodeFeatures,
    Shape,
    TensorInfo,
    attr,
    conv_weight,
    fuse_kernels,
    kernel_depths,
)
from hilbench.variants.sparsity import BlockLayout, SparsityDescription, read_sparsity

__all__ = [
    "FEATURE_SCHEMA_VERSION",
    "KERNEL_BUCKETS",
    "KERNEL_FEATURE_NAMES",
    "MODEL_FEATURE_NAMES",
    "Kernel",
    "ModelFeatures",
    "NodeFeatures",
    "PrecisionSummary",
    "SparsitySummary",
    "extract_features",
    "extract_tflite_features",
    "kernel_bucket",
    "kernel_vector",
    "model_vector",
]

FEATURE_SCHEMA_VERSION = 3  # 3: generated HAT encoders lost two stray zero weights
DEFAULT_DYNAMIC_DIM = 128  # the agent's default for a dynamic axis (hilbench.agents.inputs)
DEFAULT_DIMS_METADATA_KEY = "hilbench.default_dims"
_SMALL_INT_INITIALIZER = 4096  # int initializers up to this size keep their values (shapes)

# FLOPs per output element of element-wise ops (default 1)
ELEMENT_FLOPS = {
    "Sigmoid": 4, "Tanh": 4, "Erf": 4, "Exp": 4, "Log": 4, "Elu": 4, "Celu": 4, "Selu": 5,
    "Softplus": 4, "Mish": 8, "Gelu": 8, "FastGelu": 8, "BiasGelu": 9, "QuickGelu": 5,
    "HardSwish": 3, "HardSigmoid": 2, "Softsign": 2, "QLinearAdd": 3, "QLinearMul": 3,
    "QLinearSigmoid": 6, "QLinearLeakyRelu": 4,
}
NORM_FLOPS = {
    "LayerNormalization": 8, "SkipLayerNormalization": 9, "SimplifiedLayerNormalization": 5,
    "SkipSimplifiedLayerNormalization": 6, "RMSNormalization": 5, "InstanceNormalization": 8,
    "GroupNormalization": 8, "LpNormalization": 3, "MeanVarianceNormalization": 8,
    "BatchNormalization": 2,
}
REDUCE_FLOPS = {"ReduceL2": 2, "ReduceSumSquare": 2, "ReduceLogSumExp": 3, "ReduceLogSum": 2}
RESIZE_FLOPS = {"nearest": 1, "linear": 4, "cubic": 16}
ZERO_FLOP_KINDS = frozenset(
    {"reshape", "transpose", "concat", "split", "slice", "pad", "expand", "gather", "scatter",
     "shape", "cast", "depth-to-space"}
)
POOL_WINDOW_OPS = frozenset({"MaxPool", "AveragePool", "LpPool", "QLinearAveragePool"})
GLOBAL_POOL_OPS = frozenset(
    {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "QLinearGlobalAveragePool"}
)

_ONNX_TYPES: dict[int, tuple[int, str]] = {
    onnx.TensorProto.FLOAT: (32, "float"), onnx.TensorProto.DOUBLE: (64, "float"),
    onnx.TensorProto.FLOAT16: (16, "float"), onnx.TensorProto.BFLOAT16: (16, "float"),
    onnx.TensorProto.INT8: (8, "int"), onnx.TensorProto.UINT8: (8, "int"),
    onnx.TensorProto.INT16: (16, "int"), onnx.TensorProto.UINT16: (16, "int"),
    onnx.TensorProto.INT32: (32, "int"), onnx.TensorProto.UINT32: (32, "int"),
    onnx.TensorProto.INT64: (64, "int"), onnx.TensorProto.UINT64: (64, "int"),
    onnx.TensorProto.BOOL: (8, "bool"), onnx.TensorProto.STRING: (0, "other"),
}
for _name in ("FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ"):
    if hasattr(onnx.TensorProto, _name):
        _ONNX_TYPES[getattr(onnx.TensorProto, _name)] = (8, "float")
for _name in ("INT4", "UINT4"):
    if hasattr(onnx.TensorProto, _name):
        _ONNX_TYPES[getattr(onnx.TensorProto, _name)] = (4, "int")


# --------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class PrecisionSummary:
    """FLOPs, MACs and parameters by element width in bits, as ``(bits, amount)`` pairs."""

    flops_by_bits: tuple[tuple[int, int], ...] = ()
    macs_by_bits: tuple[tuple[int, int], ...] = ()
    params_by_bits: tuple[tuple[int, int], ...] = ()

    def flops_fraction(self, bits: int) -> float:
        """Fraction of the FLOPs computed at ``bits`` (by each node's precision)."""
        return _fraction(self.flops_by_bits, bits)

    def macs_fraction(self, bits: int) -> float:
        return _fraction(self.macs_by_bits, bits)

    def params_fraction(self, bits: int) -> float:
        """Fraction of the parameters stored with ``bits`` per element."""
        return _fraction(self.params_by_bits, bits)

    @property
    def weight_bits(self) -> int:
        """The element width holding most parameters (32 for a model without any)."""
        return max(self.params_by_bits, key=lambda pair: pair[1], default=(32, 0))[0]

    def to_dict(self) -> dict[str, Any]:
        return {key: {str(b): n for b, n in getattr(self, key)}
                for key in ("flops_by_bits", "macs_by_bits", "params_by_bits")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrecisionSummary:
        return cls(*(tuple((int(b), int(n)) for b, n in dict(data[key]).items())
                     for key in ("flops_by_bits", "macs_by_bits", "params_by_bits")))


def _fraction(pairs: tuple[tuple[int, int], ...], bits: int) -> float:
    total = sum(n for _, n in pairs)
    return sum(n for b, n in pairs if b == bits) / total if total else 0.0


@dataclass(frozen=True)
class SparsitySummary:
    """Zeros in the weights (rank >= 2, parameter-weighted) and, when the model carries a
    sparsity description (``hilbench.sparsity`` metadata), its ``method``, how many weights
    it lays out, their parameter-weighted ``layout_density`` (fraction of entries allowed to
    be nonzero) and ``block_density`` (fraction of blocks kept, block layouts only), and the
    fraction of parameters under a layout."""

    weight_zeros: float = 0.0
    method: str | None = None
    layout_layers: int = 0
    layout_density: float | None = None
    block_density: float | None = None
    sparse_param_fraction: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SparsitySummary:
        return cls(**data)


@dataclass(frozen=True)
class ModelFeatures:
    """Everything the predictor reads about one model at one set of input shapes.

    ``sha256`` is the file's when read from a file. ``flops``/``macs`` sum the nodes;
    ``params``/``param_bytes`` count each stored weight once; ``activation_bytes`` every
    distinct non-constant tensor once; ``node_count`` every node (folded ones included).
    ``depth`` is the longest kernel path, ``compute_depth`` the same counting conv / matmul /
    attention kernels only. The totals count live nodes, those that reach a graph output (a
    graph runtime runs no others); ``dead_nodes`` / ``dead_flops`` count the rest, which an
    eager framework (PyTorch as the model's author wrote it) runs too. ``unknown_ops`` (op
    type -> count) lists the nodes no formula covered."""

    sha256: str | None
    source: str
    input_shapes: dict[str, Shape] = field(hash=False)
    flops: int
    macs: int
    params: int
    param_bytes: int
    activation_bytes: int
    node_count: int
    depth: int
    compute_depth: int
    dead_nodes: int
    dead_flops: int
    op_histogram: dict[str, int] = field(hash=False)
    unknown_ops: dict[str, int] = field(hash=False)
    nodes: tuple[NodeFeatures, ...]
    kernels: tuple[Kernel, ...]
    precision: PrecisionSummary
    sparsity: SparsitySummary
    schema_version: int = FEATURE_SCHEMA_VERSION

    def kernel_histogram(self) -> dict[str, int]:
        """Kernel type -> count."""
        return dict(Counter(k.kind for k in self.kernels))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; ``from_dict`` reads it back."""
        return {
            "schema_version": self.schema_version,
            "sha256": self.sha256,
            "source": self.source,
            "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
            **{key: getattr(self, key) for key in _TOTALS},
            "op_histogram": dict(self.op_histogram),
            "unknown_ops": dict(self.unknown_ops),
            "nodes": [n.to_dict() for n in self.nodes],
            "kernels": [k.to_dict() for k in self.kernels],
            "precision": self.precision.to_dict(),
            "sparsity": self.sparsity.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelFeatures:
        """Read ``to_dict``'s output; ``ModelError`` when it is malformed or of another schema
        version (features of another version must be extracted again)."""
        try:
            version = int(data["schema_version"])
            if version != FEATURE_SCHEMA_VERSION:
                raise ModelError(
                    f"features of schema version {version}; this hilbench reads "
                    f"{FEATURE_SCHEMA_VERSION}: extract them again"
                )
            return cls(
                sha256=data["sha256"],
                source=str(data["source"]),
                input_shapes={k: tuple(int(d) for d in v)
                              for k, v in dict(data["input_shapes"]).items()},
                **{key: int(data[key]) for key in _TOTALS},
                op_histogram={str(k): int(v) for k, v in dict(data["op_histogram"]).items()},
                unknown_ops={str(k): int(v) for k, v in dict(data["unknown_ops"]).items()},
                nodes=tuple(NodeFeatures.from_dict(n) for n in data["nodes"]),
                kernels=tuple(Kernel.from_dict(k) for k in data["kernels"]),
                precision=PrecisionSummary.from_dict(data["precision"]),
                sparsity=SparsitySummary.from_dict(data["sparsity"]),
                schema_version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"malformed model features: {exc!r}") from exc


_TOTALS = ("flops", "macs", "params", "param_bytes", "activation_bytes", "node_count",
           "depth", "compute_depth", "dead_nodes", "dead_flops")


# --------------------------------------------------------------------------------------------
# ONNX: loading and shapes


def extract_features(
    model: onnx.ModelProto | str | Path,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    dims: Mapping[str, int] | None = None,
    batch: int = 1,
) -> ModelFeatures:
    """The features of an ONNX model (object or file) at concrete input shapes.

    ``ModelError`` for an unreadable file or a graph ONNX cannot infer shapes for;
    ``SettingsError`` for an ``input_shapes`` entry that names no input or has the wrong
    rank, or a non-positive size."""
    proto, sha256, label = _load(model)
    shapes = resolve_input_shapes(proto, input_shapes or {}, dims or {}, batch)
    inferred = _infer(proto, shapes, label)
    view = _onnx_view(proto, inferred)
    return _features(view, read_sparsity(proto), shapes, sha256, "onnx")


def _load(model: onnx.ModelProto | str | Path) -> tuple[onnx.ModelProto, str | None, str]:
    if isinstance(model, onnx.ModelProto):
        return model, None, f"model '{model.graph.name}'"
    path = Path(model)
    try:
        data = path.read_bytes()
        proto = onnx.load_model_from_string(data)
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
            onnx.external_data_helper.load_external_data_for_model(proto, str(path.parent))
    except Exception as exc:  # OSError, protobuf's DecodeError, external data errors
        raise ModelError(f"cannot read ONNX model {path}: {first_line(exc)}") from exc
    if not proto.graph.node and not proto.graph.output:
        raise ModelError(f"{path} is not an ONNX model (no graph)")
    _check_text(proto.graph, path)
    return proto, hashlib.sha256(data).hexdigest(), str(path)


def _check_text(graph: onnx.GraphProto, path: Path) -> None:
    """``ModelError`` for a name that is not UTF-8 text (protobuf hands such a string field
    over as bytes: a damaged file, never a model an exporter wrote)."""
    names: list[Any] = [graph.name]
    for node in graph.node:
        names += [node.name, node.op_type, node.domain, *node.input, *node.output,
                  *(attribute.name for attribute in node.attribute)]
    for value in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        names.append(value.name)
    bad = next((name for name in names if not isinstance(name, str)), None)
    if bad is not None:
        raise ModelError(f"cannot read ONNX model {path}: the name {shown(bad)} is not UTF-8 "
                         "text (a damaged file?)")


def _default_dims(model: onnx.ModelProto) -> dict[str, int]:
    """The model's ``hilbench.default_dims`` metadata (``name=value,...``); bad entries are
    ignored, as the agent does."""
    for prop in model.metadata_props:
        if prop.key != DEFAULT_DIMS_METADATA_KEY:
            continue
        found = {}
        for item in prop.value.split(","):
            name, _, value = item.partition("=")
            if name.strip() and value.strip().isdigit() and int(value) > 0:
                found[name.strip()] = int(value)
        return found
    return {}


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    stored = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in stored]


def _declared(value: onnx.ValueInfoProto) -> list[int | str | None]:
    dims: list[int | str | None] = []
    for dim in value.type.tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or None)
    return dims


def resolve_input_shapes(
    model: onnx.ModelProto,
    input_shapes: Mapping[str, Sequence[int]],
    dims: Mapping[str, int],
    batch: int,
) -> dict[str, Shape]:
    """Concrete shapes of the model's inputs: explicit ``input_shapes``; then per dynamic axis
    ``dims`` by symbol, ``batch`` for the first axis, the model's default dims, else 128."""
    inputs = _graph_inputs(model)
    unknown = set(input_shapes) - {i.name for i in inputs}
    if unknown:
        raise SettingsError(
            f"input shape given for unknown input(s) {', '.join(sorted(unknown))}; the "
            f"model's inputs: {', '.join(i.name for i in inputs)}"
        )
    defaults = _default_dims(model)
    resolved: dict[str, Shape] = {}
    for value in inputs:
        declared = _declared(value)
        if value.name in input_shapes:
            shape = tuple(int(d) for d in input_shapes[value.name])
            if len(shape) != len(declared):
                raise SettingsError(
                    f"shape {list(shape)} for input {value.name} has {len(shape)} axes; the "
                    f"model declares {len(declared)}: {declared}"
                )
        else:
            shape = tuple(_dim(axis, d, dims, batch, defaults) for axis, d in enumerate(declared))
        if any(d <= 0 for d in shape):
            raise SettingsError(f"input {value.name}: sizes must be positive, got {list(shape)}")
        resolved[value.name] = shape
    return resolved


def _dim(axis: int, dim: int | str | None, dims: Mapping[str, int], batch: int,
         defaults: Mapping[str, int]) -> int:
    if isinstance(dim, int):
        return dim
    if dim is not None and dim in dims:
        return int(dims[dim])
    if axis == 0:
        return batch
    if dim is not None and dim in defaults:
        return defaults[dim]
    return DEFAULT_DYNAMIC_DIM


def _skeleton(model: onnx.ModelProto, shapes: Mapping[str, Shape]) -> onnx.ModelProto:
    """A copy for shape inference: concrete inputs, large initializers replaced by typed
    inputs (their values are not needed, copying them is), and no value_info (it may be
    stale) except for the outputs of custom-domain ops, which inference cannot produce: a
    user annotates those to let the shapes after such an op be known."""
    skeleton = onnx.ModelProto()
    skeleton.ir_version = model.ir_version
    skeleton.opset_import.extend(model.opset_import)
    skeleton.functions.extend(model.functions)
    graph = skeleton.graph
    graph.name = model.graph.name
    graph.node.extend(sorted_nodes(model.graph))
    for value in _graph_inputs(model):
        graph.input.append(helper.make_tensor_value_info(
            value.name, value.type.tensor_type.elem_type, list(shapes[value.name])))
    for tensor in model.graph.initializer:
        small = math.prod(tensor.dims) <= _SMALL_INT_INITIALIZER
        if small and tensor.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
            graph.initializer.append(tensor)
        else:
            graph.input.append(
                helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    for sparse in model.graph.sparse_initializer:
        graph.input.append(helper.make_tensor_value_info(
            sparse.values.name, sparse.values.data_type, list(sparse.dims)))
    custom = {o for n in model.graph.node if n.domain not in STANDARD_DOMAINS for o in n.output}
    symbols = _symbols(model, shapes)
    for value in model.graph.value_info:
        if value.name in custom:
            graph.value_info.append(_concrete(value, symbols))
    for output in model.graph.output:
        copy = graph.output.add()
        copy.CopyFrom(output)
        copy.type.tensor_type.ClearField("shape")
    return skeleton


def sorted_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The nodes in a topological order, the stored order where it is one already. Some
    tools append nodes out of order (the fp16 converter adds its input Casts last), which
    runtimes accept and shape inference does not. Inputs nothing produces (graph inputs,
    initializers, outer-scope names) count as available."""
    nodes = list(graph.node)
    produced = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    waiting = [{produced[t] for t in n.input if t in produced and produced[t] != i}
               for i, n in enumerate(nodes)]
    if all(all(p < i for p in deps) for i, deps in enumerate(waiting)):
        return nodes
    users: dict[int, list[int]] = {}
    for index, deps in enumerate(waiting):
        for dep in deps:
            users.setdefault(dep, []).append(index)
    ready = [i for i, deps in enumerate(waiting) if not deps]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for user in users.get(index, []):
            waiting[user].discard(index)
            if not waiting[user]:
                heapq.heappush(ready, user)
    placed = set(order)
    order += [i for i in range(len(nodes)) if i not in placed]  # a cycle: inference will say
    return [nodes[i] for i in order]


def _symbols(model: onnx.ModelProto, shapes: Mapping[str, Shape]) -> dict[str, int]:
    """Dimension symbol -> the size the inputs resolved it to."""
    found: dict[str, int] = {}
    for value in _graph_inputs(model):
        for dim, size in zip(_declared(value), shapes[value.name], strict=False):
            if isinstance(dim, str):
                found.setdefault(dim, size)
    return found


def _concrete(value: onnx.ValueInfoProto, symbols: Mapping[str, int]) -> onnx.ValueInfoProto:
    """A copy of ``value`` with the symbols the inputs resolved replaced by their sizes."""
    copy = onnx.ValueInfoProto()
    copy.CopyFrom(value)
    for dim in copy.type.tensor_type.shape.dim:
        if dim.dim_param in symbols:
            dim.dim_value = symbols[dim.dim_param]
    return copy


def _infer(model: onnx.ModelProto, shapes: Mapping[str, Shape], label: str) -> onnx.ModelProto:
    """Shape inference on the skeleton. Ops ONNX has no inference for (custom or
    com.microsoft ones) leave their outputs unknown; where such an op keeps its input's shape
    (``_SHAPE_KEEPING``) the shape is filled in and inference runs again, a few rounds at most,
    so that one such op does not hide every shape after it."""
    skeleton = _skeleton(model, shapes)
    stored = {t.name for t in model.graph.initializer}
    stored.update(n.output[0] for n in model.graph.node if n.op_type == "Constant" and n.output)
    for _ in range(_INFERENCE_ROUNDS):
        try:
            inferred = onnx.shape_inference.infer_shapes(
                skeleton, check_type=False, strict_mode=True, data_prop=True)
        except Exception as exc:  # InferenceError, ValidationError
            raise ModelError(f"cannot infer the shapes of {label}: {first_line(exc)}") from exc
        filled = _kept_shapes(inferred, stored)
        if not filled:
            return inferred
        skeleton.graph.value_info.extend(filled)
    return inferred


_INFERENCE_ROUNDS = 6
_SHAPE_KEEPING = ELEMENTWISE | frozenset(NORM_OPS) | {"BatchNormalization", "Softmax"}


def _kept_shapes(model: onnx.ModelProto, stored: set[str]) -> list[onnx.ValueInfoProto]:
    """value_info for the unknown outputs of shape-keeping ops whose data (not ``stored``)
    inputs are known and of one shape."""
    graph = model.graph
    known: dict[str, onnx.ValueInfoProto] = {
        v.name: v for v in (*graph.input, *graph.value_info, *graph.output)
    }
    filled = []
    for node in graph.node:
        if node.op_type not in _SHAPE_KEEPING or not node.output:
            continue
        out = known.get(node.output[0])
        if out is not None and _value_shape(out) is not None:
            continue
        data = [known.get(n) for n in node.input if n and n not in stored]
        present = [v for v in data if v is not None]
        data_shapes = {_value_shape(v) for v in present}
        if len(present) != len(data) or len(data_shapes) != 1 or None in data_shapes:
            continue
        elem = present[0].type.tensor_type.elem_type
        if out is not None and out.type.tensor_type.elem_type:
            elem = out.type.tensor_type.elem_type
        filled.append(helper.make_tensor_value_info(
            node.output[0], elem, list(data_shapes.pop() or ())))
    return filled


def _value_shape(value: onnx.ValueInfoProto) -> Shape | None:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    dims = []
    for dim in tensor.shape.dim:
        if not dim.HasField("dim_value"):
            return None
        dims.append(int(dim.dim_value))
    return tuple(dims)


def _type_info(elem_type: int) -> tuple[int, str]:
    return _ONNX_TYPES.get(elem_type, (0, "other"))


def _onnx_view(model: onnx.ModelProto, inferred: onnx.ModelProto) -> GraphView:
    tensors: dict[str, TensorInfo] = {}
    graph = inferred.graph
    for value in (*graph.input, *graph.value_info, *graph.output):
        bits, kind = _type_info(value.type.tensor_type.elem_type)
        tensors[value.name] = TensorInfo(value.name, _value_shape(value), bits, False, kind)
    stored: dict[str, onnx.TensorProto] = {t.name: t for t in model.graph.initializer}
    for tensor in stored.values():
        bits, kind = _type_info(tensor.data_type)
        tensors[tensor.name] = TensorInfo(tensor.name, tuple(tensor.dims), bits, True, kind)
    constants: dict[str, onnx.NodeProto] = {}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            constants[node.output[0]] = node
            found = tensors.get(node.output[0]) or TensorInfo(node.output[0], None, 0)
            tensors[node.output[0]] = TensorInfo(found.name, found.shape, found.bits, True,
                                                 found.kind)
    nodes = [_graph_node(node, index) for index, node in enumerate(sorted_nodes(model.graph))]

    def values(name: str) -> Array | None:
        if name in stored:
            return _stored_value(stored[name])
        if name in constants:
            return _constant_value(constants[name])
        return None

    outputs = [o.name for o in model.graph.output]
    return GraphView(nodes, tensors, outputs, values, "NCHW")


def _stored_value(tensor: onnx.TensorProto) -> Array | None:
    """An initializer's values; None while they are external data that was not loaded (a
    model object whose weights stay in files, or a features-only graph of
    ``hilbench.predictor.spaces``): such a weight counts by its dims and type, with no zeros
    known."""
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        return None
    value: Array = numpy_helper.to_array(tensor)
    return value


def _graph_node(node: onnx.NodeProto, index: int) -> GraphNode:
    attrs = {a.name: _attribute(a) for a in node.attribute}
    return GraphNode(node.name or (node.output[0] if node.output else f"node{index}"),
                     node.op_type, node.domain, tuple(node.input), tuple(node.output), attrs)


def _attribute(attribute: onnx.AttributeProto) -> Any:
    if attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
        return "<graph>"  # subgraph bodies are not costed
    if attribute.type == onnx.AttributeProto.TENSOR:
        return attribute.t  # kept as proto: only the Constant value reader opens it
    value = helper.get_attribute_value(attribute)
    return value.decode() if isinstance(value, bytes) else value


def _constant_value(node: onnx.NodeProto) -> Array | None:
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if isinstance(value, onnx.TensorProto):
            return numpy_helper.to_array(value)
        if attribute.name in ("value_float", "value_floats", "value_int", "value_ints"):
            return numpy.asarray(value)
    return None




# --------------------------------------------------------------------------------------------
# per-node cost


def node_cost(view: GraphView, node: GraphNode) -> tuple[int, int] | None:
    """(FLOPs, MACs) of one node, or None when there is no formula or a shape is missing."""
    if not node.standard:
        return None
    op = node.op_type
    try:
        if op in CONV_OPS:
            return _mac_cost(_conv_macs(view, node))
        if op in CONV_TRANSPOSE_OPS:
            return _mac_cost(_conv_transpose_macs(view, node))
        if op in MATMUL_OPS or op in GEMM_OPS:
            return _mac_cost(_matmul_macs(view, node))
        return _other_cost(view, node)
    except (IndexError, ZeroDivisionError, TypeError, ValueError):
        return None


def _mac_cost(macs: int | None) -> tuple[int, int] | None:
    return None if macs is None else (2 * macs, macs)


def _elements(view: GraphView, name: str) -> int | None:
    return view.info(name).elements if name else None


def _conv_macs(view: GraphView, node: GraphNode) -> int | None:
    weight, out = view.shape(conv_weight(node)), _elements(view, node.outputs[0])
    if weight is None or out is None:
        return None
    channels = weight[int(attr(node, "_cout_axis", 0))]
    return out * math.prod(weight) // channels


def _conv_transpose_macs(view: GraphView, node: GraphNode) -> int | None:
    weight, data = view.shape(node.inputs[1]), _elements(view, node.inputs[0])
    if weight is None or data is None:
        return None
    return data * math.prod(weight) // weight[int(attr(node, "_cin_axis", 0))]


def _matmul_macs(view: GraphView, node: GraphNode) -> int | None:
    """Output elements x the reduced size K: A's last axis for MatMul (broadcasting batch
    axes are in the output), B's for Gemm (TFLite's FULLY_CONNECTED flattens its input)."""
    out = _elements(view, node.outputs[0])
    if node.op_type in GEMM_OPS:
        weight = view.shape(node.inputs[3 if node.op_type == "QGemm" else 1])
        if weight is None or out is None:
            return None
        return out * (weight[-1] if attr(node, "transB", 0) else weight[0])
    first = view.shape(node.inputs[0])
    if first is None or out is None:
        return None
    if len(first) == 1:
        return out * first[0]
    return out * (first[-2] if attr(node, "transA", 0) else first[-1])


def _other_cost(view: GraphView, node: GraphNode) -> tuple[int, int] | None:
    op = node.op_type
    kind = DATA_KINDS.get(op)
    if op == "Constant" or kind in ZERO_FLOP_KINDS:
        return 0, 0
    out = _elements(view, node.outputs[0]) if node.outputs else None
    first = _elements(view, node.inputs[0]) if node.inputs else None
    per_output = _per_output_flops(node)
    if per_output is not None:
        return None if out is None else (out * per_output, 0)
    per_input = _per_input_flops(view, node)
    if per_input is not None:
        return None if first is None else (first * per_input, 0)
    return None


def _per_output_flops(node: GraphNode) -> int | None:
    """FLOPs per output element of ops costed by their output, None for other ops."""
    op = node.op_type
    if op in ("Sum", "Max", "Min", "Mean"):
        return max(1, len([n for n in node.inputs if n]) - 1)
    if op in ELEMENTWISE:
        return ELEMENT_FLOPS.get(op, 1)
    if op in NORM_FLOPS:
        return NORM_FLOPS[op]
    if op in ("Softmax", "LogSoftmax", "QLinearSoftmax"):
        return 5
    if op == "Hardmax":
        return 1
    if op in POOL_WINDOW_OPS and attr(node, "kernel_shape") is not None:
        window = math.prod(int(k) for k in attr(node, "kernel_shape"))
        return window * (2 if op == "LpPool" else 1)
    if op in ("Resize", "Upsample"):
        return RESIZE_FLOPS.get(str(attr(node, "mode", "nearest")), 4)
    if op in ("QuantizeLinear", "DequantizeLinear"):
        return 2
    return None


def _per_input_flops(view: GraphView, node: GraphNode) -> int | None:
    """FLOPs per input element of reductions, global pools and dynamic quantization."""
    op = node.op_type
    if op in GLOBAL_POOL_OPS or op in POOL_WINDOW_OPS:  # a window pool without kernel_shape
        return 2 if "Lp" in op else 1
    if op.startswith("Reduce") or op in ("ArgMax", "ArgMin", "CumSum", "TopK"):
        return REDUCE_FLOPS.get(op, 1)
    if op == "DynamicQuantizeLinear":
        return 4
    return None


# --------------------------------------------------------------------------------------------
# per-node weights


@dataclass(frozen=True)
class _Weight:
    """One stored weight: size, bits, zeros (rank >= 2 only) and its sparsity layout."""

    size: int
    nbytes: int
    bits: int
    rank: int
    zeros: int
    layout: str | None = None
    layout_density: float | None = None
    block_density: float | None = None


class _Weights:
    """Stored weights, measured once each."""

    def __init__(self, view: GraphView, description: SparsityDescription | None) -> None:
        self.view = view
        self.description = description
        self.cache: dict[str, _Weight] = {}

    def get(self, name: str) -> _Weight:
        if name not in self.cache:
            self.cache[name] = self._measure(name)
        return self.cache[name]

    def _measure(self, name: str) -> _Weight:
        info = self.view.info(name)
        value = self.view.value(name)
        shape = info.shape if info.shape is not None else (
            tuple(value.shape) if value is not None else ())
        size = math.prod(shape)
        zeros = 0
        if value is not None and value.ndim >= 2:
            zeros = int(value.size - numpy.count_nonzero(value))
        bits = info.bits or (value.dtype.itemsize * 8 if value is not None else 0)
        weight = _Weight(size, (size * bits + 7) // 8, bits, len(shape), zeros)
        return self._with_layout(name, weight)

    def _with_layout(self, name: str, weight: _Weight) -> _Weight:
        layer = self.description.layer(name) if self.description is not None else None
        if layer is None:
            return weight
        try:
            density = float(layer.element_mask().mean())
            block = float(layer.blocks().mean()) if isinstance(layer, BlockLayout) else None
        except ValueError:  # a mask that does not fit its shape: keep the zero count only
            return weight
        kind = layer.kind
        if isinstance(layer, BlockLayout) and layer.column_masks is not None:
            kind = "hierarchical"
        return _Weight(weight.size, weight.nbytes, weight.bits, weight.rank, weight.zeros, kind,
                       density, block)

    def of_node(self, node: GraphNode) -> tuple[str, ...]:
        """The stored parameter tensors a node reads, through folded nodes too."""
        found = (s for name in node.inputs if name for s in self.view.sources.get(name, ()))
        return tuple(s for s in dict.fromkeys(found) if self.view.info(s).is_parameter)


def _node_features(view: GraphView, index: int, weights: _Weights) -> NodeFeatures:
    node = view.nodes[index]
    bytes_out = sum(view.info(n).nbytes for n in node.outputs if n)
    if index in view.folded:
        return NodeFeatures(node.name, node.qualified_op, 0, 0, 0, 0, 0, bytes_out,
                            _first_bits(view, node), folded=True)
    bytes_in = sum(view.info(n).nbytes for n in dict.fromkeys(view.data_inputs(node)))
    names = weights.of_node(node)
    measured = [weights.get(n) for n in names]
    cost = node_cost(view, node)
    flops, macs = cost if cost is not None else (0, 0)
    largest = max(measured, key=lambda w: w.size, default=None)
    ranked = [w for w in measured if w.rank >= 2]
    ranked_size = sum(w.size for w in ranked)
    laid = next((w for w in measured if w.layout is not None), None)
    return NodeFeatures(
        name=node.name,
        op_type=node.qualified_op,
        flops=flops,
        macs=macs,
        params=sum(w.size for w in measured),
        param_bytes=sum(w.nbytes for w in measured),
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        bits=largest.bits if largest is not None else _first_bits(view, node),
        weight_bits=largest.bits if largest is not None else None,
        weight_zeros=sum(w.zeros for w in ranked) / ranked_size if ranked_size else 0.0,
        layout=laid.layout if laid is not None else None,
        layout_density=laid.layout_density if laid is not None else None,
        block_density=laid.block_density if laid is not None else None,
        known=cost is not None,
        weights=names,
    )


def _first_bits(view: GraphView, node: GraphNode) -> int:
    for name in (*node.inputs, *node.outputs):
        info = view.info(name) if name else None
        if info is not None and info.bits and info.kind in ("float", "int"):
            return info.bits
    return 32


# --------------------------------------------------------------------------------------------
# assembling


def _features(view: GraphView, description: SparsityDescription | None,
              shapes: Mapping[str, Shape], sha256: str | None, source: str) -> ModelFeatures:
    weights = _Weights(view, description)
    nodes = tuple(_node_features(view, i, weights) for i in range(len(view.nodes)))
    kernels, owner = fuse_kernels(view, nodes)
    dead = [n for i, n in enumerate(nodes) if i in view.dead and not n.folded]
    live = [n for i, n in enumerate(nodes) if i not in view.dead and not n.folded]
    used = dict.fromkeys(w for n in live for w in n.weights)
    return ModelFeatures(
        sha256=sha256,
        source=source,
        input_shapes=dict(shapes),
        flops=sum(n.flops for n in live),
        macs=sum(n.macs for n in live),
        params=sum(weights.get(w).size for w in used),
        param_bytes=sum(weights.get(w).nbytes for w in used),
        activation_bytes=_activation_bytes(view, shapes),
        node_count=len(nodes),
        depth=kernel_depths(view, kernels, owner, lambda k: True),
        compute_depth=kernel_depths(view, kernels, owner, _is_compute),
        dead_nodes=len(dead),
        dead_flops=sum(n.flops for n in dead),
        op_histogram=dict(Counter(n.op_type for n in nodes)),
        unknown_ops=dict(Counter(n.op_type for n in live if not n.known)),
        nodes=nodes,
        kernels=kernels,
        precision=_precision(live, used, weights),
        sparsity=_sparsity(used, weights, description),
    )


def _is_compute(kernel: Kernel) -> bool:
    return kernel.family in ("conv", "matmul", "attention")


def _activation_bytes(view: GraphView, shapes: Mapping[str, Shape]) -> int:
    names = dict.fromkeys(shapes)
    for index, node in enumerate(view.nodes):
        if index not in view.folded:
            names.update(dict.fromkeys(n for n in node.outputs if n))
    return sum(view.info(n).nbytes for n in names)


def _precision(live: Sequence[NodeFeatures], used: Iterable[str], weights: _Weights
               ) -> PrecisionSummary:
    flops: Counter[int] = Counter()
    macs: Counter[int] = Counter()
    for node in live:
        if node.flops:
            flops[node.bits] += node.flops
        if node.macs:
            macs[node.bits] += node.macs
    params: Counter[int] = Counter()
    for name in used:
        params[weights.get(name).bits] += weights.get(name).size
    return PrecisionSummary(*(tuple(sorted(c.items())) for c in (flops, macs, params)))


def _sparsity(used: Iterable[str], weights: _Weights, description: SparsityDescription | None
              ) -> SparsitySummary:
    measured = [weights.get(n) for n in used]
    ranked = [w for w in measured if w.rank >= 2]
    ranked_size = sum(w.size for w in ranked)
    laid = [w for w in measured if w.layout_density is not None]
    laid_size = sum(w.size for w in laid)
    blocks = [w for w in laid if w.block_density is not None]
    block_size = sum(w.size for w in blocks)
    total = sum(w.size for w in measured)
    return SparsitySummary(
        weight_zeros=sum(w.zeros for w in ranked) / ranked_size if ranked_size else 0.0,
        method=description.method if description is not None else None,
        layout_layers=len(laid),
        layout_density=(sum((w.layout_density or 0.0) * w.size for w in laid) / laid_size
                        if laid_size else None),
        block_density=(sum((w.block_density or 0.0) * w.size for w in blocks) / block_size
                       if block_size else None),
        sparse_param_fraction=laid_size / total if total else 0.0,
    )


def combine_features(parts: Sequence[tuple[ModelFeatures, int]], source: str) -> ModelFeatures:
    """One inference made of several graph runs (an encoder once, a decoder step N times):
    each part's work counted ``runs`` times, kernels repeated, depths in sequence. Weights
    are counted once per part: give a part that shares another's weights with ``params`` 0."""
    if not parts or any(runs < 1 for _, runs in parts):
        raise SettingsError("combine_features needs parts that run at least once")

    def total(key: str, repeat: bool = True) -> int:
        return sum(getattr(f, key) * (runs if repeat else 1) for f, runs in parts)

    def summed(key: str) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for f, runs in parts:
            counts.update({k: v * runs for k, v in getattr(f, key).items()})
        return dict(counts)

    def by_bits(key: str, repeat: bool) -> tuple[tuple[int, int], ...]:
        counts: Counter[int] = Counter()
        for f, runs in parts:
            for bits, amount in getattr(f.precision, key):
                counts[bits] += amount * (runs if repeat else 1)
        return tuple(sorted(counts.items()))

    shapes = {f"{i}.{name}": shape for i, (f, _) in enumerate(parts)
              for name, shape in f.input_shapes.items()}
    return ModelFeatures(
        sha256=None, source=source, input_shapes=shapes,
        **{key: total(key, key not in ("params", "param_bytes")) for key in _TOTALS},
        op_histogram=summed("op_histogram"), unknown_ops=summed("unknown_ops"),
        nodes=tuple(n for f, runs in parts for n in f.nodes * runs),
        kernels=tuple(k for f, runs in parts for k in f.kernels * runs),
        precision=PrecisionSummary(by_bits("flops_by_bits", True),
                                   by_bits("macs_by_bits", True),
                                   by_bits("params_by_bits", False)),
        sparsity=max((f.sparsity for f, _ in parts), key=lambda s: s.weight_zeros),
    )


# --------------------------------------------------------------------------------------------
# vectors

KERNEL_BUCKETS = (
    "conv", "dwconv", "gconv", "convtranspose", "fc", "matmul", "bmm", "attention",
    "layernorm", "bn", "pool", "global-pool", "softmax", "reduce", "elementwise",
    "activation", "embedding", "concat-split", "data", "resize", "quantize", "unknown",
)
_ACTIVATION_KINDS = frozenset(ACTIVATIONS.values()) | {"relu6", "silu", "hswish", "gelu"}
_BUCKET_OF = {
    "conv": "conv", "dwconv": "dwconv", "gconv": "gconv", "convtranspose": "convtranspose",
    "fc": "fc", "matmul": "matmul", "bmm": "bmm", "attention": "attention",
    "bn": "bn", "maxpool": "pool", "avgpool": "pool", "lppool": "pool",
    "softmax": "softmax", "reduce": "reduce", "embedding": "embedding", "concat": "concat-split",
    "split": "concat-split", "resize": "resize", "quantize": "quantize",
    "dequantize": "quantize", "unknown": "unknown",
}


def kernel_bucket(kind: str) -> str:
    """The ``KERNEL_BUCKETS`` entry of a kernel type (``conv-bn-relu`` -> ``conv``)."""
    if kind.startswith("global-"):
        return "global-pool"
    if kind in NORM_OPS.values():
        return "layernorm"
    head = kind.split("-")[0]
    if head in _BUCKET_OF:
        return _BUCKET_OF[head]
    if head in _ACTIVATION_KINDS:
        return "activation"
    if head in {op.lower() for op in ELEMENTWISE} | {"add", "mul", "sub", "div"}:
        return "elementwise"
    return "data"


_MODEL_GLOBALS = (
    "log_flops", "log_macs", "log_params", "log_param_bytes", "log_activation_bytes",
    "log_kernel_bytes", "log_intensity", "log_nodes", "log_kernels", "depth", "compute_depth",
    "flops_fraction_8bit", "flops_fraction_16bit", "flops_fraction_32bit",
    "params_fraction_8bit", "params_fraction_16bit", "params_fraction_32bit",
    "weight_zeros", "layout_density", "block_density", "sparse_param_fraction",
    "unknown_nodes", "log_unknown_bytes",
)
MODEL_FEATURE_NAMES: tuple[str, ...] = _MODEL_GLOBALS + tuple(
    f"{stat}_{bucket}" for bucket in KERNEL_BUCKETS for stat in ("count", "log_flops",
                                                                 "log_bytes")
) + tuple(f"dead_{stat}_{bucket}" for bucket in KERNEL_BUCKETS
          for stat in ("count", "log_flops"))
_KERNEL_TAIL = ("log_flops", "log_macs", "log_bytes_in", "log_bytes_out", "log_params",
                "bits", "weight_zeros", "density")
KERNEL_FEATURE_NAMES: dict[str, tuple[str, ...]] = {
    family: (*names, *_KERNEL_TAIL) for family, names in FAMILY_ATTRIBUTES.items()
}


def _log(value: float) -> float:
    """``log(1 + x)``: every ``log_`` feature uses it (natural log)."""
    return math.log1p(max(0.0, value))


def model_vector(features: ModelFeatures) -> numpy.ndarray[Any, numpy.dtype[numpy.float64]]:
    """The model-level feature vector, ordered as ``MODEL_FEATURE_NAMES``."""
    kernels = [k for k in features.kernels if k.live]
    kernel_bytes = sum(k.bytes_in + k.bytes_out for k in kernels)
    traffic = kernel_bytes + features.param_bytes
    unknown = [k for k in kernels if not k.known]
    precision, sparsity = features.precision, features.sparsity
    values: list[float] = [
        _log(features.flops), _log(features.macs), _log(features.params),
        _log(features.param_bytes), _log(features.activation_bytes), _log(kernel_bytes),
        _log(features.flops / traffic if traffic else 0.0), _log(features.node_count),
        _log(len(kernels)), features.depth, features.compute_depth,
        precision.flops_fraction(8), precision.flops_fraction(16), precision.flops_fraction(32),
        precision.params_fraction(8), precision.params_fraction(16),
        precision.params_fraction(32), sparsity.weight_zeros,
        1.0 if sparsity.layout_density is None else sparsity.layout_density,
        1.0 if sparsity.block_density is None else sparsity.block_density,
        sparsity.sparse_param_fraction, len(unknown),
        _log(sum(k.bytes_in + k.bytes_out for k in unknown)),
    ]
    per_bucket = {bucket: [0.0, 0.0, 0.0] for bucket in KERNEL_BUCKETS}
    dead_per_bucket = {bucket: [0.0, 0.0] for bucket in KERNEL_BUCKETS}
    for kernel in features.kernels:
        if not kernel.live:
            dead = dead_per_bucket[kernel_bucket(kernel.kind)]
            dead[0] += 1
            dead[1] += kernel.flops
            continue
        stats = per_bucket[kernel_bucket(kernel.kind)]
        stats[0] += 1
        stats[1] += kernel.flops
        stats[2] += kernel.bytes_in + kernel.bytes_out + kernel.param_bytes
    for bucket in KERNEL_BUCKETS:
        count, flops, nbytes = per_bucket[bucket]
        values += [count, _log(flops), _log(nbytes)]
    for bucket in KERNEL_BUCKETS:
        count, flops = dead_per_bucket[bucket]
        values += [count, _log(flops)]
    return numpy.asarray(values, dtype=numpy.float64)


def kernel_vector(kernel: Kernel) -> numpy.ndarray[Any, numpy.dtype[numpy.float64]]:
    """One kernel's vector, ordered as ``KERNEL_FEATURE_NAMES[kernel.family]``: its family's
    shape attributes, then log FLOPs / MACs / bytes / params, bits, weight zeros, density."""
    attributes = [float(kernel.attribute(n)) for n in FAMILY_ATTRIBUTES[kernel.family]]
    tail = [
        _log(kernel.flops), _log(kernel.macs), _log(kernel.bytes_in), _log(kernel.bytes_out),
        _log(kernel.params), float(kernel.bits), kernel.weight_zeros,
        1.0 if kernel.layout_density is None else kernel.layout_density,
    ]
    return numpy.asarray(attributes + tail, dtype=numpy.float64)


# --------------------------------------------------------------------------------------------
# TFLite

# TFLite builtin op -> (ONNX-like op type, extra attributes)
_TFLITE_OPS: dict[str, tuple[str, dict[str, Any]]] = {
    "CONV_2D": ("Conv", {}), "CONV_3D": ("Conv", {}),
    "DEPTHWISE_CONV_2D": ("Conv", {"_cout_axis": 3, "_depthwise": True}),
    "TRANSPOSE_CONV": ("ConvTranspose", {"_cin_axis": 3}),
    "FULLY_CONNECTED": ("Gemm", {"transB": 1}), "BATCH_MATMUL": ("MatMul", {}),
    "ADD": ("Add", {}), "SUB": ("Sub", {}), "MUL": ("Mul", {}), "DIV": ("Div", {}),
    "SQUARED_DIFFERENCE": ("Sub", {}), "POW": ("Pow", {}), "MAXIMUM": ("Max", {}),
    "MINIMUM": ("Min", {}), "ADD_N": ("Sum", {}), "ABS": ("Abs", {}), "NEG": ("Neg", {}),
    "EXP": ("Exp", {}), "LOG": ("Log", {}), "SQRT": ("Sqrt", {}), "RSQRT": ("Reciprocal", {}),
    "RELU": ("Relu", {}), "RELU6": ("Clip", {"min": 0.0, "max": 6.0}),
    "RELU_N1_TO_1": ("Clip", {"min": -1.0, "max": 1.0}), "LEAKY_RELU": ("LeakyRelu", {}),
    "PRELU": ("PRelu", {}), "ELU": ("Elu", {}), "LOGISTIC": ("Sigmoid", {}),
    "TANH": ("Tanh", {}), "HARD_SWISH": ("HardSwish", {}), "GELU": ("Gelu", {}),
    "SOFTMAX": ("Softmax", {}), "LOG_SOFTMAX": ("LogSoftmax", {}),
    "L2_NORMALIZATION": ("LpNormalization", {}),
    "MAX_POOL_2D": ("MaxPool", {}), "AVERAGE_POOL_2D": ("AveragePool", {}),
    "MEAN": ("ReduceMean", {}), "SUM": ("ReduceSum", {}), "REDUCE_MAX": ("ReduceMax", {}),
    "REDUCE_MIN": ("ReduceMin", {}), "REDUCE_PROD": ("ReduceProd", {}),
    "ARG_MAX": ("ArgMax", {}), "ARG_MIN": ("ArgMin", {}),
    "RESHAPE": ("Reshape", {}), "SQUEEZE": ("Squeeze", {}), "EXPAND_DIMS": ("Unsqueeze", {}),
    "TRANSPOSE": ("Transpose", {}), "CONCATENATION": ("Concat", {}), "PACK": ("Concat", {}),
    "SPLIT": ("Split", {}), "SPLIT_V": ("Split", {}), "UNPACK": ("Split", {}),
    "SLICE": ("Slice", {}), "STRIDED_SLICE": ("Slice", {}), "PAD": ("Pad", {}),
    "PADV2": ("Pad", {}), "MIRROR_PAD": ("Pad", {}), "GATHER": ("Gather", {}),
    "GATHER_ND": ("GatherND", {}), "TILE": ("Tile", {}), "BROADCAST_TO": ("Expand", {}),
    "SHAPE": ("Shape", {}), "CAST": ("Cast", {}), "SELECT": ("Where", {}),
    "SELECT_V2": ("Where", {}), "DEPTH_TO_SPACE": ("DepthToSpace", {}),
    "SPACE_TO_DEPTH": ("SpaceToDepth", {}), "QUANTIZE": ("QuantizeLinear", {}),
    "DEQUANTIZE": ("DequantizeLinear", {}),
    "RESIZE_BILINEAR": ("Resize", {"mode": "linear"}),
    "RESIZE_NEAREST_NEIGHBOR": ("Resize", {"mode": "nearest"}),
}


def extract_tflite_features(
    path: str | Path,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    batch: int = 1,
) -> ModelFeatures:
    """The features of a TFLite model, read through LiteRT's interpreter.

    Op types are mapped to ONNX names where obvious (CONV_2D -> Conv, DEPTHWISE_CONV_2D ->
    Conv with groups = channels, FULLY_CONNECTED -> Gemm, ...); others keep their name in
    the ``tflite`` domain and are listed as unknown. The interpreter does not expose builtin
    options, so strides and pool windows are derived from the tensor shapes and a fused
    activation (``fused_activation_function``) is invisible: TFLite kernel types carry no
    activation suffix. Dynamic axes (-1): ``input_shapes``, else ``batch`` for the first axis,
    else 128. There is no sparsity description; zeros are counted in the constant tensors."""
    interpreter, data = _tflite_interpreter(Path(path))
    details = {int(t["index"]): t for t in interpreter.get_tensor_details()}
    constants = _tflite_constants(interpreter, details)
    shapes = _tflite_resize(interpreter, details, constants, input_shapes or {}, batch)
    details = {int(t["index"]): t for t in interpreter.get_tensor_details()}
    view = _tflite_view(interpreter, details, constants)
    return _features(view, None, shapes, hashlib.sha256(data).hexdigest(), "tflite")


def _tflite_interpreter(path: Path) -> tuple[Any, bytes]:
    try:
        data = path.read_bytes()
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        # no default delegate: XNNPACK would replace the ops by one DELEGATE node
        resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        return Interpreter(model_content=data, experimental_op_resolver_type=resolver), data
    except ImportError as exc:
        raise ModelError("reading TFLite features needs ai-edge-litert installed") from exc
    except Exception as exc:  # OSError, LiteRT's ValueError / RuntimeError
        raise ModelError(f"cannot read TFLite model {path}: {first_line(exc)}") from exc


def _tflite_constants(interpreter: Any, details: Mapping[int, Any]) -> dict[int, Array]:
    """Tensors with a buffer in the file: before allocation only those can be read."""
    found = {}
    for index in details:
        try:
            found[index] = numpy.array(interpreter.get_tensor(index))
        except ValueError:
            continue
    return found


def _tflite_resize(interpreter: Any, details: Mapping[int, Any], constants: Mapping[int, Array],
                   input_shapes: Mapping[str, Sequence[int]], batch: int) -> dict[str, Shape]:
    inputs = [d for d in interpreter.get_input_details() if int(d["index"]) not in constants]
    unknown = set(input_shapes) - {str(d["name"]) for d in inputs}
    if unknown:
        raise SettingsError(f"input shape given for unknown input(s) {', '.join(sorted(unknown))}")
    shapes: dict[str, Shape] = {}
    for item in inputs:
        signature = [int(d) for d in item.get("shape_signature", item["shape"])]
        name = str(item["name"])
        if name in input_shapes:
            shape = tuple(int(d) for d in input_shapes[name])
        else:
            shape = tuple(d if d > 0 else (batch if axis == 0 else DEFAULT_DYNAMIC_DIM)
                          for axis, d in enumerate(signature))
        shapes[name] = shape
        if list(shape) != [int(d) for d in item["shape"]]:
            interpreter.resize_tensor_input(int(item["index"]), list(shape))
    try:
        interpreter.allocate_tensors()
    except Exception as exc:  # LiteRT's RuntimeError on shapes it cannot take
        raise ModelError(f"TFLite model refuses input shapes {shapes}: {first_line(exc)}") from exc
    return shapes


def _tflite_view(interpreter: Any, details: Mapping[int, Any], constants: Mapping[int, Array]
                 ) -> GraphView:
    names = {index: f"{item['name']}#{index}" for index, item in details.items()}
    tensors = {}
    for index, item in details.items():
        dtype = numpy.dtype(item["dtype"])
        kind = {"f": "float", "i": "int", "u": "int", "b": "bool"}.get(dtype.kind, "other")
        tensors[names[index]] = TensorInfo(names[index], tuple(int(d) for d in item["shape"]),
                                           dtype.itemsize * 8, index in constants, kind)
    nodes = [_tflite_node(op, names, tensors) for op in interpreter._get_ops_details()]
    outputs = [names[int(o["index"])] for o in interpreter.get_output_details()]
    by_name = {names[i]: value for i, value in constants.items()}
    return GraphView(nodes, tensors, outputs, by_name.get, "NHWC")


def _tflite_node(op: Mapping[str, Any], names: Mapping[int, str],
                 tensors: Mapping[str, TensorInfo]) -> GraphNode:
    inputs = tuple(names.get(int(i), "") for i in op["inputs"])
    outputs = tuple(names.get(int(i), "") for i in op["outputs"])
    mapped = _TFLITE_OPS.get(str(op["op_name"]))
    label = f"{op['op_name']}#{op['index']}"
    if mapped is None:
        return GraphNode(label, str(op["op_name"]), "tflite", inputs, outputs)
    op_type, attrs = mapped[0], dict(mapped[1])
    if op_type == "ConvTranspose":  # TFLite order: output shape, weights, input [, bias]
        inputs = (inputs[2], inputs[1], *inputs[3:])
    if attrs.pop("_depthwise", False):
        channels = (tensors[inputs[0]].shape or (0,))[-1]
        attrs["group"] = channels
    return GraphNode(label, op_type, "", inputs, outputs, attrs)
