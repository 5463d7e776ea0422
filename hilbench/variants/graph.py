"""Navigation and in-place editing of one ONNX graph, for the compression methods.

``GraphIndex`` keeps lookup tables over a graph (who produces a tensor, who consumes it, which
tensors are constants) and rewrites constant inputs copy-on-write: a constant used only by the
node being edited is replaced under its own name, a shared one is copied under a new name so
that its other users keep the old values. The compression methods work on a copy of the user's
model and only hand it back when every step succeeded, so nothing is ever half-written.

``Unmatched`` is the internal signal that a pattern (an FFN block, an attention block, a conv
chain) does not fit at some node; it never leaves ``hilbench.variants``: the public functions
turn the most advanced one into a ``CompressionError`` that names the op.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

Array = npt.NDArray[Any]

FLOAT_TYPES = (
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.FLOAT16,
    onnx.TensorProto.DOUBLE,
    onnx.TensorProto.BFLOAT16,
)


class Unmatched(Exception):
    """A pattern does not fit at ``where`` (a node description) for ``reason``. ``depth`` says
    how far the match got, so that the most advanced failure can be reported."""

    def __init__(self, where: str, reason: str, depth: int = 0) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason
        self.depth = depth


def weight_origin(index: GraphIndex, name: str) -> str:
    """``weight 'w' is ...``: why a weight is not a constant (a graph input, computed by an op,
    or absent)."""
    if name in index.inputs:
        return f"weight '{name}' is a graph input, not an initializer"
    producer = index.producer.get(name)
    if producer is not None:
        return f"weight '{name}' is computed by {describe(producer)}, not an initializer"
    return f"weight '{name}' is not an initializer"


def describe(node: onnx.NodeProto) -> str:
    """``MatMul 'name'``: the op type and the node name (its first output when unnamed)."""
    name = node.name or (node.output[0] if node.output else "?")
    return f"{node.op_type} '{name}'"


def attribute(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    """The value of attribute ``name`` of ``node``, or ``default`` when absent."""
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def set_int_attribute(node: onnx.NodeProto, name: str, value: int) -> None:
    """Set (or add) an integer attribute."""
    for attr in node.attribute:
        if attr.name == name:
            attr.i = value
            return
    node.attribute.append(helper.make_attribute(name, value))


def _subgraph_inputs(node: onnx.NodeProto) -> Iterator[str]:
    """Names used inside the subgraphs of ``node`` (If, Loop, Scan): outer tensors they may
    capture without listing them as inputs."""
    for attr in node.attribute:
        graphs = list(attr.graphs)
        if attr.HasField("g"):
            graphs.append(attr.g)
        for graph in graphs:
            for inner in graph.node:
                yield from (name for name in inner.input if name)
                yield from _subgraph_inputs(inner)


class GraphIndex:
    """Lookup tables over ``graph`` kept up to date by the editing methods below."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.initializers: dict[str, onnx.TensorProto] = {t.name: t for t in graph.initializer}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        self.nodes: list[onnx.NodeProto] = list(graph.node)  # the objects the tables hold
        for node in self.nodes:
            for name in node.output:
                if name:
                    self.producer[name] = node
            for name in [*node.input, *_subgraph_inputs(node)]:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        self.outputs = {value.name for value in graph.output}
        self.inputs = {value.name for value in graph.input} - set(self.initializers)
        self._names = set(self.producer) | set(self.initializers) | {v.name for v in graph.input}
        # IR < 4 models list every initializer among the graph inputs too; new ones must follow
        self._legacy = any(v.name in self.initializers for v in graph.input)
        self.orphans: set[str] = set()

    # -- reading ---------------------------------------------------------------------------

    def users(self, name: str) -> list[onnx.NodeProto]:
        """The nodes that consume tensor ``name`` (once per use)."""
        return self.consumers.get(name, [])

    def constant(self, name: str) -> Array | None:
        """The value of ``name`` when it is fixed in the file: an initializer (not overridable
        by a graph input) or the output of a Constant node; None otherwise."""
        if name in self.initializers and name not in self.inputs:
            return numpy_helper.to_array(self.initializers[name])
        node = self.producer.get(name)
        if node is None or node.op_type != "Constant" or node.domain not in ("", "ai.onnx"):
            return None
        return _constant_node_value(node)

    def is_constant(self, name: str) -> bool:
        return name in self.initializers or (
            name in self.producer and self.producer[name].op_type == "Constant"
        )

    def float_constant(self, name: str, dims: int | None = None) -> Array | None:
        """Like ``constant`` but only floating-point values with ``dims`` dimensions."""
        value = self.constant(name)
        if value is None or not numpy.issubdtype(value.dtype, numpy.floating):
            return None
        if dims is not None and value.ndim != dims:
            return None
        return value

    def single_user(self, name: str) -> onnx.NodeProto | None:
        """The only consumer of ``name`` when it has exactly one and is not a graph output."""
        users = self.users(name)
        if len(users) != 1 or name in self.outputs:
            return None
        return users[0]

    # -- editing ---------------------------------------------------------------------------

    def unique_name(self, base: str) -> str:
        """A tensor name not yet used in the graph, derived from ``base``."""
        candidate, number = base, 0
        while candidate in self._names:
            number += 1
            candidate = f"{base}_{number}"
        self._names.add(candidate)
        return candidate

    def set_input(self, node: onnx.NodeProto, index: int, values: Array, suffix: str) -> None:
        """Make input ``index`` of ``node`` the constant ``values``. An initializer used only
        there is replaced under its own name; anything else (a shared initializer, a Constant
        node) is left for its other users and a new initializer named ``<old><suffix>`` is
        wired in instead."""
        name = node.input[index]
        sole = self.users(name) == [node] and name not in self.outputs
        if sole and name in self.initializers and name not in self.inputs:
            self._replace_initializer(name, values)
            return
        new_name = self.unique_name(f"{name}{suffix}")
        tensor = numpy_helper.from_array(numpy.ascontiguousarray(values), new_name)
        self.graph.initializer.append(tensor)
        self.initializers[new_name] = self.graph.initializer[-1]
        if self._legacy:
            self.graph.input.append(
                helper.make_tensor_value_info(new_name, tensor.data_type, list(values.shape))
            )
        node.input[index] = new_name
        self.consumers[name].remove(node)
        self.consumers.setdefault(new_name, []).append(node)
        if not self.consumers[name]:
            self.orphans.add(name)

    def overwrite(self, name: str, values: Array) -> None:
        """Replace initializer ``name`` in place for all its users (same name; used to write
        zeros, which suit every user of a tied weight)."""
        self._replace_initializer(name, values)

    def _replace_initializer(self, name: str, values: Array) -> None:
        tensor = numpy_helper.from_array(numpy.ascontiguousarray(values), name)
        self.initializers[name].CopyFrom(tensor)
        for value in self.graph.input:  # IR < 4 models also declare initializers as inputs
            if value.name == name:
                shape = value.type.tensor_type.shape
                shape.ClearField("dim")
                for size in values.shape:
                    shape.dim.add().dim_value = int(size)

    def take(self, node: onnx.NodeProto, index: int, keep: Array, axis: int) -> None:
        """Keep only the entries ``keep`` along ``axis`` of constant input ``index``."""
        values = self.constant(node.input[index])
        if values is None:
            raise Unmatched(describe(node), f"input '{node.input[index]}' is not a constant")
        self.set_input(node, index, numpy.take(values, keep, axis=axis), "_pruned")

    def finish(self) -> None:
        """Remove the initializers and Constant nodes this index orphaned, and the graph's
        intermediate value_info, whose shapes an edit may have made stale (ONNX Runtime and
        shape inference rebuild them)."""
        dead = {name for name in self.orphans if not self.users(name) and name not in self.outputs}
        kept = [t for t in self.graph.initializer if t.name not in dead]
        if len(kept) != len(self.graph.initializer):
            self.graph.ClearField("initializer")
            self.graph.initializer.extend(kept)
            inputs = [v for v in self.graph.input if v.name not in dead]
            self.graph.ClearField("input")
            self.graph.input.extend(inputs)
        nodes = [
            n
            for n in self.graph.node
            if not (n.op_type == "Constant" and all(o in dead for o in n.output))
        ]
        if len(nodes) != len(self.graph.node):
            self.graph.ClearField("node")
            self.graph.node.extend(nodes)
        self.graph.ClearField("value_info")


