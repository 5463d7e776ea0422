"""Check a model on this machine before any device runs it."""

from __future__ import annotations

from pathlib import Path

from hilbench.agents.inputs import make_feeds
from hilbench.agents.runners import runner_for
from hilbench.core.errors import ModelError
from hilbench.core.records import ModelRecord
from hilbench.core.settings import BenchmarkSettings


def checked_model(path: Path, settings: BenchmarkSettings) -> ModelRecord:
    """Hash the model, load it and run it once with the run's inputs, so that a missing,
    corrupt or unfeedable model is refused before anything is stored."""
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}")
    runner = runner_for(path)
    record = ModelRecord.from_file(path)
    model = runner.load(path, 1, "CPUExecutionProvider")
    model.run(make_feeds(model.inputs, settings, model.default_dims))
    return record
