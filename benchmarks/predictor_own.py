"""The latency predictor on hilbench's own measurements. Prints figures.

Builds a profile store from scratch, as a user would, through the ``bench`` CLI (each step
a ``python -m hilbench.cli`` subprocess, so the same code paths as a user's commands):

1. ``bench demo``: registers ``local`` (this machine's CPU) and the emulated ``emu-phone``,
   ``emu-jetson``, ``emu-server`` and ``emu-fpga``, measures tiny-bert and the digits family.
2. ``bench compress``: variants of the two shipped models (FFN and head pruning at several
   ratios, block sparsity, int8, fp16), written into the work folder and recorded.
3. NAS-Bench-201 and FBNet networks drawn at random (seeded) from
   ``hilbench.predictor.spaces`` and written as ``.onnx`` files.
4. ``bench predictor calibrate`` on every device (the reference networks).
5. ``bench run`` of every model on the emulated devices, then on ``local``, with short
   settings (``--min-time``, ``--warmup-time``; no idle-power phase). tiny-bert's variants
   and the NAS networks at batch 1, the digits family at batch 64 (as the demo runs it).
   ``local`` runs on ``--local-threads`` threads (default 1: on a shared 2-core machine the
   runtime's default of every core gives coefficients of variation near 100 %); its demo
   runs, under the runtime's default, are then "other settings" and set aside by training.
6. ``bench run`` again of every 10th tiny-bert variant and NAS network on every device: with
   the demo's models, measured twice, they give the run-to-run spread, the floor under any
   predictor's error.

Then, on the store:

* cross-validation (``bench predictor eval --json``, k folds over models, the references
  always in training): per device and averaged, +-10 % accuracy, the median absolute %
  error (MdAPE), Spearman's rho and the share inside the 90 % interval, for the device
  model (trained on the device's own measurements) and the transfer model (all devices,
  with the device's reference latencies as its embedding);
* leave-one-device-out few-shot: the transfer model fitted on the other devices only,
  the target adapted from its 8 reference measurements alone, and from the references plus
  10 random models (mean over ``FEW_SHOT_DRAWS`` draws); scored on the target's other models;
* prediction speed: 10,000 candidates through a predictor trained by ``bench predictor
  train`` (``hilbench.predictor.service.Predictor``): the device model and the transfer
  model on a 10,000-row feature matrix per device, and ``Predictor.estimate`` (one
  candidate at a time, with the unseen-op check) per call.

Everything (store, variants, networks, feature cache, artifacts) lives in a work folder:
a temporary one removed at the end unless ``--keep``, or ``--work DIR``. ``XDG_DATA_HOME``
and ``XDG_CACHE_HOME`` point into it, so the user's own store and caches are not touched.
``--skip-measure`` evaluates a kept store again without measuring.

Run: python benchmarks/predictor_own.py [--quick] [--work DIR | --keep] [--store URL]
     [--skip-measure] [--folds 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy

from hilbench.cli.demo import DEMO_FAMILY, DEMO_MODEL, asset

if TYPE_CHECKING:  # scikit-learn loads after the measurements, with the code they trained
    from hilbench.predictor.model import Predictions
    from hilbench.predictor.service import Predictor
    from hilbench.predictor.training import TrainingSet

DEVICES = ("local", "emu-phone", "emu-jetson", "emu-server", "emu-fpga")
EMULATED = DEVICES[1:]
FAMILY_BATCH = 64  # as bench demo measures the digits family
FEW_SHOT = 10
FEW_SHOT_DRAWS = 5
CANDIDATES = 10_000
ESTIMATE_CALLS = 500
REPEAT_EVERY = 10  # every 10th tiny-bert variant and NAS network is measured twice


@dataclass(frozen=True)
class Plan:
    """What to measure: the compress grids of the two shipped models and how many NAS
    networks of each space."""

    tiny_bert: tuple[str, ...]
    digits: tuple[str, ...]
    nb201: int
    fbnet: int


FULL = Plan(
    tiny_bert=("--prune", "ffn=0,0.25,0.5,0.75", "--prune", "heads=0,0.5",
               "--sparsify", "block=0,0.5", "--quantize", "int8,fp16"),
    digits=("--prune", "ffn=0,0.5", "--prune", "heads=0,0.5", "--sparsify", "block=0,0.5",
            "--quantize", "int8"),
    nb201=24, fbnet=16,
)
QUICK = Plan(
    tiny_bert=("--prune", "ffn=0,0.5", "--prune", "heads=0,0.5", "--quantize", "int8"),
    digits=("--prune", "ffn=0,0.5", "--sparsify", "block=0,0.5", "--quantize", "int8"),
    nb201=10, fbnet=6,
)


# --------------------------------------------------------------------------------------------
# running bench


class Bench:
    """``bench`` as a subprocess of this interpreter, with the work folder's store; each
    call's output goes to a log file, stdout is returned."""

    def __init__(self, store: str, logs: Path) -> None:
        self.store = store
        self.logs = logs
        self.calls = 0

    def __call__(self, name: str, *args: str, ok_codes: Sequence[int] = (0,)) -> str:
        self.calls += 1
        argv = [sys.executable, "-m", "hilbench.cli", *args, "--store", self.store]
        log = self.logs / f"{self.calls:02d}-{name}.log"
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        log.write_text(f"$ {' '.join(argv)}\n--- stdout\n{done.stdout}\n--- stderr\n"
                       f"{done.stderr}\n--- exit {done.returncode}\n")
        if done.returncode not in ok_codes:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise SystemExit(f"bench {' '.join(args[:3])} failed (exit {done.returncode}, "
                             f"log {log}):\n{tail}")
        return done.stdout