def _constant_node_value(node: onnx.NodeProto) -> Array | None:
    """The tensor a Constant node produces (``value`` or one of the ``value_*`` forms)."""
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name in ("value_float", "value_int"):
            return numpy.asarray(helper.get_attribute_value(attr))
        if attr.name in ("value_floats", "value_ints"):
            return numpy.asarray(list(helper.get_attribute_value(attr)))
    return None


def copy_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A deep copy of ``model``, so that the user's object is never modified."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


@dataclass(frozen=True)
class Linear:
    """A MatMul or Gemm that multiplies a data tensor by a constant 2-D weight.

    ``in_axis`` / ``out_axis`` are the axes of the stored weight that meet the input features
    and produce the output features (MatMul ``[in, out]``; Gemm as stored, ``transB``
    swapping them). ``bias_index`` is Gemm's per-output ``C`` input when there is one."""

    node: onnx.NodeProto
    weight_index: int
    in_axis: int
    out_axis: int
    bias_index: int | None

    @property
    def weight_name(self) -> str:
        return str(self.node.input[self.weight_index])

    def weight(self, index: GraphIndex) -> Array:
        value = index.float_constant(self.weight_name, dims=2)
        if value is None:  # checked by linear_at; the graph changed under us
            raise Unmatched(describe(self.node), "its weight is no longer a constant matrix")
        return value

    def features(self, index: GraphIndex) -> tuple[int, int]:
        """(input features, output features)."""
        weight = self.weight(index)
        return int(weight.shape[self.in_axis]), int(weight.shape[self.out_axis])

    def take_outputs(self, index: GraphIndex, keep: Array) -> None:
        """Keep only output features ``keep`` (weight columns and Gemm bias entries)."""
        index.take(self.node, self.weight_index, keep, self.out_axis)
        if self.bias_index is not None:
            index.take(self.node, self.bias_index, keep, -1)

    def take_inputs(self, index: GraphIndex, keep: Array) -> None:
        """Keep only input features ``keep`` (weight rows)."""
        index.take(self.node, self.weight_index, keep, self.in_axis)


