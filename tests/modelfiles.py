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
