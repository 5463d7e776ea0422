"""Options and helpers every command group shares."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from hilbench.agents.power import external_sensor
from hilbench.core.errors import AgentError, DeviceError
from hilbench.profiles.store import Store

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="HILBENCH_STORE",
        help="Profile store URL (sqlite:///path.db or postgresql://...). "
        "Default: SQLite in the user data directory.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]

# Piped output (files, CI logs, other tools) gets wide tables rather than truncated cells.
PIPED_WIDTH = 240
out = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
err = Console(stderr=True, width=None if sys.stderr.isatty() else PIPED_WIDTH)


def open_store(url: str | None) -> Store:
    return Store.open(url)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def checked_power_command(command: str | None) -> str | None:
    """``--power-command`` as given, once it parses as a command line (not run here: it
    runs on the device)."""
    if command is not None:
        try:
            external_sensor(command)
        except AgentError as exc:
            raise DeviceError(f"--power-command: {exc}") from exc
    return command
