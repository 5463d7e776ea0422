"""FBNet-space networks for CIFAR-100 as ONNX graphs, built from their arch string.

Follows HW-NAS-Bench's ``FBNet_Infer`` (RICE-EIC/HW-NAS-Bench,
``hw_nas_bench_api/fbnet_models/model_infer.py``) with ``dataset="cifar100"``:

* stem: ConvNorm = Conv3x3(3->16, stride 1, no bias) + BN + ReLU;
* 22 searchable layers in 7 stages of [1, 4, 4, 4, 4, 4, 1] layers with
  [16, 24, 32, 64, 112, 184, 352] channels and first-layer strides [1, 1, 2, 2, 1, 2, 1]
  (the unofficial CIFAR setting: 32x32 -> 4x4);
* head: ConvNorm 1x1 (352->1504) + BN + ReLU, global average pool, Linear(1504, 100).

Block choices, in HW-NAS-Bench's ``PRIMITIVES`` order: 0 k3_e1, 1 k3_e1_g2, 2 k3_e3, 3 k3_e6,
4 k5_e1, 5 k5_e1_g2, 6 k5_e3, 7 k5_e6, 8 skip. A block (``ConvBlock``) is 1x1 expand (groups g)
+ BN + ReLU, channel shuffle when g > 1, kxk depthwise (stride) + BN + ReLU, 1x1 project
(groups g) + BN, plus the input when C_in == C_out and stride 1. ``skip`` is the identity, or
Conv1x1(stride) + BN + ReLU where the shape changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import onnx

from hilbench.core.errors import ModelError
from hilbench.predictor.spaces._graph import GraphBuilder, float_input

SEED = 2019
LAYERS = 22
STAGE_LAYERS = (1, 4, 4, 4, 4, 4, 1)
STAGE_CHANNELS = (16, 24, 32, 64, 112, 184, 352)
STAGE_STRIDES = (1, 1, 2, 2, 1, 2, 1)
STEM_CHANNELS = 16
HEAD_CHANNELS = 1504
IMAGE_SIZE = 32


@dataclass(frozen=True)
class Block:
    """One FBNet block choice: kernel, expansion and group count, or a skip."""

    name: str
    kernel: int = 0
    expansion: int = 0
    groups: int = 1

    @property
    def is_skip(self) -> bool:
        return self.kernel == 0


BLOCKS = (
    Block("k3_e1", 3, 1), Block("k3_e1_g2", 3, 1, 2), Block("k3_e3", 3, 3),
    Block("k3_e6", 3, 6), Block("k5_e1", 5, 1), Block("k5_e1_g2", 5, 1, 2),
    Block("k5_e3", 5, 3), Block("k5_e6", 5, 6), Block("skip"),
)


@dataclass(frozen=True)
class Layer:
    """A searchable layer's place in the macro structure."""

    cin: int
    cout: int
    stride: int


def macro_layers() -> tuple[Layer, ...]:
    """The 22 (C_in, C_out, stride) of the CIFAR FBNet skeleton."""
    layers = []
    cin = STEM_CHANNELS
    for count, cout, stride in zip(STAGE_LAYERS, STAGE_CHANNELS, STAGE_STRIDES, strict=True):
        for i in range(count):
            layers.append(Layer(cin, cout, stride if i == 0 else 1))
            cin = cout
    return tuple(layers)


def parse_arch(arch: str | Sequence[int]) -> tuple[int, ...]:
    """``"7-8-1-..."`` (22 choices 0..8) or a sequence of ints; anything else raises
    ModelError."""
    if isinstance(arch, str):
        parts = arch.strip().split("-")
        if not all(p.isdigit() for p in parts):
            raise ModelError(f"FBNet arch {arch!r}: expected {LAYERS} integers joined by '-'")
        choices = tuple(int(p) for p in parts)
    else:
        choices = tuple(int(c) for c in arch)
    if len(choices) != LAYERS:
        raise ModelError(f"FBNet arch {arch!r}: expected {LAYERS} block choices, "
                         f"got {len(choices)}")
    if any(not 0 <= c < len(BLOCKS) for c in choices):
        raise ModelError(f"FBNet arch {arch!r}: block choices must be 0..{len(BLOCKS) - 1}")
    return choices


