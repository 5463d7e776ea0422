"""`bench dashboard`: the Streamlit dashboard on a store (Fleet, Runs, Trade-offs,
Recommend)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from hilbench.cli.common import StoreOption, err, open_store
from hilbench.core.errors import SettingsError
from hilbench.profiles.location import STORE_ENV, default_store_url

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def app_path() -> Path:
    """The dashboard's entry script, inside the installed package."""
    import hilbench.dashboard

    return Path(hilbench.dashboard.__file__).resolve().parent / "app.py"


def streamlit_argv(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(app_path()),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--server.runOnSave", "false",
            "--client.toolbarMode", "minimal"]


def check_port(host: str, port: int) -> None:
    """``SettingsError`` (one line) when ``host:port`` cannot be listened on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SettingsError(f"--host {host}: cannot resolve it ({exc.strerror})") from exc
    family, kind, _, _, address = infos[0]
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise SettingsError(f"cannot listen on {host}:{port}: "
                                f"{exc.strerror or exc}") from exc


def dashboard_command(
    store: StoreOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface; "
                                      "the dashboard has no login).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8501,
) -> None:
    """Serve the dashboard on the store: the fleet, runs with their latency distribution and
    sensor traces, trade-off curves, and recommendations from the selector. Stop with
    Ctrl-C."""
    url = store or default_store_url()
    with open_store(url) as opened:  # an unreachable store is one line here, not in a page
        shown = opened.url
    check_port(host, port)
    err.print(f"dashboard on http://{host}:{port}/ (store: {shown}); Ctrl-C stops it",
              markup=False, highlight=False)
    env = {**os.environ, STORE_ENV: url}
    with subprocess.Popen(streamlit_argv(host, port), env=env) as server:
        code = _serve(server)
    if code:
        raise typer.Exit(128 - code if code < 0 else code)  # -N: killed by signal N


def _serve(server: subprocess.Popen[bytes]) -> int:
    """Wait for the server; INT, TERM or HUP sent to ``bench dashboard`` is passed on to it
    (a terminal's Ctrl-C reaches both: a second INT makes streamlit stop at once)."""
    def stop(signum: int, _frame: FrameType | None) -> None:
        server.send_signal(signum)

    previous = {signum: signal.signal(signum, stop) for signum in FORWARDED}
    try:
        return server.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
