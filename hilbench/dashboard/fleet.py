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
CAPABILITIES = {
    "device": st.column_config.TextColumn("device"),
    "cpu_count": st.column_config.NumberColumn("cores", width="small"),
    "memory_gib": st.column_config.NumberColumn("memory GiB", format="%.1f", width="small"),
    "runtimes": st.column_config.TextColumn("runtimes"),
    "dvfs_levels": st.column_config.TextColumn("DVFS domains: levels (MHz, count)",
                                               width="medium"),
    "sensors": st.column_config.TextColumn("sensors", width="large"),
}
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
                 height=height, key="fleet_status")
    st.caption("status: online (an agent called the coordinator, or a run finished, in the "
               "last 90 s), offline (its agents went silent), on demand (reached when a job "
               "runs: local, emulated, SSH and ADB devices), replay (a published table). "
               "Last seen: its agents' last call or its last run.")
    st.subheader("Capabilities", help="What each device's probe found when it was added.")
    st.dataframe(frame.loc[:, list(CAPABILITIES)], column_config=CAPABILITIES,
                 hide_index=True, height=height, key="fleet_capabilities")


if __name__ == "__main__":
    context.guarded(render)
