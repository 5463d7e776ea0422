"""NAS-Bench-201 networks as ONNX graphs, built from their cell string.

Follows the official code (D-X-Y's ``TinyNetwork``, ``InferCell`` and ``cell_operations``, as
shipped in RICE-EIC/HW-NAS-Bench ``hw_nas_bench_api/nas_201_models``), C=16, N=5:

* stem: Conv3x3(3->16, no bias) + BatchNorm;
* 5 cells at 16 channels (32x32), a residual reduction block, 5 cells at 32 channels (16x16),
  a reduction, 5 cells at 64 channels (8x8);
* reduction = ``ResNetBasicblock`` with stride 2: ReLU-Conv3x3(s2)-BN, ReLU-Conv3x3-BN, plus the
  shortcut AvgPool(2, s2) + Conv1x1 (no BN), added;
* head: BatchNorm + ReLU, global average pool, Linear (10 classes: the CIFAR-10 net, on which
  the public latencies were measured).

A cell has nodes 0..3; node j is the sum over i < j of op_{j,i}(node i). Ops: ``none``
(NB201's ``Zero``: its input times 0), ``skip_connect`` (identity), ``nor_conv_1x1`` /
``nor_conv_3x3`` (ReLU-Conv-BN), ``avg_pool_3x3`` (stride 1, pad 1, count_include_pad=False).
The graph is the network as PyTorch runs it: every edge is built, also on nodes that do not
reach the cell output (dead code, which the feature extractor counts apart: a graph runtime
such as TFLite drops it, an eager framework runs it); the parameter count is NB201's.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from hilbench.core.errors import ModelError
from hilbench.predictor.spaces._graph import GraphBuilder, float_input

SEED = 201
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
STEM_CHANNELS = 16
CELLS_PER_STAGE = 5
IMAGE_SIZE = 32


@dataclass(frozen=True)
class Edge:
    """One edge of a cell: ``op`` applied to node ``source``."""

    op: str
    source: int


@dataclass(frozen=True)
class Cell:
    """A parsed NAS-Bench-201 cell: ``nodes[j - 1]`` holds the edges into node j (j = 1..3)."""

    nodes: tuple[tuple[Edge, ...], ...]

    def __str__(self) -> str:
        return "+".join("|" + "|".join(f"{e.op}~{e.source}" for e in node) + "|"
                        for node in self.nodes)

    def live_nodes(self) -> frozenset[int]:
        """Nodes whose value reaches node 3 through edges that are not ``none``."""
        live = {3}
        for target in (3, 2, 1):
            if target in live:
                live.update(e.source for e in self.nodes[target - 1] if e.op != "none")
        return frozenset(live)


def parse_cell(arch: str) -> Cell:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``; a malformed string raises ModelError
    naming what is wrong."""
    groups = arch.strip().split("+")
    if len(groups) != 3:
        raise ModelError(f"NAS-Bench-201 cell {arch!r}: expected 3 nodes joined by '+', "
                         f"got {len(groups)}")
    return Cell(tuple(_parse_node(arch, group, j) for j, group in enumerate(groups, start=1)))


def _parse_node(arch: str, group: str, target: int) -> tuple[Edge, ...]:
    if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
        raise ModelError(f"NAS-Bench-201 cell {arch!r}: node {target} {group!r} must be "
                         "'|op~i|...|'")
    tokens = group[1:-1].split("|")
    if len(tokens) != target:
        raise ModelError(f"NAS-Bench-201 cell {arch!r}: node {target} needs {target} edges, "
                         f"got {len(tokens)}")
    edges = tuple(_parse_edge(arch, token) for token in tokens)
    if [e.source for e in edges] != list(range(target)):
        raise ModelError(f"NAS-Bench-201 cell {arch!r}: node {target} must take nodes "
                         f"{list(range(target))} in order")
    return edges


def _parse_edge(arch: str, token: str) -> Edge:
    op, sep, source = token.partition("~")
    if not sep or op not in OPS or not source.isdigit():
        raise ModelError(f"NAS-Bench-201 cell {arch!r}: bad edge {token!r} (expected op~i "
                         f"with op in {', '.join(OPS)})")
    return Edge(op, int(source))


