"""One flat row per run, as `bench run --json` prints it and tables show it."""

from __future__ import annotations

from typing import Any

from hilbench.core.dvfs import DvfsState
from hilbench.core.measurement import Measurement
from hilbench.core.records import RunRecord
from hilbench.core.throttle import frequency_stats_mhz, temperature_span_c

SUMMARY_FIELDS = ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "std_ms", "min_ms", "max_ms")


def run_row(run: RunRecord) -> dict[str, Any]:
    row: dict[str, Any] = {
        "device": run.device,
        "model": run.model.name,
        "model_sha256": run.model.sha256,
        "run_id": run.run_id,
        "campaign_id": run.campaign_id,
        "status": run.status,
        "error": run.error,
        "attempts": run.attempts,
    }
    measurement = run.measurement
    if measurement is None:
        return {**row, **{name: None for name in _measurement_fields()}}
    summary = measurement.summary
    verdict = measurement.verdict
    environment = measurement.environment
    row.update({name: getattr(summary, name) for name in SUMMARY_FIELDS})
    row.update(
        {
            "cv": summary.cv,
            "ci95_ms": summary.ci95_ms,
            "required_runs_1pct": summary.required_runs(0.01),
            "runs": summary.count,
            "timed_duration_s": measurement.timed_duration_s,
            "init_ms": measurement.init_ms,
            "first_inference_ms": measurement.first_inference_ms,
            "peak_memory_mb": measurement.peak_memory_mb,
            "verdict": verdict.label,
            "reasons": list(verdict.reasons),
            "runtime": f"{environment.runtime} {environment.runtime_version}",
            "threads": environment.threads,
            "input_shapes": {name: list(shape) for name, shape in environment.input_shapes},
            "emulated_figures": list(measurement.emulated_figures),
            "unavailable_figures": list(measurement.unavailable_figures),
            "notes": list(measurement.notes),
            "dvfs_pinned_mhz": pinned_mhz(environment.dvfs),
            "power_mode": environment.dvfs.power_mode,
            **energy_fields(measurement),
        }
    )
    return row


def pinned_mhz(dvfs: DvfsState) -> dict[str, float]:
    """Domains held at one level (min = max) for the run."""
    return {d.name: d.max_khz / 1000 for d in dvfs.domains
            if d.max_khz is not None and d.min_khz == d.max_khz}


def energy_fields(measurement: Measurement) -> dict[str, Any]:
    energy = measurement.energy
    start_c, end_c = temperature_span_c(measurement.telemetry)
    return {
        "energy_per_inference_mj": energy.energy_per_inference_mj if energy else None,
        "active_energy_per_inference_mj": energy.active_energy_per_inference_mj
        if energy else None,
        "avg_power_w": energy.avg_power_w if energy else None,
        "idle_power_w": energy.idle_power_w if energy else None,
        "energy_sensor": energy.sensor if energy else None,
        "frequencies_mhz": frequency_stats_mhz(measurement.telemetry),
        "temp_start_c": start_c,
        "temp_end_c": end_c,
    }


def _measurement_fields() -> tuple[str, ...]:
    return (
        *SUMMARY_FIELDS,
        "cv",
        "ci95_ms",
        "required_runs_1pct",
        "runs",
        "timed_duration_s",
        "init_ms",
        "first_inference_ms",
        "peak_memory_mb",
        "verdict",
        "reasons",
        "runtime",
        "threads",
        "input_shapes",
        "emulated_figures",
        "unavailable_figures",
        "notes",
        "dvfs_pinned_mhz",
        "power_mode",
        "energy_per_inference_mj",
        "active_energy_per_inference_mj",
        "avg_power_w",
        "idle_power_w",
        "energy_sensor",
        "frequencies_mhz",
        "temp_start_c",
        "temp_end_c",
    )


def format_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"
