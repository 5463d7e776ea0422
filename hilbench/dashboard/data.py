"""What the pages show, read through the functions the CLI uses: the store's queries
(``profiles``), the selector's one query API (``selector.query``) and the predictor. No
Streamlit here: each function takes a store and returns frames or records, so it can be
tested on its own."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pandas

from hilbench.core.constraints import AccuracyConstraint, Constraints, LatencyConstraint
from hilbench.core.errors import UnknownDeviceError
from hilbench.core.records import DeviceRecord
from hilbench.devices.registry import select_devices
from hilbench.profiles.family import family_bases
from hilbench.profiles.inventory import activity
from hilbench.profiles.store import Store
from hilbench.profiles.traces import run_traces
from hilbench.selector.query import Answer, Query, answer, answer_json, cell_value

if TYPE_CHECKING:
    from hilbench.predictor.service import Predictor

PLOTTED = ("device", "model", "setting", "dvfs", "source", "latency_ms", "latency_lower_ms",
           "latency_upper_ms", "accuracy", "energy_mj", "power_w", "note")


def is_empty(store: Store) -> bool:
    """Nothing to show: no device registered and no run stored."""
    return not store.list_devices() and not activity(store)


def devices(store: Store) -> tuple[DeviceRecord, ...]:
    """The devices a query chooses among: ``--devices all`` (replay devices left out), or
    the replay devices when they are all the store has."""
    registered = store.list_devices()
    try:
        return tuple(select_devices(registered, "all"))
    except UnknownDeviceError:
        return tuple(registered)


def families(store: Store) -> list[str]:
    """Base model names, the largest families first (what ``--family`` takes)."""
    return [str(name) for name in family_bases(store)["name"]]


# ---- runs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFilter:
    """The Runs page's filters; empty means all."""

    models: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    first_day: date | None = None
    last_day: date | None = None


def local_times(epoch_s: pandas.Series) -> pandas.Series:
    """Epoch seconds as this machine's local wall-clock times (naive datetimes)."""
    zone = datetime.now().astimezone().tzinfo
    stamps = pandas.to_datetime(pandas.to_numeric(epoch_s), unit="s", utc=True)
    return stamps.dt.tz_convert(zone).dt.tz_localize(None)


def runs_frame(store: Store) -> pandas.DataFrame:
    """Every run (``Store.runs``), newest first, with ``started`` in local time."""
    frame = store.runs()
    frame["started"] = local_times(frame["started_at"])
    return frame


def filtered(frame: pandas.DataFrame, chosen: RunFilter) -> pandas.DataFrame:
    keep = pandas.Series(True, index=frame.index)
    if chosen.models:
        keep &= frame["model"].isin(chosen.models)
    if chosen.devices:
        keep &= frame["device"].isin(chosen.devices)
    days = frame["started"].dt.date
    if chosen.first_day is not None:
        keep &= days >= chosen.first_day
    if chosen.last_day is not None:
        keep &= days <= chosen.last_day
    return frame[keep]


