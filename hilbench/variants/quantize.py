"""int8 and fp16 variants of an ONNX model, made by onnxruntime's own tools.

- ``quantize_dynamic_int8``: int8 weights, activations quantized at run time
  (``onnxruntime.quantization.quantize_dynamic``, QOperator ops such as MatMulInteger).
- ``quantize_static_int8``: int8 weights and activations in QDQ format, the activation ranges
  calibrated on the first examples of a dataset (``quantize_static``).
- ``convert_fp16``: float16 weights and compute, float32 inputs and outputs
  (``onnxruntime.transformers.float16.convert_float_to_float16`` with ``keep_io_types``).

Each takes a ``ModelProto`` or a path and returns a ``QuantizedModel``: the new ``ModelProto``,
a frozen ``Quantization`` that describes the method and its parameters, and the output path when
one was given. An output file is written atomically (a temporary file in the same folder, then
``os.replace``), so a half-written variant never exists. Every variant is loaded in onnxruntime
CPU before it is returned.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import onnx

from hilbench.core.errors import (
    CompressionError,
    HilbenchError,
    ModelError,
    SettingsError,
    first_line,
)
from hilbench.core.files import write_atomically
from hilbench.variants.accuracy import open_session, session_inputs
from hilbench.variants.dataset import Dataset, check_inputs, fixed_batch_size

ModelSource = onnx.ModelProto | str | Path

DYNAMIC_INT8 = "int8-dynamic"
STATIC_INT8 = "int8-static"
FP16 = "fp16"
DEFAULT_CALIBRATION_EXAMPLES = 128
DEFAULT_CALIBRATION_BATCH = 16
ACTIVATION_TYPES = ("int8", "uint8")
CALIBRATION_METHODS = ("MinMax", "Entropy", "Percentile")
_INT8_TYPES = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)


@dataclass(frozen=True)
class Quantization:
    """How a variant was made; ``as_dict`` is what the profile store keeps as its compression."""

    method: str
    weight_type: str
    activation_type: str
    quant_format: str | None = None
    per_channel: bool = False
    reduce_range: bool = False
    calibration_method: str | None = None
    calibration_examples: int | None = None
    calibration_dataset: str | None = None
    calibration_sha256: str | None = None
    keep_io_types: bool | None = None
    tool: str = "onnxruntime"
    tool_version: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True, eq=False)
class QuantizedModel:
    """A variant: its graph, how it was made, and the file it was written to (if any)."""

    model: Any  # onnx.ModelProto
    quantization: Quantization
    size_bytes: int
    path: Path | None = None


def quantize_dynamic_int8(model: ModelSource, output: str | Path | None = None, *,
                          per_channel: bool = False,
                          reduce_range: bool = False) -> QuantizedModel:
    """int8 weights (QInt8), activations quantized at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _workspace(model) as (source, folder):
        target = folder / "dynamic.onnx"
        with _mapped(DYNAMIC_INT8):
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                             per_channel=per_channel, reduce_range=reduce_range)
        description = Quantization(DYNAMIC_INT8, "int8", "uint8 (dynamic)", "QOperator",
                                   per_channel, reduce_range, tool_version=_ort_version())
        return _finish(source, target, description, output)


def quantize_static_int8(model: ModelSource, calibration: Dataset,
                         output: str | Path | None = None, *,
                         examples: int = DEFAULT_CALIBRATION_EXAMPLES,
                         batch_size: int = DEFAULT_CALIBRATION_BATCH,
                         activation_type: str = "int8", per_channel: bool = False,
                         calibration_method: str = "MinMax",
                         op_types: Sequence[str] | None = None) -> QuantizedModel:
    """int8 weights and activations in QDQ format; ranges calibrated on the first ``examples``
    examples of ``calibration`` (``DatasetError`` if its arrays do not match the inputs)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    _check_static(examples, batch_size, activation_type, calibration_method)
    data = calibration.limit(examples)
    with _workspace(model) as (source, folder):
        reader = _CalibrationReader(data, source, batch_size)
        target = folder / "static.onnx"
        act = QuantType.QInt8 if activation_type == "int8" else QuantType.QUInt8
        with _mapped(STATIC_INT8):
            quantize_static(str(source), str(target), reader, quant_format=QuantFormat.QDQ,
                            activation_type=act, weight_type=QuantType.QInt8,
                            per_channel=per_channel, op_types_to_quantize=_list(op_types),
                            calibrate_method=getattr(CalibrationMethod, calibration_method))
        description = Quantization(
            STATIC_INT8, "int8", activation_type, "QDQ", per_channel,
            calibration_method=calibration_method, calibration_examples=len(data),
            calibration_dataset=data.name, calibration_sha256=data.sha256,
            tool_version=_ort_version())
        return _finish(source, target, description, output)


def convert_fp16(model: ModelSource, output: str | Path | None = None, *,
                 keep_io_types: bool = True) -> QuantizedModel:
    """float16 weights and compute; with ``keep_io_types`` inputs and outputs stay float32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with _workspace(model) as (source, folder):
        target = folder / "fp16.onnx"
        with _mapped(FP16):
            converted = convert_float_to_float16(_load(source), keep_io_types=keep_io_types)
            onnx.save(converted, str(target))
        description = Quantization(FP16, "float16", "float16", keep_io_types=keep_io_types,
                                   tool_version=_ort_version())
        return _finish(source, target, description, output, need_int8=False)


