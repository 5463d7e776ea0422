"""`bench compress` (a family of variants from a base model) and `bench accuracy` (their
scores on a dataset, measured on this machine)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from hilbench.cli.common import JsonOption, StoreOption, open_store, out, print_json
from hilbench.core.errors import CompressionError, ModelError
from hilbench.core.records import ModelRecord
from hilbench.profiles.family import (
    add_variant,
    family_named,
    save_accuracy,
)
from hilbench.profiles.store import Store

if TYPE_CHECKING:  # hilbench.variants (onnx) is imported by the commands that use it, so
    # that every other `bench` command starts without it
    from hilbench.variants.accuracy import AccuracyReport
    from hilbench.variants.build import Step, Variant


def _method_values(item: str, allowed: tuple[str, ...], option: str) -> list[Step]:
    from hilbench.variants.build import parse_steps

    method, sep, values = item.partition("=")
    if not sep:
        raise CompressionError(f"{option} {item!r}: use METHOD=VALUE[,VALUE...], e.g. "
                               f"{allowed[0]}=0.5")
    return parse_steps(method.strip(), values.strip(), allowed)


def _block(text: str) -> tuple[int, int]:
    rows, sep, cols = text.lower().partition("x")
    try:
        return int(rows), int(cols if sep else rows)
    except ValueError:
        raise CompressionError(f"--block {text!r}: use ROWSxCOLS, e.g. 16x16") from None


def base_record(store: Store, path: Path) -> ModelRecord:
    if path.suffix.lower() != ".onnx":
        raise ModelError(f"bench compress works on ONNX models, not {path.name}")
    record = ModelRecord.from_file(path)
    store.add_model(record)
    return record


def record_variants(store: Store, base: ModelRecord, base_path: Path,
                    variants: list[Variant]) -> dict[Path, ModelRecord]:
    """Store every variant with its parent's sha256; returns the records by file."""
    from hilbench.variants.build import variant_record

    records: dict[Path, ModelRecord] = {base_path: base}
    for variant in variants:  # parents come before their children
        records[variant.path] = variant_record(variant, records[variant.parent].sha256)
        add_variant(store, records[variant.path])
    return records


def _variant_rows(variants: list[Variant], records: dict[Path, ModelRecord]
                  ) -> list[dict[str, Any]]:
    rows = []
    for variant in variants:
        record = records[variant.path]
        report = variant.compression.get("report") or {}
        rows.append({
            "name": variant.name, "path": str(variant.path), "sha256": record.sha256,
            "parent_sha256": record.parent_sha256, "method": variant.compression["method"],
            "chain": variant.compression["chain"], "size_bytes": record.size_bytes,
            "sparsity": variant.compression["sparsity"],
            "parameter_reduction": report.get("parameter_reduction"),
        })
    return rows


