"""The graph view the latency features read, and its fused-kernel grouping.

``GraphView`` is a format-neutral picture of one model after shape inference: nodes in
execution (topological) order with ONNX-style op types, and per tensor its shape, element
width and whether it is a constant. ``hilbench.predictor.features`` builds it from an ONNX
model or a TFLite flatbuffer, computes one ``NodeFeatures`` per node, then calls
``fuse_kernels``.

``fuse_kernels`` groups nodes into the kernels a runtime actually launches, in the spirit of
nn-Meter (model latency ~ sum of kernel latencies). Rules, tried on each node not yet taken,
in execution order:

* conv: ``Conv`` / ``ConvTranspose`` (+ bias ``Add``) (+ ``BatchNormalization``)
  (+ activation) -> ``conv-bn-relu``, ``dwconv-bn-relu6``, ``gconv``, ``convtranspose-relu``
* linear: ``MatMul`` / ``Gemm`` / ``MatMulInteger`` (+ its dequantizing ``Cast``/``Mul``)
  (+ bias ``Add``) (+ activation) -> ``matmul-add-gelu``, ``fc-relu``; a MatMul of two
  activations is ``bmm``
* attention: ``MatMul(Q, K)`` -> [``Mul``/``Div`` scale] -> [``Add`` mask] -> ``Softmax``
  -> ``MatMul(., V)`` -> ``attention``
* norms: ``LayerNormalization`` (and the fused com.microsoft forms) or its decomposed
  ``ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div [Mul] [Add]`` subgraph -> ``layernorm``;
  the RMS form -> ``rmsnorm``; ``BatchNormalization`` alone (+ activation) -> ``bn-relu``
* activations are single ops (Relu, Clip(0, 6) = relu6, HardSwish, Sigmoid, Gelu ...) or
  decomposed subgraphs recognised by their structure (Erf / tanh GELU, x * sigmoid(x) = silu,
  x * hardsigmoid(x) = hswish); they join the kernel before them or stand alone
* pools: ``maxpool``, ``avgpool``, ``global-avgpool`` (also ReduceMean over H, W),
  ``global-maxpool``; element-wise ops are their own kernel (``add``, ``add-relu``, ``mul``);
  data movement (``reshape``, ``transpose``, ``concat``, ``slice`` ...), ``embedding``
  (Gather from a constant table), ``softmax``, ``reduce``, ``resize``, ``quantize`` ...
* anything else is an ``unknown`` kernel holding that one node: never dropped.

Every node belongs to exactly one kernel, except constant-folded nodes (``Constant``, or a
node whose inputs are all constants such as the ``DequantizeLinear`` of a weight), which a
runtime computes once at load time; the weights they produce count at their consumer.
A kernel's bytes are what crosses its boundary: tensors produced inside it and consumed only
inside it are not counted, which is what fusion saves.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy
import numpy.typing as npt

Array = npt.NDArray[Any]
Shape = tuple[int, ...]

STANDARD_DOMAINS = frozenset({"", "ai.onnx", "com.microsoft", "tflite"})

CONV_OPS = frozenset({"Conv", "ConvInteger", "QLinearConv", "FusedConv", "NhwcConv"})
CONV_TRANSPOSE_OPS = frozenset({"ConvTranspose"})
MATMUL_OPS = frozenset(
    {
        "MatMul",
        "MatMulInteger",
        "QLinearMatMul",
        "FusedMatMul",
        "MatMulIntegerToFloat",
        "DynamicQuantizeMatMul",
    }
)
GEMM_OPS = frozenset({"Gemm", "FusedGemm", "QGemm"})
LINEAR_OPS = MATMUL_OPS | GEMM_OPS
NORM_OPS = {
    "LayerNormalization": "layernorm",
    "SkipLayerNormalization": "layernorm",
    "SimplifiedLayerNormalization": "rmsnorm",
    "SkipSimplifiedLayerNormalization": "rmsnorm",
    "RMSNormalization": "rmsnorm",
    "InstanceNormalization": "instancenorm",
    "GroupNormalization": "groupnorm",
    "LpNormalization": "lpnorm",
    "MeanVarianceNormalization": "instancenorm",
}
POOL_OPS = {
    "MaxPool": "maxpool",
    "AveragePool": "avgpool",
    "LpPool": "lppool",
    "GlobalAveragePool": "global-avgpool",
    "GlobalMaxPool": "global-maxpool",
    "GlobalLpPool": "global-lppool",
}
# single-op activations and the name they take in a kernel type
ACTIVATIONS = {
    "Relu": "relu",
    "LeakyRelu": "leakyrelu",
    "PRelu": "prelu",
    "Elu": "elu",
    "Selu": "selu",
    "Celu": "celu",
    "Sigmoid": "sigmoid",
    "HardSigmoid": "hsigmoid",
    "HardSwish": "hswish",
    "Tanh": "tanh",
    "Gelu": "gelu",
    "FastGelu": "gelu",
    "BiasGelu": "gelu",
    "QuickGelu": "gelu",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "Mish": "mish",
    "ThresholdedRelu": "thresholdedrelu",
    "Clip": "clip",
}
ELEMENTWISE = frozenset(
    {
        "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Mod",
        "Sqrt", "Reciprocal", "Exp", "Log", "Abs", "Neg", "Erf", "Sin", "Cos", "Floor",
        "Ceil", "Round", "Sign", "Where", "Equal", "Greater", "GreaterOrEqual", "Less",
        "LessOrEqual", "Not", "And", "Or", "Xor", "IsNaN", "IsInf", "BitShift",
        "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu",
    }
) | frozenset(ACTIVATIONS)
# ops a decomposed activation / norm subgraph may contain
REGION_OPS = ELEMENTWISE | {"ReduceMean"}
AFFINE_OPS = frozenset({"Add", "Sub", "Mul", "Div"})
DATA_KINDS = {
    "Reshape": "reshape", "Flatten": "reshape", "Squeeze": "reshape", "Unsqueeze": "reshape",
    "Identity": "reshape", "Dropout": "reshape",
    "Transpose": "transpose", "Concat": "concat", "QLinearConcat": "concat", "Split": "split",
    "Slice": "slice", "Pad": "pad", "Tile": "expand", "Expand": "expand",
    "Gather": "gather", "GatherElements": "gather", "GatherND": "gather",
    "ScatterND": "scatter", "ScatterElements": "scatter",
    "Shape": "shape", "Size": "shape", "Range": "shape", "ConstantOfShape": "shape",
    "NonZero": "shape", "Cast": "cast", "CastLike": "cast",
    "DepthToSpace": "depth-to-space", "SpaceToDepth": "depth-to-space", "Trilu": "slice",
    "Resize": "resize", "Upsample": "resize",
    "QuantizeLinear": "quantize", "DynamicQuantizeLinear": "quantize",
    "DequantizeLinear": "dequantize",
    "Softmax": "softmax", "LogSoftmax": "softmax", "Hardmax": "softmax",
    "ReduceMean": "reduce", "ReduceSum": "reduce", "ReduceMax": "reduce", "ReduceMin": "reduce",
    "ReduceProd": "reduce", "ReduceL1": "reduce", "ReduceL2": "reduce",
    "ReduceSumSquare": "reduce", "ReduceLogSum": "reduce", "ReduceLogSumExp": "reduce",
    "ArgMax": "reduce", "ArgMin": "reduce", "CumSum": "reduce", "TopK": "reduce",
}

# kernel families and the shape attributes each one records (in this order)
FAMILY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "conv": ("cin", "cout", "kh", "kw", "stride", "dilation", "groups", "h", "w", "h_out",
             "w_out"),
    "matmul": ("batch", "m", "k", "n"),
    "attention": ("batch", "heads", "seq_q", "seq_k", "head_dim"),
    "norm": ("rows", "width"),
    "pool": ("channels", "kh", "kw", "stride", "h", "w", "h_out", "w_out"),
    "reduce": ("rows", "width"),
    "embedding": ("vocab", "width", "lookups"),
    "elementwise": ("elements", "inputs"),
    "data": ("elements", "inputs"),
    "unknown": ("elements", "inputs"),
}
KERNEL_FAMILIES = tuple(FAMILY_ATTRIBUTES)


# --------------------------------------------------------------------------------------------
# the graph view


@dataclass(frozen=True)
class TensorInfo:
    """One tensor: ``shape`` (None when it could not be inferred), element width in ``bits``
    (0 when unknown, 4 for int4), and whether its value is stored in the model."""

    name: str
    shape: Shape | None
    bits: int
    constant: bool = False
    kind: str = "float"  # "float", "int", "bool" or "other"

    @property
    def is_parameter(self) -> bool:
        """A stored tensor that is a weight: floating point or an integer of <= 8 bits (shape,
        axis and index tensors are int32 / int64)."""
        return self.kind == "float" or (self.kind == "int" and 0 < self.bits <= 8)

    @property
    def elements(self) -> int | None:
        return None if self.shape is None else math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor, 0 when its shape or type is unknown."""
        count = self.elements
        return 0 if count is None else (count * self.bits + 7) // 8


