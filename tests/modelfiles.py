"""Small real ONNX models written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def mlp(path: Path, width: int = 256, layers: int = 4) -> Path:
    """A dense ReLU network with a dynamic batch axis: x[batch, width] -> y[batch, width]."""
    rng = numpy.random.default_rng(0)
    nodes, weights = [], []
    current = "x"
    for index in range(layers):
        weight = (rng.standard_normal((width, width)) / numpy.sqrt(width)).astype(numpy.float32)
        weights.append(numpy_helper.from_array(weight, f"w{index}"))
        nodes.append(helper.make_node("MatMul", [current, f"w{index}"], [f"h{index}"]))
        nodes.append(helper.make_node("Relu", [f"h{index}"], [f"a{index}"]))
        current = f"a{index}"
    nodes.append(helper.make_node("Identity", [current], ["y"]))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])],
        weights,
    )
    return _save(graph, path)


def string_input(path: Path) -> Path:
    """A model whose input is a string tensor, which hilbench cannot generate."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["out"])],
        "strings",
        [helper.make_tensor_value_info("text", TensorProto.STRING, [1])],
        [helper.make_tensor_value_info("out", TensorProto.STRING, [1])],
    )
    return _save(graph, path)


def corrupt(path: Path) -> Path:
    path.write_bytes(b"\x08\x07this is not an onnx protobuf" * 10)
    return path


# -- models for the pruning / sparsity tests (hilbench.variants) ------------------------------


def _save_with(
    graph: onnx.GraphProto, path: Path, opset: int = 17, microsoft: bool = False
) -> Path:
    """Like ``_save`` with a chosen opset, and the com.microsoft domain when asked."""
    imports = [helper.make_opsetid("", opset)]
    if microsoft:
        imports.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _weight(rng: numpy.random.Generator, name: str, *shape: int) -> onnx.TensorProto:
    fan_in = int(numpy.prod(shape[1:])) if len(shape) > 2 else shape[0]
    value = rng.standard_normal(shape) / numpy.sqrt(fan_in)
    return numpy_helper.from_array(value.astype(numpy.float32), name)


def _scalar(name: str, value: float) -> onnx.TensorProto:
    return numpy_helper.from_array(numpy.array(value, dtype=numpy.float32), name)


FFN_ACTIVATIONS = ("relu", "gelu_erf", "gelu_tanh", "gelu", "fastgelu", "silu", "none")


def _activation(kind: str, x: str, nodes: list[onnx.NodeProto], consts: list[onnx.TensorProto],
                bias: onnx.TensorProto | None = None) -> str:
    """Append the activation ``kind`` applied to ``x``; return its output name."""
    if kind == "relu":
        nodes.append(helper.make_node("Relu", [x], ["act"], name="act"))
    elif kind == "gelu":
        nodes.append(helper.make_node("Gelu", [x], ["act"], name="act"))
    elif kind == "fastgelu":
        inputs = [x] + ([bias.name] if bias is not None else [])
        nodes.append(helper.make_node("FastGelu", inputs, ["act"], name="act",
                                      domain="com.microsoft"))
    elif kind == "silu":
        nodes.append(helper.make_node("Sigmoid", [x], ["sig"], name="sig"))
        nodes.append(helper.make_node("Mul", [x, "sig"], ["act"], name="act"))
    elif kind == "gelu_erf":
        consts += [_scalar("sqrt2", 2**0.5), _scalar("one", 1.0), _scalar("half", 0.5)]
        nodes += [
            helper.make_node("Div", [x, "sqrt2"], ["g_scaled"], name="gelu/div"),
            helper.make_node("Erf", ["g_scaled"], ["g_erf"], name="gelu/erf"),
            helper.make_node("Add", ["g_erf", "one"], ["g_shift"], name="gelu/add"),
            helper.make_node("Mul", [x, "g_shift"], ["g_prod"], name="gelu/mul"),
            helper.make_node("Mul", ["g_prod", "half"], ["act"], name="gelu/half"),
        ]
    elif kind == "gelu_tanh":
        consts += [_scalar("three", 3.0), _scalar("c", 0.044715),
                   _scalar("k", (2 / numpy.pi) ** 0.5), _scalar("one", 1.0),
                   _scalar("half", 0.5)]
        nodes += [
            helper.make_node("Pow", [x, "three"], ["t_cube"], name="tanh/pow"),
            helper.make_node("Mul", ["t_cube", "c"], ["t_cubec"], name="tanh/mul_c"),
            helper.make_node("Add", [x, "t_cubec"], ["t_inner"], name="tanh/add_in"),
            helper.make_node("Mul", ["t_inner", "k"], ["t_scaled"], name="tanh/mul_k"),
            helper.make_node("Tanh", ["t_scaled"], ["t_tanh"], name="tanh/tanh"),
            helper.make_node("Add", ["t_tanh", "one"], ["t_shift"], name="tanh/add_one"),
            helper.make_node("Mul", [x, "t_shift"], ["t_prod"], name="tanh/mul_x"),
            helper.make_node("Mul", ["t_prod", "half"], ["act"], name="tanh/half"),
        ]
    elif kind == "none":
        return x
    else:
        raise ValueError(kind)
    return "act"


