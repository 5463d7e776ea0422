"""`bench predictor train | eval | show | calibrate` and `bench predict`: latency predictions
from a model trained on the store's measurements, kept as a versioned artifact."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from hilbench.campaign.rows import format_ms
from hilbench.cli.common import JsonOption, StoreOption, err, open_store, out, print_json
from hilbench.cli.parsing import parse_duration
from hilbench.core.errors import PredictorError, SettingsError, UnknownDeviceError

if TYPE_CHECKING:  # scikit-learn and onnx load with the commands that use them
    from hilbench.predictor.service import Trained

app = typer.Typer(help="Train, evaluate and inspect the latency predictor; measure a device's "
                  "reference networks.", no_args_is_help=True)

ArtifactOption = Annotated[
    Path | None,
    typer.Option("--artifact", help="A predictor file [default: the newest one trained, in "
                 "hilbench's data folder].", show_default=False),
]
CoverageOption = Annotated[
    float, typer.Option(help="Share of new measurements the interval should hold.")
]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="Where to write the predictor [default: hilbench's data "
                 "folder, named by the training set].", show_default=False),
]
ValidOnlyOption = Annotated[
    bool, typer.Option("--valid-only", help="Train on VALID runs only (by default runs INVALID "
                       "only for their spread are kept: the target is their p50).")
]
PROGRESS_FROM = 20  # networks to extract before a progress line is worth it


def _progress(done: int, total: int) -> None:
    if total >= PROGRESS_FROM and (done == total or done % 50 == 0):
        err.print(f"features: {done}/{total} networks", highlight=False)


def _artifact_path(path: Path | None) -> Path:
    from hilbench.predictor.artifact import latest

    return path if path is not None else latest()


def _fmt(value: float | None, digits: int = 1, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.{digits}f}%" if percent else f"{value:.{digits}f}"


def _devices_table(devices: dict[str, dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("device", "rows", "runs", "predicts with", "learner", "references",
                   "fit error", "interval x/÷", "settings"):
        table.add_column(column, justify="right" if column in ("rows", "runs") else "left")
    for name, info in devices.items():
        source = info["source"]
        kind = {"device": "device model", "transfer": "transfer"}.get(source or "", "-")
        if info["device_model"] and info["transfer"]:
            kind += " (+ transfer)"
        error = info.get(f"{source}_fit_error_pct") if source else None
        factor = info.get(f"{source}_interval_factor") if source else None
        table.add_row(name, str(info["rows"]), str(info["runs"]), kind, info["learner"] or "-",
                      str(info["references"]), f"{error:.1f}%" if error is not None else "-",
                      f"{factor:.2f}" if factor is not None else "-", info["settings"])
    return table


def _report_training(trained: Trained, json_output: bool) -> None:
    header = trained.header
    devices = header["devices"]
    if json_output:
        print_json({"artifact": str(trained.path), **_summary(header)})
        return
    out.print(_devices_table(devices, "predictor training"))
    aside = header["set_aside"]
    aside_text = (f"; set aside {sum(aside.values())} runs: "
                  + ", ".join(f"{n} {why}" for why, n in sorted(aside.items()))) if aside else ""
    transfer = header["transfer_devices"]
    out.print(f"trained on {header['rows']} rows ({header['networks']} networks, "
              f"{header['runs']} runs) of {len(devices)} devices in "
              f"{header['total_seconds']:.1f} s (fitting {header['training_seconds']:.1f} s)"
              f"{aside_text}", markup=False)
    out.print(f"transfer model: {', '.join(transfer)}" if transfer else
              "transfer model: none (needs 2 devices with the reference set: bench predictor "
              "calibrate DEVICE)", markup=False)
    out.print(f"artifact: {trained.path}", markup=False, soft_wrap=True)


def _summary(header: dict[str, Any]) -> dict[str, Any]:
    """The header without the long lists of op types seen."""
    devices = {name: {k: v for k, v in info.items() if k not in ("device_ops", "device_kernels")}
               for name, info in header["devices"].items()}
    keep = {k: v for k, v in header.items()
            if k not in ("devices", "transfer_ops", "transfer_kernels")}
    return {**keep, "devices": devices}


@app.command("train")
def train_command(
    store: StoreOption = None,
    out_path: OutOption = None,
    coverage: CoverageOption = 0.9,
    valid_only: ValidOnlyOption = False,
    json_output: JsonOption = False,
) -> None:
    """Train on every usable run of the store: a model per device with 10 or more measured
    models, and a transfer model over the devices that measured the reference set."""
    from hilbench.predictor.service import train

    with open_store(store) as opened:
        trained = train(opened, out_path, coverage, valid_only, _progress)
    _report_training(trained, json_output)


@app.command("show")
def show_command(artifact: ArtifactOption = None, json_output: JsonOption = False) -> None:
    """The predictor's header (versions, training set, coverage) and per-device figures."""
    from hilbench.predictor.artifact import read_header

    path = _artifact_path(artifact)
    header = read_header(path)
    if json_output:
        print_json({"artifact": str(path), **header})
        return
    table = Table("field", "value", title=f"predictor {path.name}", title_justify="left")
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(header["created_at"]))
    for key, value in (
        ("path", str(path)), ("created", created),
        ("training set", header["training_set_id"]), ("store", header["store"]),
        ("rows / networks / runs", f"{header['rows']} / {header['networks']} / "
                                   f"{header['runs']}"),
        ("coverage", f"{header['coverage']:.0%}"),
        ("valid runs only", "yes" if header["valid_only"] else "no (spread-only INVALID kept)"),
        ("transfer devices", ", ".join(header["transfer_devices"]) or "none"),
        ("hilbench", header["hilbench_version"]), ("scikit-learn", header["sklearn_version"]),
        ("feature schema", f"{header['feature_schema_version']} (names "
                           f"{header['feature_names_sha256'][:12]})"),
        ("format", str(header["format_version"])),
        ("payload", f"{header['payload_bytes']:,} bytes, sha256 "
                    f"{header['payload_sha256'][:16]}… (verified)"),
    ):
        table.add_row(key, value)
    out.print(table)
    out.print(_devices_table(header["devices"], "devices"))


