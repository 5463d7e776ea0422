"""The predictor a query uses: the named artifact, or the newest trained one."""

from __future__ import annotations

from pathlib import Path

from hilbench.core.errors import ArtifactError
from hilbench.predictor.artifact import latest, load
from hilbench.predictor.service import Predictor


def load_predictor(artifact: Path | None) -> tuple[Predictor | None, str]:
    """The trained predictor, or None and why (a missing default predictor is not an
    error: measured candidates still count; a named file that cannot be used is)."""
    if artifact is not None:
        return Predictor.from_artifact(load(artifact)), ""
    try:
        return Predictor.from_artifact(load(latest())), ""
    except ArtifactError as exc:
        return None, f"no usable predictor ({exc})"