@contextmanager
def phase(name: str, timings: dict[str, float]) -> Iterator[None]:
    print(f"- {name} ...", flush=True)
    started = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - started
    print(f"  {name}: {timings[name]:.1f} s", flush=True)


# --------------------------------------------------------------------------------------------
# models


def nas_networks(folder: Path, nb201_count: int, fbnet_count: int, seed: int) -> list[Path]:
    """Random NB201 cells and FBNet architectures (seeded, distinct, none of them a
    reference network), written as ONNX files."""
    from hilbench.predictor.references import REFERENCE_SOURCES
    from hilbench.predictor.spaces import fbnet, nb201

    folder.mkdir(parents=True, exist_ok=True)
    rng = numpy.random.default_rng(seed)
    paths: list[Path] = []
    seen = set(REFERENCE_SOURCES)
    while len(paths) < nb201_count:
        cell = "+".join("|" + "|".join(f"{nb201.OPS[rng.integers(len(nb201.OPS))]}~{i}"
                                       for i in range(node)) + "|" for node in (1, 2, 3))
        if f"nb201:{cell}" in seen:
            continue
        seen.add(f"nb201:{cell}")
        path = folder / f"nb201-{len(paths):03d}.onnx"
        path.write_bytes(nb201.build(cell).SerializeToString())
        paths.append(path)
    drawn = 0
    while drawn < fbnet_count:
        arch = "-".join(str(rng.integers(len(fbnet.BLOCKS))) for _ in range(fbnet.LAYERS))
        if f"fbnet:{arch}" in seen:
            continue
        seen.add(f"fbnet:{arch}")
        path = folder / f"fbnet-{drawn:03d}.onnx"
        path.write_bytes(fbnet.build(arch).SerializeToString())
        paths.append(path)
        drawn += 1
    return paths


def compress(bench: Bench, base: Path, grid: Sequence[str], out: Path) -> list[Path]:
    """``bench compress`` of ``base`` over ``grid``: the base and its variants' files."""
    made = json.loads(bench(f"compress-{base.stem}", "compress", "-m", str(base), *grid,
                            "--out", str(out), "--json"))
    return [base, *(Path(v["path"]) for v in made)]


def short_settings(args: argparse.Namespace) -> list[str]:
    return ["--warmup", "3", "--warmup-time", args.warmup_time, "--min-runs", "10",
            "--min-time", args.min_time, "--idle-time", "0s"]


def run_models(bench: Bench, name: str, paths: Sequence[Path], devices: str,
               options: Sequence[str]) -> list[dict[str, Any]]:
    """``bench run --json`` of ``paths`` on ``devices``; jobs that failed on their device
    (exit 1) are counted, not fatal."""
    argv = ["run", "--devices", devices, "--json", *options]
    for path in paths:
        argv += ["-m", str(path)]
    rows: list[dict[str, Any]] = json.loads(bench(name, *argv, ok_codes=(0, 1)))
    return rows


