"""`bench`: entry point. User errors become one line on stderr and exit code 2."""

from __future__ import annotations

import sys

import typer

from hilbench.cli import (
    coordinator,
    dashboard,
    demo,
    devices,
    fleet,
    predictor,
    profiles,
    run,
    select,
    variants,
)
from hilbench.core.errors import HilbenchError, UserError

EXIT_USER_ERROR = 2

app = typer.Typer(
    name="bench",
    help="hilbench: benchmark ML models on real and emulated devices, keep every measurement.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help text is plain: "[default: ...]" is not rich markup
)
app.add_typer(devices.app, name="devices")
app.add_typer(profiles.app, name="profiles")
app.add_typer(predictor.app, name="predictor")
app.add_typer(coordinator.app, name="agent")
app.command("run")(run.run_command)
app.command("demo")(demo.demo_command)
app.command("serve")(coordinator.serve_command)
app.command("compress")(variants.compress_command)
app.command("accuracy")(variants.accuracy_command)
app.command("predict")(predictor.predict_command)
app.command("select")(select.select_command)
app.command("fleet")(fleet.fleet_command)
app.command("dashboard")(dashboard.dashboard_command)


def main(argv: list[str] | None = None) -> None:
    """Console script. Exit codes: 0 ok, 1 some jobs failed, 2 bad input (usage errors are
    reported by Typer itself, also with 2)."""
    try:
        app(args=argv, prog_name="bench")
    except UserError as exc:
        _fail(str(exc), EXIT_USER_ERROR)
    except HilbenchError as exc:
        _fail(str(exc), 1)


def _fail(message: str, code: int) -> None:
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    sys.stderr.write(f"error: {first_line}\n")
    sys.exit(code)