@dataclass(frozen=True)
class GraphNode:
    """One node with ONNX-style ``op_type`` (TFLite ops are renamed, domain ``tflite`` when
    there is no ONNX equivalent); ``""`` in ``inputs`` marks an absent optional input."""

    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def qualified_op(self) -> str:
        """``Conv``, or ``domain:Op`` for ops outside the ONNX and com.microsoft domains."""
        if self.domain in ("", "ai.onnx", "com.microsoft"):
            return self.op_type
        return f"{self.domain}:{self.op_type}"

    @property
    def standard(self) -> bool:
        """True when the op comes from a domain whose ops hilbench has rules for."""
        return self.domain in STANDARD_DOMAINS


class GraphView:
    """Lookup tables over one graph: producers, consumers, constants and the nodes that only
    compute from constants (``folded``); ``sources`` maps a constant tensor to the stored
    tensors (initializers, Constant outputs) it derives from. ``layout`` is ``"NCHW"`` for
    ONNX, ``"NHWC"`` for TFLite."""

    def __init__(
        self,
        nodes: Sequence[GraphNode],
        tensors: Mapping[str, TensorInfo],
        outputs: Iterable[str],
        values: Callable[[str], Array | None],
        layout: str = "NCHW",
    ) -> None:
        self.nodes = tuple(nodes)
        self.tensors = dict(tensors)
        self.outputs = frozenset(outputs)
        self.layout = layout
        self._values = values
        self._cache: dict[str, Array | None] = {}
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[int]] = {}
        for index, node in enumerate(self.nodes):
            for name in node.outputs:
                if name:
                    self.producer[name] = index
            for name in dict.fromkeys(node.inputs):
                if name:
                    self.consumers.setdefault(name, []).append(index)
        self.sources: dict[str, tuple[str, ...]] = {
            name: (name,) for name, info in self.tensors.items() if info.constant
        }
        self.folded = frozenset(self._fold())
        self.dead = frozenset(self._dead())

    def _fold(self) -> list[int]:
        folded = []
        for index, node in enumerate(self.nodes):
            inputs = [name for name in node.inputs if name]
            if node.op_type == "Constant" and not inputs:
                folded.append(index)
                for name in node.outputs:
                    self.sources.setdefault(name, (name,))
                continue
            if inputs and all(name in self.sources for name in inputs) and node.standard:
                folded.append(index)
                origin = tuple(dict.fromkeys(s for name in inputs for s in self.sources[name]))
                for name in node.outputs:
                    if name:
                        self.sources[name] = origin
        return folded

    def _dead(self) -> list[int]:
        """Nodes whose results never matter: none of their outputs reaches a graph output,
        or only through a multiplication by a constant zero (NB201's ``Zero`` op). An eager
        framework runs them; a graph optimizer may drop them."""
        needed = set(self.outputs)
        dead = []
        for index in range(len(self.nodes) - 1, -1, -1):
            node = self.nodes[index]
            if any(name in needed for name in node.outputs if name):
                needed.update(self._needed_inputs(node))
            else:
                dead.append(index)
        return dead

    def _needed_inputs(self, node: GraphNode) -> list[str]:
        inputs = [name for name in node.inputs if name]
        if node.op_type == "Mul" and node.standard:
            zeros = [n for n in inputs if n in self.tensors and self.tensors[n].constant
                     and _all_zero(self._values(n))]
            if zeros:
                return zeros
        return inputs

    def info(self, name: str) -> TensorInfo:
        """The tensor's info; an unknown tensor gets an unknown shape."""
        found = self.tensors.get(name)
        return found if found is not None else TensorInfo(name, None, 0)

    def shape(self, name: str) -> Shape | None:
        return self.info(name).shape if name else None

    def is_constant(self, name: str) -> bool:
        return name in self.sources

    def value(self, name: str) -> Array | None:
        """The stored value of a constant tensor (not of a folded one), else None."""
        if name not in self._cache:
            self._cache[name] = self._values(name) if name else None
        return self._cache[name]

    def users(self, name: str) -> list[int]:
        return self.consumers.get(name, [])

    def data_inputs(self, node: GraphNode) -> list[str]:
        """The node's non-constant inputs."""
        return [name for name in node.inputs if name and not self.is_constant(name)]


