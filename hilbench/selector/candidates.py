"""Candidates for the selector: one row per (device, model, setting), from the store's
measurements where they exist and from the predictor otherwise.

* **Measured**: every VALID run of the models on the devices, grouped by device, model,
  runtime setting (runtime, threads, provider, DVFS state: pinned levels or power mode) and
  batch; a group's figures are the medians of its runs'. Its interval is the value itself.
* **Predicted**: a (device, model) pair with no VALID run gets the predictor's estimate at
  the asked batch under the setting the device's model was trained on. A tail statistic
  (p90, p99) or the mean is the predicted median times the device's own median ratio of
  that statistic to p50 over its VALID runs; energy is the device's median average power
  over its VALID runs times the predicted latency (W x ms = mJ). What could not be
  estimated stays empty, and the row's note says why. The measured variants of the family
  on a device recalibrate its predictions (``selector.recalibrate``).
* A pair that can be neither measured nor predicted still gets a row, with no latency and a
  note (the predictor's reason, or that no predictor was trained), so that the device's
  loss can be explained.

Accuracy is the model's (device-independent) record for the asked metric and dataset, the
newest one per model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy
import pandas
from sqlalchemy import select

from hilbench.core.constraints import AccuracyConstraint
from hilbench.core.dvfs import DvfsState
from hilbench.core.errors import ModelError, SettingsError
from hilbench.core.records import RUN_OK, DeviceRecord
from hilbench.predictor.training import run_config, run_sizes
from hilbench.profiles.family import accuracy_frame
from hilbench.profiles.schema import measurements, models, runs
from hilbench.profiles.store import Store
from hilbench.selector.recalibrate import recalibrate
from hilbench.selector.solve import CANDIDATE_COLUMNS

if TYPE_CHECKING:
    from hilbench.predictor.features import ModelFeatures
    from hilbench.predictor.service import Estimate, Predictor

STATISTIC_COLUMNS = {"mean": "mean_ms", "p50": "p50_ms", "p90": "p90_ms", "p99": "p99_ms"}


@dataclass(frozen=True)
class ModelChoice:
    """A model the selector may deploy: its identity, file and name."""

    sha256: str
    name: str
    path: str
    format: str


@dataclass(frozen=True)
class MeasuredGroup:
    device: str
    model: ModelChoice
    setting: str
    dvfs: str
    levels: dict[str, Any]  # pinned domain -> kHz, and "power_mode" when one was set
    batch: int
    figures: dict[str, float]  # statistic / energy / power -> median over the group's runs
    runs: int


def _median(values: Iterable[float | None]) -> float:
    found = [float(v) for v in values if v is not None]
    return float(numpy.median(found)) if found else float("nan")


def pinned_levels(dvfs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The DVFS levels a run was held at: each pinned domain's kHz (min = max), and the
    power mode when the run set one; empty for a run at the device's default."""
    state = DvfsState.from_dict(dvfs) if dvfs else DvfsState()
    levels: dict[str, Any] = {d.name: d.max_khz for d in state.domains
                              if d.max_khz is not None and d.min_khz == d.max_khz}
    if state.power_mode:
        levels["power_mode"] = state.power_mode
    return levels


def _dvfs_label(setting: str) -> str:
    parts = [p.strip() for p in setting.split(",")]
    chosen = [p for p in parts if p.startswith(("pinned", "power mode"))]
    return ", ".join(chosen) or "default"


def _runs_query(devices: Sequence[str]) -> Any:
    return (
        select(runs.c.device_name, runs.c.settings, runs.c.runtime, runs.c.runtime_version,
               runs.c.execution_provider, runs.c.threads, runs.c.dvfs, models.c.sha256,
               measurements.c.mean_ms, measurements.c.p50_ms, measurements.c.p90_ms,
               measurements.c.p99_ms, measurements.c.energy_per_inference_mj,
               measurements.c.avg_power_w, measurements.c.idle_power_w,
               measurements.c.verdict)
        .join(models, models.c.id == runs.c.model_id)
        .join(measurements, measurements.c.run_id == runs.c.id)
        .where(runs.c.status == RUN_OK, runs.c.device_name.in_(list(devices)))
        .order_by(runs.c.id)
    )


