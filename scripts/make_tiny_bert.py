"""Build hilbench's demo model: a small BERT-like Transformer encoder written directly as an
ONNX graph (no PyTorch), with seeded random weights. Deterministic: the same bytes each run.

    python scripts/make_tiny_bert.py [--out hilbench/assets/tiny-bert.onnx]

Inputs: input_ids, attention_mask (int64, [batch, sequence]). Outputs: last_hidden_state
[batch, sequence, 128] and pooler_output [batch, 128]. Initializers are named like BERT's
(``encoder.layer.{i}.intermediate.dense.weight`` ...) so that pruning can find them.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 20261122
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "hilbench" / "assets" / "tiny-bert.onnx"


@dataclass(frozen=True)
class Config:
    vocab: int = 2000
    hidden: int = 128
    heads: int = 4
    layers: int = 4
    intermediate: int = 512
    max_positions: int = 128

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


class GraphBuilder:
    """Collects nodes and initializers; every weight comes from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = numpy.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def weight(self, name: str, shape: tuple[int, ...]) -> str:
        values = (self.rng.standard_normal(shape) * 0.02).astype(numpy.float32)
        return self.constant(name, values)

    def constant(self, name: str, values: numpy.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(values, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def dense(self, prefix: str, x: str, shape: tuple[int, int]) -> str:
        weight = self.weight(f"{prefix}.weight", shape)
        bias = self.constant(f"{prefix}.bias", numpy.zeros(shape[1], numpy.float32))
        return self.node("Add", [self.node("MatMul", [x, weight], f"{prefix}/matmul"), bias],
                         f"{prefix}/out")

    def layer_norm(self, prefix: str, x: str, width: int) -> str:
        scale = self.constant(f"{prefix}.weight", numpy.ones(width, numpy.float32))
        bias = self.constant(f"{prefix}.bias", numpy.zeros(width, numpy.float32))
        return self.node("LayerNormalization", [x, scale, bias], f"{prefix}/out",
                         axis=-1, epsilon=1e-12)


def embeddings(g: GraphBuilder, cfg: Config) -> str:
    words = g.node("Gather", [g.weight("embeddings.word_embeddings.weight",
                                       (cfg.vocab, cfg.hidden)), "input_ids"], "emb/words")
    shape = g.node("Shape", ["input_ids"], "emb/shape")
    length = g.node("Gather", [shape, g.constant("emb/one", numpy.array(1, numpy.int64))],
                    "emb/length", axis=0)
    positions = g.node("Range", [g.constant("emb/zero", numpy.array(0, numpy.int64)), length,
                                 g.constant("emb/step", numpy.array(1, numpy.int64))],
                       "emb/positions")
    table = g.weight("embeddings.position_embeddings.weight", (cfg.max_positions, cfg.hidden))
    summed = g.node("Add", [words, g.node("Gather", [table, positions], "emb/pos")], "emb/sum")
    return g.layer_norm("embeddings.LayerNorm", summed, cfg.hidden)


def additive_mask(g: GraphBuilder) -> str:
    """(1 - mask) * -10000 as [batch, 1, 1, sequence]."""
    mask = g.node("Cast", ["attention_mask"], "mask/float", to=TensorProto.FLOAT)
    axes = g.constant("mask/axes", numpy.array([1, 2], numpy.int64))
    expanded = g.node("Unsqueeze", [mask, axes], "mask/expanded")
    inverted = g.node("Sub", [g.constant("mask/one", numpy.array(1.0, numpy.float32)), expanded],
                      "mask/inverted")
    return g.node("Mul", [inverted, g.constant("mask/big", numpy.array(-10000.0, numpy.float32))],
                  "mask/additive")


def split_heads(g: GraphBuilder, x: str, cfg: Config, name: str) -> str:
    shape = g.constant(f"{name}/shape", numpy.array([0, 0, cfg.heads, cfg.head_dim], numpy.int64))
    reshaped = g.node("Reshape", [x, shape], f"{name}/reshaped")
    return g.node("Transpose", [reshaped], f"{name}/heads", perm=[0, 2, 1, 3])


def attention(g: GraphBuilder, x: str, mask: str, cfg: Config, i: int) -> str:
    prefix = f"encoder.layer.{i}.attention"
    q, k, v = (split_heads(g, g.dense(f"{prefix}.self.{n}", x, (cfg.hidden, cfg.hidden)), cfg,
                           f"{prefix}/{n}") for n in ("query", "key", "value"))
    keys_t = g.node("Transpose", [k], f"{prefix}/key_t", perm=[0, 1, 3, 2])
    scores = g.node("MatMul", [q, keys_t], f"{prefix}/scores")
    scale = g.constant(f"{prefix}/scale", numpy.array(1 / numpy.sqrt(cfg.head_dim), numpy.float32))
    masked = g.node("Add", [g.node("Mul", [scores, scale], f"{prefix}/scaled"), mask],
                    f"{prefix}/masked")
    probs = g.node("Softmax", [masked], f"{prefix}/probs", axis=-1)
    context = g.node("Transpose", [g.node("MatMul", [probs, v], f"{prefix}/context")],
                     f"{prefix}/context_t", perm=[0, 2, 1, 3])
    merged = g.node("Reshape", [context, g.constant(f"{prefix}/merge", numpy.array(
        [0, 0, cfg.hidden], numpy.int64))], f"{prefix}/merged")
    projected = g.dense(f"{prefix}.output.dense", merged, (cfg.hidden, cfg.hidden))
    residual = g.node("Add", [projected, x], f"{prefix}/residual")
    return g.layer_norm(f"{prefix}.output.LayerNorm", residual, cfg.hidden)


def gelu(g: GraphBuilder, x: str, name: str) -> str:
    """0.5 * x * (1 + erf(x / sqrt(2)))."""
    scaled = g.node("Div", [x, g.constant(f"{name}/sqrt2", numpy.array(numpy.sqrt(2.0),
                                                                          numpy.float32))],
                    f"{name}/scaled")
    one = g.constant(f"{name}/one", numpy.array(1.0, numpy.float32))
    half = g.constant(f"{name}/half", numpy.array(0.5, numpy.float32))
    shifted = g.node("Add", [g.node("Erf", [scaled], f"{name}/erf"), one], f"{name}/shifted")
    return g.node("Mul", [g.node("Mul", [x, shifted], f"{name}/product"), half], f"{name}/out")


def feed_forward(g: GraphBuilder, x: str, cfg: Config, i: int) -> str:
    prefix = f"encoder.layer.{i}"
    hidden = g.dense(f"{prefix}.intermediate.dense", x, (cfg.hidden, cfg.intermediate))
    activated = gelu(g, hidden, f"{prefix}.intermediate/gelu")
    output = g.dense(f"{prefix}.output.dense", activated, (cfg.intermediate, cfg.hidden))
    residual = g.node("Add", [output, x], f"{prefix}/ffn_residual")
    return g.layer_norm(f"{prefix}.output.LayerNorm", residual, cfg.hidden)


def pooler(g: GraphBuilder, x: str, cfg: Config) -> str:
    first = g.node("Gather", [x, g.constant("pooler/first", numpy.array(0, numpy.int64))],
                   "pooler/first_token", axis=1)
    return g.node("Tanh", [g.dense("pooler.dense", first, (cfg.hidden, cfg.hidden))],
                  "pooler_output")


def build(cfg: Config) -> onnx.ModelProto:
    g = GraphBuilder(SEED)
    x = embeddings(g, cfg)
    mask = additive_mask(g)
    for i in range(cfg.layers):
        x = feed_forward(g, attention(g, x, mask, cfg, i), cfg, i)
    g.node("Identity", [x], "last_hidden_state")
    pooler(g, x, cfg)
    graph = helper.make_graph(
        g.nodes, "tiny-bert",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
         for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                       ["batch", "sequence", cfg.hidden]),
         helper.make_tensor_value_info("pooler_output", TensorProto.FLOAT, ["batch", cfg.hidden])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="hilbench", producer_version="1")
    model.ir_version = 8
    helper.set_model_props(model, {"hilbench.default_dims": "batch=1,sequence=128"})
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    data = build(Config()).SerializeToString()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"{args.out} {len(data) / 1e6:.2f} MB sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
