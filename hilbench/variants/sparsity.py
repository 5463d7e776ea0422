"""Sparse variants: zeros written into the weights in hardware-friendly layouts, described so
that an accelerator model (the FPGA emulated device) or a predictor can read the layout from
the model file alone.

* ``block_sparsify``: each weight (MatMul/Gemm matrix as stored, Conv filters viewed as
  ``[out, in * kh * kw]``) is cut into ``block`` tiles; the ``ratio`` of tiles with the lowest
  RMS are zeroed, per layer.
* ``pattern_prune`` (PatDNN): every 3x3 kernel keeps ``entries`` of its 9 weights, in one of
  ``patterns`` shapes chosen per layer (the most frequent top-magnitude shapes of that
  layer); each kernel takes the pattern keeping most of its energy. ``connectivity`` removes
  the weakest whole kernels first.
* ``hierarchical_sparsify``: block sparsity, then inside each kept block the ``column_ratio``
  of its columns with the lowest norm are zeroed (the same count in every block, which keeps
  the processing elements of a column-wise accelerator balanced).

Shapes are unchanged: the sparsity only pays off on a runtime or device that skips zeros. The
returned model carries its ``SparsityDescription`` in ``metadata_props["hilbench.sparsity"]``
(``read_sparsity`` reads it back); ``measure_sparsity`` counts the zeros of any model.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy
import onnx

from hilbench.core.errors import CompressionError, ModelError
from hilbench.variants.graph import (
    LINEAR_OPS,
    Array,
    GraphIndex,
    copy_model,
    describe,
    weight_origin,
)

SPARSITY_METADATA_KEY = "hilbench.sparsity"
DESCRIPTION_VERSION = 1
REMOVED_KERNEL = 255  # pattern id of a kernel removed by connectivity pruning
Ratio = float | Mapping[str, float]


# --------------------------------------------------------------------------------------------
# descriptions


def pack_bits(mask: Array) -> str:
    """A boolean array as text: row-major bits (numpy.packbits order), zlib, base64."""
    packed = numpy.packbits(numpy.asarray(mask, dtype=bool).ravel())
    return base64.b64encode(zlib.compress(packed.tobytes(), 9)).decode("ascii")


def unpack_bits(text: str, shape: tuple[int, ...]) -> Array:
    """The inverse of ``pack_bits``: a boolean array of ``shape``."""
    count = int(numpy.prod(shape)) if shape else 1
    raw = numpy.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=numpy.uint8)
    bits = numpy.unpackbits(raw)[:count]
    if bits.size != count:
        raise ValueError(f"{bits.size} bits for shape {list(shape)}")
    return bits.astype(bool).reshape(shape)


def _pack_bytes(values: Array) -> str:
    return base64.b64encode(zlib.compress(values.astype(numpy.uint8).tobytes(), 9)).decode()


def _unpack_bytes(text: str, count: int) -> Array:
    values = numpy.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=numpy.uint8)
    if values.size != count:
        raise ValueError(f"{values.size} values, expected {count}")
    return values


@dataclass(frozen=True)
class BlockLayout:
    """Block (and, with ``column_masks``, hierarchical) sparsity of one weight.

    ``view`` is the 2-D matrix the blocks tile (rows, cols); ``grid`` its block counts
    (edge blocks may be partial). ``block_mask`` (packed, see ``pack_bits``) has one bit per
    block, row-major, 1 = kept. ``column_masks`` holds ``block[1]`` bits per kept block, in the
    row-major order of kept blocks, 1 = column kept. ``zeros`` is the measured fraction of zero
    weights after sparsification."""

    weight: str
    node: str
    op_type: str
    shape: tuple[int, ...]
    view: tuple[int, int]
    block: tuple[int, int]
    grid: tuple[int, int]
    block_mask: str
    column_masks: str | None
    zeros: float
    kind: str = "block"

    def blocks(self) -> Array:
        """The kept-block grid, boolean ``grid``-shaped."""
        return unpack_bits(self.block_mask, self.grid)

    def columns(self) -> Array | None:
        """Column masks of the kept blocks, boolean ``[kept blocks, block cols]``."""
        if self.column_masks is None:
            return None
        kept = int(self.blocks().sum())
        return unpack_bits(self.column_masks, (kept, self.block[1]))

    def element_mask(self) -> Array:
        """Boolean mask of the weight's shape: True where a nonzero is allowed."""
        rows, cols = self.view
        height, width = self.block
        blocks = self.blocks()
        mask = numpy.repeat(numpy.repeat(blocks, height, axis=0), width, axis=1)
        columns = self.columns()
        if columns is not None:
            full = numpy.zeros((*self.grid, width), dtype=bool)
            full[blocks] = columns
            within = numpy.repeat(full, height, axis=0).reshape(self.grid[0] * height, -1)
            mask &= within
        return mask[:rows, :cols].reshape(self.shape)