def _all_zero(value: Array | None) -> bool:
    return value is not None and value.size > 0 and not numpy.any(value)


def attr(node: GraphNode, name: str, default: Any = None) -> Any:
    """Attribute ``name`` of ``node`` or ``default``."""
    return node.attrs.get(name, default)


# --------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class NodeFeatures:
    """The cost of one node.

    ``flops`` counts a multiply-add as 2 (bias additions of Conv/Gemm excluded) and one per
    output element for simple element-wise ops; ``macs`` is non-zero only for conv / matmul
    ops. ``params``/``param_bytes``: the stored weights it reads (through folded nodes such as
    a weight's DequantizeLinear too). ``bytes_in``/``bytes_out``: its non-constant inputs and
    its outputs. ``bits``: compute precision (its largest weight's element width, else its
    first input's); ``weight_bits`` None without weights. ``weight_zeros``: fraction of exact
    zeros in its weights of rank >= 2. ``layout`` ("block", "hierarchical", "pattern") and
    ``layout_density`` (fraction of weight entries the layout allows to be nonzero),
    ``block_density`` (fraction of blocks kept) come from the model's sparsity description.
    ``known`` is False when no cost formula applied (no rule, or shapes missing): its FLOPs
    are then 0 and only its bytes count. ``folded`` nodes are computed at load time."""

    name: str
    op_type: str
    flops: int
    macs: int
    params: int
    param_bytes: int
    bytes_in: int
    bytes_out: int
    bits: int
    weight_bits: int | None = None
    weight_zeros: float = 0.0
    layout: str | None = None
    layout_density: float | None = None
    block_density: float | None = None
    known: bool = True
    folded: bool = False
    weights: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "weights": list(self.weights)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeFeatures:
        return cls(**{**data, "weights": tuple(data.get("weights", ()))})


