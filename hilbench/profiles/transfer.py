"""Export every run (environment, summary, raw samples) to CSV or Parquet, and import it
back into any store. A round trip loses nothing; importing twice adds nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas

from hilbench.core.errors import HilbenchError, ImportFormatError, SettingsError
from hilbench.core.fields import FieldError
from hilbench.core.measurement import Measurement
from hilbench.core.records import ModelRecord, RunRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.profiles.store import Store

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
RUN_COLUMNS = (
    "run_id", "campaign_id", "device", "status", "error", "started_at", "finished_at",
    "model_name", "model_sha256", "model_format", "model_path", "model_size_bytes",
    "model_parent_sha256", "model_compression", "settings", "measurement", "samples_ns",
)
# Written for people reading the file; recomputed from the samples on import.
SUMMARY_STATS = ("count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "std_ms", "min_ms", "max_ms")
SUMMARY_COLUMNS = (*SUMMARY_STATS, "verdict", "reasons")


def export_runs(store: Store, path: Path, fmt: str) -> int:
    """Write every stored run to ``path``; returns the number of runs written."""
    rows = [_row(run, fmt) for run in store.run_records()]
    frame = pandas.DataFrame(rows, columns=[*RUN_COLUMNS, *SUMMARY_COLUMNS])
    try:
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
    except OSError as exc:
        raise SettingsError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return len(rows)


def _row(run: RunRecord, fmt: str) -> dict[str, Any]:
    measurement = run.measurement
    payload = measurement.to_dict() if measurement else None
    latencies = payload.pop("samples_ns") if payload else []
    row: dict[str, Any] = {
        "run_id": run.run_id, "campaign_id": run.campaign_id, "device": run.device,
        "status": run.status, "error": run.error, "started_at": run.started_at,
        "finished_at": run.finished_at, "model_name": run.model.name,
        "model_sha256": run.model.sha256, "model_format": run.model.format,
        "model_path": run.model.path, "model_size_bytes": run.model.size_bytes,
        "model_parent_sha256": run.model.parent_sha256,
        "model_compression": json.dumps(run.model.compression),
        "settings": json.dumps(run.settings.to_dict()),
        "measurement": json.dumps(payload) if payload else None,
        "samples_ns": latencies if fmt == "parquet" else json.dumps(latencies),
    }
    if measurement is not None:
        summary, verdict = measurement.summary, measurement.verdict
        row.update({name: getattr(summary, name) for name in SUMMARY_STATS})
        row.update({"verdict": verdict.label, "reasons": "; ".join(verdict.reasons)})
    return row


def import_runs(store: Store, path: Path) -> int:
    """Read a file written by ``export_runs``; every row is checked before anything is
    written, then all new runs are stored in one transaction. Returns how many were new."""
    frame = _read(path)
    missing = [c for c in RUN_COLUMNS if c not in frame.columns]
    if missing:
        raise ImportFormatError(f"{path.name}: missing columns {', '.join(missing)}")
    records = []
    for index, row in enumerate(frame.to_dict(orient="records")):
        try:
            records.append(_record({str(key): value for key, value in row.items()}))
        except (ValueError, TypeError, KeyError, FieldError, HilbenchError) as exc:
            raise ImportFormatError(f"{path.name} row {index + 1}: {exc}") from exc
    return store.save_runs(records)


def _read(path: Path) -> pandas.DataFrame:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImportFormatError(f"{path.name}: expected a .csv or .parquet file")
    try:
        if fmt == "parquet":
            return pandas.read_parquet(path)
        return pandas.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ImportFormatError(f"cannot read {path}: {exc}") from exc


def _text(value: Any) -> str | None:
    """A cell as text; None for empty cells (CSV) and missing values (Parquet)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return str(value)


def _json(value: Any) -> Any:
    text = _text(value)
    return None if text is None else json.loads(text)


def _record(row: dict[str, Any]) -> RunRecord:
    samples = row["samples_ns"]
    latencies = json.loads(samples) if isinstance(samples, str) else list(samples)
    payload = _json(row["measurement"])
    measurement = None
    if payload is not None:
        measurement = Measurement.from_dict({**payload, "samples_ns": [int(v) for v in latencies]})
    model = ModelRecord(
        sha256=str(row["model_sha256"]), name=str(row["model_name"]),
        format=str(row["model_format"]), path=str(row["model_path"]),
        size_bytes=int(row["model_size_bytes"]), parent_sha256=_text(row["model_parent_sha256"]),
        compression=_json(row["model_compression"]) or {},
    )
    return RunRecord(
        run_id=str(row["run_id"]), device=str(row["device"]), model=model,
        settings=BenchmarkSettings.from_dict(_json(row["settings"])), status=str(row["status"]),
        started_at=float(row["started_at"]), finished_at=float(row["finished_at"]),
        measurement=measurement, error=_text(row["error"]), campaign_id=_text(row["campaign_id"]),
    )
