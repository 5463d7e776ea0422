"""TFLite models through LiteRT (``ai-edge-litert``), or ``tflite_runtime`` where only it
is installed (older boards)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from hilbench.agents.runners.base import Dim, TensorSpec
from hilbench.core.errors import ModelError, UnsupportedFormatError

_DTYPES = ("float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")


def _interpreter_class() -> tuple[Any, str, str]:
    """(Interpreter class, runtime name, version) of the TFLite runtime present."""
    try:
        import ai_edge_litert
        from ai_edge_litert import interpreter as litert

        return litert.Interpreter, "litert", str(getattr(ai_edge_litert, "__version__", "?"))
    except ImportError:
        pass
    try:
        import tflite_runtime
        from tflite_runtime import interpreter as legacy

        return legacy.Interpreter, "tflite_runtime", str(tflite_runtime.__version__)
    except ImportError:
        raise UnsupportedFormatError(
            "TFLite models need LiteRT on the device: pip install ai-edge-litert"
        ) from None


class LiteRtModel:
    """A LiteRT interpreter; inputs are resized when a feed's shape changes."""

    def __init__(self, interpreter: Any, path: Path, threads: int | None) -> None:
        self._interpreter = interpreter
        self._path = path
        self._threads = threads
        details = interpreter.get_input_details()
        self._indices = {d["name"]: d["index"] for d in details}
        self._inputs = tuple(self._spec(path, d) for d in details)
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._outputs = [d["index"] for d in interpreter.get_output_details()]

    @staticmethod
    def _spec(path: Path, detail: Mapping[str, Any]) -> TensorSpec:
        dtype = getattr(detail["dtype"], "__name__", str(detail["dtype"]))
        if dtype not in _DTYPES:
            raise ModelError(f"{path.name}: input {detail['name']!r} has type {dtype}, "
                             "which hilbench cannot generate data for")
        signature = detail.get("shape_signature")
        dims = signature if signature is not None and len(signature) else detail["shape"]
        shape: list[Dim] = [int(d) if int(d) > 0 else None for d in dims]
        return TensorSpec(name=str(detail["name"]), dtype=dtype, shape=tuple(shape))

    @property
    def inputs(self) -> Sequence[TensorSpec]:
        return self._inputs

    @property
    def default_dims(self) -> Mapping[str, int]:
        return {}

    @property
    def threads(self) -> int | None:
        return self._threads

    def _resize(self, feeds: dict[str, Any]) -> None:
        for name, value in feeds.items():
            self._interpreter.resize_tensor_input(self._indices[name], list(value.shape))
            self._shapes[name] = tuple(value.shape)
        self._interpreter.allocate_tensors()

    def run(self, feeds: dict[str, Any]) -> None:
        try:
            if any(self._shapes.get(name) != value.shape for name, value in feeds.items()):
                self._resize(feeds)
            for name, value in feeds.items():
                self._interpreter.set_tensor(self._indices[name], value)
            self._interpreter.invoke()
            for index in self._outputs:
                self._interpreter.get_tensor(index)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ModelError(f"{self._path.name}: inference failed: {exc}") from exc


class LiteRtRunner:
    """Loads .tflite files."""

    def __init__(self) -> None:
        self._interpreter, self.name, self._version = _interpreter_class()

    def version(self) -> str:
        return self._version

    def load(self, path: Path, threads: int | None, execution_provider: str) -> LiteRtModel:
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        try:
            interpreter = self._interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{path.name}: LiteRT cannot load it: {first}") from exc
        return LiteRtModel(interpreter, path, threads)