def describe_rows(rows: Sequence[dict[str, Any]]) -> str:
    verdicts: Counter[str] = Counter()
    for row in rows:
        if row["status"] != "ok":
            verdicts["failed"] += 1
        elif row["verdict"] == "VALID":
            verdicts["VALID"] += 1
        else:
            heads = sorted({r.split(":")[0] for r in row["reasons"]}) or ["?"]
            verdicts[f"INVALID ({', '.join(heads)})"] += 1
    return ", ".join(f"{n} {what}" for what, n in verdicts.most_common())


def measure(bench: Bench, work: Path, plan: Plan, args: argparse.Namespace,
            timings: dict[str, float]) -> dict[str, int]:
    """Steps 1-6; the number of models measured per group."""
    with phase("bench demo", timings):
        bench("demo", "demo", "--variants-dir", str(work / "variants" / "demo"))
    with phase("bench compress (tiny-bert, digits)", timings):
        tiny = compress(bench, asset(DEMO_MODEL), plan.tiny_bert, work / "variants" / "tiny-bert")
        digits = compress(bench, asset(DEMO_FAMILY), plan.digits, work / "variants" / "digits")
    with phase(f"write {plan.nb201} NB201 + {plan.fbnet} FBNet networks", timings):
        nas = nas_networks(work / "nas", plan.nb201, plan.fbnet, args.seed)
    calibration = short_settings(args)
    local_threads = ["--threads", str(args.local_threads)] if args.local_threads else []
    with phase("bench predictor calibrate (emulated devices, then local)", timings):
        bench("calibrate-emulated", "predictor", "calibrate", *EMULATED, *calibration,
              "--out", str(work / "calibrate-emulated.hbp"))
        bench("calibrate-local", "predictor", "calibrate", "local", *calibration,
              *local_threads, "--out", str(work / "calibrate-local.hbp"))
    groups = {"tiny-bert and variants (batch 1)": (tiny, []),
              "NAS-Bench-201 / FBNet (batch 1)": (nas, []),
              f"digits family (batch {FAMILY_BATCH})": (digits,
                                                         ["--batch", str(FAMILY_BATCH)])}
    total = sum(len(paths) for paths, _ in groups.values())
    with phase(f"bench run: {total} models x {len(EMULATED)} emulated devices", timings):
        for label, (paths, extra) in groups.items():
            rows = run_models(bench, f"run-emulated-{label.split()[0]}", paths,
                              ",".join(EMULATED), [*short_settings(args), *extra])
            print(f"  {label}: {describe_rows(rows)}", flush=True)
    with phase(f"bench run: {total} models x local", timings):
        for label, (paths, extra) in groups.items():
            rows = run_models(bench, f"run-local-{label.split()[0]}", paths, "local",
                              [*short_settings(args), *local_threads, *extra])
            print(f"  {label}: {describe_rows(rows)}", flush=True)
    again = [*tiny[::REPEAT_EVERY], *nas[::REPEAT_EVERY]]
    with phase(f"bench run again: {len(again)} models x {len(DEVICES)} devices "
               "(run-to-run repeatability)", timings):
        run_models(bench, "again-emulated", again, ",".join(EMULATED), short_settings(args))
        run_models(bench, "again-local", again, "local", [*short_settings(args), *local_threads])
    return {label: len(paths) for label, (paths, _) in groups.items()}


# --------------------------------------------------------------------------------------------
# figures


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(numpy.mean(present)) if present else None


def _cell(value: float | None, width: int, digits: int = 3, suffix: str = "") -> str:
    return f"{'-' if value is None else f'{value:.{digits}f}{suffix}':>{width}}"


HEADER = (f"  {'device':<22} {'model':<13} {'scored':>7} {'+-10%':>6} {'MdAPE':>7} "
          f"{'rho':>6} {'in 90%':>7}")


def _line(device: str, kind: str, scored: str, within: float | None, mdape: float | None,
          rho: float | None, inside: float | None) -> str:
    return (f"  {device:<22} {kind:<13} {scored:>7} {_cell(within, 6, 2)} "
            f"{_cell(mdape, 7, 1, '%')} {_cell(rho, 6, 3)} {_cell(inside, 7, 2)}")