@dataclass(frozen=True)
class Kernel:
    """One fused kernel: ``kind`` (``conv-bn-relu``, ``matmul-add-gelu``, ``attention`` ...),
    its ``family`` (a key of ``FAMILY_ATTRIBUTES``), the member ``nodes`` and their ``ops``,
    summed costs, the bytes crossing its boundary, and ``attributes``: the family's shape
    attributes as ``(name, value)`` pairs (``attribute(name)`` reads one). ``live`` is False
    for a kernel none of whose outputs reaches a graph output (dead code: eager frameworks run
    it, graph runtimes drop it)."""

    kind: str
    family: str
    nodes: tuple[str, ...]
    ops: tuple[str, ...]
    flops: int
    macs: int
    params: int
    param_bytes: int
    bytes_in: int
    bytes_out: int
    bits: int
    weight_zeros: float = 0.0
    layout_density: float | None = None
    attributes: tuple[tuple[str, int], ...] = ()
    known: bool = True
    live: bool = True

    def attribute(self, name: str, default: int = 0) -> int:
        """One shape attribute (``cin``, ``m`` ...), ``default`` when absent."""
        return next((value for key, value in self.attributes if key == name), default)

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data.update(nodes=list(self.nodes), ops=list(self.ops), attributes=dict(self.attributes))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Kernel:
        attributes = tuple((str(k), int(v)) for k, v in dict(data["attributes"]).items())
        return cls(**{**data, "nodes": tuple(data["nodes"]), "ops": tuple(data["ops"]),
                      "attributes": attributes})


# --------------------------------------------------------------------------------------------
# grouping


@dataclass
class _Group:
    kind: str
    family: str
    members: list[int]
    anchor: int


