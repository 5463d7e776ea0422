"""Predictions for (model, device) pairs from a trained artifact, next to what the store
measured.

A device is predicted by its own model when it has one, else by the transfer model when it
measured the reference set; otherwise its row says what to run. A model with op types or
kernel kinds that the predicting model never saw in training keeps its prediction, with a
wider interval and a note naming them: the upper bound is multiplied by ``2 + 8 f`` and the
lower one divided by ``1 + f``, where ``f`` is the share of the model's FLOPs (or of its
bytes, whichever is larger) in kernels of unseen kinds or ops.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy

from hilbench.core.errors import ModelError
from hilbench.core.records import ModelRecord
from hilbench.predictor.artifact import Artifact, default_path, save
from hilbench.predictor.artifact import read_header as load_header
from hilbench.predictor.features import MODEL_FEATURE_NAMES, ModelFeatures, model_vector
from hilbench.predictor.references import REFERENCES
from hilbench.predictor.training import (
    DEVICE_MIN_ROWS,
    TRANSFER_MIN_DEVICES,
    FeatureCache,
    Fitted,
    Network,
    Progress,
    TrainingSet,
    build_training_set,
    fit,
    fitting_threads,
    load_runs,
)
from hilbench.profiles.store import Store

if TYPE_CHECKING:
    from hilbench.predictor.model import LatencyModel, TransferModel

DEFAULT_COVERAGE = 0.9  # as hilbench.predictor.model's
SOURCES = {"device": "device model", "transfer": "transfer"}


@dataclass(frozen=True)
class Estimate:
    median_ms: float
    lower_ms: float
    upper_ms: float
    source: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subject:
    """A model to predict: its file, record and features at the asked batch."""

    path: Path
    record: ModelRecord
    features: ModelFeatures
    batch: int


def read_model(path: Path, batch: int, cache: FeatureCache | None = None) -> Subject:
    """The model's features (through the feature cache); ``ModelError`` (one line) when it
    is missing or corrupt."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    record = ModelRecord.from_file(path)
    if record.format not in ("onnx", "tflite"):
        raise ModelError(f"{path.name}: the predictor reads .onnx and .tflite models")
    network = Network(record.sha256, record.name, record.format, str(path), batch)
    features = (cache or FeatureCache()).get(network)
    return Subject(path, record, features, batch)


@dataclass
class Predictor:
    """A loaded artifact, ready to predict."""

    header: dict[str, Any]
    device_models: dict[str, LatencyModel]
    transfer: TransferModel | None
    transfer_devices: tuple[str, ...] = field(default=())

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> Predictor:
        payload = artifact.payload
        return cls(artifact.header, dict(payload["device_models"]), payload["transfer"],
                   tuple(payload["transfer_devices"]))

    @property
    def devices(self) -> dict[str, dict[str, Any]]:
        return dict(self.header["devices"])

    def source(self, device: str) -> str | None:
        if device in self.device_models:
            return "device"
        return "transfer" if device in self.transfer_devices and self.transfer else None

    def _seen(self, device: str, source: str) -> tuple[set[str], set[str]]:
        if source == "device":
            info = self.devices[device]
            return set(info["device_ops"]), set(info["device_kernels"])
        return set(self.header["transfer_ops"]), set(self.header["transfer_kernels"])

    def why_not(self, device: str) -> str:
        """What to run so that ``device`` can be predicted."""
        info = self.devices.get(device)
        calibrate = f"run bench predictor calibrate {device}"
        if info is None:
            return (f"{device} has no measurements in the predictor's training set: "
                    f"{calibrate} (or bench run, then bench predictor train)")
        if self.transfer is None and info["references"] == len(self._references()):
            return (f"{device} measured the reference set, but the transfer model needs "
                    f"{TRANSFER_MIN_DEVICES} devices that did: run bench predictor calibrate "
                    f"on another device, or measure {DEVICE_MIN_ROWS - info['rows']} more "
                    f"models on {device} (bench run), then bench predictor train")
        return (f"{device} has {info['rows']} measured models (a device model needs "
                f"{DEVICE_MIN_ROWS}) and has not measured the reference set: {calibrate}")

    def _references(self) -> list[str]:
        return list(self.header.get("references", []))

    def estimate(self, device: str, features: ModelFeatures) -> Estimate | None:
        """One model on ``device``: None when the device cannot be predicted."""
        return self.estimate_many(device, [features])[0]

    def estimate_many(self, device: str, many: Sequence[ModelFeatures]
                      ) -> list[Estimate | None]:
        """Several models on ``device`` in one call of its model (scikit-learn's cost is
        per call, about 2 ms, not per row)."""
        source = self.source(device)
        if source is None or not many:
            return [None] * len(many)
        vectors = numpy.vstack([model_vector(features) for features in many])
        if source == "device":
            predicted = self.device_models[device].predict(vectors)
        else:
            assert self.transfer is not None
            predicted = self.transfer.predict(device, vectors)
        ops, kernels = self._seen(device, source)
        trained = (self.devices[device].get("trained_range") if source == "device"
                   else self.header.get("transfer_range")) or {}
        return [self._checked(source, features, vectors[i], float(predicted.median_ms[i]),
                              float(predicted.lower_ms[i]), float(predicted.upper_ms[i]),
                              ops, kernels, trained)
                for i, features in enumerate(many)]

    @staticmethod
    def _checked(source: str, features: ModelFeatures, vector: numpy.ndarray, median: float,
                 lower: float, upper: float, ops: set[str], kernels: set[str],
                 trained: dict[str, list[float]]) -> Estimate:
        """The estimate with its interval widened, and notes, for what training never saw:
        op types or kernels, and sizes outside its span."""
        fraction, notes = unseen(features, ops, kernels)
        if notes:
            lower /= 1.0 + fraction
            upper *= 2.0 + 8.0 * fraction
            notes.append(f"interval widened: {fraction:.0%} of the FLOPs/bytes in kernels "
                         "the predictor never saw")
        distance, outside_note = outside(vector, trained)
        if outside_note:
            factor = math.exp(distance / 2)
            lower, upper = lower / factor, upper * factor
            notes.append(outside_note)
        return Estimate(median, lower, upper, source, tuple(notes))