def print_repeatability(store_url: str) -> None:
    """How far two runs of one network on one device (same settings) are apart: the
    demo's runs of tiny-bert and of the digits family were measured again by bench run,
    and every ``REPEAT_EVERY``-th tiny-bert variant and NAS network twice (a network's row
    is the median of its runs)."""
    from hilbench.predictor.training import load_runs
    from hilbench.profiles.store import Store

    with Store.open(store_url) as store:
        loaded = load_runs(store)
    pairs: dict[tuple[str, str, str], list[float]] = {}
    for run in loaded.runs:
        pairs.setdefault((run.device, run.network.key, run.config), []).append(run.latency_ms)
    gaps: dict[str, list[float]] = {}
    for (device, _, _), values in pairs.items():
        if len(values) >= 2:
            gaps.setdefault(device, []).append(abs(values[-1] / values[0] - 1.0))
    if gaps:
        print("  run-to-run: median |p50 ratio - 1| of networks measured twice: " + ", ".join(
            f"{d} {numpy.median(g) * 100:.1f}% ({len(g)})" for d, g in sorted(gaps.items())))


def print_cross_validation(scores: Sequence[dict[str, Any]], folds: int) -> None:
    print(f"\ncross-validation: {folds} folds over models (a model is held out whole, at "
          "every batch; the references always in training)")
    print(HEADER)
    kinds = {"device": "device model", "transfer": "transfer"}
    for kind in kinds:
        for score in (s for s in scores if s["source"] == kind):
            print(_line(score["device"], kinds[kind],
                        f"{score['predicted']}/{score['measured']}", score["within_10pct"],
                        score["median_abs_pct_error"], score["spearman"],
                        score["interval_coverage"]))
    for kind in kinds:
        for label, group in (("mean (emulated)", EMULATED), ("mean (all devices)", DEVICES)):
            chosen = [s for s in scores if s["source"] == kind and s["device"] in group]
            if not chosen:
                continue
            print(_line(f"{label}, {len(chosen)}", kinds[kind],
                        str(sum(s["predicted"] for s in chosen)),
                        _mean([s["within_10pct"] for s in chosen]),
                        _mean([s["median_abs_pct_error"] for s in chosen]),
                        _mean([s["spearman"] for s in chosen]),
                        _mean([s["interval_coverage"] for s in chosen])))


@dataclass(frozen=True)
class FewShot:
    device: str
    measured: int
    scored: int
    within: float
    mdape: float
    rho: float | None
    inside: float
    bias: dict[str, float]  # kind of model -> median signed % error (predicted / measured)


KINDS = ("NAS (dense CNN)", "transformer", "int8 / fp16", "block-sparse")


def model_kind(name: str) -> str:
    """Which of ``KINDS`` a measured model is, by the names this benchmark gives them."""
    if name.startswith(("nb201-", "fbnet-")):
        return KINDS[0]
    if "block" in name:
        return KINDS[3]
    return KINDS[2] if "int8" in name or "fp16" in name else KINDS[1]


def _figures(truth: numpy.ndarray, predicted: Predictions) -> tuple[float, float, float | None,
                                                                      float]:
    """+-10 % share, MdAPE (%), Spearman's rho and the share inside the interval."""
    from scipy.stats import spearmanr

    error = numpy.abs(predicted.median_ms / truth - 1.0)
    rho = (float(spearmanr(truth, predicted.median_ms).statistic)
           if len(truth) >= 3 and numpy.ptp(truth) > 0 else None)
    inside = (truth >= predicted.lower_ms) & (truth <= predicted.upper_ms)
    return (float(numpy.mean(error <= 0.10)), float(numpy.median(error)) * 100, rho,
            float(numpy.mean(inside)))


