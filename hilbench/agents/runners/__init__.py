"""Model runners: one per runtime, chosen by the model file's format."""

from __future__ import annotations

from pathlib import Path

from hilbench.agents.runners.base import LoadedModel, Runner, TensorSpec
from hilbench.core.errors import UnsupportedFormatError

__all__ = ["LoadedModel", "Runner", "TensorSpec", "runner_for"]

_PLANNED_FORMATS = {".tflite": "TFLite"}


def runner_for(path: Path) -> Runner:
    """The runner for a model file, by its suffix."""
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from hilbench.agents.runners.onnx import OnnxRuntimeRunner

        return OnnxRuntimeRunner()
    if suffix in _PLANNED_FORMATS:
        raise UnsupportedFormatError(
            f"{path.name}: {_PLANNED_FORMATS[suffix]} models are not supported yet; use ONNX"
        )
    raise UnsupportedFormatError(f"{path.name}: unknown model format {suffix!r}; expected .onnx")