def unseen(features: ModelFeatures, ops: set[str], kernels: set[str]
           ) -> tuple[float, list[str]]:
    """The share of the model's cost (FLOPs or bytes, the larger) in kernels whose kind or
    ops were not in training, and one note per unseen op type and kernel kind."""
    new_ops = Counter({op: n for op, n in features.op_histogram.items() if op not in ops})
    live = [k for k in features.kernels if k.live]
    new_kernels = Counter(k.kind for k in live
                          if k.kind not in kernels and not set(k.ops) & set(new_ops))
    flagged = [k for k in live if k.kind not in kernels or set(k.ops) & set(new_ops)]
    total_flops = sum(k.flops for k in live)
    total_bytes = sum(k.bytes_in + k.bytes_out + k.param_bytes for k in live)
    flops = sum(k.flops for k in flagged)
    nbytes = sum(k.bytes_in + k.bytes_out + k.param_bytes for k in flagged)
    fraction = max(flops / total_flops if total_flops else 0.0,
                   nbytes / total_bytes if total_bytes else 0.0)
    notes = [f"unseen op: {op} ({n} node{'s' if n != 1 else ''})"
             for op, n in sorted(new_ops.items())]
    notes += [f"unseen kernel: {kind} ({n})" for kind, n in sorted(new_kernels.items())]
    return min(1.0, fraction), notes


def outside(vector: numpy.ndarray, trained: dict[str, list[float]]) -> tuple[float, str | None]:
    """How far (natural-log units) the model lies outside the span of the networks the
    predicting model was fitted on, and a note saying so (None inside): the interval is
    then widened by ``exp(distance / 2)`` on each side."""
    worst, note = 0.0, None
    for name, (low, high) in trained.items():
        value = float(vector[MODEL_FEATURE_NAMES.index(name)])
        distance = max(low - value, value - high, 0.0)
        if distance > worst:
            label = name.removeprefix("log_").replace("_", " ")
            side = "below the smallest" if value < low else "above the largest"
            worst, note = distance, (
                f"extrapolated: {label} {math.exp(distance):.3g}x {side} it was trained on; "
                f"interval widened x{math.exp(distance / 2):.3g}")
    return worst, note


RUNTIMES_OF_FORMAT = {"onnx": ("onnxruntime", "onnxruntime_perf_test"),
                      "tflite": ("litert", "benchmark_model")}


