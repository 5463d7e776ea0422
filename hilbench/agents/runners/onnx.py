"""onnxruntime runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from hilbench.agents.runners.base import Dim, TensorSpec
from hilbench.core.errors import ModelError, first_line

DEFAULT_DIMS_KEY = "hilbench.default_dims"

ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


_ORT_ERROR_NAMES = (
    "Fail",
    "InvalidArgument",
    "NoSuchFile",
    "NoModel",
    "EngineError",
    "RuntimeException",
    "InvalidProtobuf",
    "ModelLoaded",
    "NotImplemented",
    "InvalidGraph",
    "EPFail",
)


def ort_errors() -> tuple[type[Exception], ...]:
    """onnxruntime's exception classes (they derive from Exception, not RuntimeError)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    found = tuple(getattr(state, name) for name in _ORT_ERROR_NAMES if hasattr(state, name))
    return (*found, RuntimeError, ValueError)



def parse_default_dims(text: str) -> dict[str, int]:
    """``"batch=1,sequence=128"`` -> ``{"batch": 1, "sequence": 128}``; ignores junk."""
    dims: dict[str, int] = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name.strip() and value.strip().isdigit():
            dims[name.strip()] = int(value)
    return dims


class OnnxModel:
    """An onnxruntime InferenceSession with its input signature."""

    def __init__(self, session: Any, path: Path, threads: int | None) -> None:
        self._session = session
        self._path = path
        self._errors = ort_errors()
        self._threads = threads
        self._inputs = tuple(self._spec(path, arg) for arg in session.get_inputs())
        meta = session.get_modelmeta().custom_metadata_map
        self._default_dims = parse_default_dims(meta.get(DEFAULT_DIMS_KEY, ""))

    @staticmethod
    def _spec(path: Path, arg: Any) -> TensorSpec:
        dtype = ORT_TYPES.get(arg.type)
        if dtype is None:
            raise ModelError(
                f"{path.name}: input {arg.name!r} has type {arg.type}, "
                "which hilbench cannot generate data for"
            )
        shape: list[Dim] = [d if isinstance(d, (int, str)) else None for d in arg.shape]
        return TensorSpec(name=arg.name, dtype=dtype, shape=tuple(shape))

    @property
    def inputs(self) -> Sequence[TensorSpec]:
        return self._inputs

    @property
    def default_dims(self) -> Mapping[str, int]:
        return self._default_dims

    @property
    def threads(self) -> int | None:
        return self._threads

    def run(self, feeds: dict[str, Any]) -> None:
        try:
            self._session.run(None, feeds)
        except self._errors as exc:
            raise ModelError(f"{self._path.name}: inference failed: {first_line(exc)}") from exc


class OnnxRuntimeRunner:
    """Loads .onnx files with onnxruntime."""

    name = "onnxruntime"

    def version(self) -> str:
        import onnxruntime

        return str(onnxruntime.__version__)

    def load(self, path: Path, threads: int | None, execution_provider: str) -> OnnxModel:
        import onnxruntime

        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        if execution_provider not in onnxruntime.get_available_providers():
            raise ModelError(
                f"execution provider {execution_provider} is not available here; available: "
                + ", ".join(onnxruntime.get_available_providers())
            )
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=[execution_provider]
            )
        except ort_errors() as exc:
            message = f"{path.name}: onnxruntime cannot load it: {first_line(exc)}"
            raise ModelError(message) from exc
        return OnnxModel(session, path, threads)
