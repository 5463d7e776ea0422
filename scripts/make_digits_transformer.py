"""Train hilbench's second demo model: a tiny Transformer encoder that classifies scikit-learn's
8x8 handwritten digits, then write it as a plain BERT-like ONNX graph with its eval set.

    pip install -e .[train]
    python scripts/make_digits_transformer.py [--assets hilbench/assets]

Each image is 8 tokens (its rows) of 8 features (pixel / 16). The encoder: a linear patch
embedding to 64, learned position embeddings, LayerNorm, 2 post-LN layers (4 heads, FFN 256,
exact Gelu), mean pool over tokens, linear classifier to 10 logits. Trained with PyTorch on a
seeded, stratified 1437 / 360 split, single thread, deterministic algorithms: running the script
twice writes the same bytes. The ONNX graph is written by hand with ``onnx.helper`` from the
trained weights (MatMul+Add projections, Reshape shapes as constant initializers, Erf Gelu) so
that head and FFN pruning find the structure they expect. Neither torch nor scikit-learn is
needed to use the files it writes.

Writes ``digits-transformer.onnx`` (input ``pixels`` float32 [batch, 8, 8], output ``logits``
float32 [batch, 10]) and ``digits-eval.npz`` (``pixels`` and ``labels`` for the 360 eval images).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

SEED = 20261205
DEFAULT_ASSETS = Path(__file__).resolve().parents[1] / "hilbench" / "assets"
MODEL_FILE = "digits-transformer.onnx"
EVAL_FILE = "digits-eval.npz"
INPUT_NAME = "pixels"
OUTPUT_NAME = "logits"
EVAL_SIZE = 360

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Config:
    tokens: int = 8
    features: int = 8
    hidden: int = 64
    heads: int = 4
    layers: int = 2
    intermediate: int = 256
    classes: int = 10
    epsilon: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


@dataclass(frozen=True)
class Training:
    epochs: int = 120
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 0.01


@dataclass(frozen=True)
class Split:
    train_x: numpy.ndarray
    train_y: numpy.ndarray
    eval_x: numpy.ndarray
    eval_y: numpy.ndarray


# --- data -----------------------------------------------------------------------------------


def load_split(cfg: Config) -> Split:
    """The digits as [N, rows, columns] in [0, 1], split 1437 / 360, stratified and seeded."""
    from sklearn.datasets import load_digits  # type: ignore[import-untyped, unused-ignore]
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped, unused-ignore]

    digits = load_digits()
    images = (digits.data / 16.0).astype(numpy.float32).reshape(-1, cfg.tokens, cfg.features)
    labels = digits.target.astype(numpy.int64)
    train_x, eval_x, train_y, eval_y = train_test_split(
        images, labels, test_size=EVAL_SIZE, random_state=SEED, stratify=labels)
    return Split(train_x, train_y, eval_x, eval_y)


# --- the model as plain tensors: the same names and ops as the ONNX graph --------------------


def init_params(cfg: Config, generator: torch.Generator) -> Params:
    """Weights stored as [in, out] (ONNX MatMul layout), named like BERT's."""
    params: Params = {}

    def dense(name: str, rows: int, columns: int) -> None:
        params[f"{name}.weight"] = torch.randn(rows, columns, generator=generator) / math.sqrt(rows)
        params[f"{name}.bias"] = torch.zeros(columns)

    def norm(name: str) -> None:
        params[f"{name}.weight"] = torch.ones(cfg.hidden)
        params[f"{name}.bias"] = torch.zeros(cfg.hidden)

    dense("embeddings.patch", cfg.features, cfg.hidden)
    params["embeddings.position_embeddings.weight"] = (
        torch.randn(cfg.tokens, cfg.hidden, generator=generator) * 0.02)
    norm("embeddings.LayerNorm")
    for i in range(cfg.layers):
        prefix = f"encoder.layer.{i}"
        for part in ("query", "key", "value"):
            dense(f"{prefix}.attention.self.{part}", cfg.hidden, cfg.hidden)
        dense(f"{prefix}.attention.output.dense", cfg.hidden, cfg.hidden)
        norm(f"{prefix}.attention.output.LayerNorm")
        dense(f"{prefix}.intermediate.dense", cfg.hidden, cfg.intermediate)
        dense(f"{prefix}.output.dense", cfg.intermediate, cfg.hidden)
        norm(f"{prefix}.output.LayerNorm")
    dense("classifier", cfg.hidden, cfg.classes)
    for tensor in params.values():
        tensor.requires_grad_(True)
    return params


