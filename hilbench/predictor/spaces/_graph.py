"""A small ONNX graph builder shared by the search-space generators.

Every weight comes from one seeded generator, drawn in the order the builder asks for it, so the
same architecture always gives the same bytes. Nodes are named after their output. Models are
opset 17, IR version 8; the tests check them in onnx.checker and onnxruntime.

A builder made with ``weights=False`` gives a graph for features only: its random weights are
initializers with their dims and type but no values, marked as external data at
``NO_DATA_LOCATION`` (which no file holds), so nothing of their size is drawn or copied;
``hilbench.predictor.features`` counts them as dense weights of that size and precision, as it
counted the drawn ones (whose values are never exactly zero). Fixed values (biases, norms,
shapes, tables) are stored either way. Such a graph cannot run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy
import onnx
from onnx import TensorProto, helper

OPSET = 17
IR_VERSION = 8
POOL_SIZE = 1 << 20
NO_DATA_LOCATION = "hilbench-no-weight-data"
ZERO_DRAW = numpy.float32(1e-6)


class GraphBuilder:
    """Collects nodes and initializers for one graph, in the model it returns."""

    def __init__(self, seed: int, weights: bool = True) -> None:
        self.rng = numpy.random.default_rng(seed)
        self.weights = weights
        self._pool: numpy.ndarray | None = None
        self.proto = onnx.ModelProto()
        self.nodes = self.proto.graph.node
        self.initializers = self.proto.graph.initializer

    @property
    def pool(self) -> numpy.ndarray:
        """The ``POOL_SIZE`` N(0, 1) draws weights are read from (drawn at first use). A draw
        of exactly 0 (about one in a million) becomes ``ZERO_DRAW``: a random weight is dense,
        so a graph without weight values has the same features."""
        if self._pool is None:
            pool = self.rng.standard_normal(POOL_SIZE, dtype=numpy.float32)
            pool[pool == 0.0] = ZERO_DRAW
            self._pool = pool
        return self._pool

    def weight(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        """A He-scaled pseudo-random weight (keeps activations finite through deep random
        nets). Values are read from the builder's pool of N(0, 1) draws, from a seeded random
        offset, wrapping around: as deterministic as fresh draws and ~10x faster for the 50 M
        weights of a large Transformer. Without ``weights``: dims and type only."""
        if not self.weights:
            return self._placeholder(name, shape)
        pool = self.pool
        std = numpy.float32(math.sqrt(2.0 / max(fan_in, 1)))
        start = int(self.rng.integers(POOL_SIZE))
        rotated = numpy.concatenate([pool[start:], pool[:start]])
        values = numpy.resize(rotated, math.prod(shape)).reshape(shape)
        values *= std
        return self.constant(name, values)

    def _placeholder(self, name: str, shape: tuple[int, ...]) -> str:
        tensor = self.initializers.add()
        tensor.name = name
        tensor.data_type = TensorProto.FLOAT
        tensor.dims.extend(shape)
        tensor.data_location = TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", NO_DATA_LOCATION
        return name

    def constant(self, name: str, values: numpy.ndarray) -> str:
        """An initializer written in place (as ``numpy_helper.from_array`` writes it, without
        its copies: a 32k-word embedding is 80 MB)."""
        array = numpy.asarray(values)
        tensor = self.initializers.add()
        tensor.name = name
        tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
        tensor.dims.extend(array.shape)
        tensor.raw_data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        return name

    def ints(self, name: str, values: list[int]) -> str:
        return self.constant(name, numpy.array(values, numpy.int64))

    def scalar(self, name: str, value: float) -> str:
        return self.constant(name, numpy.array(value, numpy.float32))

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    # -- convolutional pieces --------------------------------------------------------------

    def conv(self, prefix: str, x: str, cin: int, cout: int, kernel: int, stride: int = 1,
             groups: int = 1) -> str:
        """Conv2d without bias (as every conv followed by BatchNorm in the reference nets);
        padding keeps ``H_out = H_in / stride`` (kernel // 2 on each side)."""
        weight = self.weight(f"{prefix}.weight", (cout, cin // groups, kernel, kernel),
                             fan_in=(cin // groups) * kernel * kernel)
        pad = kernel // 2
        return self.node("Conv", [x, weight], f"{prefix}/out", kernel_shape=[kernel, kernel],
                         strides=[stride, stride], pads=[pad, pad, pad, pad], group=groups)

    def batch_norm(self, prefix: str, x: str, channels: int) -> str:
        """Inference BatchNormalization with identity statistics (scale 1, shift 0)."""
        scale = self.constant(f"{prefix}.weight", numpy.ones(channels, numpy.float32))
        bias = self.constant(f"{prefix}.bias", numpy.zeros(channels, numpy.float32))
        mean = self.constant(f"{prefix}.running_mean", numpy.zeros(channels, numpy.float32))
        var = self.constant(f"{prefix}.running_var", numpy.ones(channels, numpy.float32))
        return self.node("BatchNormalization", [x, scale, bias, mean, var], f"{prefix}/out",
                         epsilon=1e-5)

    def relu(self, x: str, name: str) -> str:
        return self.node("Relu", [x], name)

    def classifier(self, prefix: str, x: str, channels: int, classes: int, output: str) -> str:
        """Global average pool, flatten, then a Linear layer exported as Gemm (transB=1)."""
        pooled = self.node("GlobalAveragePool", [x], f"{prefix}/pool")
        flat = self.node("Flatten", [pooled], f"{prefix}/flatten", axis=1)
        weight = self.weight(f"{prefix}.weight", (classes, channels), fan_in=channels)
        bias = self.constant(f"{prefix}.bias", numpy.zeros(classes, numpy.float32))
        return self.node("Gemm", [flat, weight, bias], output, transB=1)

    # -- transformer pieces ----------------------------------------------------------------

    def dense(self, prefix: str, x: str, shape: tuple[int, int]) -> str:
        """Linear layer as MatMul + Add (weight stored [in, out]), as exporters emit it."""
        weight = self.weight(f"{prefix}.weight", shape, fan_in=shape[0])
        bias = self.constant(f"{prefix}.bias", numpy.zeros(shape[1], numpy.float32))
        product = self.node("MatMul", [x, weight], f"{prefix}/matmul")
        return self.node("Add", [product, bias], f"{prefix}/out")

    def layer_norm(self, prefix: str, x: str, width: int) -> str:
        scale = self.constant(f"{prefix}.weight", numpy.ones(width, numpy.float32))
        bias = self.constant(f"{prefix}.bias", numpy.zeros(width, numpy.float32))
        return self.node("LayerNormalization", [x, scale, bias], f"{prefix}/out",
                         axis=-1, epsilon=1e-5)

    # -- the model -------------------------------------------------------------------------

    def model(self, name: str, inputs: list[onnx.ValueInfoProto],
              outputs: list[onnx.ValueInfoProto], default_dims: str) -> onnx.ModelProto:
        """The model, the builder's own (built in place, not copied; not run through
        ``onnx.checker``, whose serialisation of the weights cost seconds per HAT graph: the
        tests run every generator's graphs in onnxruntime); ``default_dims`` ("batch=1,...")
        names the sizes hilbench feeds to the symbolic dimensions (metadata
        ``hilbench.default_dims``). Call it once."""
        model = self.proto
        model.ir_version = IR_VERSION
        model.producer_name, model.producer_version = "hilbench", "1"
        model.opset_import.append(helper.make_opsetid("", OPSET))
        model.graph.name = name
        model.graph.input.extend(inputs)
        model.graph.output.extend(outputs)
        helper.set_model_props(model, {"hilbench.default_dims": default_dims})
        return model


def float_input(name: str, shape: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def int64_input(name: str, shape: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.INT64, shape)


def parameter_count(model: onnx.ModelProto) -> int:
    """Trainable parameters as PyTorch counts them: every initializer except BatchNorm running
    statistics and integer / scalar helpers (shapes, axes, scales) and fixed tables
    (sinusoidal positions)."""
    total = 0
    for tensor in model.graph.initializer:
        name = tensor.name
        if name.endswith((".running_mean", ".running_var")) or "/" in name:
            continue
        if tensor.data_type != TensorProto.FLOAT:
            continue
        total += math.prod(tensor.dims)
    return total