class _Fuser:
    """Walks the nodes in execution order and applies the rules of the module docstring."""

    def __init__(self, view: GraphView) -> None:
        self.view = view
        self.taken: set[int] = set(view.folded)

    # -- helpers ----------------------------------------------------------------------------

    def op(self, index: int) -> str:
        node = self.view.nodes[index]
        return node.op_type if node.standard else ""

    def sole_user(self, tensor: str) -> int | None:
        """The one free consumer of ``tensor`` when it has exactly one and is no graph output."""
        users = self.view.users(tensor)
        if len(users) != 1 or tensor in self.view.outputs or users[0] in self.taken:
            return None
        return users[0]

    def out(self, index: int) -> str:
        return self.view.nodes[index].outputs[0]

    def others_constant(self, index: int, tensor: str) -> bool:
        node = self.view.nodes[index]
        return all(not n or n == tensor or self.view.is_constant(n) for n in node.inputs)

    # -- activations ------------------------------------------------------------------------

    def activation(self, tensor: str) -> tuple[str, list[int], str] | None:
        """An activation applied to ``tensor``: (name, nodes, output tensor)."""
        user = self.sole_user(tensor)
        if user is not None and self.op(user) in ACTIVATIONS:
            name = ACTIVATIONS[self.op(user)]
            if name == "clip":
                name = self._clip_name(user)
            return name, [user], self.out(user)
        return self.region(tensor, {"gelu", "silu", "hswish"})

    def _clip_name(self, index: int) -> str:
        node = self.view.nodes[index]
        low, high = attr(node, "min"), attr(node, "max")
        for position, slot in ((1, "low"), (2, "high")):
            if len(node.inputs) > position and node.inputs[position]:
                value = self.view.value(node.inputs[position])
                if value is not None and value.size == 1:
                    if slot == "low":
                        low = float(value.ravel()[0])
                    else:
                        high = float(value.ravel()[0])
        if low == 0 and high == 6:
            return "relu6"
        return "relu" if low == 0 and high is None else "clip"

    def region(self, tensor: str, wanted: set[str], limit: int = 12
               ) -> tuple[str, list[int], str] | None:
        """The smallest closed subgraph of element-wise ops fed by ``tensor`` (every tensor
        it makes is used only inside it, but one) whose structure ``_classify`` recognises as
        one of ``wanted``; trailing per-element affine ops with constant operands join it."""
        view = self.view
        members: list[int] = []
        inside: set[str] = {tensor}
        heap = [i for i in view.users(tensor) if i not in self.taken]
        heapq.heapify(heap)
        while heap and len(members) < limit:
            index = heapq.heappop(heap)
            node = view.nodes[index]
            if index in members or self.op(index) not in REGION_OPS:
                continue
            if not all(not n or n in inside or view.is_constant(n) for n in node.inputs):
                continue
            members.append(index)
            inside.update(n for n in node.outputs if n)
            for name in node.outputs:
                heap.extend(i for i in view.users(name) if i not in self.taken)
            heapq.heapify(heap)
            exit_tensor = self._closed(members)
            if exit_tensor is None:
                continue
            kind = self._classify(members, tensor)
            if kind in wanted:
                return kind, *self._extend(members, exit_tensor)
        return None

    def _closed(self, members: list[int]) -> str | None:
        """The single tensor leaving ``members``, or None."""
        member_set = set(members)
        leaving = [
            name
            for index in members
            for name in self.view.nodes[index].outputs
            if name and (name in self.view.outputs
                         or any(u not in member_set for u in self.view.users(name)))
        ]
        return leaving[0] if len(leaving) == 1 else None

    def _extend(self, members: list[int], tensor: str) -> tuple[list[int], str]:
        while True:
            user = self.sole_user(tensor)
            if user is None or self.op(user) not in AFFINE_OPS:
                return members, tensor
            if not self.others_constant(user, tensor):
                return members, tensor
            members = [*members, user]
            tensor = self.out(user)

    def _classify(self, members: list[int], tensor: str) -> str | None:
        ops = Counter(self.op(i) for i in members)
        on_x = {self.op(i) for i in members if tensor in self.view.nodes[i].inputs}
        if ops["Erf"] and "Mul" in on_x:
            return "gelu"
        if ops["Tanh"] and "Mul" in on_x and (ops["Pow"] or ops["Mul"] >= 3):
            return "gelu"
        if ops == Counter({"Sigmoid": 1, "Mul": 1}) and "Mul" in on_x:
            return "silu"
        if ops == Counter({"HardSigmoid": 1, "Mul": 1}) and "Mul" in on_x:
            return "hswish"
        if {"Add", "Mul", "Div"} <= set(ops) and (ops["Clip"] or ops["Relu"]) and "Mul" in on_x:
            return "hswish"
        rooted = ops["Sqrt"] or ops["Reciprocal"]
        if ops["ReduceMean"] >= 2 and "Sub" in on_x and rooted:
            return "layernorm"
        if ops["ReduceMean"] == 1 and not ops["Sub"] and rooted and (ops["Pow"] or ops["Mul"]):
            return "rmsnorm"
        return None

    # -- rules ------------------------------------------------------------------------------

    def group(self, index: int) -> _Group:
        op = self.op(index)
        for rule in (self.attention, self.conv, self.linear, self.norm, self.pool,
                     self.elementwise):
            found = rule(index, op)
            if found is not None:
                return found
        return self.single(index, op)

    def attention(self, index: int, op: str) -> _Group | None:
        node = self.view.nodes[index]
        if op not in ("MatMul", "FusedMatMul") or len(self.view.data_inputs(node)) < 2:
            return None
        members, tensor = [index], self.out(index)
        for _ in range(4):
            user = self.sole_user(tensor)
            if user is None:
                return None
            members.append(user)
            tensor = self.out(user)
            if self.op(user) == "Softmax":
                break
            if self.op(user) not in ("Mul", "Div", "Add", "Where"):
                return None
        else:
            return None
        user = self.sole_user(tensor)
        if user is None or self.op(user) not in ("MatMul", "FusedMatMul"):
            return None
        if self.view.nodes[user].inputs[0] != tensor:
            return None
        return _Group("attention", "attention", [*members, user], index)

    def conv(self, index: int, op: str) -> _Group | None:
        if op not in CONV_OPS and op not in CONV_TRANSPOSE_OPS:
            return None
        parts, members, tensor = [self._conv_kind(index, op)], [index], self.out(index)
        user = self.sole_user(tensor)
        if user is not None and self.op(user) == "Add" and self.others_constant(user, tensor):
            members.append(user)
            tensor = self.out(user)
            user = self.sole_user(tensor)
        if user is not None and self.op(user) == "BatchNormalization":
            parts.append("bn")
            members.append(user)
            tensor = self.out(user)
        return self._with_activation(parts, members, tensor, "conv", index)

    def _conv_kind(self, index: int, op: str) -> str:
        if op in CONV_TRANSPOSE_OPS:
            return "convtranspose"
        groups = conv_groups(self.view, self.view.nodes[index])
        if groups <= 1:
            return "conv"
        cin = conv_geometry(self.view, self.view.nodes[index]).get("cin", 0)
        return "dwconv" if groups == cin else "gconv"

    def _with_activation(self, parts: list[str], members: list[int], tensor: str,
                         family: str, anchor: int) -> _Group:
        found = self.activation(tensor)
        if found is not None and not set(found[1]) & self.taken:
            parts.append(found[0])
            members += found[1]
        return _Group("-".join(parts), family, members, anchor)

    def linear(self, index: int, op: str) -> _Group | None:
        if op not in LINEAR_OPS:
            return None
        node = self.view.nodes[index]
        if op in MATMUL_OPS and len(self.view.data_inputs(node)) >= 2 and op != "MatMulInteger":
            return self._with_activation(["bmm"], [index], self.out(index), "matmul", index)
        parts = ["fc" if op in GEMM_OPS else "matmul"]
        members, tensor = [index], self.out(index)
        if op == "MatMulInteger":
            members, tensor = self._dequantize(members, tensor)
        user = self.sole_user(tensor)
        if user is not None and self.op(user) == "Add" and self.others_constant(user, tensor):
            parts += [] if op in GEMM_OPS else ["add"]
            members.append(user)
            tensor = self.out(user)
        return self._with_activation(parts, members, tensor, "matmul", index)

    def _dequantize(self, members: list[int], tensor: str) -> tuple[list[int], str]:
        """MatMulInteger's int32 result: Cast to float, then Mul by the scales."""
        for wanted in ("Cast", "Mul"):
            user = self.sole_user(tensor)
            if user is None or self.op(user) != wanted:
                break
            members = [*members, user]
            tensor = self.out(user)
        return members, tensor

    def norm(self, index: int, op: str) -> _Group | None:
        if op in NORM_OPS:
            return _Group(NORM_OPS[op], "norm", [index], index)
        if op == "BatchNormalization":
            return self._with_activation(["bn"], [index], self.out(index), "elementwise", index)
        if op != "ReduceMean":
            return None
        data = self.view.nodes[index].inputs[0]
        found = self.region(data, {"layernorm", "rmsnorm"})
        if found is None or index not in found[1]:
            return None
        return _Group(found[0], "norm", found[1], index)

    def pool(self, index: int, op: str) -> _Group | None:
        if op in POOL_OPS:
            return _Group(POOL_OPS[op], "pool", [index], index)
        if op == "ReduceMean" and is_spatial_mean(self.view, self.view.nodes[index]):
            return _Group("global-avgpool", "pool", [index], index)
        return None

    def elementwise(self, index: int, op: str) -> _Group | None:
        if op not in ELEMENTWISE:
            return None
        node = self.view.nodes[index]
        for tensor in self.view.data_inputs(node)[:1]:
            found = self.region(tensor, {"gelu", "silu", "hswish"})
            if found is not None and index in found[1]:
                return _Group(found[0], "elementwise", found[1], index)
        if op in ACTIVATIONS:
            name = ACTIVATIONS[op]
            return _Group(self._clip_name(index) if name == "clip" else name, "elementwise",
                          [index], index)
        base = op.removeprefix("QLinear").lower()
        return self._with_activation([base], [index], self.out(index), "elementwise", index)

    def single(self, index: int, op: str) -> _Group:
        node = self.view.nodes[index]
        kind = DATA_KINDS.get(op) if node.standard else None
        if kind is None:
            return _Group("unknown", "unknown", [index], index)
        if kind == "gather" and op == "Gather" and self.view.is_constant(node.inputs[0]):
            return _Group("embedding", "embedding", [index], index)
        family = "reduce" if kind in ("softmax", "reduce") else "data"
        return _Group(kind, family, [index], index)