def build(arch: str | Sequence[int], num_classes: int = 100, batch: int = 1) -> onnx.ModelProto:
    """The FBNet network of ``arch``: input ``input`` [batch, 3, 32, 32] float32, output
    ``logits`` [batch, num_classes]."""
    choices = parse_arch(arch)
    g = GraphBuilder(SEED)
    x = conv_norm(g, "stem", "input", 3, STEM_CHANNELS, 3)
    size = IMAGE_SIZE
    for i, (choice, layer) in enumerate(zip(choices, macro_layers(), strict=True)):
        x = block(g, f"cells.{i}", x, BLOCKS[choice], layer, size)
        size //= layer.stride
    x = conv_norm(g, "header", x, STAGE_CHANNELS[-1], HEAD_CHANNELS, 1)
    g.classifier("fc", x, HEAD_CHANNELS, num_classes, "logits")
    return g.model(
        "fbnet", [float_input("input", ["batch", 3, IMAGE_SIZE, IMAGE_SIZE])],
        [float_input("logits", ["batch", num_classes])], f"batch={batch}")


def conv_norm(g: GraphBuilder, prefix: str, x: str, cin: int, cout: int, kernel: int,
              stride: int = 1, groups: int = 1) -> str:
    """Conv (no bias) + BN + ReLU (HW-NAS-Bench's ``ConvNorm``)."""
    conv = g.conv(f"{prefix}.conv", x, cin, cout, kernel, stride, groups)
    return g.relu(g.batch_norm(f"{prefix}.bn", conv, cout), f"{prefix}/relu")


def block(g: GraphBuilder, prefix: str, x: str, choice: Block, layer: Layer, size: int) -> str:
    if choice.is_skip:
        if layer.stride == 1 and layer.cin == layer.cout:
            return x
        return conv_norm(g, prefix, x, layer.cin, layer.cout, 1, layer.stride)
    return conv_block(g, prefix, x, choice, layer, size)


def conv_block(g: GraphBuilder, prefix: str, x: str, choice: Block, layer: Layer,
               size: int) -> str:
    """HW-NAS-Bench's ``ConvBlock`` (inverted residual) at input resolution ``size``."""
    mid = layer.cin * choice.expansion
    h = g.conv(f"{prefix}.conv1", x, layer.cin, mid, 1, groups=choice.groups)
    h = g.relu(g.batch_norm(f"{prefix}.bn1", h, mid), f"{prefix}/relu1")
    if choice.groups > 1:
        h = channel_shuffle(g, f"{prefix}.shuffle", h, mid, choice.groups, size)
    h = g.conv(f"{prefix}.conv2", h, mid, mid, choice.kernel, layer.stride, groups=mid)
    h = g.relu(g.batch_norm(f"{prefix}.bn2", h, mid), f"{prefix}/relu2")
    h = g.conv(f"{prefix}.conv3", h, mid, layer.cout, 1, groups=choice.groups)
    h = g.batch_norm(f"{prefix}.bn3", h, layer.cout)
    if layer.cin == layer.cout and layer.stride == 1:
        return g.node("Add", [h, x], f"{prefix}/residual")
    return h


def channel_shuffle(g: GraphBuilder, prefix: str, x: str, channels: int, groups: int,
                    size: int) -> str:
    """[N, C, H, W] -> [N, g, C/g, H, W] -> transpose(1, 2) -> [N, C, H, W], as exported."""
    split = g.ints(f"{prefix}/split_shape", [0, groups, channels // groups, size, size])
    merged = g.ints(f"{prefix}/merge_shape", [0, channels, size, size])
    grouped = g.node("Reshape", [x, split], f"{prefix}/split")
    swapped = g.node("Transpose", [grouped], f"{prefix}/transpose", perm=[0, 2, 1, 3, 4])
    return g.node("Reshape", [swapped, merged], f"{prefix}/out")