@dataclass(frozen=True)
class PatternLayout:
    """Pattern sparsity of one Conv weight ``[out, in, kh, kw]``.

    ``patterns`` are bitmasks over the ``kh * kw`` kernel positions (bit ``i`` = position
    ``i`` in row-major order, set = kept). ``pattern_ids`` (zlib + base64 of one byte per
    kernel, ``[out, in]`` row-major) index ``patterns``; 255 marks a kernel removed
    whole."""

    weight: str
    node: str
    op_type: str
    shape: tuple[int, ...]
    kernel: tuple[int, int]
    patterns: tuple[int, ...]
    pattern_ids: str
    zeros: float
    kind: str = "pattern"

    def ids(self) -> Array:
        """Pattern id per kernel, ``[out, in]``."""
        kernels = self.shape[0] * self.shape[1]
        return _unpack_bytes(self.pattern_ids, kernels).reshape(self.shape[0], self.shape[1])

    def element_mask(self) -> Array:
        """Boolean mask of the weight's shape: True where a nonzero is allowed."""
        size = self.kernel[0] * self.kernel[1]
        codes = numpy.array([*self.patterns, 0], dtype=numpy.int64)  # last row: all zero
        table: Array = (codes[:, None] >> numpy.arange(size)) & 1 == 1
        ids = self.ids().astype(numpy.int64)
        ids[ids == REMOVED_KERNEL] = len(self.patterns)  # the all-zero row
        return table[ids].reshape(self.shape)


LayerLayout = BlockLayout | PatternLayout


@dataclass(frozen=True)
class SparsityDescription:
    """How a variant is sparse: ``method`` ("block", "pattern" or "hierarchical"), its
    parameters, and the layout of every sparsified weight."""

    method: str
    parameters: dict[str, Any] = field(hash=False)
    layers: tuple[LayerLayout, ...]
    version: int = DESCRIPTION_VERSION

    def layer(self, weight: str) -> LayerLayout | None:
        """The layout of the initializer named ``weight``."""
        return next((layer for layer in self.layers if layer.weight == weight), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (masks are base64 text)."""
        return {
            "version": self.version,
            "method": self.method,
            "parameters": dict(self.parameters),
            "layers": [_layer_to_dict(layer) for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SparsityDescription:
        """Read ``to_dict``'s output; ``ModelError`` when it is malformed or newer."""
        try:
            version = int(data["version"])
            if version > DESCRIPTION_VERSION:
                raise ModelError(
                    f"sparsity description version {version} is newer than "
                    f"{DESCRIPTION_VERSION}; upgrade hilbench"
                )
            layers = tuple(_layer_from_dict(item) for item in data["layers"])
            return cls(str(data["method"]), dict(data["parameters"]), layers, version)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"malformed sparsity description: {exc!r}") from exc