def torch_forward(p: Params, pixels: torch.Tensor, cfg: Config) -> torch.Tensor:
    """The encoder in PyTorch, op for op what ``build_onnx`` writes."""

    def dense(name: str, x: torch.Tensor) -> torch.Tensor:
        return x @ p[f"{name}.weight"] + p[f"{name}.bias"]

    def norm(name: str, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.layer_norm(
            x, (cfg.hidden,), p[f"{name}.weight"], p[f"{name}.bias"], cfg.epsilon)

    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, cfg.tokens, cfg.heads, cfg.head_dim).permute(0, 2, 1, 3)

    x = dense("embeddings.patch", pixels) + p["embeddings.position_embeddings.weight"]
    x = norm("embeddings.LayerNorm", x)
    for i in range(cfg.layers):
        prefix = f"encoder.layer.{i}"
        q, k, v = (heads(dense(f"{prefix}.attention.self.{n}", x))
                   for n in ("query", "key", "value"))
        scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(cfg.head_dim))
        context = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(-1, cfg.tokens, cfg.hidden)
        x = norm(f"{prefix}.attention.output.LayerNorm",
                 dense(f"{prefix}.attention.output.dense", context) + x)
        hidden = torch.nn.functional.gelu(dense(f"{prefix}.intermediate.dense", x))
        x = norm(f"{prefix}.output.LayerNorm", dense(f"{prefix}.output.dense", hidden) + x)
    return dense("classifier", x.mean(dim=1))


# --- training ---------------------------------------------------------------------------------


def minibatches(size: int, batch: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(size, generator=generator)
    for start in range(0, size, batch):
        yield order[start:start + batch]


def accuracy(p: Params, x: numpy.ndarray, y: numpy.ndarray, cfg: Config) -> float:
    with torch.no_grad():
        predicted = torch_forward(p, torch.from_numpy(x), cfg).argmax(dim=1).numpy()
    return float((predicted == y).mean())


def train(split: Split, cfg: Config, run: Training) -> Params:
    generator = torch.Generator().manual_seed(SEED)
    params = init_params(cfg, generator)
    optimizer = torch.optim.AdamW(list(params.values()), lr=run.learning_rate,
                                  weight_decay=run.weight_decay)
    steps = run.epochs * math.ceil(len(split.train_y) / run.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=run.learning_rate,
                                                   total_steps=steps)
    images, labels = torch.from_numpy(split.train_x), torch.from_numpy(split.train_y)
    for epoch in range(run.epochs):
        for index in minibatches(len(labels), run.batch_size, generator):
            loss = torch.nn.functional.cross_entropy(
                torch_forward(params, images[index], cfg), labels[index])
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call, unused-ignore]
            optimizer.step()
            schedule.step()
        if (epoch + 1) % 20 == 0:
            print(f"epoch {epoch + 1:3d} loss {loss.item():.4f} "
                  f"eval {accuracy(params, split.eval_x, split.eval_y, cfg):.4f}")
    return {name: tensor.detach() for name, tensor in params.items()}


# --- ONNX graph ---------------------------------------------------------------------------------


