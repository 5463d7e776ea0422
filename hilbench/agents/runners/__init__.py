"""Model runners: one per runtime, chosen by the model file's format."""

from __future__ import annotations

from pathlib import Path

from hilbench.agents.runners.base import LoadedModel, Runner, TensorSpec
from hilbench.core.errors import UnsupportedFormatError

__all__ = ["LoadedModel", "Runner", "TensorSpec", "runner_for"]


def runner_for(path: Path) -> Runner:
    """The runner for a model file, by its suffix."""
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from hilbench.agents.runners.onnx import OnnxRuntimeRunner

        return OnnxRuntimeRunner()
    if suffix == ".tflite":
        from hilbench.agents.runners.litert import LiteRtRunner

        return LiteRtRunner()
    raise UnsupportedFormatError(
        f"{path.name}: unknown model format {suffix!r}; expected .onnx or .tflite"
    )
