"""What every page shares: the store (``$HILBENCH_STORE``, as every command reads it; ``bench
dashboard --store URL`` sets it), the predictor, and errors shown as one line."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import streamlit as st

from hilbench.core.errors import HilbenchError
from hilbench.predictor.loading import load_predictor
from hilbench.profiles.location import default_store_url
from hilbench.profiles.store import Store

if TYPE_CHECKING:
    from hilbench.predictor.service import Predictor

GET_DATA = """\
**This store holds no devices and no runs yet.** Fill it, then reload this page:

```bash
bench demo --store {url}
```

`bench demo` registers this machine's CPU and four emulated devices (phone, Jetson, server,
FPGA board), benchmarks a small encoder and a family of digit classifiers (pruned and int8
variants, with their accuracy) on all of them, and stores every measurement. With your own
hardware: `bench devices add NAME --ssh user@host --key KEY` (or `--adb SERIAL`), then
`bench run -m model.onnx --devices all`; `bench compress` and `bench accuracy` make a variant
family to choose from.
"""


@st.cache_resource(show_spinner=False)
def _open(url: str) -> Store:
    return Store.open(url)


def store() -> Store:
    """The store this dashboard shows; a store that cannot be opened stops the page with
    its one-line reason."""
    try:
        return _open(default_store_url())
    except HilbenchError as exc:
        st.error(f"Cannot open the store: {exc}")
        st.stop()
        raise  # st.stop() raises; this is for the type checker


@st.cache_resource(show_spinner="Loading the predictor...")
def _predictor() -> tuple[Predictor | None, str]:
    return load_predictor(None)


def predictor() -> tuple[Predictor | None, str]:
    """The newest trained predictor (None and why when there is none or it is unusable:
    then only measured candidates have latencies)."""
    try:
        return _predictor()
    except HilbenchError as exc:
        return None, f"no usable predictor ({exc})"


def get_data() -> None:
    """The page an empty store gets."""
    st.title("hilbench")
    st.markdown(GET_DATA.format(url=store().url))


def one_line(exc: HilbenchError) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def guarded(render: Callable[[], None]) -> None:
    """Run a page; a hilbench error (a store gone away, an unknown model) is one line, not
    a traceback."""
    try:
        render()
    except HilbenchError as exc:
        st.error(one_line(exc))
