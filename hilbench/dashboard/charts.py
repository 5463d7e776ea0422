"""The dashboard's interactive charts (Altair): frames in, charts out. Measured points are
filled circles, predicted ones hollow triangles with the predictor's interval as a bar."""

from __future__ import annotations

from typing import Any, cast

import altair as alt
import pandas

Chart = alt.Chart | alt.LayerChart | alt.VConcatChart | alt.FacetChart
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")
SOURCE_SHAPES = alt.Scale(domain=["measured", "predicted"], range=["circle", "triangle-up"])
SOURCE_LEGEND = alt.Legend(symbolFillColor="gray", symbolStrokeColor="gray")
# distinct hues (Streamlit's own palette gives neighbouring devices shades of one colour)
PALETTE = alt.Scale(scheme="tableau10")
DEVICE = alt.Color("device:N", scale=PALETTE)
TOOLTIP = [
    alt.Tooltip("device:N"), alt.Tooltip("model:N"), alt.Tooltip("setting:N"),
    alt.Tooltip("source:N"), alt.Tooltip("latency_ms:Q", title="latency ms", format=".3f"),
    alt.Tooltip("latency_lower_ms:Q", title="interval low", format=".3f"),
    alt.Tooltip("latency_upper_ms:Q", title="interval high", format=".3f"),
    alt.Tooltip("accuracy:Q", format=".4f"), alt.Tooltip("energy_mj:Q", title="mJ/inference",
                                                         format=".4g"),
]


def _typed(chart: Any) -> Chart:
    """A top-level chart whose width fits the page and whose height is the plot's own
    (Streamlit's default fits legends and axes into the height too, squashing the plot).
    Altair's builders are typed loosely (``Any``); what they return is one of ``Chart``."""
    return cast(Chart, chart.properties(autosize=FIT_WIDTH))


def _part(chart: Any) -> alt.Chart:
    """A layer of a chart (sized by the chart it is layered into)."""
    return cast(alt.Chart, chart)


def latency_histogram(samples: pandas.DataFrame) -> Chart:
    """The raw latencies of a run: a histogram above a box plot on the same axis."""
    axis = alt.X("latency_ms:Q", title="latency (ms)", scale=alt.Scale(zero=False))
    histogram = alt.Chart(samples).mark_bar().encode(
        x=alt.X("latency_ms:Q", bin=alt.Bin(maxbins=40), title="latency (ms)"),
        y=alt.Y("count():Q", title="runs"),
    ).properties(height=220)
    box = alt.Chart(samples).mark_boxplot(extent=1.5).encode(x=axis).properties(height=50)
    return _typed(alt.vconcat(histogram, box))


def latency_sequence(samples: pandas.DataFrame) -> Chart:
    """Each timed run's latency in the order it ran (drift, warm-up left over, spikes)."""
    return _typed(alt.Chart(samples).mark_line(point=False, strokeWidth=1).encode(
        x=alt.X("idx:Q", title="timed run"),
        y=alt.Y("latency_ms:Q", title="latency (ms)", scale=alt.Scale(zero=False)),
    ).properties(height=180))


def trace(traces: pandas.DataFrame, kind: str, unit: str) -> Chart:
    """One kind of sensor (power, frequency, temperature) over time, a line per sensor; the
    timed runs are the shaded span from 0."""
    mine = traces[traces["kind"] == kind]
    timed = mine[mine["timed"]]
    lines = alt.Chart(mine).mark_line(point=True).encode(
        x=alt.X("t_s:Q", title="time from the timed runs' start (s)"),
        y=alt.Y("value:Q", title=f"{kind} ({unit})", scale=alt.Scale(zero=False)),
        color=alt.Color("label:N", title="sensor", scale=PALETTE,
                        legend=alt.Legend(orient="top")),
        tooltip=["sensor:N", alt.Tooltip("t_s:Q", format=".2f"),
                 alt.Tooltip("value:Q", format=".4g")],
    )
    if timed.empty:
        return _typed(lines.properties(height=220))
    window = pandas.DataFrame({"start": [0.0], "end": [float(timed["t_s"].max())]})
    span = alt.Chart(window).mark_rect(opacity=0.12, color="gray").encode(x="start:Q",
                                                                           x2="end:Q")
    return _typed(alt.layer(span, lines).properties(height=220))


def _points(frame: pandas.DataFrame, y: str, y_title: str, log: bool = False) -> alt.Chart:
    scale = alt.Scale(type="log") if log else alt.Scale(zero=False, padding=12)
    return _part(alt.Chart(frame).mark_point(size=70, filled=True).encode(
        x=alt.X("latency_ms:Q", title="latency (ms)", scale=alt.Scale(zero=False)),
        y=alt.Y(f"{y}:Q", title=y_title, scale=scale),
        color=DEVICE,
        shape=alt.Shape("source:N", scale=SOURCE_SHAPES, title="figure", legend=SOURCE_LEGEND),
        fill=alt.condition(alt.datum.source == "measured", DEVICE,
                           alt.value("white")),
        tooltip=TOOLTIP,
    ))


