"""The dashboard's entry script (``streamlit run``): one page per view, or the page that
says how to get data when the store is empty."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from hilbench.core.errors import HilbenchError
from hilbench.dashboard import context
from hilbench.dashboard.data import is_empty

HERE = Path(__file__).resolve().parent
PAGES = (("fleet.py", "Fleet", ":material/devices:"),
         ("runs.py", "Runs", ":material/timer:"),
         ("tradeoffs.py", "Trade-offs", ":material/insights:"),
         ("recommend.py", "Recommend", ":material/recommend:"))


def main() -> None:
    st.set_page_config(page_title="hilbench", page_icon=":material/speed:", layout="wide")
    opened = context.store()
    st.sidebar.caption(f"store: {opened.url}")
    try:
        empty = is_empty(opened)
    except HilbenchError as exc:  # the store went away since it was opened
        st.error(context.one_line(exc))
        st.stop()
    if empty:
        pages = [st.Page(context.get_data, title="Get started", icon=":material/info:")]
    else:
        pages = [st.Page(HERE / name, title=title, icon=icon) for name, title, icon in PAGES]
    st.navigation(pages).run()


if __name__ == "__main__":
    main()
