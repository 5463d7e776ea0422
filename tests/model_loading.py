"""Loads damaged model files the way hilbench does, in a process of its own (the native
loaders, onnx's protobuf and shape inference, onnxruntime, LiteRT, could take a process down
with them): ``python -m tests.model_loading FILE...`` prints, for each file, a line
``start N`` before it is loaded and then one JSON line per loader, its outcome:
``{"case": N, "loader": ..., "outcome": "ok" | "clear" | "unclear", "error": ...}``.
``clear``: a hilbench error with a one-line message; ``unclear``: any other exception."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

from hilbench.agents.inputs import make_feeds
from hilbench.agents.runners import runner_for
from hilbench.core.errors import HilbenchError
from hilbench.core.records import ModelRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.predictor.service import read_model
from hilbench.predictor.training import FeatureCache


def _agent_load(path: Path) -> None:
    """What the agent does before it times anything: load, make inputs, run once."""
    model = runner_for(path).load(path, 1, "CPUExecutionProvider")
    feeds = make_feeds(model.inputs, BenchmarkSettings(), model.default_dims)
    model.run(feeds)


def _outcome(call: Callable[[], object]) -> tuple[str, str | None]:
    try:
        call()
    except HilbenchError as exc:
        message = str(exc)
        one_line = message.strip() and len(message.splitlines()) == 1 and len(message) < 1000
        return ("clear" if one_line else "unclear"), f"{type(exc).__name__}: {message[:300]}"
    except Exception as exc:  # noqa: BLE001 - the property: nothing but a HilbenchError
        return "unclear", f"{type(exc).__name__}: {str(exc)[:300]}"
    return "ok", None


def main(paths: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="hilbench-fuzz-features-") as folder:
        cache = FeatureCache(Path(folder))
        loaders: dict[str, Callable[[Path], object]] = {
            "ModelRecord.from_file": ModelRecord.from_file,
            "predictor read_model": lambda path: read_model(path, 1, cache),
            "agent runner load+run": _agent_load,
        }
        for case, name in enumerate(paths):
            print(f"start {case}", flush=True)
            path = Path(name)
            for loader, load in loaders.items():
                outcome, error = _outcome(partial(load, path))
                print(json.dumps({"case": case, "loader": loader, "outcome": outcome,
                                  "error": error}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