LINEAR_OPS = ("MatMul", "Gemm")


def require_unshared(
    index: GraphIndex, node: onnx.NodeProto, position: int, depth: int = 0
) -> None:
    """``Unmatched`` when input ``position`` of ``node`` (a weight) is also read elsewhere:
    slicing it for one user would either break the others or silently un-share (and so
    multiply) the weight."""
    name = node.input[position]
    others = [user for user in index.users(name) if user is not node]
    if others or name in index.outputs:
        where = describe(others[0]) if others else "a graph output"
        raise Unmatched(describe(node), f"its weight '{name}' is shared with {where}", depth)


def linear_at(index: GraphIndex, node: onnx.NodeProto, data: str | None = None) -> Linear:
    """``node`` as a ``Linear`` whose data input is ``data`` (its first input when None), or
    ``Unmatched`` saying why it is not one."""
    where = describe(node)
    if node.op_type not in LINEAR_OPS or node.domain not in ("", "ai.onnx"):
        raise Unmatched(where, "not a MatMul or Gemm")
    if len(node.input) < 2 or (data is not None and node.input[0] != data):
        raise Unmatched(where, f"'{data}' is not its data (first) input")
    weight_name = node.input[1]
    weight = index.float_constant(weight_name)
    if weight is None:
        raise Unmatched(where, f"its {weight_origin(index, weight_name)}")
    if weight.ndim != 2:
        raise Unmatched(
            where, f"its weight '{weight_name}' has shape {list(weight.shape)}, not 2-D"
        )
    if node.op_type == "MatMul":
        return Linear(node, 1, 0, 1, None)
    if attribute(node, "transA", 0):
        raise Unmatched(where, "transA=1 is not supported")
    trans_b = bool(attribute(node, "transB", 0))
    in_axis, out_axis = (1, 0) if trans_b else (0, 1)
    bias_index = _gemm_bias_index(index, node, int(weight.shape[out_axis]))
    return Linear(node, 1, in_axis, out_axis, bias_index)


def _gemm_bias_index(index: GraphIndex, node: onnx.NodeProto, outputs: int) -> int | None:
    """2 when Gemm's C holds one value per output feature; None when absent or broadcast."""
    if len(node.input) < 3 or not node.input[2]:
        return None
    bias = index.constant(node.input[2])
    if bias is None:
        raise Unmatched(describe(node), f"its bias '{node.input[2]}' is not a constant")
    if bias.size == 1:
        return None
    if bias.shape[-1] == outputs and bias.size == outputs:
        return 2
    raise Unmatched(describe(node), f"its bias has shape {list(bias.shape)}")


def first_node(graph: onnx.GraphProto, ops: Iterable[str]) -> onnx.NodeProto | None:
    """The first node of ``graph`` whose op type is in ``ops``."""
    wanted = set(ops)
    return next((n for n in graph.node if n.op_type in wanted), None)


def float_parameters(model: onnx.ModelProto) -> tuple[int, int]:
    """(number of floating-point parameters, their bytes) over initializers and Constant
    nodes."""
    count = size = 0
    for tensor in _float_tensors(model.graph):
        elements = 1
        for dim in tensor.dims:
            elements *= int(dim)
        count += elements
        size += elements * helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    return count, size


def _float_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    for tensor in graph.initializer:
        if tensor.data_type in FLOAT_TYPES:
            yield tensor
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type in FLOAT_TYPES:
                    yield attr.t
