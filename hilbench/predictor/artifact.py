"""Trained predictors as versioned files.

Layout: a first line ``HILBENCH-PREDICTOR <format version>``, a second line holding the
header as JSON (what trained it: hilbench, scikit-learn and feature schema versions, a hash
of ``MODEL_FEATURE_NAMES`` and of the model code, the training-set id, the devices with their
row counts and figures, the coverage, when; and the size and sha256 of the payload), then
the payload: the fitted models, pickled.

``load`` checks the header and the payload's checksum *before* unpickling anything, and
refuses with one line on any mismatch: another format, hilbench, scikit-learn or feature
schema version, other feature names or model code, a truncated or corrupted file. Pickles run
code when loaded: only load artifacts you (or your CI) wrote; the checksum catches damage,
not a forger. Files are written to a temporary file beside the target, then renamed.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

import hilbench
from hilbench.core.errors import ArtifactError
from hilbench.core.files import write_atomically

ARTIFACT_FORMAT = 1
MAGIC = b"HILBENCH-PREDICTOR"
SUFFIX = ".hbp"
RETRAIN = "retrain with bench predictor train"


def sklearn_version() -> str:
    from importlib.metadata import version

    return version("scikit-learn")


def feature_names_sha256() -> str:
    from hilbench.predictor.features import MODEL_FEATURE_NAMES

    return hashlib.sha256("\n".join(MODEL_FEATURE_NAMES).encode()).hexdigest()


def model_code_sha256() -> str:
    """The predictor models' source (``model.py``, read without importing scikit-learn): a
    pickle of other code may not load, or not behave the same."""
    return hashlib.sha256(Path(__file__).with_name("model.py").read_bytes()).hexdigest()


def versions() -> dict[str, Any]:
    """What an artifact must match to be loaded by this hilbench."""
    from hilbench.predictor.features import FEATURE_SCHEMA_VERSION

    return {
        "format_version": ARTIFACT_FORMAT,
        "hilbench_version": hilbench.__version__,
        "sklearn_version": sklearn_version(),
        "feature_schema_version": FEATURE_SCHEMA_VERSION,
        "feature_names_sha256": feature_names_sha256(),
        "model_code_sha256": model_code_sha256(),
    }


def default_folder() -> Path:
    return Path(platformdirs.user_data_dir("hilbench")) / "predictor"


def default_path(training_set_id: str) -> Path:
    return default_folder() / f"predictor-{training_set_id[:16]}{SUFFIX}"


def latest(folder: Path | None = None) -> Path:
    """The newest artifact in the default folder."""
    where = folder or default_folder()
    found = sorted(where.glob(f"*{SUFFIX}"), key=lambda p: (p.stat().st_mtime, p.name))
    if not found:
        raise ArtifactError(f"no trained predictor in {where}: run bench predictor train first "
                            "(or give --artifact)")
    return found[-1]


@dataclass(frozen=True)
class Artifact:
    path: Path
    header: dict[str, Any]
    payload: Any


def save(path: Path, header: dict[str, Any], payload: Any) -> Path:
    """Write ``payload`` (pickled) with ``header`` plus the version fields and checksum."""
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    full = {**versions(), **header, "created_at": time.time(),
            "payload_bytes": len(data), "payload_sha256": hashlib.sha256(data).hexdigest()}
    text = json.dumps(full, separators=(",", ":"), sort_keys=True, default=str)
    path = path.expanduser()
    header_line = MAGIC + f" {ARTIFACT_FORMAT}\n".encode() + text.encode() + b"\n"
    try:
        write_atomically(path, header_line + data)
    except OSError as exc:
        raise ArtifactError(f"cannot write predictor {path}: {exc.strerror or exc}") from exc
    return path


def _split(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"predictor file not found: {path}") from None
    except OSError as exc:
        raise ArtifactError(f"cannot read predictor {path}: {exc.strerror or exc}") from exc
    first, _, rest = data.partition(b"\n")
    magic, _, version = first.partition(b" ")
    if magic != MAGIC:
        raise ArtifactError(f"{path} is not a hilbench predictor file")
    if version.strip() != str(ARTIFACT_FORMAT).encode():
        shown = version.strip().decode(errors="replace")[:20]
        raise ArtifactError(f"{path}: predictor format {shown}; this hilbench reads format "
                            f"{ARTIFACT_FORMAT}: {RETRAIN}")
    line, newline, payload = rest.partition(b"\n")
    try:
        header = json.loads(line)
        if not newline or not isinstance(header, dict):
            raise ValueError("no header line")
    except ValueError:
        raise ArtifactError(f"{path}: the header is damaged (corrupt or truncated file): "
                            f"{RETRAIN}") from None
    return header, payload


def read_header(path: Path) -> dict[str, Any]:
    """The header, once the file is intact and of this hilbench's versions."""
    header, payload = _split(path)
    _check(path, header, payload)
    return header


def _check(path: Path, header: dict[str, Any], payload: bytes) -> None:
    expected = header.get("payload_bytes")
    if expected != len(payload):
        raise ArtifactError(f"{path} is truncated or damaged: {len(payload)} payload bytes, the "
                            f"header says {expected}: {RETRAIN}")
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise ArtifactError(f"{path} is corrupt: its payload does not match its sha256 "
                            f"checksum: {RETRAIN}")
    labels = {
        "hilbench_version": "hilbench",
        "sklearn_version": "scikit-learn",
        "feature_schema_version": "feature schema",
    }
    for key, value in versions().items():
        found = header.get(key)
        if found == value:
            continue
        if key in labels:
            raise ArtifactError(f"{path} was trained with {labels[key]} {found}; this is "
                                f"{labels[key]} {value}: {RETRAIN}")
        what = {"feature_names_sha256": "other feature names",
                "model_code_sha256": "other predictor model code",
                "format_version": "another format"}.get(key, key)
        raise ArtifactError(f"{path} was trained with {what} than this hilbench's: {RETRAIN}")


def load(path: Path) -> Artifact:
    """Check, then unpickle. ``ArtifactError`` (one line) on any mismatch."""
    header, payload = _split(path)
    _check(path, header, payload)
    try:
        models = pickle.loads(payload)
    except Exception as exc:  # the checksum matched, so this is other code than ours
        raise ArtifactError(f"{path}: the models cannot be loaded "
                            f"({type(exc).__name__}): {RETRAIN}") from exc
    return Artifact(path, header, models)