def runtime_mismatch(model_format: str, trained_settings: str) -> str | None:
    """A note when the device's model learned from runs of another runtime than the one
    that runs a model of this format (a .tflite model on a device measured with
    onnxruntime): the prediction is then the other runtime's latency."""
    runtime = trained_settings.split(" ", 1)[0]
    wanted = RUNTIMES_OF_FORMAT.get(model_format)
    if not runtime or wanted is None or runtime in wanted or runtime == "replay":
        return None
    return f"trained on {runtime} runs: the estimate is {runtime}'s latency, not {wanted[0]}'s"


def measured(store: Store, subjects: Sequence[Subject], settings_keys: dict[str, str]
             ) -> dict[tuple[str, str], tuple[float, str | None]]:
    """(sha256, device) -> the median p50 of its usable runs at the subject's batch (and
    no other input settings), preferring the device's trained settings; with a note when
    only runs under other settings exist."""
    wanted = {s.record.sha256: s for s in subjects}
    found: dict[tuple[str, str], dict[bool, list[float]]] = {}
    for run in load_runs(store, sha256s=wanted).runs:
        subject = wanted[run.network.sha256]
        network = run.network
        if network.batch != subject.batch or network.dims or network.shapes:
            continue
        main = settings_keys.get(run.device) in (None, run.config)
        found.setdefault((network.sha256, run.device), {}).setdefault(main, []).append(
            run.latency_ms)
    values: dict[tuple[str, str], tuple[float, str | None]] = {}
    for key, by_main in found.items():
        if True in by_main:
            values[key] = (float(numpy.median(by_main[True])), None)
        else:
            values[key] = (float(numpy.median(by_main[False])),
                           "measured under other settings than the predictor's")
    return values


def predict_rows(predictor: Predictor, subjects: Sequence[Subject], devices: Sequence[str],
                 store: Store | None) -> list[dict[str, Any]]:
    """One row per (model, device)."""
    keys = {name: info["settings_key"] for name, info in predictor.devices.items()}
    values = measured(store, subjects, keys) if store is not None else {}
    rows = []
    for subject in subjects:
        for device in devices:
            with fitting_threads(1):
                estimate = predictor.estimate(device, subject.features)
            value, measured_note = values.get((subject.record.sha256, device), (None, None))
            notes = list(estimate.notes) if estimate else [
                f"no prediction: {predictor.why_not(device)}"]
            trained_on = predictor.devices.get(device, {}).get("settings", "")
            if estimate and (mismatch := runtime_mismatch(subject.record.format, trained_on)):
                notes.append(mismatch)
            if measured_note:
                notes.append(measured_note)
            rows.append({
                "model": subject.record.name, "model_path": str(subject.path),
                "model_sha256": subject.record.sha256, "batch": subject.batch,
                "device": device,
                "predicted_ms": round(estimate.median_ms, 4) if estimate else None,
                "lower": round(estimate.lower_ms, 4) if estimate else None,
                "upper": round(estimate.upper_ms, 4) if estimate else None,
                "measured_ms": round(value, 4) if value is not None else None,
                "source": estimate.source if estimate else None,
                "notes": notes,
            })
    return rows


@dataclass(frozen=True)
class Trained:
    path: Path
    header: dict[str, Any]
    training: TrainingSet
    fitted: Fitted


def train(store: Store, out: Path | None = None, coverage: float = DEFAULT_COVERAGE,
          valid_only: bool = False, progress: Progress | None = None) -> Trained:
    """Train on every usable run of ``store`` and write the artifact (default: hilbench's
    data folder, named by the training-set id)."""
    started = time.perf_counter()
    training = build_training_set(store, valid_only=valid_only, progress=progress)
    fitted = fit(training, coverage)
    header = {
        "training_set_id": training.id,
        "store": store.url,
        "coverage": coverage,
        "valid_only": valid_only,
        "rows": training.rows,
        "runs": len(training.run_ids),
        "networks": len(training.networks),
        "set_aside": dict(training.set_aside),
        "references": [r.source for r in REFERENCES],
        "transfer_devices": list(fitted.transfer_devices),
        "devices": fitted.devices,
        "transfer_ops": fitted.transfer_ops,
        "transfer_kernels": fitted.transfer_kernels,
        "transfer_range": fitted.transfer_range,
        "training_seconds": round(fitted.seconds, 3),
        "total_seconds": round(time.perf_counter() - started, 3),
    }
    path = save(out or default_path(training.id), header, fitted.payload())
    return Trained(path, load_header(path), training, fitted)
