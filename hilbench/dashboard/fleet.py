"""Fleet: every device with how it is reached, its status, what its probe found and its
number of runs (``bench devices list``, with status and runs)."""

from __future__ import annotations

from typing import Literal

import pandas
import streamlit as st

from hilbench.dashboard import context
from hilbench.dashboard.data import local_times
from hilbench.profiles.inventory import ONLINE, fleet_frame

STATUS = {
    "device": st.column_config.TextColumn("device"),
    "kind": st.column_config.TextColumn("kind"),
    "class": st.column_config.TextColumn("class"),
    "transport": st.column_config.TextColumn("transport", width="medium"),
    "status": st.column_config.TextColumn("status"),
    "last_seen": st.column_config.DatetimeColumn("last seen", format="YYYY-MM-DD HH:mm:ss"),
    "runs": st.column_config.NumberColumn("runs"),
    "valid_runs": st.column_config.NumberColumn("VALID runs"),
}
CAPABILITIES = {"cpu_count": "cores", "memory_gib": "memory GiB", "runtimes": "runtimes",
                "dvfs_levels": "DVFS domains: levels (MHz, count)", "sensors": "sensors"}
ALL_ROWS = 20  # up to this many devices, the tables show every row without scrolling


def shown(fleet: pandas.DataFrame) -> pandas.DataFrame:
    """The fleet in display units (last seen in local time, memory in GiB, the preset with
    the kind)."""
    frame = fleet.copy()
    frame["last_seen"] = local_times(frame["last_seen"])
    frame["memory_gib"] = pandas.to_numeric(frame["memory_mb"]) / 1024
    frame["kind"] = [f"{kind} ({preset})" if isinstance(preset, str) else kind
                     for kind, preset in zip(frame["kind"], frame["preset"], strict=True)]
    return frame


def capabilities(frame: pandas.DataFrame) -> pandas.DataFrame:
    """What each probe found, by device, as text that wraps (a static table)."""
    found = frame.set_index("device").loc[:, list(CAPABILITIES)]
    found["memory_gib"] = [f"{v:.1f}" if pandas.notna(v) else "?" for v in found["memory_gib"]]
    found["cpu_count"] = [str(v) if pandas.notna(v) else "?" for v in found["cpu_count"]]
    for column in ("runtimes", "dvfs_levels", "sensors"):
        found[column] = found[column].replace("", "none found")
    return found.rename(columns=CAPABILITIES)


def render() -> None:
    st.title("Fleet")
    fleet = fleet_frame(context.store())
    if fleet.empty:
        st.info("No device is registered; the stored runs were made by devices since "
                "removed. `bench devices add` or `bench demo` registers some.")
        return
    counts = st.columns(4)
    counts[0].metric("devices", len(fleet))
    counts[1].metric("online now", int((fleet["status"] == ONLINE).sum()))
    counts[2].metric("runs", int(fleet["runs"].sum()))
    counts[3].metric("VALID runs", int(fleet["valid_runs"].sum()))
    frame = shown(fleet)
    height: Literal["content", "auto"] = "content" if len(frame) <= ALL_ROWS else "auto"
    st.dataframe(frame.loc[:, list(STATUS)], column_config=STATUS, hide_index=True,
                 height=height)
    st.caption("status: online (an agent called the coordinator, or a run finished, in the "
               "last 90 s), offline (its agents went silent), on demand (reached when a job "
               "runs: local, emulated, SSH and ADB devices), replay (a published table). "
               "Last seen: its agents' last call or its last run.")
    st.subheader("Capabilities", help="What each device's probe found when it was added.")
    st.table(capabilities(frame))


if __name__ == "__main__":
    context.guarded(render)