@dataclass
class DeviceHistory:
    """What a device's VALID runs (of any model) say beyond one model: the median ratio of
    each statistic to p50, and its average and idle power, per setting."""

    ratios: dict[str, list[float]]
    power: dict[str, list[float]]
    idle: dict[str, list[float]] = field(default_factory=dict)

    def ratio(self, statistic: str) -> float | None:
        found = self.ratios.get(statistic)
        return float(numpy.median(found)) if found else None

    def power_w(self, setting: str) -> float | None:
        found = self.power.get(setting)
        return float(numpy.median(found)) if found else None

    def idle_w(self, setting: str) -> float | None:
        found = self.idle.get(setting)
        return float(numpy.median(found)) if found else None


def measured_groups(store: Store, choices: Sequence[ModelChoice], devices: Sequence[str]
                    ) -> tuple[list[MeasuredGroup], dict[str, DeviceHistory],
                               dict[tuple[str, str, int], int]]:
    """VALID runs grouped into candidates; each device's history (over all its VALID runs,
    for predictions); and the count of INVALID runs per (device, model, batch)."""
    by_sha = {c.sha256: c for c in choices}
    grouped: dict[tuple[str, str, str, int], list[Any]] = defaultdict(list)
    labels: dict[tuple[str, str, str, int], tuple[str, dict[str, Any]]] = {}
    history: dict[str, DeviceHistory] = defaultdict(lambda: DeviceHistory({}, {}))
    invalid: dict[tuple[str, str, int], int] = defaultdict(int)
    with store.connection() as connection:
        for row in connection.execute(_runs_query(devices)):
            key, label = run_config(row.runtime, row.runtime_version, row.execution_provider,
                                    row.threads, row.dvfs)
            batch = run_sizes(row.settings or {})[0]
            if row.verdict != "VALID":
                if row.sha256 in by_sha:
                    invalid[(row.device_name, row.sha256, batch)] += 1
                continue
            _remember(history[row.device_name], row, label)
            if row.sha256 not in by_sha:
                continue
            group = (row.device_name, row.sha256, key, batch)
            grouped[group].append(row)
            labels[group] = (label, pinned_levels(row.dvfs))
    groups = []
    for (device, sha, _, batch), rows in grouped.items():
        label, levels = labels[(device, sha, _, batch)]
        figures = {name: _median(getattr(r, column) for r in rows)
                   for name, column in STATISTIC_COLUMNS.items()}
        figures["energy_mj"] = _median(r.energy_per_inference_mj for r in rows)
        figures["power_w"] = _median(r.avg_power_w for r in rows)
        figures["idle_w"] = _median(r.idle_power_w for r in rows)
        groups.append(MeasuredGroup(device, by_sha[sha], label, _dvfs_label(label), levels,
                                    batch, figures, len(rows)))
    return groups, dict(history), dict(invalid)


def _remember(history: DeviceHistory, row: Any, label: str) -> None:
    if row.p50_ms and row.p50_ms > 0:
        for name, column in STATISTIC_COLUMNS.items():
            value = getattr(row, column)
            if value is not None and value > 0:
                history.ratios.setdefault(name, []).append(float(value) / float(row.p50_ms))
    if row.avg_power_w is not None and row.avg_power_w > 0:
        history.power.setdefault(label, []).append(float(row.avg_power_w))
    if row.idle_power_w is not None and row.idle_power_w > 0:
        history.idle.setdefault(label, []).append(float(row.idle_power_w))


def accuracies(store: Store, choices: Sequence[ModelChoice],
               wanted: AccuracyConstraint | None) -> tuple[dict[str, float], str | None]:
    """The newest score per model for the asked metric (and dataset), and the metric used.
    Without a metric: the one metric the models' records share; several is an error that
    names them."""
    frame = accuracy_frame(store)
    frame = frame[frame.model_sha256.isin([c.sha256 for c in choices])]
    if wanted is None and frame.empty:
        return {}, None
    metric = wanted.metric if wanted else None
    if wanted is not None and wanted.dataset:
        frame = frame[frame.dataset_name == wanted.dataset]
    if metric is None:
        metrics = sorted(set(frame.metric))
        if len(metrics) > 1 and wanted is not None:
            raise SettingsError(f"the models have accuracy records for {', '.join(metrics)}: "
                                "name one with --metric")
        metric = metrics[0] if metrics else None
    frame = frame[frame.metric == metric]
    newest = frame.drop_duplicates("model_sha256", keep="first")  # newest first
    return dict(zip(newest.model_sha256, newest.value.astype(float), strict=True)), metric