def _intervals(frame: pandas.DataFrame, y: str) -> alt.Chart:
    """The predictor's interval of each predicted point, as a horizontal bar."""
    predicted = frame[frame["source"] == "predicted"]
    return _part(alt.Chart(predicted).mark_rule(strokeWidth=2, opacity=0.6).encode(
        x="latency_lower_ms:Q", x2="latency_upper_ms:Q", y=f"{y}:Q", color=DEVICE))


def latency_accuracy(frame: pandas.DataFrame, statistic: str) -> Chart:
    """A curve per device (and setting) over the family's variants: latency against
    accuracy."""
    known = frame[frame["accuracy"].notna()].sort_values("latency_ms")
    curves = alt.Chart(known).mark_line(opacity=0.5).encode(
        x="latency_ms:Q", y="accuracy:Q", color=DEVICE, detail="setting:N",
        order="latency_ms:Q")
    points = _points(known, "accuracy", "accuracy").encode(
        x=alt.X("latency_ms:Q", title=f"{statistic} latency (ms)", scale=alt.Scale(zero=False)))
    return _typed(alt.layer(curves, _intervals(known, "accuracy"), points
                            ).properties(height=380))


def energy_latency(frame: pandas.DataFrame, statistic: str) -> Chart:
    """Energy per inference against latency (log energy: devices differ by 100x)."""
    known = frame[frame["energy_mj"].notna()]
    points = _points(known, "energy_mj", "energy per inference (mJ)", log=True).encode(
        x=alt.X("latency_ms:Q", title=f"{statistic} latency (ms)", scale=alt.Scale(zero=False)))
    return _typed(alt.layer(_intervals(known, "energy_mj"), points).properties(height=380))


def dvfs_curve(points: pandas.DataFrame, column: str, title: str) -> Chart:
    """One device's figure per DVFS level (highest frequency last), a line per model."""
    order = points.sort_values("mhz", na_position="last")["level"].drop_duplicates().tolist()
    return _typed(alt.Chart(points).mark_line(point=True).encode(
        x=alt.X("level:N", sort=order, title="DVFS level (highest pinned frequency)",
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y(f"{column}:Q", title=title, scale=alt.Scale(zero=False)),
        color=alt.Color("model:N", scale=PALETTE, legend=alt.Legend(orient="top", columns=2)),
        tooltip=["model:N", "level:N", alt.Tooltip(f"{column}:Q", format=".4g")],
    ).properties(height=260))


def recommendation(frame: pandas.DataFrame, statistic: str, lc_ms: float | None,
                   ac: float | None) -> Chart:
    """Latency against accuracy for every candidate: feasible ones in colour, those on the
    Pareto front (over latency, accuracy and energy) ringed, the pick a red diamond, LC and
    AC as dashed rules."""
    known = frame[frame["accuracy"].notna()]
    x = alt.X("latency_ms:Q", title=f"{statistic} latency (ms)", scale=alt.Scale(zero=False))
    y = alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(zero=False, padding=12))
    dots = alt.Chart(known).mark_point(size=70, filled=True).encode(
        x=x, y=y, shape=alt.Shape("source:N", scale=SOURCE_SHAPES, title="figure",
                                  legend=SOURCE_LEGEND),
        color=alt.condition(alt.datum.feasible, DEVICE, alt.value("lightgray")),
        tooltip=[*TOOLTIP, alt.Tooltip("feasible:N"), alt.Tooltip("front:N", title="Pareto")],
    )
    front = known[known["front"]]
    rings = alt.Chart(front).mark_point(size=260, color="black", strokeWidth=1.5).encode(
        x=x, y=y)
    star = alt.Chart(known[known["pick"]]).mark_point(
        shape="diamond", size=420, color="crimson", strokeWidth=3).encode(x=x, y=y)
    layers: list[Chart] = [dots, rings, star]
    if lc_ms is not None:
        layers.append(alt.Chart(pandas.DataFrame({"lc": [lc_ms]})).mark_rule(
            color="crimson", strokeDash=[6, 4]).encode(x="lc:Q"))
    if ac is not None:
        layers.append(alt.Chart(pandas.DataFrame({"ac": [ac]})).mark_rule(
            color="crimson", strokeDash=[6, 4]).encode(y="ac:Q"))
    return _typed(alt.layer(*layers).properties(height=420))
