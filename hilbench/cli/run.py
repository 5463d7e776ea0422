"""`bench run`: benchmark models on devices in parallel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hilbench.campaign.dvfs import DvfsRequest, parse_dvfs, plan
from hilbench.campaign.models import checked_model
from hilbench.campaign.retry import DEFAULT_BACKOFF_S, DEFAULT_RETRIES, RetryPolicy
from hilbench.campaign.rows import run_row
from hilbench.campaign.run import Campaign, CampaignResult
from hilbench.cli.common import JsonOption, StoreOption, open_store, out, print_json
from hilbench.cli.parsing import parse_celsius, parse_dims, parse_duration, parse_rate, parse_shapes
from hilbench.cli.progress import DeviceProgress
from hilbench.cli.results import EMULATED_NOTE, notes_lines, results_table, retry_lines
from hilbench.core.records import DeviceRecord, ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.devices.registry import select_devices
from hilbench.profiles.store import Store

EXIT_JOBS_FAILED = 1


def execute(
    store: Store,
    devices: list[DeviceRecord],
    models: list[ModelRecord],
    settings: BenchmarkSettings,
    dvfs: DvfsRequest | None = None,
    retry: RetryPolicy | None = None,
) -> CampaignResult:
    """Run the campaign with one progress bar per device (on stderr); jobs whose transport
    fails are retried as ``retry`` says (default: ``--retries``' and ``--retry-backoff``'s
    defaults)."""
    counts = {d.name: len(models) * len(plan(dvfs, d)) for d in devices}
    observer = DeviceProgress(counts)
    with observer.progress:
        return Campaign(store, devices, models, settings, observer, dvfs=dvfs,
                        retry=retry or RetryPolicy()).run()


def report(result: CampaignResult, json_output: bool) -> None:
    rows = [run_row(run) for run in result.runs]
    if json_output:
        print_json(rows)
    else:
        out.print(results_table(rows))
        if any(row.get("emulated_figures") for row in rows):
            out.print(EMULATED_NOTE)
        for line in [*notes_lines(rows), *retry_lines(rows)]:
            out.print(line, markup=False)
    if result.failed:
        raise typer.Exit(EXIT_JOBS_FAILED)


def run_command(
    model: Annotated[
        list[Path], typer.Option("--model", "-m", help="Model file (.onnx); repeat for several.")
    ],
    devices: Annotated[
        str, typer.Option("--devices", "-d", help="all, NAME[,NAME...] or kind=KIND.")
    ] = "all",
    threads: Annotated[
        int | None, typer.Option(help="Intra-op threads (default: the runtime's).")
    ] = None,
    warmup: Annotated[int, typer.Option(help="Warm-up runs discarded after the first.")] = 10,
    warmup_time: Annotated[
        str, typer.Option(help="Warm up for at least this long as well, e.g. 250ms.")
    ] = "250ms",
    min_runs: Annotated[int, typer.Option(help="Minimum timed runs.")] = 20,
    min_time: Annotated[str, typer.Option(help="Minimum timed duration, e.g. 1s.")] = "1s",
    max_runs: Annotated[int, typer.Option(help="Stop after this many timed runs.")] = 100_000,
    max_time: Annotated[str, typer.Option(help="Stop after this timed duration.")] = "60s",
    max_cv: Annotated[
        float, typer.Option(help="INVALID above this coefficient of variation.")
    ] = 0.10,
    batch: Annotated[int, typer.Option(help="Batch size for the first dynamic axis.")] = 1,
    shape: Annotated[
        list[str] | None, typer.Option(help="Input shape NAME=1x128; repeatable.")
    ] = None,
    dim: Annotated[
        list[str] | None, typer.Option(help="Size of a symbolic dimension NAME=64.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generated inputs and noise.")] = 0,
    dvfs: Annotated[
        str | None,
        typer.Option(help="sweep (every level of the fastest CPU cluster), or DOMAIN=LEVEL[,...] "
                     "such as cpu=1.2GHz, gpu=max, cpu4-7=min: pinned for the run, restored "
                     "after."),
    ] = None,
    sample_rate: Annotated[
        str, typer.Option(help="Sensor sampling rate beside the run, e.g. 10Hz, 100Hz.")
    ] = "10Hz",
    idle_time: Annotated[
        str, typer.Option(help="Idle power is measured this long before each run.")
    ] = "500ms",
    cooldown: Annotated[
        str | None, typer.Option(help="Before each job, wait until the device is under this "
                                 "temperature, e.g. 45C.")
    ] = None,
    cooldown_max: Annotated[
        str, typer.Option(help="Give up waiting for the cool-down after this long.")
    ] = "120s",
    retries: Annotated[
        int, typer.Option(help="Run a job again this many times when its device's transport "
                          "fails (connection lost or refused, device gone); model and agent "
                          "errors are not retried.")
    ] = DEFAULT_RETRIES,
    retry_backoff: Annotated[
        str, typer.Option(help="Wait this long before the first retry, twice as long before "
                          "the next, and so on.")
    ] = f"{DEFAULT_BACKOFF_S:g}s",
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Benchmark models on devices, in parallel, and store every sample."""
    settings = BenchmarkSettings(
        threads=threads,
        warmup_runs=warmup,
        warmup_duration_s=parse_duration(warmup_time),
        min_runs=min_runs,
        min_duration_s=parse_duration(min_time),
        max_runs=max_runs,
        max_duration_s=parse_duration(max_time),
        max_cv=max_cv,
        batch_size=batch,
        dims=parse_dims(dim or []),
        shapes=parse_shapes(shape or []),
        seed=seed,
        sample_interval_s=parse_rate(sample_rate),
        idle_power_s=parse_duration(idle_time),
        cooldown_below_c=parse_celsius(cooldown),
        cooldown_max_s=parse_duration(cooldown_max),
    )
    request = parse_dvfs(dvfs)
    retry = RetryPolicy(retries, parse_duration(retry_backoff))
    with open_store(store) as opened:
        chosen = select_devices(opened.list_devices(), devices)
        for device in chosen:
            plan(request, device)  # a level a device does not have is bad input: refused now
        models = [checked_model(path, settings) for path in model]
        opened.check_writable()  # a read-only store is refused before anything runs
        result = execute(opened, chosen, models, settings, request, retry)
    report(result, json_output)