def few_shot(training: TrainingSet, coverage: float, seed: int) -> list[FewShot]:
    """Leave one device out: the transfer model on the other devices, the target adapted
    from its references (and ``FEW_SHOT`` more random models, ``FEW_SHOT_DRAWS`` draws)."""
    from hilbench.predictor.model import DeviceData, TransferModel
    from hilbench.predictor.training import fitting_threads

    references = training.reference_rows()
    members = training.with_references(training.devices)
    if references is None or len(members) < 3:
        return []
    rng = numpy.random.default_rng(seed)
    results = []
    for target in members:
        others = {name: DeviceData(numpy.asarray(training.devices[name].rows),
                                   numpy.asarray(training.devices[name].latency_ms))
                  for name in members if name != target}
        rows = numpy.asarray(training.devices[target].rows)
        latency = numpy.asarray(training.devices[target].latency_ms)
        is_reference = numpy.isin(rows, references)
        rest = numpy.flatnonzero(~is_reference)
        with fitting_threads(training.rows):
            model = TransferModel(references, coverage=coverage, seed=seed).fit(
                training.features, others)
            for extra, draws in ((0, 1), (FEW_SHOT, FEW_SHOT_DRAWS)):
                figures = []
                signed: dict[str, list[float]] = {}
                for _ in range(draws):
                    chosen = rng.choice(rest, extra, replace=False)
                    measured = numpy.concatenate([numpy.flatnonzero(is_reference), chosen])
                    model.adapt(target, training.features,
                                DeviceData(rows[measured], latency[measured]))
                    scored = numpy.setdiff1d(rest, chosen)
                    predicted = model.predict(target, training.features[rows[scored]])
                    figures.append(_figures(latency[scored], predicted))
                    for i, position in enumerate(scored):
                        kind = model_kind(training.networks[rows[position]].name)
                        signed.setdefault(kind, []).append(
                            float(predicted.median_ms[i] / latency[position] - 1.0))
                results.append(FewShot(
                    target, len(references) + extra, len(rest) - extra,
                    float(numpy.mean([f[0] for f in figures])),
                    float(numpy.mean([f[1] for f in figures])),
                    _mean([f[2] for f in figures]),
                    float(numpy.mean([f[3] for f in figures])),
                    {kind: float(numpy.median(v)) * 100 for kind, v in signed.items()}))
    return results


def print_few_shot(results: Sequence[FewShot]) -> None:
    if not results:
        print("\nleave-one-device-out: needs 3 devices with the reference set")
        return
    print(f"\nleave-one-device-out few-shot (transfer model fitted on the other devices; "
          f"the target adapted from its references, then from the references + {FEW_SHOT} "
          f"random models, mean of {FEW_SHOT_DRAWS} draws)")
    print(HEADER.replace("model        ", "measured     "))
    for measured in sorted({r.measured for r in results}):
        group = [r for r in results if r.measured == measured]
        for r in group:
            print(_line(r.device, f"{r.measured} on target", str(r.scored), r.within, r.mdape,
                        r.rho, r.inside))
        for label, devices in (("mean (emulated)", EMULATED), ("mean (all devices)", DEVICES)):
            chosen = [r for r in group if r.device in devices]
            if chosen:
                print(_line(f"{label}, {len(chosen)}", f"{measured} on target",
                            str(sum(r.scored for r in chosen)),
                            _mean([r.within for r in chosen]), _mean([r.mdape for r in chosen]),
                            _mean([r.rho for r in chosen]), _mean([r.inside for r in chosen])))
    print("  median signed error (predicted / measured - 1) by kind of model:")
    print(f"  {'device':<12} {'measured':<13} " + " ".join(f"{k:>16}" for k in KINDS))
    for r in results:
        print(f"  {r.device:<12} {f'{r.measured} on target':<13} " + " ".join(
            _cell(r.bias.get(k), 16, 1, "%") for k in KINDS))


def predict_with(predictor: Predictor, source: str, device: str
                 ) -> Callable[[numpy.ndarray], Predictions] | None:
    """The predictor's device model or transfer model for ``device``, if it has it."""
    if source == "device":
        model = predictor.device_models.get(device)
        return model.predict if model is not None else None
    transfer = predictor.transfer
    if transfer is None or device not in predictor.transfer_devices:
        return None
    return lambda features: transfer.predict(device, features)


def print_speed(artifact: Path, training: TrainingSet) -> None:
    """10,000 candidates per device through the trained predictor."""
    from hilbench.predictor.artifact import load
    from hilbench.predictor.features import ModelFeatures
    from hilbench.predictor.service import Predictor
    from hilbench.predictor.training import FeatureCache, fitting_threads

    predictor = Predictor.from_artifact(load(artifact))
    matrix = numpy.resize(training.features, (CANDIDATES, training.features.shape[1]))
    cache = FeatureCache()
    subjects: list[ModelFeatures] = [cache.get(n) for n in training.networks]
    print(f"\nprediction speed: {CANDIDATES:,} candidates (feature rows of the measured "
          "networks, repeated), one thread")
    print(f"  {'device':<12} {'device model':>14} {'transfer':>10} {'estimate() each':>16}")
    for device in DEVICES:
        timings: list[str] = []
        with fitting_threads(CANDIDATES):
            for source in ("device", "transfer"):
                predict = predict_with(predictor, source, device)
                if predict is None:
                    timings.append("-")
                    continue
                started = time.perf_counter()
                predict(matrix)
                timings.append(f"{(time.perf_counter() - started) * 1e3:.0f} ms")
        if predictor.source(device) is None:
            timings.append("-")
        else:
            started = time.perf_counter()
            with fitting_threads(1):
                for i in range(ESTIMATE_CALLS):
                    predictor.estimate(device, subjects[i % len(subjects)])
            each = (time.perf_counter() - started) / ESTIMATE_CALLS
            timings.append(f"{each * 1e3:.2f} ms")
        print(f"  {device:<12} {timings[0]:>14} {timings[1]:>10} {timings[2]:>16}")