def _row(device: str, model: ModelChoice, batch: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {name: numpy.nan for name in CANDIDATE_COLUMNS}
    row.update(device=device, model=model.name, model_sha256=model.sha256, batch=batch,
               setting="", dvfs="", source="none", note="")
    row.update(values)
    return row


def _measured_row(group: MeasuredGroup, statistic: str) -> dict[str, Any]:
    value = group.figures[statistic]
    note = "" if numpy.isfinite(value) else f"{statistic} not reported by the device's tool"
    return _row(group.device, group.model, group.batch, setting=group.setting,
                dvfs=group.dvfs, dvfs_levels=group.levels,
                source="measured", latency_ms=value, latency_lower_ms=value,
                latency_upper_ms=value, energy_mj=group.figures["energy_mj"],
                power_w=group.figures["power_w"], idle_w=group.figures["idle_w"], note=note)


@dataclass(frozen=True)
class _Pending:
    """A (device, model) pair with no VALID run: what the row will say."""

    device: str
    model: ModelChoice
    invalid: int

    def prefix(self) -> str:
        count = self.invalid
        if not count:
            return ""
        return "its run was INVALID; " if count == 1 else f"its {count} runs were INVALID; "


def _features(choices: Sequence[ModelChoice], batch: int
              ) -> dict[str, ModelFeatures | str]:
    """Each model's features at ``batch``, or why they cannot be read."""
    from hilbench.predictor.service import read_model

    found: dict[str, ModelFeatures | str] = {}
    for model in choices:
        try:
            found[model.sha256] = read_model(Path(model.path), batch).features
        except ModelError as exc:
            found[model.sha256] = f"cannot read the model: {exc}"
    return found


def _predicted_rows(predictor: Predictor | None, why_none: str, device: str,
                    pending: Sequence[_Pending], features: Mapping[str, ModelFeatures | str],
                    batch: int, statistic: str, histories: Mapping[str, DeviceHistory]
                    ) -> list[dict[str, Any]]:
    """One row per pending pair of ``device``: predicted where the predictor can (one call
    for all of them), else empty with the reason."""
    if predictor is None:
        return [_row(device, p.model, batch, note=p.prefix() + why_none) for p in pending]
    readable = [p for p in pending if not isinstance(features[p.model.sha256], str)]
    estimates = dict(zip((p.model.sha256 for p in readable), predictor.estimate_many(
        device, [cast("ModelFeatures", features[p.model.sha256]) for p in readable]),
        strict=True))
    rows = []
    for item in pending:
        found = features[item.model.sha256]
        estimate = estimates.get(item.model.sha256)
        if isinstance(found, str):
            rows.append(_row(device, item.model, batch, note=item.prefix() + found))
        elif estimate is None:
            rows.append(_row(device, item.model, batch,
                             note=item.prefix() + predictor.why_not(device)))
        else:
            setting = str(predictor.devices[device]["settings"])
            rows.append(_predicted_row(device, item, estimate, setting, batch, statistic,
                                       histories.get(device)))
    return rows


def _predicted_row(device: str, item: _Pending, estimate: Estimate, setting: str,
                   batch: int, statistic: str, history: DeviceHistory | None
                   ) -> dict[str, Any]:
    ratio = 1.0 if statistic == "p50" else (history.ratio(statistic) if history else None)
    notes = [item.prefix().rstrip("; ")] if item.invalid else []
    notes += estimate.notes
    if ratio is None:
        ratio = 1.0
        notes.append(f"no measured {statistic} on {device}: the predicted median stands in")
    power = history.power_w(setting) if history else None
    idle = history.idle_w(setting) if history else None
    latency = estimate.median_ms * ratio
    if power is not None:
        notes.append("energy: the device's measured average power x the predicted latency")
    return _row(device, item.model, batch, setting=setting, dvfs=_dvfs_label(setting),
                dvfs_levels=None,
                source="predicted", latency_ms=latency,
                latency_lower_ms=estimate.lower_ms * ratio,
                latency_upper_ms=estimate.upper_ms * ratio,
                energy_mj=power * latency if power is not None else numpy.nan,
                power_w=power if power is not None else numpy.nan,
                idle_w=idle if idle is not None else numpy.nan, note="; ".join(notes))


def _estimates_of_measured(predictor: Predictor, frame: pandas.DataFrame,
                           features: Mapping[str, ModelFeatures | str], statistic: str,
                           history: Mapping[str, DeviceHistory]) -> pandas.DataFrame:
    """What the predictor says of the measured rows that ran under the setting it predicts
    their device at: the pairs that recalibrate the device's other predictions."""
    found: list[dict[str, Any]] = []
    measured = frame[frame["source"] == "measured"]
    for device, rows in measured.groupby("device"):
        name = str(device)
        if predictor.source(name) is None:
            continue
        same = rows[rows["setting"] == str(predictor.devices[name]["settings"])]
        readable = [sha for sha in dict.fromkeys(same["model_sha256"])
                    if not isinstance(features.get(sha, ""), str)]
        ratio = 1.0 if statistic == "p50" else (
            history[name].ratio(statistic) if name in history else None) or 1.0
        estimates = predictor.estimate_many(
            name, [cast("ModelFeatures", features[sha]) for sha in readable])
        found += [{"device": name, "model_sha256": sha, "latency_ms": e.median_ms * ratio}
                  for sha, e in zip(readable, estimates, strict=True) if e is not None]
    return pandas.DataFrame(found, columns=["device", "model_sha256", "latency_ms"])


def usual_batch(groups: Sequence[MeasuredGroup]) -> int:
    """The batch size most of the measured candidates ran at (the smaller on a tie; 1 when
    nothing was measured): latencies at other batch sizes are not comparable."""
    counts: dict[int, int] = defaultdict(int)
    for group in groups:
        counts[group.batch] += 1
    return min(counts, key=lambda b: (-counts[b], b)) if counts else 1


def candidates(store: Store, choices: Sequence[ModelChoice], devices: Sequence[DeviceRecord],
               statistic: str, predictor: Predictor | None, why_no_predictor: str,
               batch: int | None = None, costs: Mapping[str, float] | None = None,
               accuracy: Mapping[str, float] | None = None,
               batteries: Mapping[str, float] | None = None) -> pandas.DataFrame:
    """The candidate table (``CANDIDATE_COLUMNS``) for ``choices`` on ``devices`` at one
    batch size (``batch``, or the one most measured candidates ran at): measured groups, and
    a predicted (or empty) row for every pair without a VALID run at that batch."""
    if statistic not in STATISTIC_COLUMNS:
        raise SettingsError(f"latency statistic {statistic!r}: use one of "
                            f"{', '.join(STATISTIC_COLUMNS)}")
    names = [d.name for d in devices]
    groups, history, invalid = measured_groups(store, choices, names)
    if batch is None:
        batch = usual_batch(groups)
    rows = [_measured_row(g, statistic) for g in groups if g.batch == batch]
    measured_pairs = {(r["device"], r["model_sha256"]) for r in rows}
    pending = {device: [_Pending(device, model, invalid.get((device, model.sha256, batch), 0))
                        for model in choices if (device, model.sha256) not in measured_pairs]
               for device in names}
    features = _features(choices, batch) if predictor is not None else {}
    for device, items in pending.items():
        rows += _predicted_rows(predictor, why_no_predictor, device, items, features, batch,
                                statistic, history)
    frame = pandas.DataFrame(rows, columns=list(CANDIDATE_COLUMNS))
    if predictor is not None:
        frame = recalibrate(frame, _estimates_of_measured(predictor, frame, features, statistic,
                                                          history))
    frame["cost"] = frame["device"].map(dict(costs or {})).astype(float)
    frame["accuracy"] = frame["model_sha256"].map(dict(accuracy or {})).astype(float)
    frame["battery_wh"] = frame["device"].map(dict(batteries or {})).astype(float)
    return frame.reset_index(drop=True)
