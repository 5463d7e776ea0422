"""Accuracy of a model (or a compressed variant) on a dataset, on the host's onnxruntime CPU.

Accuracy does not depend on the device for the same runtime and precision, so it is measured
once here and the report records the runtime, its version and the execution provider.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy

from hilbench.agents.runners.onnx import ORT_TYPES, ort_errors
from hilbench.core.errors import DatasetError, ModelError, SettingsError, first_line
from hilbench.core.records import AccuracyRecord
from hilbench.variants.dataset import Dataset, InputSpec, check_inputs, fixed_batch_size
from hilbench.variants.metrics import Metric, resolve_metrics

RUNTIME = "onnxruntime"
PROVIDER = "CPUExecutionProvider"
DEFAULT_BATCH_SIZE = 32

@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float
    examples: int


@dataclass(frozen=True)
class AccuracyReport:
    """What a model scored on a dataset, and where that was measured."""

    model_path: str
    model_sha256: str
    dataset: str
    dataset_sha256: str
    examples: int
    output_name: str
    runtime: str
    runtime_version: str
    execution_provider: str
    results: tuple[MetricResult, ...]
    base_model_path: str | None = None
    base_model_sha256: str | None = None

    def value(self, metric: str) -> float:
        """The value of one metric by name; ``KeyError`` if it was not measured."""
        for result in self.results:
            if result.name == metric:
                return result.value
        raise KeyError(metric)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_path": self.model_path, "model_sha256": self.model_sha256,
            "dataset": self.dataset, "dataset_sha256": self.dataset_sha256,
            "examples": self.examples, "output_name": self.output_name,
            "runtime": self.runtime, "runtime_version": self.runtime_version,
            "execution_provider": self.execution_provider,
            "base_model_path": self.base_model_path, "base_model_sha256": self.base_model_sha256,
            "metrics": {r.name: {"value": r.value, "examples": r.examples}
                        for r in self.results},
        }


def measure_accuracy(model_path: str | Path, dataset: Dataset,
                     metrics: Sequence[str | Metric], base_model_path: str | Path | None = None,
                     output_name: str | None = None,
                     batch_size: int = DEFAULT_BATCH_SIZE) -> AccuracyReport:
    """Run the model (and the base model, for metrics that compare with it) on every example
    of ``dataset`` with onnxruntime on the CPU and compute each metric on the chosen output
    (the first one unless ``output_name`` is given)."""
    chosen = resolve_metrics(metrics)
    _check_requirements(chosen, dataset, base_model_path)
    session = open_session(model_path)
    name = pick_output(session, output_name, model_path)
    outputs = run_model(session, dataset, name, batch_size)
    base_outputs = None
    if base_model_path is not None:
        base = open_session(base_model_path)
        base_outputs = run_model(base, dataset, pick_output(base, output_name or name,
                                                            base_model_path), batch_size)
    results = tuple(MetricResult(m.name, m(outputs, dataset.labels, base_outputs), len(dataset))
                    for m in chosen)
    return AccuracyReport(
        model_path=str(Path(model_path).resolve()), model_sha256=file_sha256(model_path),
        dataset=dataset.name, dataset_sha256=dataset.sha256, examples=len(dataset),
        output_name=name, runtime=RUNTIME, runtime_version=_ort_version(),
        execution_provider=session.get_providers()[0], results=results,
        base_model_path=None if base_model_path is None else str(Path(base_model_path).resolve()),
        base_model_sha256=None if base_model_path is None else file_sha256(base_model_path),
    )


def open_session(model: str | Path | bytes) -> Any:
    """An onnxruntime CPU session; ``ModelError`` (one line) if the model cannot be loaded."""
    import onnxruntime

    if not isinstance(model, bytes) and not Path(model).is_file():
        raise ModelError(f"model {model} does not exist")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    label = "the model" if isinstance(model, bytes) else f"model {model}"
    try:
        return onnxruntime.InferenceSession(source, options, providers=[PROVIDER])
    except ort_errors() as exc:
        raise ModelError(f"onnxruntime cannot load {label}: {first_line(exc)}") from exc


def session_inputs(session: Any) -> tuple[InputSpec, ...]:
    """The model's inputs as ``InputSpec`` (dims: int when fixed, a name or None otherwise)."""
    specs = []
    for arg in session.get_inputs():
        dtype = ORT_TYPES.get(arg.type)
        if dtype is None:
            raise ModelError(f"model input {arg.name!r} has type {arg.type}, which hilbench "
                             "cannot feed from a dataset")
        specs.append(InputSpec(arg.name, dtype, tuple(_dim(d) for d in arg.shape)))
    return tuple(specs)


def pick_output(session: Any, output_name: str | None, model: str | Path) -> str:
    names = [arg.name for arg in session.get_outputs()]
    if output_name is None:
        return str(names[0])
    if output_name not in names:
        raise ModelError(f"model {model} has no output {output_name!r} (outputs: "
                         f"{', '.join(names)})")
    return output_name


def run_model(session: Any, dataset: Dataset, output_name: str,
              batch_size: int = DEFAULT_BATCH_SIZE) -> numpy.ndarray:
    """One output of the model for every example, concatenated along the example axis."""
    specs = session_inputs(session)
    check_inputs(dataset, specs)
    size = _batch_size(specs, batch_size, len(dataset))
    parts = []
    for batch in dataset.batches(size):
        feeds = {spec.name: batch.inputs[spec.name] for spec in specs}
        try:
            (result,) = session.run([output_name], feeds)
        except ort_errors() as exc:
            raise DatasetError(f"onnxruntime failed on examples {batch.start}.."
                               f"{batch.start + batch.size - 1} of dataset {dataset.name}: "
                               f"{first_line(exc)}") from exc
        parts.append(numpy.asarray(result))
    return numpy.concatenate(parts, axis=0)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ModelError(f"cannot read model {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def _check_requirements(metrics: Sequence[Metric], dataset: Dataset,
                        base_model_path: str | Path | None) -> None:
    for metric in metrics:
        if metric.needs_labels and dataset.labels is None:
            raise DatasetError(f"metric {metric.name} needs labels; dataset {dataset.name} "
                               "has none")
        if metric.needs_base and base_model_path is None:
            raise SettingsError(f"metric {metric.name} compares with the base model; give "
                                "base_model_path")


def _batch_size(specs: Sequence[InputSpec], wanted: int, examples: int) -> int:
    fixed = fixed_batch_size(specs)
    if fixed is None:
        if wanted < 1:
            raise SettingsError(f"batch size must be at least 1, got {wanted}")
        return wanted
    if examples % fixed:
        raise DatasetError(f"the model takes batches of exactly {fixed} examples; the dataset "
                           f"has {examples}, not a multiple")
    return fixed


def _dim(dim: Any) -> int | str | None:
    if isinstance(dim, int):
        return dim
    return str(dim) if dim else None


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)



def accuracy_records(report: AccuracyReport, measured_at: float) -> list[AccuracyRecord]:
    """One store record per metric of ``report``."""
    return [AccuracyRecord(
        model_sha256=report.model_sha256, dataset_name=report.dataset,
        dataset_sha256=report.dataset_sha256, metric=result.name, value=result.value,
        examples=result.examples, runtime=report.runtime,
        runtime_version=report.runtime_version, execution_provider=report.execution_provider,
        measured_at=measured_at, base_sha256=report.base_model_sha256,
    ) for result in report.results]