def fuse_kernels(view: GraphView, nodes: Sequence[NodeFeatures]
                 ) -> tuple[tuple[Kernel, ...], tuple[int, ...]]:
    """The kernels of ``view`` (``nodes`` are its per-node costs, same order), in execution
    order of their first node, and for every node the index of its kernel (-1 when folded)."""
    fuser = _Fuser(view)
    kernels: list[Kernel] = []
    owner = [-1] * len(view.nodes)
    for index in range(len(view.nodes)):
        if index in fuser.taken:
            continue
        group = fuser.group(index)
        fuser.taken.update(group.members)
        for member in group.members:
            owner[member] = len(kernels)
        kernels.append(_kernel(view, group, nodes))
    return tuple(kernels), tuple(owner)


def kernel_depths(view: GraphView, kernels: Sequence[Kernel], owner: Sequence[int],
                  counted: Callable[[Kernel], bool]) -> int:
    """The longest path through the kernel graph, counting only kernels ``counted`` accepts."""
    depth = [0] * len(kernels)
    for index, node in enumerate(view.nodes):
        mine = owner[index]
        if mine < 0:
            continue
        before = [
            depth[owner[view.producer[n]]]
            for n in node.inputs
            if n in view.producer and owner[view.producer[n]] not in (-1, mine)
        ]
        depth[mine] = max(depth[mine], max(before, default=0) + int(counted(kernels[mine])))
    return max(depth, default=0)