def save_atomically(model: Any, output: str | Path) -> Path:
    """Write ``model`` to ``output`` through a temporary file in the same folder and
    ``os.replace``; a reader sees the old file or the whole new one, never a part."""
    destination = Path(output)
    try:
        write_atomically(destination, model.SerializeToString())
    except OSError as exc:
        raise ModelError(f"cannot write {destination}: {exc.strerror or exc}") from exc
    return destination


class _CalibrationReader:
    """onnxruntime's CalibrationDataReader protocol (``get_next``) over a dataset's batches,
    feeding only the model's inputs."""

    def __init__(self, dataset: Dataset, model: Path, batch_size: int) -> None:
        specs = session_inputs(open_session(model))
        check_inputs(dataset, specs)
        size = fixed_batch_size(specs) or batch_size
        self._names = [spec.name for spec in specs]
        self._batches = iter(list(dataset.batches(size)))

    def get_next(self) -> dict[str, numpy.ndarray] | None:
        batch = next(self._batches, None)
        if batch is None:
            return None
        return {name: numpy.array(batch.inputs[name]) for name in self._names}


@contextlib.contextmanager
def _workspace(model: ModelSource) -> Iterator[tuple[Path, Path]]:
    """A temporary folder and the source model as a file (written there for a ModelProto)."""
    with tempfile.TemporaryDirectory(prefix="hilbench-variant-") as folder:
        if isinstance(model, str | Path):
            source = Path(model)
            if not source.is_file():
                raise ModelError(f"model {source} does not exist or is not a file")
        else:
            source = Path(folder) / "source.onnx"
            with _mapped("saving"):
                onnx.save(model, str(source))
        yield source, Path(folder)


@contextlib.contextmanager
def _mapped(method: str) -> Iterator[None]:
    """onnxruntime's and onnx's errors (of any class) as one-line ``CompressionError``; its
    advice to pre-process first (logged on the root logger) is not the user's concern."""
    advice = _DropAdvice()
    logging.getLogger().addFilter(advice)
    try:
        yield
    except HilbenchError:
        raise
    except Exception as exc:
        raise CompressionError(f"{method}: onnxruntime cannot convert the model: "
                               f"{type(exc).__name__}: {first_line(exc)}") from exc
    finally:
        logging.getLogger().removeFilter(advice)


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _finish(source: Path, target: Path, description: Quantization, output: str | Path | None,
            need_int8: bool = True) -> QuantizedModel:
    if not target.is_file():
        raise CompressionError(f"{description.method}: onnxruntime wrote no model")
    try:
        open_session(target)
    except ModelError as exc:
        raise CompressionError(f"{description.method}: the variant does not run in "
                               f"onnxruntime CPU: {exc}") from exc
    result = _load(target)
    if need_int8 and _int8_count(result) <= _int8_count(_load(source)):
        raise CompressionError(f"{description.method}: onnxruntime found nothing to quantize "
                               f"(ops: {', '.join(_op_types(result))})")
    path = None if output is None else save_atomically(result, output)
    return QuantizedModel(result, description, result.ByteSize(), path)


def _load(path: Path) -> Any:
    with _mapped("loading"):
        return onnx.load(str(path))


def _int8_count(model: Any) -> int:
    return sum(1 for init in model.graph.initializer if init.data_type in _INT8_TYPES)


def _op_types(model: Any) -> list[str]:
    return sorted({node.op_type for node in model.graph.node})


def _check_static(examples: int, batch_size: int, activation_type: str, method: str) -> None:
    if examples < 1:
        raise SettingsError(f"calibration needs at least 1 example, got {examples}")
    if batch_size < 1:
        raise SettingsError(f"calibration batch size must be at least 1, got {batch_size}")
    if activation_type not in ACTIVATION_TYPES:
        raise SettingsError(f"activation type {activation_type!r} is not one of "
                            f"{', '.join(ACTIVATION_TYPES)}")
    if method not in CALIBRATION_METHODS:
        raise SettingsError(f"calibration method {method!r} is not one of "
                            f"{', '.join(CALIBRATION_METHODS)}")


def _list(values: Sequence[str] | None) -> list[str] | None:
    return None if values is None else list(values)


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)