def _layer_to_dict(layer: LayerLayout) -> dict[str, Any]:
    common = {
        "kind": layer.kind,
        "weight": layer.weight,
        "node": layer.node,
        "op_type": layer.op_type,
        "shape": list(layer.shape),
        "zeros": layer.zeros,
    }
    if isinstance(layer, PatternLayout):
        return {
            **common,
            "kernel": list(layer.kernel),
            "patterns": list(layer.patterns),
            "pattern_ids": layer.pattern_ids,
        }
    return {
        **common,
        "view": list(layer.view),
        "block": list(layer.block),
        "grid": list(layer.grid),
        "block_mask": layer.block_mask,
        "column_masks": layer.column_masks,
    }


def _pair(value: Any) -> tuple[int, int]:
    first, second = (int(v) for v in value)
    return first, second


def _layer_from_dict(item: Mapping[str, Any]) -> LayerLayout:
    base = (
        str(item["weight"]),
        str(item["node"]),
        str(item["op_type"]),
        tuple(int(v) for v in item["shape"]),
    )
    if item["kind"] == "pattern":
        return PatternLayout(
            *base,
            _pair(item["kernel"]),
            tuple(int(p) for p in item["patterns"]),
            str(item["pattern_ids"]),
            float(item["zeros"]),
        )
    if item["kind"] != "block":
        raise ValueError(f"unknown layer kind {item['kind']!r}")
    columns = item.get("column_masks")
    return BlockLayout(
        *base,
        _pair(item["view"]),
        _pair(item["block"]),
        _pair(item["grid"]),
        str(item["block_mask"]),
        None if columns is None else str(columns),
        float(item["zeros"]),
    )


def embed_sparsity(model: onnx.ModelProto, description: SparsityDescription) -> onnx.ModelProto:
    """A copy of ``model`` whose ``metadata_props`` hold ``description`` as JSON under
    ``hilbench.sparsity`` (replacing any earlier one)."""
    result = copy_model(model)
    _write_metadata(result, description)
    return result


def _write_metadata(model: onnx.ModelProto, description: SparsityDescription) -> None:
    for prop in list(model.metadata_props):
        if prop.key == SPARSITY_METADATA_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key = SPARSITY_METADATA_KEY
    entry.value = json.dumps(description.to_dict(), separators=(",", ":"))


def read_sparsity(model: onnx.ModelProto | str | Path) -> SparsityDescription | None:
    """The sparsity description stored in a model (object or file; a file's weights are not
    loaded), or None when it has none. ``ModelError`` when the stored text is malformed."""
    if not isinstance(model, onnx.ModelProto):
        try:
            model = onnx.load(str(model), load_external_data=False)
        except Exception as exc:  # OSError or protobuf's DecodeError
            raise ModelError(f"cannot read model {model}: {exc}") from exc
    for prop in model.metadata_props:
        if prop.key == SPARSITY_METADATA_KEY:
            try:
                data = json.loads(prop.value)
            except json.JSONDecodeError as exc:
                raise ModelError(f"{SPARSITY_METADATA_KEY} metadata is not JSON: {exc}") from exc
            if not isinstance(data, dict):
                raise ModelError(f"{SPARSITY_METADATA_KEY} metadata is not a JSON object")
            return SparsityDescription.from_dict(data)
    return None


def mismatches(model: onnx.ModelProto, description: SparsityDescription) -> tuple[str, ...]:
    """The weights of ``model`` that have a nonzero where ``description`` says zero, or that
    are missing or of another shape: empty when the description can be trusted."""
    index = GraphIndex(model.graph)
    wrong: list[str] = []
    for layer in description.layers:
        value = index.constant(layer.weight)
        if value is None or tuple(value.shape) != layer.shape:
            wrong.append(layer.weight)
            continue
        if numpy.any(value[~layer.element_mask()] != 0):
            wrong.append(layer.weight)
    return tuple(wrong)


# --------------------------------------------------------------------------------------------
# measuring


@dataclass(frozen=True)
class TensorSparsity:
    """Zeros in one weight tensor; ``node`` / ``op_type`` is its first consumer."""

    name: str
    node: str
    op_type: str
    shape: tuple[int, ...]
    size: int
    zeros: int

    @property
    def fraction(self) -> float:
        return self.zeros / self.size if self.size else 0.0