def _kernel(view: GraphView, group: _Group, costs: Sequence[NodeFeatures]) -> Kernel:
    members = sorted(group.members)
    member_costs = [costs[i] for i in members]
    weights: dict[str, NodeFeatures] = {}
    for cost in member_costs:
        for weight in cost.weights:
            weights.setdefault(weight, cost)
    params = sum(c.params for c in member_costs)
    zeros = sum(c.weight_zeros * c.params for c in member_costs)
    densities = [c.layout_density for c in member_costs if c.layout_density is not None]
    anchor = costs[group.anchor]
    return Kernel(
        kind=group.kind,
        family=group.family,
        nodes=tuple(c.name for c in member_costs),
        ops=tuple(c.op_type for c in member_costs),
        flops=sum(c.flops for c in member_costs),
        macs=sum(c.macs for c in member_costs),
        params=params,
        param_bytes=sum(c.param_bytes for c in member_costs),
        bytes_in=sum(view.info(t).nbytes for t in _crossing_in(view, members)),
        bytes_out=sum(view.info(t).nbytes for t in _crossing_out(view, members)),
        bits=anchor.bits,
        weight_zeros=zeros / params if params else 0.0,
        layout_density=min(densities) if densities else None,
        attributes=kernel_attributes(view, group.family, group.anchor, members),
        known=all(c.known for c in member_costs),
        live=not all(i in view.dead for i in members),
    )


def _crossing_in(view: GraphView, members: list[int]) -> list[str]:
    made = {n for i in members for n in view.nodes[i].outputs}
    names = (n for i in members for n in view.nodes[i].inputs)
    return [n for n in dict.fromkeys(names) if n and n not in made and not view.is_constant(n)]


def _crossing_out(view: GraphView, members: list[int]) -> list[str]:
    member_set = set(members)
    names = (n for i in members for n in view.nodes[i].outputs)
    return [
        n
        for n in dict.fromkeys(names)
        if n and (n in view.outputs or any(u not in member_set for u in view.users(n)))
    ]


# --------------------------------------------------------------------------------------------
# shape attributes


def _spatial(view: GraphView, shape: Shape | None) -> tuple[int, int, int]:
    """(channels, H, W) of an activation in the view's layout; 1-D maps to H = 1, 3-D folds
    depth into H."""
    if shape is None or len(shape) < 3:
        return 0, 0, 0
    if view.layout == "NHWC":
        channels, spatial = shape[-1], shape[1:-1]
    else:
        channels, spatial = shape[1], shape[2:]
    return channels, math.prod(spatial[:-1]) if len(spatial) > 1 else 1, spatial[-1]


def conv_weight(node: GraphNode) -> str:
    """The weight input of a conv-like node."""
    return node.inputs[3] if node.op_type == "QLinearConv" else node.inputs[1]


def conv_groups(view: GraphView, node: GraphNode) -> int:
    return int(attr(node, "group", 1))


def conv_geometry(view: GraphView, node: GraphNode) -> dict[str, int]:
    """cin, cout, kernel, stride, dilation, H, W (input and output) of a conv node."""
    data = node.inputs[2] if node.op_type == "QLinearConv" else node.inputs[0]
    cin, h, w = _spatial(view, view.shape(data))
    cout, h_out, w_out = _spatial(view, view.shape(node.outputs[0]))
    weight = view.shape(conv_weight(node)) or ()
    kernel = list(attr(node, "kernel_shape", None) or _kernel_from_weight(view, weight))
    strides = list(attr(node, "strides", None) or [_ratio(h, h_out), _ratio(w, w_out)])
    dilations = list(attr(node, "dilations", None) or [1])
    return {
        "cin": cin, "cout": cout, "kh": kernel[-2] if len(kernel) > 1 else 1,
        "kw": kernel[-1] if kernel else 1, "stride": int(strides[-1]) if strides else 1,
        "dilation": int(dilations[-1]), "groups": conv_groups(view, node), "h": h, "w": w,
        "h_out": h_out, "w_out": w_out,
    }


def _kernel_from_weight(view: GraphView, weight: Shape) -> list[int]:
    if len(weight) < 3:
        return [1]
    return list(weight[1:-1]) if view.layout == "NHWC" else list(weight[2:])


