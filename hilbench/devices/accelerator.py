"""The emulated FPGA board's PE-array accelerator: how much of a model's weight work it does.

The board runs a model's weight matrix products (MatMul, Gemm, Conv) on a ``rows x cols``
array of processing elements in fabric, one weight tile per pass, and the rest (softmax,
normalisation, element-wise ops, attention's activation products) on its Arm cores. Like the
hierarchical-pruning accelerator this product's research builds on, it reads a variant's
compact sparsity format (the ``hilbench.sparsity`` block masks and column masks embedded in
the model) and

* skips every weight tile the masks say is all zero, and
* inside a kept tile, skips the columns the masks say are zero (hierarchical sparsity),

so the work it does on a weight is ``sum over kept tiles of (kept columns x rows)``. A weight
without a description is run dense, zeros included: the array cannot skip what it has no
index for (unstructured or pattern sparsity gains nothing here, while on a CPU only
structured pruning, which really shrinks tensors, gains anything).

The fraction of the dense work left, ``w``, turns into the board's time as
``1 - share + share * w`` of what the dense model takes, ``share`` being the part of a dense
model's time spent in weight products on this board. Structured pruning needs no special
case: a shrunk model is smaller for the host CPU the emulation measures as well."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy

from hilbench.core.errors import ModelError

if TYPE_CHECKING:  # onnx is imported where a model is read: `bench` starts faster without it
    import onnx

    from hilbench.variants.sparsity import LayerLayout, SparsityDescription

WEIGHT_OPS = ("MatMul", "Gemm", "Conv", "MatMulInteger", "ConvInteger")
QUANTIZED_SUFFIX = "_quantized"  # onnxruntime's dynamic int8 renames the weights it quantizes


@dataclass(frozen=True)
class PeArray:
    """The accelerator: its tile (``rows`` x ``cols`` PEs) and the share of a dense model's
    time spent in weight products on the board."""

    rows: int = 16
    cols: int = 16
    weight_share: float = 0.85

    def time_fraction(self, work_fraction: float) -> float:
        return 1.0 - self.weight_share + self.weight_share * work_fraction


@dataclass(frozen=True)
class AcceleratorWork:
    """Dense and effective work (multiply-accumulates per output row) over the weights."""

    dense: int
    effective: int

    @property
    def fraction(self) -> float:
        return self.effective / self.dense if self.dense else 1.0


def tile_work(mask: numpy.ndarray, rows: int, cols: int) -> int:
    """Work on a 2-D weight whose nonzeros may sit where ``mask`` is True: per tile, the
    columns holding any nonzero times the tile's rows; an all-zero tile costs nothing."""
    height, width = mask.shape
    grid = (-(-height // rows), -(-width // cols))
    padded = numpy.zeros((grid[0] * rows, grid[1] * cols), dtype=bool)
    padded[:height, :width] = mask
    tiles = padded.reshape(grid[0], rows, grid[1], cols)
    live_columns = tiles.any(axis=1)  # [grid rows, grid cols, cols]
    return int(live_columns.sum()) * rows


def _weight_matrices(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Shapes of the initializers that weight ops multiply by."""
    initializers = {t.name: tuple(int(d) for d in t.dims) for t in model.graph.initializer}
    found: dict[str, tuple[int, ...]] = {}
    for node in model.graph.node:
        if node.op_type in WEIGHT_OPS and len(node.input) > 1 and node.input[1] in initializers:
            found[node.input[1]] = initializers[node.input[1]]
    return found


def _view(shape: tuple[int, ...]) -> tuple[int, int]:
    """The matrix a weight is multiplied as: [in, out] for MatMul, [out, in*kh*kw] for Conv."""
    if len(shape) == 2:
        return shape[0], shape[1]
    size = int(numpy.prod(shape[1:])) if len(shape) > 1 else 1
    return shape[0], size


def _layer_work(layer: LayerLayout, array: PeArray) -> int:
    mask = layer.element_mask()
    view = layer.view if hasattr(layer, "view") else _view(tuple(mask.shape))
    return tile_work(mask.reshape(view), array.rows, array.cols)


def accelerator_work(model: onnx.ModelProto, array: PeArray,
                     description: SparsityDescription | None) -> AcceleratorWork:
    """Dense and effective work of ``model``'s weights on ``array``, skipping what
    ``description`` says is zero."""
    described = {layer.weight: layer for layer in (description.layers if description else ())}
    dense = effective = 0
    for name, shape in _weight_matrices(model).items():
        rows, cols = _view(shape)
        full = tile_work(numpy.ones((rows, cols), dtype=bool), array.rows, array.cols)
        dense += full
        layer = described.get(name) or described.get(name.removesuffix(QUANTIZED_SUFFIX))
        effective += full if layer is None or layer.shape != shape else _layer_work(layer, array)
    return AcceleratorWork(dense, effective)


def model_time_fraction(path: Path, array: PeArray) -> float:
    """The board's time for the model at ``path`` over what the same model, dense, takes."""
    import onnx

    from hilbench.variants.sparsity import read_sparsity

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError or OSError: a corrupt model file
        raise ModelError(f"cannot read model {path}: {exc}") from exc
    work = accelerator_work(model, array, read_sparsity(model))
    return array.time_fraction(work.fraction)