def ffn(path: Path, activation: str = "gelu_erf", hidden: int = 16, inner: int = 64,
        gemm: bool = False) -> Path:
    """One Transformer feed-forward block x[batch, hidden] -> y[batch, hidden]:
    MatMul(W1) -> Add(b1) -> activation -> MatMul(W2) -> Add(b2) (or two Gemm with transB=1;
    FastGelu takes b1 itself). ``activation="none"`` leaves a linear pair."""
    rng = numpy.random.default_rng(1)
    nodes: list[onnx.NodeProto] = []
    consts: list[onnx.TensorProto] = []
    b1 = numpy_helper.from_array(rng.standard_normal(inner).astype(numpy.float32) * 0.1, "b1")
    b2 = numpy_helper.from_array(rng.standard_normal(hidden).astype(numpy.float32) * 0.1, "b2")
    if gemm:
        w1, w2 = _weight(rng, "w1", inner, hidden), _weight(rng, "w2", hidden, inner)
        nodes.append(helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1))
        act = _activation(activation, "h", nodes, consts)
        nodes.append(helper.make_node("Gemm", [act, "w2", "b2"], ["y"], name="fc2", transB=1))
    else:
        w1, w2 = _weight(rng, "w1", hidden, inner), _weight(rng, "w2", inner, hidden)
        nodes.append(helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"))
        if activation == "fastgelu":
            act = _activation(activation, "h", nodes, consts, bias=b1)
        else:
            nodes.append(helper.make_node("Add", ["h", "b1"], ["hb"], name="fc1/bias"))
            act = _activation(activation, "hb", nodes, consts)
        nodes.append(helper.make_node("MatMul", [act, "w2"], ["o"], name="fc2"))
        nodes.append(helper.make_node("Add", ["o", "b2"], ["y"], name="fc2/bias"))
    graph = helper.make_graph(
        nodes,
        f"ffn_{activation}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", hidden])],
        [w1, b1, w2, b2, *consts],
    )
    return _save_with(graph, path, opset=20 if activation == "gelu" else 17,
                      microsoft=activation == "fastgelu")


ATTENTION_SHAPES = ("initializer", "constant", "concat", "computed")


def attention(path: Path, shapes: str = "initializer", hidden: int = 32, heads: int = 4) -> Path:
    """One multi-head self-attention block x[batch, seq, hidden] -> y[batch, seq, hidden] in
    the BERT export layout. ``shapes`` says how the Reshape targets are given: initializers,
    Constant nodes, Hugging Face style Concat(Shape-computed batch/length, constant heads and
    head_dim), or with the head count computed from the tensor's shape."""
    rng = numpy.random.default_rng(2)
    head_dim = hidden // heads
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = [_scalar("scale", 1 / head_dim**0.5)]

    def const(name: str, values: list[int]) -> str:
        array = numpy.array(values, dtype=numpy.int64)
        if shapes == "constant":
            tensor = numpy_helper.from_array(array, name)
            nodes.append(helper.make_node("Constant", [], [name], name=f"{name}/c", value=tensor))
        else:
            inits.append(numpy_helper.from_array(array, name))
        return name

    def target(prefix: str, source: str, tail: list[int]) -> str:
        """The shape [0, 0, *tail] for a Reshape of ``source``."""
        if shapes in ("initializer", "constant"):
            return const(f"{prefix}/shape", [0, 0, *tail])
        parts = []
        for axis in (0, 1):
            nodes.append(helper.make_node("Shape", [source], [f"{prefix}/shape{axis}"]))
            nodes.append(helper.make_node("Gather", [f"{prefix}/shape{axis}",
                                                     const(f"{prefix}/i{axis}", [axis])],
                                          [f"{prefix}/dim{axis}"], axis=0))
            parts.append(f"{prefix}/dim{axis}")
        if shapes == "computed" and len(tail) == 2:
            nodes.append(helper.make_node("Shape", [source], [f"{prefix}/shape2"]))
            index2, size = const(f"{prefix}/i2", [2]), const(f"{prefix}/hd", [tail[1]])
            nodes.append(helper.make_node("Gather", [f"{prefix}/shape2", index2],
                                          [f"{prefix}/width"], axis=0))
            nodes.append(helper.make_node("Div", [f"{prefix}/width", size], [f"{prefix}/nheads"]))
            parts += [f"{prefix}/nheads", const(f"{prefix}/tail", [tail[1]])]
        else:
            parts += [const(f"{prefix}/tail{i}", [v]) for i, v in enumerate(tail)]
        nodes.append(helper.make_node("Concat", parts, [f"{prefix}/target"], axis=0,
                                      name=f"{prefix}/concat"))
        return f"{prefix}/target"

    split = {}
    for role in ("query", "key", "value"):
        inits.append(_weight(rng, f"{role}.weight", hidden, hidden))
        inits.append(numpy_helper.from_array(
            (rng.standard_normal(hidden) * 0.1).astype(numpy.float32), f"{role}.bias"))
        nodes.append(helper.make_node("MatMul", ["x", f"{role}.weight"], [f"{role}/mm"],
                                      name=f"{role}/matmul"))
        nodes.append(helper.make_node("Add", [f"{role}/mm", f"{role}.bias"], [f"{role}/out"],
                                      name=f"{role}/add"))
        shape = target(role, f"{role}/out", [heads, head_dim])
        nodes.append(helper.make_node("Reshape", [f"{role}/out", shape], [f"{role}/split"],
                                      name=f"{role}/reshape"))
        perm = [0, 2, 3, 1] if role == "key" else [0, 2, 1, 3]
        nodes.append(helper.make_node("Transpose", [f"{role}/split"], [f"{role}/heads"],
                                      name=f"{role}/transpose", perm=perm))
        split[role] = f"{role}/heads"
    nodes += [
        helper.make_node("MatMul", [split["query"], split["key"]], ["scores"], name="scores"),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"], name="scaled"),
        helper.make_node("Softmax", ["scaled"], ["probs"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["probs", split["value"]], ["context"], name="context"),
        helper.make_node("Transpose", ["context"], ["context_t"], name="context_t",
                         perm=[0, 2, 1, 3]),
    ]
    merge = target("merge", "context_t", [hidden])
    nodes.append(helper.make_node("Reshape", ["context_t", merge], ["merged"], name="merge"))
    inits.append(_weight(rng, "output.weight", hidden, hidden))
    inits.append(numpy_helper.from_array(numpy.zeros(hidden, numpy.float32), "output.bias"))
    nodes.append(helper.make_node("MatMul", ["merged", "output.weight"], ["o"], name="output"))
    nodes.append(helper.make_node("Add", ["o", "output.bias"], ["y"], name="output/add"))
    graph = helper.make_graph(
        nodes,
        f"attention_{shapes}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", hidden])],
        inits,
    )
    return _save_with(graph, path)