def rows(frame: pandas.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as dicts keyed by column name."""
    return [{str(key): value for key, value in row.items()}
            for row in frame.to_dict(orient="records")]


def verdict_text(run: dict[str, Any]) -> str:
    """``VALID``, ``INVALID: reasons`` or ``FAILED: error``, as ``bench profiles show``."""
    verdict = run.get("verdict")
    if not isinstance(verdict, str):
        return f"FAILED: {run.get('error') or 'no measurement'}"
    return verdict if verdict == "VALID" else f"INVALID: {run.get('reasons') or ''}"


def run_label(run: dict[str, Any]) -> str:
    started = run["started"].strftime("%Y-%m-%d %H:%M:%S")
    return f"{run['device']} · {run['model']} · {started} · {str(run['run_id'])[:8]}"


@dataclass(frozen=True)
class RunDetail:
    """One run: its row (summary and verdict), raw latencies, sensor traces, environment,
    energy report and notes (empty for a failed run)."""

    run: dict[str, Any]
    samples: pandas.DataFrame
    traces: pandas.DataFrame
    environment: dict[str, Any]
    energy: dict[str, Any] | None
    notes: tuple[str, ...]


def run_detail(store: Store, run: dict[str, Any]) -> RunDetail:
    run_id = str(run["run_id"])
    if not isinstance(run.get("verdict"), str):
        return RunDetail(run, store.samples(run_id), run_traces(None), {}, None, ())
    measured = store.measurement(run_id)
    energy = measured.energy.to_dict() if measured.energy else None
    return RunDetail(run, store.samples(run_id), run_traces(measured.telemetry),
                     measured.environment.to_dict(), energy, tuple(measured.notes))


# ---- selector ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    """The Recommend page's question: ``bench select --family F --lc LC --ac AC
    --objective O --percentile S --risk R [--per-dvfs D] --no-verify``."""

    family: str
    lc_ms: float | None = None
    ac: float | None = None
    objective: str = "energy"
    statistic: str = "p90"
    risk: str = "upper"
    per_dvfs: str | None = None


def query(store: Store, ask: Ask) -> Query:
    latency = LatencyConstraint(ask.lc_ms, ask.statistic) if ask.lc_ms is not None else None
    accuracy = AccuracyConstraint(ask.ac) if ask.ac is not None else None
    return Query(devices(store), Constraints(latency, accuracy, ask.risk), ask.objective,
                 ask.family, statistic=ask.statistic, per_dvfs=ask.per_dvfs, max_rounds=0)


def recommend(store: Store, ask: Ask, predictor: Predictor | None, why: str) -> Answer:
    """The selector's answer, without measuring (the dashboard does not run devices)."""
    return answer(store, query(store, ask), predictor, why)


def export_text(found: Answer) -> str:
    """The answer as ``bench select --json`` prints it."""
    return json.dumps(answer_json(found), indent=2, default=str)


def plotted(found: Answer) -> pandas.DataFrame:
    """The candidates with a latency, with ``front`` (on the Pareto front), ``feasible``
    and ``pick``."""
    table, selection = found.table, found.selection
    frame = table[table["latency_ms"].notna()].loc[:, list(PLOTTED)].copy()
    frame["front"] = frame.index.isin(selection.pareto.index)
    frame["feasible"] = frame.index.isin(selection.ranked.index)
    frame["pick"] = (frame.index == selection.ranked.index[0]) if len(selection.ranked) \
        else False
    return frame


def unplotted(found: Answer) -> pandas.DataFrame:
    """Candidates without a latency (neither measured validly nor predictable), and why."""
    table = found.table
    return table[table["latency_ms"].isna()].loc[:, ["device", "model", "note"]]


def candidates_text(found: Answer) -> str:
    """``20 candidates at batch 64 (14 measured, 0 predicted)``."""
    data = answer_json(found)
    return (f"{data['candidates']} candidates at batch {data['batch']} ({data['measured']} "
            f"measured, {data['predicted']} predicted)")


def summary(found: Answer) -> str:
    """The candidates, how many are feasible for which constraints, and the objective."""
    data = answer_json(found)
    constraints = found.selection.constraints
    asked = [text for text in (constraints.describe_latency(),
                               constraints.accuracy.describe() if constraints.accuracy
                               else None) if text]
    return (f"{candidates_text(found)}, {data['feasible']} feasible for "
            f"{' and '.join(asked) or 'no constraint'} (risk: {data['risk']}); objective: "
            f"{data['objective']}")


def pick_text(found: Answer, statistic: str) -> str | None:
    """The pick in one line, or None when nothing is feasible."""
    best = found.selection.best
    if best is None:
        return None
    energy = cell_value(best, "energy_mj")
    accuracy = cell_value(best, "accuracy")
    return (f"{best['device']} running {best['model']} ({best['setting'] or 'default'}): "
            f"{statistic} {float(best['latency_ms']):.3f} ms [{best['source']}], accuracy "
            + (f"{accuracy:.4f}" if accuracy is not None else "unknown") + ", "
            + (f"{energy:.4g} mJ/inference" if energy is not None else "energy unknown"))


def reasons(found: Answer) -> pandas.DataFrame:
    """Why each device lost (or that it holds the pick)."""
    rows = sorted(found.selection.devices.items())
    return pandas.DataFrame(rows, columns=["device", "why"])


def levels_frame(found: Answer) -> pandas.DataFrame:
    """The per-DVFS reconfiguration table (``--per-dvfs``), highest level first."""
    exported = found.exported or {"levels": []}
    rows = [{"DVFS level": level["dvfs"], "model": level.get("model"),
             "latency ms": level.get("latency_ms"), "mJ/inference": level.get("energy_mj"),
             "accuracy": level.get("accuracy"), "why not": level.get("why", "")}
            for level in exported["levels"]]
    return pandas.DataFrame(rows, columns=["DVFS level", "model", "latency ms",
                                           "mJ/inference", "accuracy", "why not"])


def dvfs_points(found: Answer) -> pandas.DataFrame:
    """Measured candidates per DVFS level (``mhz``: the highest pinned frequency, NaN for
    the default governor or a power mode; ``level``: that frequency, or the selector's
    label), for the DVFS curves."""
    table = found.table
    frame = table[table["source"] == "measured"].copy()
    frame["mhz"] = [_top_mhz(levels) for levels in frame["dvfs_levels"]]
    frame["level"] = [f"{mhz:.0f} MHz" if math.isfinite(mhz) else str(label)
                      for mhz, label in zip(frame["mhz"], frame["dvfs"], strict=True)]
    return frame.loc[:, ["device", "model", "level", "mhz", "latency_ms", "energy_mj"]]


def _top_mhz(levels: Any) -> float:
    khz = [float(v) for k, v in dict(levels or {}).items()
           if k != "power_mode" and isinstance(v, int | float)]
    return max(khz) / 1000.0 if khz else math.nan


def latency_range(found: Answer) -> tuple[float, float]:
    """The span of the candidates' latencies (upper ends included), in ms."""
    table = found.table
    values = pandas.concat([table["latency_ms"], table["latency_upper_ms"]]).dropna()
    if values.empty:
        return 0.0, 0.0
    return float(values.min()), float(values.max())


def accuracy_range(found: Answer) -> tuple[float, float]:
    values = found.table["accuracy"].dropna()
    if values.empty:
        return 0.0, 0.0
    return float(values.min()), float(values.max())