class GraphBuilder:
    """Nodes and initializers of the exported graph; weights come from the trained tensors."""

    def __init__(self, params: Params) -> None:
        self.params = params
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def weight(self, name: str) -> str:
        return self.constant(name, self.params[name].numpy().astype(numpy.float32))

    def constant(self, name: str, values: numpy.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(values, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def dense(self, prefix: str, x: str, output: str | None = None) -> str:
        product = self.node("MatMul", [x, self.weight(f"{prefix}.weight")], f"{prefix}/matmul")
        return self.node("Add", [product, self.weight(f"{prefix}.bias")], output or f"{prefix}/out")

    def layer_norm(self, prefix: str, x: str, epsilon: float) -> str:
        return self.node("LayerNormalization",
                         [x, self.weight(f"{prefix}.weight"), self.weight(f"{prefix}.bias")],
                         f"{prefix}/out", axis=-1, epsilon=epsilon)

    def scalar(self, name: str, value: float) -> str:
        return self.constant(name, numpy.array(value, numpy.float32))


def split_heads(g: GraphBuilder, x: str, cfg: Config, name: str) -> str:
    """[batch, tokens, hidden] -> [batch, heads, tokens, head_dim]; only the batch dim is -1."""
    shape = numpy.array([-1, cfg.tokens, cfg.heads, cfg.head_dim], numpy.int64)
    reshaped = g.node("Reshape", [x, g.constant(f"{name}/shape", shape)], f"{name}/reshaped")
    return g.node("Transpose", [reshaped], f"{name}/heads", perm=[0, 2, 1, 3])


def attention(g: GraphBuilder, x: str, cfg: Config, i: int) -> str:
    prefix = f"encoder.layer.{i}.attention"
    q, k, v = (split_heads(g, g.dense(f"{prefix}.self.{n}", x), cfg, f"{prefix}/{n}")
               for n in ("query", "key", "value"))
    keys_t = g.node("Transpose", [k], f"{prefix}/key_t", perm=[0, 1, 3, 2])
    scores = g.node("MatMul", [q, keys_t], f"{prefix}/scores")
    scaled = g.node("Mul", [scores, g.scalar(f"{prefix}/scale", 1 / math.sqrt(cfg.head_dim))],
                    f"{prefix}/scaled")
    probs = g.node("Softmax", [scaled], f"{prefix}/probs", axis=-1)
    context = g.node("Transpose", [g.node("MatMul", [probs, v], f"{prefix}/context")],
                     f"{prefix}/context_t", perm=[0, 2, 1, 3])
    merge = numpy.array([-1, cfg.tokens, cfg.hidden], numpy.int64)
    merged = g.node("Reshape", [context, g.constant(f"{prefix}/merge", merge)], f"{prefix}/merged")
    residual = g.node("Add", [g.dense(f"{prefix}.output.dense", merged), x], f"{prefix}/residual")
    return g.layer_norm(f"{prefix}.output.LayerNorm", residual, cfg.epsilon)


def gelu(g: GraphBuilder, x: str, name: str) -> str:
    """0.5 * x * (1 + erf(x / sqrt(2))), PyTorch's exact Gelu."""
    scaled = g.node("Div", [x, g.scalar(f"{name}/sqrt2", math.sqrt(2.0))], f"{name}/scaled")
    shifted = g.node("Add", [g.node("Erf", [scaled], f"{name}/erf"), g.scalar(f"{name}/one", 1.0)],
                     f"{name}/shifted")
    product = g.node("Mul", [x, shifted], f"{name}/product")
    return g.node("Mul", [product, g.scalar(f"{name}/half", 0.5)], f"{name}/out")


def feed_forward(g: GraphBuilder, x: str, cfg: Config, i: int) -> str:
    prefix = f"encoder.layer.{i}"
    hidden = gelu(g, g.dense(f"{prefix}.intermediate.dense", x), f"{prefix}.intermediate/gelu")
    residual = g.node("Add", [g.dense(f"{prefix}.output.dense", hidden), x],
                      f"{prefix}/ffn_residual")
    return g.layer_norm(f"{prefix}.output.LayerNorm", residual, cfg.epsilon)


def build_onnx(params: Params, cfg: Config, properties: dict[str, str]) -> onnx.ModelProto:
    g = GraphBuilder(params)
    x = g.dense("embeddings.patch", INPUT_NAME)
    x = g.node("Add", [x, g.weight("embeddings.position_embeddings.weight")], "embeddings/sum")
    x = g.layer_norm("embeddings.LayerNorm", x, cfg.epsilon)
    for i in range(cfg.layers):
        x = feed_forward(g, attention(g, x, cfg, i), cfg, i)
    pooled = g.node("ReduceMean", [x], "pooler/mean", axes=[1], keepdims=0)
    g.dense("classifier", pooled, OUTPUT_NAME)
    graph = helper.make_graph(
        g.nodes, "digits-transformer",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                       ["batch", cfg.tokens, cfg.features])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", cfg.classes])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="hilbench", producer_version="1")
    model.ir_version = 8
    helper.set_model_props(model, properties)
    onnx.checker.check_model(model, full_check=True)
    return model


# --- files ----------------------------------------------------------------------------------------


def npz_bytes(arrays: dict[str, numpy.ndarray]) -> bytes:
    """An .npz numpy can load, with fixed timestamps so that the bytes are reproducible."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            member = io.BytesIO()
            numpy.lib.format.write_array(member, numpy.ascontiguousarray(arrays[name]),
                                         allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
    print(f"{path} {len(data) / 1e6:.3f} MB sha256 {hashlib.sha256(data).hexdigest()}")


def check_with_hilbench(model_path: Path, eval_path: Path) -> float:
    """The shipped files through hilbench's own accuracy code (onnxruntime, no torch)."""
    from hilbench.variants.accuracy import measure_accuracy
    from hilbench.variants.dataset import load_dataset

    report = measure_accuracy(model_path, load_dataset(eval_path), ["top1"])
    return report.value("top1")


def deterministic() -> None:
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=Path, default=DEFAULT_ASSETS)
    args = parser.parse_args(argv)
    deterministic()
    cfg, run = Config(), Training()
    split = load_split(cfg)
    params = train(split, cfg, run)
    train_accuracy = accuracy(params, split.train_x, split.train_y, cfg)
    eval_accuracy = accuracy(params, split.eval_x, split.eval_y, cfg)
    properties = {
        "hilbench.default_dims": "batch=1",
        "hilbench.seed": str(SEED),
        "hilbench.train_accuracy": f"{train_accuracy:.6f}",
        "hilbench.eval_accuracy": f"{eval_accuracy:.6f}",
        "hilbench.dataset": (f"scikit-learn digits, {len(split.train_y)} train / "
                             f"{len(split.eval_y)} eval, stratified, random_state={SEED}; "
                             "tokens = image rows, features = pixel / 16"),
        "hilbench.labels": ",".join(str(c) for c in range(cfg.classes)),
    }
    model = build_onnx(params, cfg, properties)
    model_path, eval_path = args.assets / MODEL_FILE, args.assets / EVAL_FILE
    write(model_path, model.SerializeToString())
    write(eval_path, npz_bytes({INPUT_NAME: split.eval_x, "labels": split.eval_y}))
    onnx_accuracy = check_with_hilbench(model_path, eval_path)
    print(f"params {sum(t.numel() for t in params.values())}  train accuracy "
          f"{train_accuracy:.4f}  eval accuracy torch {eval_accuracy:.4f} "
          f"onnx {onnx_accuracy:.4f}")
    if abs(onnx_accuracy - eval_accuracy) > 1e-9:
        raise SystemExit("the ONNX model's eval accuracy differs from PyTorch's")


if __name__ == "__main__":
    main()
