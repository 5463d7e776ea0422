"""`bench demo`: register this machine and the emulated devices, benchmark the shipped
Transformer on all of them, store and show the results."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from hilbench.campaign.models import checked_model
from hilbench.cli.common import JsonOption, StoreOption, err, open_store
from hilbench.cli.devices import register
from hilbench.cli.run import execute, report
from hilbench.core.settings import BenchmarkSettings
from hilbench.devices.registry import builtin_devices

DEMO_MODEL = "tiny-bert.onnx"
DEMO_SETTINGS = BenchmarkSettings(min_runs=20, min_duration_s=0.5)


def demo_model_path() -> Path:
    """The small BERT-like encoder shipped inside the package."""
    return Path(str(resources.files("hilbench") / "assets" / DEMO_MODEL))


def demo_command(store: StoreOption = None, json_output: JsonOption = False) -> None:
    """Register the built-in devices and benchmark the shipped model on all of them."""
    with open_store(store) as opened:
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
    report(result, json_output)
