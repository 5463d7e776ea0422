"""A family of variants from one base model: which steps make each one, and making them.

A step is one compression method at one setting (``ffn=0.5``, ``block=0.5``, ``int8``). The
steps a user asks for make a grid: every combination of one value per pruning method, then
one sparsity setting (or none), and every quantization of the result. Each prefix of a chain
is a variant of its own (``base -> ffn50 -> ffn50-int8``), recorded with its parent, so the
family the selector chooses from has every intermediate point.

Everything is made in a temporary folder inside the output folder and moved into place only
once every variant is made: a step that fails leaves no variant half-written."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import onnx

from hilbench.core.errors import CompressionError, ModelError
from hilbench.core.records import ModelRecord
from hilbench.variants.dataset import Dataset
from hilbench.variants.quantize import (
    convert_fp16,
    quantize_dynamic_int8,
    quantize_static_int8,
    save_atomically,
)
from hilbench.variants.sparsity import (
    block_sparsify,
    hierarchical_sparsify,
    measure_sparsity,
    pattern_prune,
)
from hilbench.variants.structured import prune_conv_channels, prune_ffn, prune_heads

PRUNE_METHODS = ("ffn", "heads", "conv")
SPARSITY_METHODS = ("block", "hierarchical", "pattern")
QUANTIZE_METHODS = ("int8", "int8-static", "fp16")
_SUFFIX = {"ffn": "ffn", "heads": "heads", "conv": "conv", "block": "block",
           "hierarchical": "hier", "pattern": "pattern", "int8": "int8",
           "int8-static": "int8s", "fp16": "fp16"}


@dataclass(frozen=True)
class Step:
    """One compression method at one setting: a ratio for pruning and sparsity, the number
    of kernel patterns for ``pattern``, nothing for quantization."""

    method: str
    value: float | None = None

    @property
    def suffix(self) -> str:
        if self.value is None:
            return _SUFFIX[self.method]
        if self.method == "pattern":
            return f"pattern{int(self.value)}"
        return f"{_SUFFIX[self.method]}{round(self.value * 100)}"


@dataclass(frozen=True)
class BuildOptions:
    """Settings shared by every step: block size of block/hierarchical sparsity, the
    column ratio inside kept blocks, the dataset static int8 calibrates on."""

    block: tuple[int, int] = (16, 16)
    column_ratio: float = 0.5
    calibration: Dataset | None = None


@dataclass(frozen=True)
class Variant:
    """A variant written to ``path``; ``parent`` is the file it was made from (the base or
    an earlier variant), ``compression`` what the store keeps about how."""

    name: str
    path: Path
    parent: Path
    steps: tuple[Step, ...]
    compression: dict[str, Any] = field(hash=False)


def parse_steps(method: str, values: str, allowed: Sequence[str]) -> list[Step]:
    """``ffn`` and ``0.25,0.5`` -> two steps; a bad method or value is a CompressionError."""
    if method not in allowed:
        raise CompressionError(f"unknown method {method!r}; choose one of {', '.join(allowed)}")
    steps = []
    for text in values.split(","):
        try:
            value = float(text)
        except ValueError as exc:
            raise CompressionError(f"{method}={values}: {text!r} is not a number") from exc
        if method == "pattern" and (value != int(value) or value < 1):
            raise CompressionError(f"pattern={values}: the number of patterns is an integer")
        if method != "pattern" and not 0.0 <= value < 1.0:
            raise CompressionError(f"{method}={text}: a ratio is in [0, 1)")
        steps.append(Step(method, value))
    return steps


def plan_chains(prune: Sequence[Sequence[Step]], sparsify: Sequence[Step],
                quantize: Sequence[str]) -> list[tuple[Step, ...]]:
    """Every chain of the grid, including the prefixes (each one a variant), in order. A
    ratio of 0 in a sweep stands for the model without that step (``ffn=0,0.5`` with
    ``int8``: ffn50, ffn50-int8 and the base's int8)."""
    for method in quantize:
        if method not in QUANTIZE_METHODS:
            raise CompressionError(f"unknown quantization {method!r}; choose one of "
                                   f"{', '.join(QUANTIZE_METHODS)}")
    sparse_options: list[tuple[Step, ...]] = [(step,) for step in sparsify] or [()]
    chains: dict[tuple[Step, ...], None] = {}
    for pruned in itertools.product(*prune):
        for sparse in sparse_options:
            chain = tuple(step for step in (*pruned, *sparse) if step.value != 0)  # 0: none
            for length in range(1, len(chain) + 1):  # an empty chain is the base itself
                chains[chain[:length]] = None
            for method in quantize:
                chains[(*chain, Step(method))] = None
    if not chains:
        raise CompressionError("nothing to make: give --prune, --sparsify or --quantize")
    return list(chains)


def _load(path: Path) -> onnx.ModelProto:
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError or OSError: not an ONNX model
        raise ModelError(f"cannot read model {path}: {exc}") from exc


def _apply(step: Step, model: onnx.ModelProto, options: BuildOptions
           ) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """The model after ``step`` and what the store records about the step."""
    value = step.value
    if step.method in PRUNE_METHODS and value is not None:
        prune = {"ffn": prune_ffn, "heads": prune_heads, "conv": prune_conv_channels}
        pruned = prune[step.method](model, value)
        return pruned.model, {"report": pruned.report.to_dict()}
    if step.method in SPARSITY_METHODS and value is not None:
        if step.method == "block":
            sparse = block_sparsify(model, value, block=options.block)
        elif step.method == "hierarchical":
            sparse = hierarchical_sparsify(model, value, options.column_ratio, block=options.block)
        else:
            sparse = pattern_prune(model, patterns=int(value))
        return sparse.model, {"layout": sparse.description.to_dict()}
    return _quantize(step.method, model, options)


def _quantize(method: str, model: onnx.ModelProto, options: BuildOptions
              ) -> tuple[onnx.ModelProto, dict[str, Any]]:
    if method == "int8":
        quantized = quantize_dynamic_int8(model)
    elif method == "fp16":
        quantized = convert_fp16(model)
    else:
        if options.calibration is None:
            raise CompressionError("int8-static needs --calibration DATASET (.npz or folder)")
        quantized = quantize_static_int8(model, options.calibration)
    result: onnx.ModelProto = quantized.model
    _keep_metadata(model, result)
    return result, {"quantization": quantized.quantization.as_dict()}


def _keep_metadata(parent: onnx.ModelProto, child: onnx.ModelProto) -> None:
    """The parent's hilbench metadata (default dims, the sparsity layout an accelerator
    reads) carried over to a quantized child; quantizers drop it."""
    present = {prop.key for prop in child.metadata_props}
    for prop in parent.metadata_props:
        if prop.key.startswith("hilbench.") and prop.key not in present:
            entry = child.metadata_props.add()
            entry.key, entry.value = prop.key, prop.value


def _record(steps: tuple[Step, ...], details: dict[str, Any], model: onnx.ModelProto
            ) -> dict[str, Any]:
    sparsity = measure_sparsity(model)
    last = steps[-1]
    return {
        "method": last.method,
        "parameters": {} if last.value is None else {"value": last.value},
        "chain": [step.suffix for step in steps],
        "sparsity": round(sparsity.fraction, 6),
        **details,
    }


def build_variants(base: Path, chains: Iterable[tuple[Step, ...]], out_dir: Path,
                   options: BuildOptions = BuildOptions()) -> list[Variant]:
    """Make every chain's variant as ``OUT/<base>-<suffixes>.onnx``; all or nothing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made: dict[tuple[Step, ...], onnx.ModelProto] = {(): _load(base)}
    variants: list[Variant] = []
    workspace = Path(tempfile.mkdtemp(prefix=".hilbench-compress-", dir=out_dir))
    try:
        for chain in chains:
            model, details = _apply(chain[-1], made[chain[:-1]], options)
            made[chain] = model
            name = "-".join([base.stem, *(step.suffix for step in chain)])
            save_atomically(model, workspace / f"{name}.onnx")
            parent = base if len(chain) == 1 else out_dir / (
                "-".join([base.stem, *(step.suffix for step in chain[:-1])]) + ".onnx")
            variants.append(Variant(name, out_dir / f"{name}.onnx", parent, chain,
                                    _record(chain, details, model)))
        for variant in variants:
            (workspace / variant.path.name).replace(variant.path)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    return variants



def variant_record(variant: Variant, parent_sha256: str) -> ModelRecord:
    """The store's record of a variant file: its hash, its parent and how it was made."""
    record = ModelRecord.from_file(variant.path)
    return replace(record, name=variant.name, parent_sha256=parent_sha256,
                   compression=variant.compression)