@app.command("eval")
def eval_command(
    store: StoreOption = None,
    artifact: Annotated[
        Path | None, typer.Option("--artifact", help="Evaluate with this predictor's coverage "
                                  "and run selection.", show_default=False)
    ] = None,
    folds: Annotated[int, typer.Option(help="Folds over models (a model is held out whole).")
                     ] = 5,
    coverage: CoverageOption = 0.9,
    valid_only: ValidOnlyOption = False,
    json_output: JsonOption = False,
) -> None:
    """k-fold cross-validation over models on the store's measurements: per device, the
    share within 10 %, the median absolute % error, Spearman's rho and the interval's
    coverage, for the device model and the transfer model."""
    from hilbench.predictor.artifact import read_header
    from hilbench.predictor.training import build_training_set, evaluate

    if artifact is not None:
        header = read_header(artifact)
        coverage, valid_only = float(header["coverage"]), bool(header["valid_only"])
    started = time.perf_counter()
    with open_store(store) as opened:
        training = build_training_set(opened, valid_only=valid_only, progress=_progress)
    scores = evaluate(training, coverage, folds)
    seconds = time.perf_counter() - started
    if json_output:
        print_json([s.to_dict() for s in scores])
        return
    table = Table(title=f"predictor cross-validation ({folds} folds over models, references "
                  "always in training)", title_justify="left")
    for column in ("device", "model", "predicted", "±10 %", "median |err|", "Spearman",
                   f"in {coverage:.0%} interval"):
        table.add_column(column, justify="left" if column in ("device", "model") else "right")
    for score in scores:
        table.add_row(score.device, {"device": "device model"}.get(score.source, score.source),
                      f"{score.predicted}/{score.measured}",
                      _fmt(score.within_10pct, 0, percent=True),
                      _fmt(score.median_abs_pct_error, 1) + ("%" if score.median_abs_pct_error
                                                             is not None else ""),
                      _fmt(score.spearman, 2), _fmt(score.interval_coverage, 0, percent=True))
    out.print(table)
    if not scores:
        out.print("no device could be predicted in any fold: measure more models or the "
                  "reference set (bench predictor calibrate DEVICE)")
    out.print(f"{training.rows} rows of {len(training.devices)} devices, {seconds:.1f} s",
              markup=False)


