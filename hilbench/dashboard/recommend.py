"""Recommend: LC and AC sliders and the objective, answered by the selector as ``bench
select --no-verify`` answers them: the pick, the Pareto front on the trade-off plot, why
every other device lost, the per-DVFS reconfiguration table, and the answer as JSON."""

from __future__ import annotations

import math

import pandas
import streamlit as st

from hilbench.core.constraints import LATENCY_STATISTICS, RISKS
from hilbench.dashboard import charts, context
from hilbench.dashboard.data import (
    Ask,
    accuracy_range,
    dvfs_points,
    export_text,
    families,
    latency_range,
    levels_frame,
    pick_text,
    plotted,
    reasons,
    recommend,
    summary,
)
from hilbench.selector.query import Answer

OBJECTIVES = ("energy", "latency", "power", "accuracy")  # cost and battery need more input
NONE = "(none)"
CANDIDATE_TABLE = ["device", "model", "setting", "source", "latency_ms", "latency_upper_ms",
                   "accuracy", "energy_mj", "power_w"]
NUMBERS = {
    "latency_ms": st.column_config.NumberColumn("latency ms", format="%.3f"),
    "latency_upper_ms": st.column_config.NumberColumn("upper ms", format="%.3f"),
    "accuracy": st.column_config.NumberColumn("accuracy", format="%.4f"),
    "energy_mj": st.column_config.NumberColumn("mJ/inference", format="%.4g"),
    "power_w": st.column_config.NumberColumn("W", format="%.3g"),
}


def _step(top: float) -> float:
    """A slider step of about 1/20 of the latency's order of magnitude."""
    return 10.0 ** math.floor(math.log10(top)) / 20.0 if top > 0 else 0.05


def _lc_slider(wide: Answer) -> float:
    """LC from one step to 1.25x the slowest candidate; it starts at the candidates' upper
    quartile (most feasible, the slow ones not)."""
    _, high = latency_range(wide)
    step = _step(high)
    top = round(math.ceil(high * 1.25 / step) * step, 6) if high > 0 else 10.0
    latencies = wide.table["latency_ms"].dropna()
    start = float(latencies.quantile(0.75)) if len(latencies) else top / 2
    default = min(max(round(math.ceil(start / step) * step, 6), step), top)
    digits = max(0, -math.floor(math.log10(step)))
    return float(st.slider("Latency constraint LC (ms)", min_value=step,
                           max_value=float(top), value=float(default), step=step,
                           format=f"%.{digits}f", key="lc"))


def _ac_slider(wide: Answer) -> float | None:
    """AC over the family's recorded accuracies; None (no AC) when it has no record."""
    low, high = accuracy_range(wide)
    if not wide.table["accuracy"].notna().any():
        st.caption("Accuracy constraint AC: this family has no accuracy record (`bench "
                   "accuracy` measures one), so none is applied.")
        return None
    bottom = max(math.floor(low * 100 - 1) / 100, 0.0)
    top = min(1.0, math.ceil(high * 100 + 1) / 100) if high <= 1 else math.ceil(high)
    default = math.floor(float(wide.table["accuracy"].median()) * 1000) / 1000
    return float(st.slider("Accuracy constraint AC", min_value=bottom, max_value=top,
                           value=min(max(default, bottom), top), step=0.001, format="%.3f",
                           key="ac"))


def _ask(names: list[str]) -> Ask:
    top = st.columns([3, 2, 1, 2])
    family = str(top[0].selectbox("Model family", names, key="rec_family"))
    objective = str(top[1].selectbox("Objective (minimise; accuracy: maximise)", OBJECTIVES,
                                     key="objective"))
    statistic = str(top[2].selectbox("LC on", LATENCY_STATISTICS,
                                     index=LATENCY_STATISTICS.index("p90"),
                                     key="rec_statistic"))
    risk = str(top[3].radio("Predicted latency held to LC by", RISKS, horizontal=True,
                            key="risk"))
    wide = recommend(context.store(), Ask(family, statistic=statistic), *context.predictor())
    sliders = st.columns(2)
    with sliders[0]:
        lc = _lc_slider(wide)
    with sliders[1]:
        ac = _ac_slider(wide)
    points = dvfs_points(wide)
    by_levels = points.groupby("device")["level"].nunique().sort_values(ascending=False,
                                                                         kind="stable")
    per_dvfs = st.selectbox("Per-DVFS reconfiguration table for", [NONE, *by_levels.index],
                            index=1 if len(by_levels) else 0, key="per_dvfs")
    return Ask(family, lc, ac, objective, statistic, risk,
               None if per_dvfs in (None, NONE) else str(per_dvfs))


def _pick(found: Answer, ask: Ask) -> None:
    st.caption(summary(found))
    text = pick_text(found, ask.statistic)
    if text is not None:
        st.success(f"Pick: {text}", icon=":material/recommend:")
    else:
        asked = f"{ask.statistic} <= {ask.lc_ms:g} ms" + (
            f" and accuracy >= {ask.ac:g}" if ask.ac is not None else "")
        st.error(f"Nothing feasible for {asked}: the nearest candidates are below.",
                 icon=":material/block:")
        st.dataframe(found.selection.nearest.loc[:, CANDIDATE_TABLE], hide_index=True,
                     column_config=NUMBERS)
    for note in found.selection.notes:
        st.caption(f"note: {note}")


def _tables(found: Answer) -> None:
    st.markdown("**Why each device lost**")
    st.table(reasons(found).set_index("device"))
    st.markdown("**Pareto front** over latency, accuracy and energy (ringed on the plot)")
    st.dataframe(found.selection.pareto.loc[:, CANDIDATE_TABLE], hide_index=True,
                 column_config=NUMBERS)
    if found.exported is not None:
        st.markdown(f"**{found.exported['device']}: the variant per DVFS level** "
                    "(what its runtime switches to when the governor lowers the frequency)")
        st.table(_shown(levels_frame(found).set_index("DVFS level")))


LEVEL_FORMATS = {"latency ms": "{:.3f}", "mJ/inference": "{:.4g}", "accuracy": "{:.4f}"}


def _shown(levels: pandas.DataFrame) -> pandas.DataFrame:
    """The per-DVFS table as text: figures rounded, empty cells blank (a static table
    renders its cells as markdown, where "-" would be a bullet)."""
    shown = levels.astype(object).where(levels.notna(), "")
    for column, template in LEVEL_FORMATS.items():
        shown[column] = [template.format(v) if v != "" else "" for v in shown[column]]
    return shown


def _export(found: Answer) -> None:
    text = export_text(found)
    st.download_button("Export the answer as JSON", data=text, file_name="hilbench-answer.json",
                       mime="application/json", key="export", icon=":material/download:")
    with st.expander("The answer as JSON (what `bench select --json` prints)"):
        st.code(text, language="json")


def render() -> None:
    st.title("Recommend")
    names = families(context.store())
    if not names:
        st.info("No model is stored yet: `bench demo`, or `bench compress` to make a family.")
        return
    ask = _ask(names)
    found = recommend(context.store(), ask, *context.predictor())
    _pick(found, ask)
    st.altair_chart(charts.recommendation(plotted(found), ask.statistic, ask.lc_ms, ask.ac))
    _tables(found)
    _export(found)


if __name__ == "__main__":
    context.guarded(render)
