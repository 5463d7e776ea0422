"""`bench`: entry point. User errors become one line on stderr and exit code 2."""

from __future__ import annotations

import sys

import click
import typer

from hilbench.cli import demo, devices, profiles, run
from hilbench.core.errors import HilbenchError, UserError

EXIT_USER_ERROR = 2

app = typer.Typer(
    name="bench",
    help="hilbench: benchmark ML models on real and emulated devices, keep every measurement.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(devices.app, name="devices")
app.add_typer(profiles.app, name="profiles")
app.command("run")(run.run_command)
app.command("demo")(demo.demo_command)


def main(argv: list[str] | None = None) -> None:
    """Console script. Exit codes: 0 ok, 1 some jobs failed, 2 bad input."""
    try:
        app(args=argv, prog_name="bench", standalone_mode=False)
    except UserError as exc:
        _fail(str(exc), EXIT_USER_ERROR)
    except HilbenchError as exc:
        _fail(str(exc), 1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _fail("aborted", 130)


def _fail(message: str, code: int) -> None:
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    sys.stderr.write(f"error: {first_line}\n")
    sys.exit(code)
