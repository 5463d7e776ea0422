"""Trade-offs: over a variant family, latency against accuracy (a curve per device) and
energy against latency, measured and predicted points told apart (with the predictor's
interval), and the DVFS curves of a device (latency and energy per frequency level). The
figures are the selector's candidates (``bench select`` without constraints)."""

from __future__ import annotations

import streamlit as st

from hilbench.core.constraints import LATENCY_STATISTICS
from hilbench.dashboard import charts, context
from hilbench.dashboard.data import (
    Ask,
    candidates_text,
    dvfs_points,
    families,
    plotted,
    recommend,
    unplotted,
)
from hilbench.selector.query import Answer


def _dvfs(found: Answer) -> None:
    st.subheader("DVFS curves")
    points = dvfs_points(found)
    if points.empty:
        st.info("No measured candidate: DVFS levels come from measurements only.")
        return
    levels = points.groupby("device")["level"].nunique().sort_values(ascending=False)
    device = st.selectbox("Device", list(levels.index), key="dvfs_device")
    mine = points[points["device"] == device]
    if levels[device] < 2:
        st.caption(f"{device} was measured at one DVFS level ({mine['level'].iloc[0]}): "
                   f"`bench run -m MODEL --devices {device} --dvfs sweep` measures every "
                   "level of its fastest cluster.")
    left, right = st.columns(2)
    left.altair_chart(charts.dvfs_curve(mine, "latency_ms", "latency (ms)"))
    right.altair_chart(charts.dvfs_curve(mine, "energy_mj", "energy per inference (mJ)"))


def render() -> None:
    st.title("Trade-offs")
    opened = context.store()
    names = families(opened)
    if not names:
        st.info("No model is stored yet: `bench demo`, or `bench compress` to make a family.")
        return
    columns = st.columns([3, 1])
    family = columns[0].selectbox("Model family", names, key="trade_family")
    statistic = columns[1].selectbox("Latency statistic", LATENCY_STATISTICS,
                                     index=LATENCY_STATISTICS.index("p90"),
                                     key="trade_statistic")
    predictor, why = context.predictor()
    found = recommend(opened, Ask(str(family), statistic=str(statistic)), predictor, why)
    st.caption(candidates_text(found) + ". Filled circles are measured (VALID runs), hollow "
               "triangles predicted, with the predictor's interval as a bar."
               + (f" Nothing is predicted: {why}." if predictor is None else ""))
    frame = plotted(found)
    left, right = st.columns(2)
    with left:
        st.markdown("**Latency vs accuracy**, a curve per device over the variants")
        st.altair_chart(charts.latency_accuracy(frame, str(statistic)))
    with right:
        st.markdown("**Energy vs latency**")
        st.altair_chart(charts.energy_latency(frame, str(statistic)))
    missing = unplotted(found)
    if not missing.empty:
        with st.expander(f"{len(missing)} candidates without a latency, and why"):
            st.dataframe(missing, hide_index=True)
    _dvfs(found)


if __name__ == "__main__":
    context.guarded(render)