def evaluate(bench: Bench, store_url: str, work: Path, args: argparse.Namespace,
             timings: dict[str, float]) -> None:
    from hilbench.predictor.training import FeatureCache, build_training_set
    from hilbench.profiles.store import Store

    with phase("features of every measured network", timings), Store.open(store_url) as store:
        cache = FeatureCache()
        training = build_training_set(store, cache=cache)
    extracted = cache.extracted
    each = (f", {timings['features of every measured network'] / extracted * 1e3:.0f} ms each"
            if extracted else "")
    print(f"  {training.rows} rows of {len(training.devices)} devices, "
          f"{len(training.networks)} networks ({extracted} extracted here{each}); set aside: "
          f"{dict(training.set_aside) or 'none'}")
    for name, rows in training.devices.items():
        print(f"  {name:<12} {len(rows.rows):4d} rows ({rows.runs} runs), "
              f"{min(rows.latency_ms):.3f} to {max(rows.latency_ms):.3f} ms, "
              f"{rows.config_label}")
    print_repeatability(store_url)
    with phase(f"bench predictor eval --folds {args.folds}", timings):
        scores = json.loads(bench("eval", "predictor", "eval", "--folds", str(args.folds),
                                  "--json"))
    artifact = work / "predictor.hbp"
    with phase("bench predictor train", timings):
        header = json.loads(bench("train", "predictor", "train", "--out", str(artifact),
                                  "--json"))
    learners = {name: info.get("learner") for name, info in header["devices"].items()}
    print(f"  learners: {learners}; transfer devices: {header['transfer_devices']}")
    with phase("leave-one-device-out few-shot", timings):
        shots = few_shot(training, 0.9, args.seed)
    print_cross_validation(scores, args.folds)
    print_few_shot(shots)
    print_speed(artifact, training)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="fewer variants and NAS networks (32 models, not 104)")
    parser.add_argument("--work", type=Path,
                        help="work folder (kept); default: a temporary one, removed at the end")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    parser.add_argument("--store", help="profile store URL [default: SQLite in the work folder]")
    parser.add_argument("--skip-measure", action="store_true",
                        help="evaluate the store as it is (a kept --work folder or --store)")
    parser.add_argument("--local-threads", type=int, default=1,
                        help="threads of the local device's runs (0: the runtime's default)")
    parser.add_argument("--min-time", default="300ms", help="bench run --min-time per job")
    parser.add_argument("--warmup-time", default="50ms", help="bench run --warmup-time")
    parser.add_argument("--nb201", type=int, help="NB201 networks to measure")
    parser.add_argument("--fbnet", type=int, help="FBNet networks to measure")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds over models")
    parser.add_argument("--seed", type=int, default=0, help="seed of the NAS draws, few-shot picks")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    plan = Plan(plan.tiny_bert, plan.digits,
                plan.nb201 if args.nb201 is None else args.nb201,
                plan.fbnet if args.fbnet is None else args.fbnet)
    work = args.work or Path(tempfile.mkdtemp(prefix="hilbench-predictor-own-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    os.environ["XDG_DATA_HOME"] = str(work / "data")  # this process and every bench call
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    store_url = args.store or f"sqlite:///{work / 'profiles.db'}"
    bench = Bench(store_url, work / "logs")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    print(f"work folder {work}, store {store_url}", flush=True)
    try:
        if not args.skip_measure:
            counts = measure(bench, work, plan, args, timings)
            print(f"  models measured: {counts}; devices: {', '.join(DEVICES)}", flush=True)
        evaluate(bench, store_url, work, args, timings)
    finally:
        total = time.perf_counter() - started
        print("\nphases: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
        print(f"total {total:.0f} s ({total / 60:.1f} min)")
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work} (logs in {work / 'logs'})")


if __name__ == "__main__":
    main()