def convnet(path: Path, depthwise: bool = False, residual: bool = False) -> Path:
    """A small CNN x[batch, 3, 16, 16] -> y[batch, 10]: Conv(8, 3x3) -> BatchNorm -> Relu ->
    MaxPool -> Conv(16, 3x3) -> Relu [-> depthwise Conv(3x3) -> Relu] -> Conv(8, 1x1) ->
    Relu -> GlobalAveragePool -> Flatten -> Gemm(10). ``residual`` adds a 3x3 Conv(8) whose
    output is added back to the 1x1 conv's (ResNet style), which ties their channels."""
    rng = numpy.random.default_rng(3)
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def conv(name: str, source: str, out: int, cin: int, k: int, group: int = 1) -> str:
        inits.append(_weight(rng, f"{name}.weight", out, cin // group, k, k))
        inits.append(numpy_helper.from_array(
            (rng.standard_normal(out) * 0.1).astype(numpy.float32), f"{name}.bias"))
        nodes.append(helper.make_node("Conv", [source, f"{name}.weight", f"{name}.bias"],
                                      [f"{name}/out"], name=name, pads=[k // 2] * 4,
                                      group=group))
        return f"{name}/out"

    def relu(source: str) -> str:
        nodes.append(helper.make_node("Relu", [source], [f"{source}/relu"], name=f"{source}/relu"))
        return f"{source}/relu"

    h = conv("conv1", "x", 8, 3, 3)
    bn = [rng.uniform(0.5, 1.5, 8), rng.standard_normal(8) * 0.1, rng.standard_normal(8) * 0.1,
          rng.uniform(0.5, 1.5, 8)]
    for name, value in zip(("bn.scale", "bn.bias", "bn.mean", "bn.var"), bn, strict=True):
        inits.append(numpy_helper.from_array(value.astype(numpy.float32), name))
    bn_inputs = [h, "bn.scale", "bn.bias", "bn.mean", "bn.var"]
    nodes.append(helper.make_node("BatchNormalization", bn_inputs, ["bn/out"], name="bn"))
    h = relu("bn/out")
    nodes.append(helper.make_node("MaxPool", [h], ["pool"], name="pool", kernel_shape=[2, 2],
                                  strides=[2, 2]))
    h = relu(conv("conv2", "pool", 16, 8, 3))
    if depthwise:
        h = relu(conv("dw", h, 16, 16, 3, group=16))
    h = conv("conv3", h, 8, 16, 1)
    if residual:
        side = conv("conv_res", h, 8, 8, 3)
        nodes.append(helper.make_node("Add", [h, side], ["res"], name="residual"))
        h = "res"
    h = relu(h)
    nodes.append(helper.make_node("GlobalAveragePool", [h], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1))
    inits.append(_weight(rng, "fc.weight", 10, 8))
    inits.append(numpy_helper.from_array(numpy.zeros(10, numpy.float32), "fc.bias"))
    nodes.append(helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["y"], name="fc",
                                  transB=1))
    graph = helper.make_graph(
        nodes,
        "convnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    return _save_with(graph, path)