@dataclass(frozen=True)
class SparsityStats:
    """Zeros over all weight tensors of a model and per tensor."""

    tensors: tuple[TensorSparsity, ...]

    @property
    def size(self) -> int:
        return sum(t.size for t in self.tensors)

    @property
    def zeros(self) -> int:
        return sum(t.zeros for t in self.tensors)

    @property
    def fraction(self) -> float:
        """Fraction of zero weights over every weight tensor."""
        return self.zeros / self.size if self.size else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "zeros": self.zeros,
            "fraction": self.fraction,
            "tensors": [
                {
                    "name": t.name,
                    "node": t.node,
                    "op_type": t.op_type,
                    "shape": list(t.shape),
                    "size": t.size,
                    "zeros": t.zeros,
                    "fraction": t.fraction,
                }
                for t in self.tensors
            ],
        }


def measure_sparsity(model: onnx.ModelProto, *, min_dims: int = 2) -> SparsityStats:
    """Count the exact zeros of every floating-point constant with at least ``min_dims``
    dimensions (weight matrices, conv filters, embedding tables; biases and scalars are left
    out with the default 2). Works on any variant, structured or not."""
    index = GraphIndex(model.graph)
    names = [t.name for t in model.graph.initializer]
    names += [n.output[0] for n in index.nodes if n.op_type == "Constant" and n.output]
    stats = []
    for name in dict.fromkeys(names):
        value = index.float_constant(name)
        if value is None or value.ndim < min_dims:
            continue
        users = index.users(name)
        node, op_type = (
            (users[0].name or users[0].output[0], users[0].op_type) if users else ("", "")
        )
        stats.append(
            TensorSparsity(
                name,
                node,
                op_type,
                tuple(int(d) for d in value.shape),
                int(value.size),
                int(value.size - numpy.count_nonzero(value)),
            )
        )
    return SparsityStats(tuple(stats))


# --------------------------------------------------------------------------------------------
# which weights


