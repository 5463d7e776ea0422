"""`bench demo`: register this machine and the emulated devices, benchmark the shipped
Transformer on all of them, build a variant family of the shipped digits classifier (FFN
pruning x int8), measure its accuracy on the shipped eval set, benchmark the family too, and
show the trade-off."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import platformdirs
import typer
from rich.table import Table

from hilbench.campaign.models import checked_model
from hilbench.campaign.rows import run_row
from hilbench.campaign.run import CampaignResult
from hilbench.cli.common import JsonOption, StoreOption, err, open_store, out, print_json
from hilbench.cli.devices import register
from hilbench.cli.results import EMULATED_NOTE, notes_lines, results_table
from hilbench.cli.run import EXIT_JOBS_FAILED, execute
from hilbench.cli.variants import base_record, record_variants
from hilbench.core.records import ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.devices.registry import builtin_devices
from hilbench.profiles.family import save_accuracy
from hilbench.profiles.store import Store

DEMO_MODEL = "tiny-bert.onnx"
DEMO_FAMILY = "digits-transformer.onnx"
DEMO_EVAL = "digits-eval.npz"
DEMO_SETTINGS = BenchmarkSettings(min_runs=20, min_duration_s=0.5)
FAMILY_SETTINGS = BenchmarkSettings(warmup_duration_s=0.1, min_runs=20, min_duration_s=0.25,
                                   idle_power_s=0.2, batch_size=64)  # a batch: pruning shows
FAMILY_FFN_RATIOS = "0,0.5"
FAMILY_METRIC = "top1"


def asset(name: str) -> Path:
    return Path(str(resources.files("hilbench") / "assets" / name))


def demo_model_path() -> Path:
    """The small BERT-like encoder shipped inside the package."""
    return asset(DEMO_MODEL)


def _default_variants_dir() -> Path:
    return Path(platformdirs.user_data_dir("hilbench")) / "demo-variants"


def _family(store: Store, folder: Path) -> tuple[list[ModelRecord], dict[str, float]]:
    """The digits classifier and its variants (recorded), with their eval accuracy."""
    from hilbench.variants.accuracy import accuracy_records, measure_accuracy
    from hilbench.variants.build import PRUNE_METHODS, build_variants, parse_steps, plan_chains
    from hilbench.variants.dataset import load_dataset

    base_path = asset(DEMO_FAMILY)
    base = base_record(store, base_path)
    chains = plan_chains([parse_steps("ffn", FAMILY_FFN_RATIOS, PRUNE_METHODS)], [], ["int8"])
    records = record_variants(store, base, base_path,
                              build_variants(base_path, chains, folder))
    data = load_dataset(asset(DEMO_EVAL))
    accuracy: dict[str, float] = {}
    now = time.time()
    for path, record in records.items():
        report = measure_accuracy(path, data, [FAMILY_METRIC])
        save_accuracy(store, accuracy_records(report, now))
        accuracy[record.sha256] = report.value(FAMILY_METRIC)
    return [checked_model(path, FAMILY_SETTINGS) for path in records], accuracy


def _trade_off(rows: list[dict[str, Any]]) -> Table:
    devices = sorted({row["device"] for row in rows})
    table = Table("variant", FAMILY_METRIC, *(f"{d} p50 ms" for d in devices),
                  title="digits family: accuracy and latency")
    for model in dict.fromkeys(row["model"] for row in rows):
        by_device = {row["device"]: row for row in rows if row["model"] == model}
        first = next(iter(by_device.values()))
        cells = [f"{by_device[d]['p50_ms']:.3f}" if d in by_device and by_device[d]["p50_ms"]
                 else "-" for d in devices]
        table.add_row(model, f"{first['accuracy'][FAMILY_METRIC]:.4f}", *cells)
    return table


def demo_command(
    variants_dir: Annotated[Path | None, typer.Option(
        help="Where the digits family's variants are written [default: hilbench's data "
             "folder].")] = None,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Register the built-in devices, benchmark the shipped models and a variant family."""
    with open_store(store) as opened:
        opened.check_writable()  # a read-only store is refused before anything is written
        known = {d.name for d in opened.list_devices()}
        for record in builtin_devices():
            if record.name not in known:
                register(opened, record)
                err.print(f"registered {record.name}")
        builtin = {b.name for b in builtin_devices()}
        devices = [d for d in opened.list_devices() if d.name in builtin]
        model = checked_model(demo_model_path(), DEMO_SETTINGS)
        err.print(f"store: {opened.url}")
        result = execute(opened, devices, [model], DEMO_SETTINGS)
        family, accuracy = _family(opened, variants_dir or _default_variants_dir())
        err.print(f"digits family: {len(family)} models, {FAMILY_METRIC} measured on "
                  f"{DEMO_EVAL}")
        family_result = execute(opened, devices, family, FAMILY_SETTINGS)
    _report(result, family_result, accuracy, json_output)


def _report(result: CampaignResult, family_result: CampaignResult, accuracy: dict[str, float],
            json_output: bool) -> None:
    rows = [run_row(run) for run in result.runs]
    family_rows = [{**run_row(run), "accuracy": {FAMILY_METRIC: accuracy[run.model.sha256]}}
                   for run in family_result.runs]
    if json_output:
        print_json(rows + family_rows)
    else:
        out.print(results_table(rows))
        out.print(EMULATED_NOTE)
        for line in notes_lines(rows + family_rows):
            out.print(line, markup=False)
        out.print(_trade_off(family_rows))
    if result.failed or family_result.failed:
        raise typer.Exit(EXIT_JOBS_FAILED)
