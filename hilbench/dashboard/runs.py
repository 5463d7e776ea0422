"""Runs: stored runs filtered by model, device and date (``bench profiles show``); one run's
latency distribution, power and frequency traces, verdict and environment."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas
import streamlit as st

from hilbench.dashboard import charts, context
from hilbench.dashboard.data import (
    RunDetail,
    RunFilter,
    filtered,
    rows,
    run_detail,
    run_label,
    runs_frame,
    verdict_text,
)

TABLE = {
    "started": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm:ss"),
    "device": st.column_config.TextColumn("device"),
    "model": st.column_config.TextColumn("model"),
    "p50_ms": st.column_config.NumberColumn("p50 ms", format="%.3f"),
    "p90_ms": st.column_config.NumberColumn("p90 ms", format="%.3f"),
    "p99_ms": st.column_config.NumberColumn("p99 ms", format="%.3f"),
    "energy_per_inference_mj": st.column_config.NumberColumn("mJ/inference", format="%.4g"),
    "count": st.column_config.NumberColumn("timed runs"),
    "verdict_text": st.column_config.TextColumn("verdict", width="large"),
}
FIGURES = (("p50_ms", "p50 (ms)"), ("p90_ms", "p90 (ms)"), ("p99_ms", "p99 (ms)"),
           ("mean_ms", "mean (ms)"), ("std_ms", "std (ms)"), ("count", "timed runs"),
           ("energy_per_inference_mj", "mJ/inference"), ("avg_power_w", "power (W)"))
TRACES = (("power", "W"), ("frequency", "MHz"), ("temperature", "°C"))


def _linked(name: str, known: pandas.Series) -> list[str]:
    """The values a link gave (``runs?device=emu-phone&model=...``) that the store knows."""
    return [v for v in st.query_params.get_all(name) if v in set(known)]


def _filters(runs: pandas.DataFrame) -> RunFilter:
    columns = st.columns([2, 2, 2])
    models = columns[0].multiselect("Model", sorted(runs["model"].unique()),
                                    default=_linked("model", runs["model"]), key="run_models")
    devices = columns[1].multiselect("Device", sorted(runs["device"].unique()),
                                     default=_linked("device", runs["device"]),
                                     key="run_devices")
    days = runs["started"].dt.date
    first, last = days.min(), days.max()
    picked = columns[2].date_input("Started between", value=(first, last), key="run_dates")
    bounds: tuple[date, ...] = tuple(picked) if isinstance(picked, tuple | list) else (
        (picked,) if isinstance(picked, date) else ())
    return RunFilter(tuple(models), tuple(devices), bounds[0] if bounds else None,
                     bounds[-1] if bounds else None)


def _figure(value: Any, integer: bool) -> str:
    if value is None or pandas.isna(value):
        return "-"
    return f"{int(value)}" if integer else f"{float(value):.3g}"


def _verdict(run: dict[str, Any]) -> None:
    text = verdict_text(run)
    if text == "VALID":
        st.success(f"Verdict: {text}", icon=":material/check_circle:")
    elif text.startswith("INVALID"):
        st.warning(f"Verdict: {text}", icon=":material/warning:")
    else:
        st.error(f"Verdict: {text}", icon=":material/error:")


def _environment(detail: RunDetail) -> None:
    env = detail.environment
    dvfs = env.get("dvfs", {})
    pinned = ", ".join(f"{d['name']} {d.get('cur_khz', 0) / 1000:.0f} MHz "
                       f"({d.get('governor') or '?'})" for d in dvfs.get("domains", []))
    facts = {
        "runtime": f"{env.get('runtime', '?')} {env.get('runtime_version', '')}".strip(),
        "execution provider": env.get("execution_provider"), "threads": env.get("threads"),
        "input shapes": env.get("input_shapes"), "DVFS": pinned or "no cpufreq domains",
        "power mode": dvfs.get("power_mode"), "agent": env.get("agent_version"),
        "host": env.get("hostname"), "platform": env.get("platform"),
        "emulated": bool(env.get("emulation")), "model sha256": env.get("model_sha256"),
    }
    st.dataframe(pandas.DataFrame({"": list(facts), "value": [str(v) for v in
                                                             facts.values()]}),
                 hide_index=True, height="content")
    for note in detail.notes:
        st.caption(f"note: {note}")
    with st.expander("The whole environment and energy report (JSON)"):
        st.json({"environment": env, "energy": detail.energy}, expanded=True)


def _detail(detail: RunDetail) -> None:
    run = detail.run
    st.subheader(run_label(run))
    _verdict(run)
    if not isinstance(run.get("verdict"), str):
        return
    cells = st.columns(len(FIGURES))
    for cell, (column, label) in zip(cells, FIGURES, strict=True):
        cell.metric(label, _figure(run.get(column), column == "count"))
    left, right = st.columns(2)
    with left:
        st.markdown("**Latency distribution**")
        if detail.samples.empty:
            st.info("No raw samples: the device's benchmark tool printed a summary only.")
        else:
            st.altair_chart(charts.latency_histogram(detail.samples))
            st.altair_chart(charts.latency_sequence(detail.samples))
    with right:
        st.markdown("**Sensors over time**")
        if detail.traces.empty:
            st.info("No sensor was sampled during this run.")
        for kind, unit in TRACES:
            if (detail.traces["kind"] == kind).any():
                st.altair_chart(charts.trace(detail.traces, kind, unit))
    st.markdown("**Environment**")
    _environment(detail)


def render() -> None:
    st.title("Runs")
    opened = context.store()
    runs = runs_frame(opened)
    if runs.empty:
        st.info("No run is stored yet: `bench run -m model.onnx --devices all`, or "
                "`bench demo`.")
        return
    chosen = filtered(runs, _filters(runs)).copy()
    chosen["verdict_text"] = [verdict_text(r) for r in rows(chosen)]
    st.dataframe(chosen.loc[:, list(TABLE)], column_config=TABLE, hide_index=True,
                 height=240)
    if chosen.empty:
        st.info("No run matches these filters.")
        return
    by_id = {str(r["run_id"]): r for r in rows(chosen)}
    ids = list(by_id)
    linked = st.query_params.get("run")
    run_id = st.selectbox("Run", ids, index=ids.index(linked) if linked in by_id else 0,
                          format_func=lambda key: run_label(by_id[key]), key="run")
    _detail(run_detail(opened, by_id[str(run_id)]))


if __name__ == "__main__":
    context.guarded(render)