@app.command("calibrate")
def calibrate_command(
    device: Annotated[list[str], typer.Argument(help="Device(s) to calibrate.")],
    store: StoreOption = None,
    out_path: OutOption = None,
    coverage: CoverageOption = 0.9,
    threads: Annotated[int | None, typer.Option(help="Intra-op threads.")] = None,
    warmup: Annotated[int, typer.Option(help="Warm-up runs discarded after the first.")] = 10,
    warmup_time: Annotated[str, typer.Option(help="Warm up at least this long too.")] = "250ms",
    min_runs: Annotated[int, typer.Option(help="Minimum timed runs per network.")] = 50,
    min_time: Annotated[str, typer.Option(help="Minimum timed duration per network.")] = "1s",
    max_time: Annotated[str, typer.Option(help="Stop a network after this long.")] = "60s",
    max_cv: Annotated[float, typer.Option(
        help="INVALID above this coefficient of variation.")] = 0.10,
    idle_time: Annotated[str, typer.Option(help="Idle power before each run.")] = "500ms",
    json_output: JsonOption = False,
) -> None:
    """Measure the fixed reference networks on DEVICE (several devices run in parallel, as
    with bench run; the runs are stored like any other), then train again so that the
    device gets predictions."""
    from hilbench.campaign.rows import run_row
    from hilbench.cli.results import EMULATED_NOTE, results_table
    from hilbench.cli.run import EXIT_JOBS_FAILED, execute
    from hilbench.core.records import ModelRecord
    from hilbench.core.settings import BenchmarkSettings
    from hilbench.devices.registry import select_devices
    from hilbench.predictor.references import reference_files
    from hilbench.predictor.service import train
    from hilbench.predictor.training import usable

    settings = BenchmarkSettings(
        threads=threads, warmup_runs=warmup, warmup_duration_s=parse_duration(warmup_time),
        min_runs=min_runs, min_duration_s=parse_duration(min_time),
        max_duration_s=parse_duration(max_time), max_cv=max_cv,
        idle_power_s=parse_duration(idle_time), batch_size=1,
    )
    with open_store(store) as opened:
        chosen = select_devices(opened.list_devices(), ",".join(device))
        files = reference_files()
        models = [ModelRecord.from_file(path) for path in files.values()]
        err.print(f"calibrating {', '.join(d.name for d in chosen)} on {len(models)} reference "
                  "networks")
        result = execute(opened, chosen, models, settings)
        try:
            trained: Trained | None = train(opened, out_path, coverage, progress=_progress)
            refused = None
        except PredictorError as exc:  # the runs are stored: not a refusal of the input
            trained, refused = None, str(exc)
    rows = [run_row(run) for run in result.runs]
    unusable = [row for row in rows if row["status"] != "ok"
                or usable(row["verdict"], row["reasons"], False) is not None]
    devices = _summary(trained.header)["devices"] if trained else {}
    if json_output:
        print_json({"runs": rows, "artifact": str(trained.path) if trained else None,
                    "training_error": refused,
                    "devices": {d.name: devices.get(d.name) for d in chosen}})
    else:
        out.print(results_table(rows))
        if any(row.get("emulated_figures") for row in rows):
            out.print(EMULATED_NOTE)
        if trained is not None:
            _report_training(trained, False)
        what = {"device": "its device model", "transfer": "the transfer model"}
        for name in (d.name for d in chosen):
            source = (devices.get(name) or {}).get("source")
            out.print(f"{name}: predicted by {what[source]}" if source else
                      f"{name}: no prediction yet", markup=False)
    for row in unusable:
        why = row["error"] if row["status"] != "ok" else "; ".join(row["reasons"])
        err.print(f"{row['device']}: {row['model']} cannot be trained on ({why}): run bench "
                  "predictor calibrate again with a longer --min-time", highlight=False)
    if refused is not None:
        err.print(f"error: training after the calibration: {refused}", highlight=False)
    if result.failed or refused is not None:
        raise typer.Exit(EXIT_JOBS_FAILED)


def _device_names(spec: str, registered: list[str], trained: list[str]) -> list[str]:
    known = sorted(set(registered) | set(trained))
    if spec.strip() == "all":
        if not known:
            raise UnknownDeviceError("no devices registered; run `bench devices add` or "
                                     "`bench demo`")
        return known
    names = list(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
    missing = [n for n in names if n not in known]
    if missing or not names:
        raise UnknownDeviceError(f"unknown device {', '.join(missing) or spec!r}; known: "
                                 f"{', '.join(known) or 'none'}")
    return names


def predict_command(
    model: Annotated[
        list[Path], typer.Option("--model", "-m", help="Model file (.onnx, .tflite); repeat "
                                 "for several.")
    ],
    devices: Annotated[
        str, typer.Option("--devices", "-d", help="all or NAME[,NAME...].")
    ] = "all",
    batch: Annotated[int, typer.Option(help="Batch size for the first dynamic axis.")] = 1,
    artifact: ArtifactOption = None,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Predict the latency of models on devices (median and interval, ms), next to the
    measured p50 when the store has one."""
    from hilbench.predictor.artifact import load
    from hilbench.predictor.service import Predictor, predict_rows, read_model

    if batch < 1:
        raise SettingsError(f"batch size must be >= 1, got {batch}")
    subjects = [read_model(path, batch) for path in model]
    predictor = Predictor.from_artifact(load(_artifact_path(artifact)))
    with open_store(store) as opened:
        names = _device_names(devices, [d.name for d in opened.list_devices()],
                              list(predictor.devices))
        rows = predict_rows(predictor, subjects, names, opened)
    if json_output:
        print_json(rows)
        return
    table = Table(title=f"predicted latency (ms, {predictor.header['coverage']:.0%} interval)",
                  title_justify="left")
    for column in ("model", "device", "predicted", "lower", "upper", "measured p50", "by",
                   "notes"):
        table.add_column(column, justify="left" if column in ("model", "device", "by", "notes")
                         else "right")
    for row in rows:
        table.add_row(row["model"], row["device"], format_ms(row["predicted_ms"]),
                      format_ms(row["lower"]), format_ms(row["upper"]),
                      format_ms(row["measured_ms"]),
                      {"device": "device model"}.get(row["source"] or "", row["source"] or "-"),
                      "; ".join(row["notes"]))
    out.print(table)