@dataclass(frozen=True)
class _Weight:
    """A weight initializer every user of which reads it as a weight the same way."""

    name: str
    node: onnx.NodeProto
    value: Array

    @property
    def view_shape(self) -> tuple[int, int]:
        """The 2-D matrix blocks tile: MatMul/Gemm as stored, Conv ``[out, in*kh*kw]``."""
        return int(self.value.shape[0]), int(self.value.size // self.value.shape[0])


def _weights(index: GraphIndex, method: str, conv_only: bool = False) -> list[_Weight]:
    """The weights a sparsity method may write: initializers (not graph inputs) used only as
    MatMul/Gemm matrices or Conv filters. ``CompressionError`` naming the op when none."""
    found: dict[str, _Weight] = {}
    first_miss: str | None = None
    ops = ("Conv",) if conv_only else ("Conv", *LINEAR_OPS)
    for node in index.nodes:
        if node.op_type not in ops or len(node.input) < 2:
            continue
        name = node.input[1]
        value = index.float_constant(name)
        reason = _refusal(index, node, name, value)
        if reason is not None or value is None:
            first_miss = first_miss or f"{describe(node)} {reason}"
            continue
        found.setdefault(name, _Weight(name, node, value))
    if not found:
        raise CompressionError(
            f"{method}: no weight to sparsify; " + _nothing_found(index, first_miss, conv_only)
        )
    return list(found.values())


def _nothing_found(index: GraphIndex, first_miss: str | None, conv_only: bool) -> str:
    if first_miss is not None:
        return f"stopped at {first_miss}"
    kinds = "Conv" if conv_only else "MatMul, Gemm or Conv"
    first = f" (first op: {describe(index.nodes[0])})" if index.nodes else ""
    return f"the graph has no {kinds}{first}"


def _refusal(index: GraphIndex, node: onnx.NodeProto, name: str, value: Array | None) -> str | None:
    if value is None or name not in index.initializers or name in index.inputs:
        return f"whose {weight_origin(index, name)}"
    if node.op_type in LINEAR_OPS and value.ndim != 2:
        return f"whose weight '{name}' is not a matrix"
    if node.op_type == "Conv" and value.ndim < 3:
        return f"whose weight '{name}' is not a filter bank"
    for user in index.users(name):
        if user.op_type != node.op_type or list(user.input).index(name) != 1:
            return f"whose weight '{name}' is also read by {describe(user)}"
    return None


def _ratios(weights: list[_Weight], ratio: Ratio, method: str) -> dict[str, float]:
    """Per-weight ratio: one for all, or a mapping by initializer name (others untouched)."""
    if not isinstance(ratio, Mapping):
        value = _unit_ratio(ratio, method, "ratio")
        return {weight.name: value for weight in weights}
    known = {weight.name for weight in weights}
    unknown = sorted(set(ratio) - known)
    if unknown:
        sample = ", ".join(sorted(known)[:5])
        raise CompressionError(
            f"{method}: no sparsifiable weight named {unknown[0]!r} (weights are e.g. {sample})"
        )
    return {name: _unit_ratio(value, method, f"ratio of {name!r}") for name, value in ratio.items()}


def _unit_ratio(value: Any, method: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise CompressionError(f"{method}: {what} must be a number in [0, 1), got {value!r}")
    return float(value)


def _block_shape(block: int | tuple[int, int], method: str) -> tuple[int, int]:
    pair = (block, block) if isinstance(block, int) else tuple(block)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in pair):
        raise CompressionError(
            f"{method}: block must be a positive int or (rows, cols), got {block!r}"
        )
    return int(pair[0]), int(pair[1])


@dataclass(frozen=True)
class SparsifyResult:
    """The sparse model (shapes unchanged, its description embedded) and the description."""

    model: onnx.ModelProto
    description: SparsityDescription


# --------------------------------------------------------------------------------------------
# block and hierarchical sparsity


def _padded(squares: Array, block: tuple[int, int]) -> Array:
    """``squares`` zero-padded to whole blocks (a view of it when already whole)."""
    rows, cols = squares.shape
    height, width = block
    full = (-(-rows // height) * height, -(-cols // width) * width)
    if full == squares.shape:
        return squares
    padded = numpy.zeros(full, dtype=squares.dtype)
    padded[:rows, :cols] = squares
    return padded


def _column_sums(squares: Array, block: tuple[int, int]) -> Array:
    """Per block, the sum of each of its columns: ``[grid rows, grid cols, block cols]``."""
    padded = _padded(squares, block)
    height, width = block
    grid = (padded.shape[0] // height, padded.shape[1] // width)
    sums: Array = padded.reshape(grid[0], height, -1).sum(axis=1, dtype=numpy.float64)
    return sums.reshape(grid[0], grid[1], width)


def _edge_counts(size: int, step: int) -> Array:
    """Elements per block along one axis (the last block may be partial)."""
    counts: Array = numpy.minimum(step, size - numpy.arange(0, size, step))
    return counts


def _block_keep(squares: Array, block: tuple[int, int], ratio: float) -> Array:
    """Kept-block grid: the ``ratio`` of blocks with the lowest RMS are dropped (edge blocks
    are judged on their real elements only)."""
    sums = _column_sums(squares, block).sum(axis=2)
    counts = numpy.outer(
        _edge_counts(squares.shape[0], block[0]), _edge_counts(squares.shape[1], block[1])
    )
    rms = numpy.sqrt(sums / counts)
    keep = numpy.ones(rms.size, dtype=bool)
    keep[numpy.argsort(rms.ravel(), kind="stable")[: round(ratio * rms.size)]] = False
    return keep.reshape(rms.shape)


def _column_keep(squares: Array, block: tuple[int, int], blocks: Array, ratio: float) -> Array:
    """Per kept block (row-major), which of its ``block[1]`` columns stay: the same number in
    every block, the columns with the highest L2 norm."""
    norms = _column_sums(squares, block)[blocks]  # [kept blocks, width], squared norms
    keep = max(1, round(block[1] * (1.0 - ratio)))
    order = numpy.argsort(-norms, axis=1, kind="stable")[:, :keep]
    columns = numpy.zeros_like(norms, dtype=bool)
    numpy.put_along_axis(columns, order, True, axis=1)
    return columns


def _sparsify_blocks(
    model: onnx.ModelProto,
    ratio: Ratio,
    block: int | tuple[int, int],
    column_ratio: float | None,
    method: str,
) -> SparsifyResult:
    shape = _block_shape(block, method)
    if not isinstance(ratio, Mapping):
        _unit_ratio(ratio, method, "ratio")
    result = copy_model(model)
    index = GraphIndex(result.graph)
    weights = _weights(index, method)
    ratios = _ratios(weights, ratio, method)
    layers = [
        _apply_blocks(index, weight, shape, ratios[weight.name], column_ratio)
        for weight in weights
        if weight.name in ratios
    ]
    parameters: dict[str, Any] = {"block": list(shape), "ratio": _ratio_parameter(ratio)}
    if column_ratio is not None:
        parameters["column_ratio"] = column_ratio
    description = SparsityDescription(method.split()[0], parameters, tuple(layers))
    _write_metadata(result, description)
    return SparsifyResult(result, description)


def _apply_blocks(
    index: GraphIndex,
    weight: _Weight,
    block: tuple[int, int],
    ratio: float,
    column_ratio: float | None,
) -> BlockLayout:
    """Zero one weight in place and return its layout."""
    view = weight.value.reshape(weight.view_shape).astype(numpy.float32, copy=False)
    squares = numpy.square(view)
    blocks = _block_keep(squares, block, ratio)
    columns = None if column_ratio is None else _column_keep(squares, block, blocks, column_ratio)
    layout = BlockLayout(
        weight=weight.name,
        node=weight.node.name or weight.node.output[0],
        op_type=weight.node.op_type,
        shape=tuple(int(d) for d in weight.value.shape),
        view=weight.view_shape,
        block=block,
        grid=(int(blocks.shape[0]), int(blocks.shape[1])),
        block_mask=pack_bits(blocks),
        column_masks=None if columns is None else pack_bits(columns),
        zeros=0.0,
    )
    values = numpy.where(layout.element_mask(), weight.value, 0).astype(weight.value.dtype)
    index.overwrite(weight.name, values)
    return replace(layout, zeros=_zero_fraction(values))


def _zero_fraction(values: Array) -> float:
    return 1.0 - numpy.count_nonzero(values) / values.size if values.size else 0.0


def _ratio_parameter(ratio: Ratio) -> float | dict[str, float]:
    return dict(ratio) if isinstance(ratio, Mapping) else float(ratio)


def block_sparsify(
    model: onnx.ModelProto, ratio: Ratio, *, block: int | tuple[int, int] = (4, 4)
) -> SparsifyResult:
    """Zero the ``ratio`` of ``block`` tiles with the lowest RMS in every MatMul/Gemm/Conv
    weight (``ratio`` may map initializer names to their own ratio; weights not named are left
    dense). ``CompressionError`` for a ratio outside [0, 1), a bad block, or a model without a
    weight to sparsify."""
    return _sparsify_blocks(model, ratio, block, None, "block sparsity")


def hierarchical_sparsify(
    model: onnx.ModelProto,
    ratio: Ratio,
    column_ratio: float,
    *,
    block: int | tuple[int, int] = (16, 16),
) -> SparsifyResult:
    """Block sparsity at ``ratio``, then ``column_ratio`` of the columns of every kept block
    zeroed (lowest L2 norm first; at least one column stays per block)."""
    method = "hierarchical sparsity"
    column = _unit_ratio(column_ratio, method, "column_ratio")
    return _sparsify_blocks(model, ratio, block, column, method)


# --------------------------------------------------------------------------------------------
# pattern pruning


def pattern_prune(
    model: onnx.ModelProto, *, patterns: int = 8, entries: int = 4, connectivity: float = 0.0
) -> SparsifyResult:
    """PatDNN pattern pruning of every 3x3 Conv: each kernel keeps ``entries`` weights in one
    of the ``patterns`` shapes of its layer; ``connectivity`` (a ratio) first removes that
    fraction of whole kernels (the lowest L2 norm). Other kernel sizes are left dense;
    ``CompressionError`` when the model has no 3x3 Conv."""
    method = "pattern pruning"
    _check_pattern_args(patterns, entries, connectivity, method)
    result = copy_model(model)
    index = GraphIndex(result.graph)
    convs = [w for w in _weights(index, method, conv_only=True) if w.value.shape[2:] == (3, 3)]
    if not convs:
        other = next(w for w in _weights(index, method, conv_only=True))
        raise CompressionError(
            f"{method}: no 3x3 Conv; stopped at {describe(other.node)} "
            f"with kernel {list(other.value.shape[2:])}"
        )
    layers = tuple(_apply_patterns(index, w, patterns, entries, connectivity) for w in convs)
    parameters = {"patterns": patterns, "entries": entries, "connectivity": connectivity}
    description = SparsityDescription("pattern", parameters, layers)
    _write_metadata(result, description)
    return SparsifyResult(result, description)


def _check_pattern_args(patterns: int, entries: int, connectivity: float, method: str) -> None:
    for name, value, low, high in (("patterns", patterns, 1, 126), ("entries", entries, 1, 8)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise CompressionError(
                f"{method}: {name} must be an integer in [{low}, {high}], got {value!r}"
            )
    _unit_ratio(connectivity, method, "connectivity")


_POSITION_BITS = 1 << numpy.arange(9)


def _pattern_set(energy: Array, alive: Array, entries: int, count: int) -> Array:
    """The ``count`` most frequent top-``entries`` shapes among live kernels, as 9-bit codes
    (bit ``i`` = kernel position ``i``; ties: the shape keeping more energy overall)."""
    live = energy[alive] if alive.any() else energy
    top = numpy.argpartition(-live, entries - 1, axis=1)[:, :entries]
    natural = numpy.zeros_like(live, dtype=bool)
    numpy.put_along_axis(natural, top, True, axis=1)
    codes = natural @ _POSITION_BITS
    counts = numpy.bincount(codes, minlength=512)
    kept = numpy.bincount(codes, weights=(live * natural).sum(axis=1), minlength=512)
    order = numpy.lexsort((-kept, -counts))[: min(count, int(numpy.count_nonzero(counts)))]
    chosen: Array = order.astype(numpy.int64)
    return chosen


def _code_table(codes: Array) -> Array:
    """9-bit codes as a boolean ``[codes, 9]`` table."""
    table: Array = (codes[:, None] & _POSITION_BITS) != 0
    return table


def _apply_patterns(
    index: GraphIndex, weight: _Weight, count: int, entries: int, connectivity: float
) -> PatternLayout:
    """Choose the layer's patterns, assign one per kernel, zero the rest."""
    value = weight.value
    kernels = value.reshape(-1, 9).astype(numpy.float64)
    energy = kernels * kernels
    alive = numpy.ones(len(kernels), dtype=bool)
    alive[numpy.argsort(energy.sum(1), kind="stable")[: round(connectivity * len(kernels))]] = False
    codes = _pattern_set(energy, alive, entries, count)
    table = _code_table(codes)
    ids = numpy.argmax(energy @ table.T.astype(numpy.float64), axis=1)
    mask = table[ids] & alive[:, None]
    values = numpy.where(mask.reshape(value.shape), value, 0).astype(value.dtype)
    index.overwrite(weight.name, values)
    return PatternLayout(
        weight=weight.name,
        node=weight.node.name or weight.node.output[0],
        op_type="Conv",
        shape=tuple(int(d) for d in value.shape),
        kernel=(3, 3),
        patterns=tuple(int(code) for code in codes),
        pattern_ids=_pack_bytes(numpy.where(alive, ids, REMOVED_KERNEL)),
        zeros=_zero_fraction(values),
    )