def _ratio(size: int, out: int) -> int:
    return max(1, round(size / out)) if size and out else 1


def is_spatial_mean(view: GraphView, node: GraphNode) -> bool:
    """A ReduceMean over the spatial axes of a rank-4 activation (a global average pool)."""
    shape = view.shape(node.inputs[0])
    if shape is None or len(shape) != 4:
        return False
    axes = attr(node, "axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        value = view.value(node.inputs[1])
        axes = None if value is None else [int(v) for v in value.ravel()]
    if axes is None:
        return False
    wanted = {1, 2} if view.layout == "NHWC" else {2, 3}
    return {a % 4 for a in axes} == wanted


def kernel_attributes(view: GraphView, family: str, anchor: int, members: list[int]
                      ) -> tuple[tuple[str, int], ...]:
    """The family's shape attributes, read from the kernel's anchor node."""
    node = view.nodes[anchor]
    values = _ATTRIBUTE_READERS.get(family, _elements)(view, node, members)
    return tuple((name, int(values.get(name, 0))) for name in FAMILY_ATTRIBUTES[family])


def _conv_attrs(view: GraphView, node: GraphNode, members: list[int]) -> dict[str, int]:
    return conv_geometry(view, node)


def _matmul_attrs(view: GraphView, node: GraphNode, members: list[int]) -> dict[str, int]:
    out = view.shape(node.outputs[0]) or ()
    first = view.shape(node.inputs[0]) or ()
    transposed = bool(attr(node, "transA", 0))
    k = (first[-2] if transposed else first[-1]) if len(first) >= 2 else (first or (0,))[0]
    n = out[-1] if out else 0
    weighted = len(view.data_inputs(node)) < 2 or node.op_type == "MatMulInteger"
    if weighted:
        return {"batch": 1, "m": math.prod(out[:-1]) if out else 0, "k": k, "n": n}
    return {"batch": math.prod(out[:-2]), "m": out[-2] if len(out) > 1 else 1, "k": k, "n": n}


def _attention_attrs(view: GraphView, node: GraphNode, members: list[int]) -> dict[str, int]:
    scores = view.shape(node.outputs[0]) or ()
    query = view.shape(node.inputs[0]) or ()
    return {
        "batch": math.prod(scores[:-2]) if len(scores) > 2 else 1,
        "heads": scores[1] if len(scores) == 4 else 1,
        "seq_q": scores[-2] if len(scores) > 1 else 0,
        "seq_k": scores[-1] if scores else 0,
        "head_dim": query[-1] if query else 0,
    }


def _rows_attrs(view: GraphView, node: GraphNode, members: list[int]) -> dict[str, int]:
    """rows x width of a normalisation / softmax / reduction over its ``axis`` (default the
    last) and every axis after it."""
    shape = view.shape(node.inputs[0]) or ()
    if not shape:
        return {}
    axis = int(attr(node, "axis", -1)) % len(shape)
    return {"rows": math.prod(shape[:axis]), "width": math.prod(shape[axis:])}


def _pool_attrs(view: GraphView, node: GraphNode, members: list[int]) -> dict[str, int]:
    channels, h, w = _spatial(view, view.shape(node.inputs[0]))
    _, h_out, w_out = _spatial(view, view.shape(node.outputs[0]))
    kernel = list(attr(node, "kernel_shape", None) or [_ratio(h, h_out), _ratio(w, w_out)])
    strides = list(attr(node, "strides", None) or [_ratio(w, w_out)])
    return {"channels": channels, "kh": kernel[-2] if len(kernel) > 1 else 1, "kw": kernel[-1],
            "stride": int(strides[-1]), "h": h, "w": w, "h_out": h_out, "w_out": w_out}


def _embedding_attrs(view: GraphView, node: GraphNode, members: list[int]) -> dict[str, int]:
    table = view.shape(node.inputs[0]) or (0, 0)
    indices = view.info(node.inputs[1]).elements if len(node.inputs) > 1 else 0
    return {"vocab": table[0], "width": math.prod(table[1:]), "lookups": indices or 0}


def _elements(view: GraphView, node: GraphNode, members: list[int]) -> dict[str, int]:
    return {"elements": view.info(node.outputs[0]).elements or 0 if node.outputs else 0,
            "inputs": len(view.data_inputs(node))}


_ATTRIBUTE_READERS: dict[str, Callable[[GraphView, GraphNode, list[int]], dict[str, int]]] = {
    "conv": _conv_attrs,
    "matmul": _matmul_attrs,
    "attention": _attention_attrs,
    "norm": _rows_attrs,
    "reduce": _rows_attrs,
    "pool": _pool_attrs,
    "embedding": _embedding_attrs,
}