def build(arch: str | Cell, num_classes: int = 10, batch: int = 1) -> onnx.ModelProto:
    """The NAS-Bench-201 network of ``arch``: input ``input`` [batch, 3, 32, 32] float32,
    output ``logits`` [batch, num_classes]. ``batch`` only sets the default size fed to the
    symbolic batch dimension."""
    cell = arch if isinstance(arch, Cell) else parse_cell(arch)
    g = GraphBuilder(SEED)
    x = g.batch_norm("stem.1", g.conv("stem.0", "input", 3, STEM_CHANNELS, 3), STEM_CHANNELS)
    channels = STEM_CHANNELS
    index = 0
    for stage in range(3):
        if stage > 0:
            x = reduction(g, f"cells.{index}", x, channels, channels * 2)
            channels *= 2
            index += 1
        for _ in range(CELLS_PER_STAGE):
            x = infer_cell(g, f"cells.{index}", x, channels, cell)
            index += 1
    x = g.relu(g.batch_norm("lastact.0", x, channels), "lastact/relu")
    g.classifier("classifier", x, channels, num_classes, "logits")
    return g.model(
        "nb201", [float_input("input", ["batch", 3, IMAGE_SIZE, IMAGE_SIZE])],
        [float_input("logits", ["batch", num_classes])], f"batch={batch}")


def reduction(g: GraphBuilder, prefix: str, x: str, cin: int, cout: int) -> str:
    """NB201's ``ResNetBasicblock(cin, cout, stride=2)``."""
    a = relu_conv_bn(g, f"{prefix}.conv_a", x, cin, cout, 3, stride=2)
    b = relu_conv_bn(g, f"{prefix}.conv_b", a, cout, cout, 3)
    pooled = g.node("AveragePool", [x], f"{prefix}.downsample.0/out", kernel_shape=[2, 2],
                    strides=[2, 2])
    shortcut = g.conv(f"{prefix}.downsample.1", pooled, cin, cout, 1)
    return g.node("Add", [shortcut, b], f"{prefix}/out")


def relu_conv_bn(g: GraphBuilder, prefix: str, x: str, cin: int, cout: int, kernel: int,
                 stride: int = 1) -> str:
    """NB201's ``ReLUConvBN`` (``prefix.op.0/1/2``)."""
    activated = g.relu(x, f"{prefix}.op.0/out")
    return g.batch_norm(f"{prefix}.op.2", g.conv(f"{prefix}.op.1", activated, cin, cout, kernel,
                                                 stride), cout)


def infer_cell(g: GraphBuilder, prefix: str, x: str, channels: int, cell: Cell) -> str:
    """NB201's ``InferCell``: returns node 3."""
    values = {0: x}
    for target in (1, 2, 3):
        terms = [edge_op(g, f"{prefix}.node{target}.from{e.source}", values[e.source], e.op,
                         channels) for e in cell.nodes[target - 1]]
        values[target] = sum_terms(g, f"{prefix}.node{target}", terms)
    return values[3]


def edge_op(g: GraphBuilder, prefix: str, x: str, op: str, channels: int) -> str:
    if op == "none":
        return g.node("Mul", [x, g.scalar(f"{prefix}/zero", 0.0)], f"{prefix}/zero_out")
    if op == "skip_connect":
        return x
    if op == "avg_pool_3x3":
        return g.node("AveragePool", [x], f"{prefix}/pool", kernel_shape=[3, 3], strides=[1, 1],
                      pads=[1, 1, 1, 1], count_include_pad=0)
    kernel = 3 if op == "nor_conv_3x3" else 1
    return relu_conv_bn(g, prefix, x, channels, channels, kernel)


def sum_terms(g: GraphBuilder, prefix: str, terms: list[str]) -> str:
    """The node value: the sum of its terms, in edge order."""
    total = terms[0]
    for k, term in enumerate(terms[1:], start=1):
        total = g.node("Add", [total, term], f"{prefix}/sum{k}")
    return total