def compress_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="The base ONNX model.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder the variants are written to.")],
    prune: Annotated[list[str] | None, typer.Option(
        help="Structured pruning METHOD=RATIO[,RATIO...]: ffn, heads, conv; repeatable "
             "(each list is a sweep).")] = None,
    sparsify: Annotated[list[str] | None, typer.Option(
        help="block=RATIO[,...], hierarchical=RATIO[,...] or pattern=N (kernel patterns per "
             "layer).")] = None,
    quantize: Annotated[list[str] | None, typer.Option(
        help="int8 (dynamic), int8-static (needs --calibration), fp16; comma list or "
             "repeated.")] = None,
    block: Annotated[str, typer.Option(help="Block of block/hierarchical sparsity.")] = "16x16",
    column_ratio: Annotated[float, typer.Option(
        help="hierarchical: ratio of columns zeroed inside each kept block.")] = 0.5,
    calibration: Annotated[Path | None, typer.Option(
        help="Dataset (.npz or folder of .npy) int8-static calibrates on.")] = None,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Make compressed variants of a model and record them with their lineage."""
    from hilbench.variants.build import (
        PRUNE_METHODS,
        SPARSITY_METHODS,
        BuildOptions,
        build_variants,
        plan_chains,
    )
    from hilbench.variants.dataset import load_dataset

    pruning = [_method_values(item, PRUNE_METHODS, "--prune") for item in prune or []]
    sparse = [step for item in sparsify or []
              for step in _method_values(item, SPARSITY_METHODS, "--sparsify")]
    methods = [m.strip() for item in quantize or [] for m in item.split(",") if m.strip()]
    chains = plan_chains(pruning, sparse, methods)
    options = BuildOptions(_block(block), column_ratio,
                           load_dataset(calibration) if calibration else None)
    with open_store(store) as opened:
        base = base_record(opened, model)
        variants = build_variants(model, chains, out_dir, options)
        records = record_variants(opened, base, model, variants)
    rows = _variant_rows(variants, records)
    if json_output:
        print_json(rows)
        return
    table = Table("variant", "method", "size", "zeros", "params removed", "sha256")
    for row in rows:
        reduction = row["parameter_reduction"]
        table.add_row(row["name"], row["method"], f"{row['size_bytes'] / 1e6:.2f} MB",
                      f"{row['sparsity']:.0%}", "-" if reduction is None else f"{reduction:.0%}",
                      row["sha256"][:12])
    out.print(table)


def _models_to_score(store: Store, models: list[Path], family_of: str | None
                     ) -> list[tuple[Path, str | None]]:
    """(model file, its base's file) for every model named or in the family."""
    chosen: list[tuple[Path, str | None]] = []
    for path in models:
        record = ModelRecord.from_file(path)
        store.add_model(record)
        chosen.append((path, None))
    if family_of is not None:
        base_path, members = family_named(store, family_of)
        chosen += [(Path(p), base_path) for p in members.path]
    return chosen


def accuracy_command(
    dataset: Annotated[Path, typer.Option(help="Dataset: .npz or a folder of .npy files.")],
    model: Annotated[list[Path] | None, typer.Option(
        "--model", "-m", help="Model file; repeat for several.")] = None,
    family_of: Annotated[str | None, typer.Option(
        "--family", help="A stored base model (name or sha256): it and all its variants.")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        help="top1, top5, macro_f1, cosine, agreement or package.module:function; repeatable "
             "[default: top1].")] = None,
    base: Annotated[Path | None, typer.Option(
        help="Base model for cosine/agreement [default with --family: the family's base].")
    ] = None,
    output: Annotated[str | None, typer.Option(help="Output to score [default: the first].")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Score the first N examples only.")] = None,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Measure models' accuracy on a dataset on this machine and store it (accuracy does
    not depend on the device for the same runtime and precision)."""
    from hilbench.variants.accuracy import accuracy_records, measure_accuracy
    from hilbench.variants.dataset import load_dataset
    from hilbench.variants.metrics import resolve_metrics

    if not model and family_of is None:
        raise ModelError("name models with --model or a stored family with --family")
    data = load_dataset(dataset).limit(limit)
    metrics = metric or ["top1"]
    needs_base = any(m.needs_base for m in resolve_metrics(metrics))
    reports: list[AccuracyReport] = []
    with open_store(store) as opened:
        for path, family_base in _models_to_score(opened, list(model or []), family_of):
            compared = base or (Path(family_base) if family_base else None)
            compared = compared if needs_base else None
            reports.append(measure_accuracy(path, data, metrics, compared, output))
        now = time.time()
        save_accuracy(opened, [r for report in reports for r in accuracy_records(report, now)])
    rows = [report.as_dict() for report in reports]
    if json_output:
        print_json(rows)
        return
    table = Table("model", *metrics, "examples", "runtime")
    for report in reports:
        table.add_row(Path(report.model_path).stem,
                      *(f"{report.value(m):.4f}" for m in [r.name for r in report.results]),
                      str(report.examples), f"{report.runtime} {report.runtime_version}")
    out.print(table)
