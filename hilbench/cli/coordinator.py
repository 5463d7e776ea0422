"""`bench serve` (the coordinator) and `bench agent` (a device that pulls jobs from it;
`bench agent list` and `bench agent revoke NAME` manage the lab's agents)."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hilbench.cli.common import (
    JsonOption,
    StoreOption,
    checked_power_command,
    err,
    open_store,
    out,
    print_json,
)
from hilbench.core.errors import SettingsError

EnrollToken = Annotated[
    str | None,
    typer.Option("--enroll-token", envvar="HILBENCH_ENROLL_TOKEN",
                 help="Shared secret an agent shows once to register; it then gets its own.",
                 show_default=False),
]

app = typer.Typer(help="Run an agent that pulls jobs from a coordinator (bench agent "
                  "--coordinator URL ...), or manage the lab's agents.",
                  invoke_without_command=True)


def _tls(certfile: Path | None, keyfile: Path | None) -> None:
    if (certfile is None) != (keyfile is None):
        raise SettingsError("TLS needs both --certfile and --keyfile")
    for path in (certfile, keyfile):
        if path is not None and not path.is_file():
            raise SettingsError(f"TLS file not found: {path}")


def serve_command(
    enroll_token: EnrollToken = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    lease_seconds: Annotated[
        float, typer.Option(help="A job whose agent is silent this long goes back to the queue.")
    ] = 30.0,
    workers: Annotated[int, typer.Option(
        help="Worker processes (more than one needs a PostgreSQL store).")] = 1,
    certfile: Annotated[Path | None, typer.Option(
        help="TLS certificate (PEM): serve https.", show_default=False)] = None,
    keyfile: Annotated[Path | None, typer.Option(
        help="TLS private key (PEM) of --certfile.", show_default=False)] = None,
    models_dir: Annotated[Path | None, typer.Option(
        help="Where uploaded models are kept, by sha256 (PUT /v1/models/SHA256 with the "
        "enrollment token) [default: none: uploads refused].", show_default=False)] = None,
    max_model_mb: Annotated[float, typer.Option(help="Largest model upload, in MB.")] = 512,
    store: StoreOption = None,
) -> None:
    """Run the coordinator: agents register, lease jobs and upload results into the store."""
    import uvicorn

    if not enroll_token:
        raise SettingsError("the coordinator needs --enroll-token (or HILBENCH_ENROLL_TOKEN)")
    if workers < 1:
        raise SettingsError(f"--workers must be >= 1, got {workers}")
    _tls(certfile, keyfile)
    with open_store(store) as opened:
        url = opened.url
        if workers > 1 and not url.startswith("postgresql"):
            raise SettingsError("several workers need a PostgreSQL store (--store "
                                "postgresql://...): SQLite takes one writer at a time")
    os.environ.update({
        "HILBENCH_STORE": url, "HILBENCH_ENROLL_TOKEN": enroll_token,
        "HILBENCH_LEASE_S": str(lease_seconds),
        "HILBENCH_MAX_MODEL_BYTES": str(int(max_model_mb * 1024 * 1024)),
        **({"HILBENCH_MODELS_DIR": str(models_dir.resolve())} if models_dir else {}),
    })
    scheme = "https" if certfile else "http"
    err.print(f"coordinator on {scheme}://{host}:{port} ({workers} worker"
              f"{'s' if workers > 1 else ''}), store {url}", highlight=False)
    uvicorn.run("hilbench.server.app:app_from_environment", factory=True, host=host,
                port=port, workers=workers, log_level="warning",
                ssl_certfile=str(certfile) if certfile else None,
                ssl_keyfile=str(keyfile) if keyfile else None)


@app.callback()
def agent_command(
    ctx: typer.Context,
    coordinator: Annotated[str | None, typer.Option(
        help="Coordinator URL, http(s)://host:port.", show_default=False)] = None,
    enroll_token: EnrollToken = None,
    name: Annotated[str | None, typer.Option(
        help="This agent's name (unique in the lab).", show_default=False)] = None,
    device: Annotated[str | None, typer.Option(
        help="The device this agent measures.", show_default=False)] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Token, model cache and unsent results [default: ~/.hilbench-agent]."),
    ] = None,
    poll: Annotated[float, typer.Option(help="Seconds between polls when idle.")] = 1.0,
    once: Annotated[bool, typer.Option(help="Exit when the queue is empty.")] = False,
    sysfs_root: Annotated[str, typer.Option(
        help="Where this device's /sys and /proc are (a container with the host's mounted "
             "elsewhere).")] = "/",
    power_command: Annotated[str | None, typer.Option(
        help="A command printing this device's power in watts (an external meter).")] = None,
    ca_cert: Annotated[Path | None, typer.Option(
        help="CA certificate (PEM) an https coordinator's certificate is checked against "
        "[default: the system's CAs].", show_default=False)] = None,
) -> None:
    """Register this machine as a device with a coordinator and run the jobs it hands out."""
    from hilbench.agents.coordinator import AgentConfig, PullingAgent

    if ctx.invoked_subcommand is not None:
        return
    missing = [option for option, value in (("--coordinator", coordinator),
                                            ("--enroll-token", enroll_token), ("--name", name),
                                            ("--device", device)) if not value]
    if missing:
        raise SettingsError(f"bench agent needs {', '.join(missing)} (or a subcommand: list, "
                            "revoke)")
    if ca_cert is not None and not ca_cert.is_file():
        raise SettingsError(f"CA certificate not found: {ca_cert}")
    assert coordinator and enroll_token and name and device
    folder = state_dir or Path.home() / ".hilbench-agent"
    config = AgentConfig(coordinator, enroll_token, name, device, folder, poll, sysfs_root,
                         checked_power_command(power_command),
                         str(ca_cert) if ca_cert else None)
    PullingAgent(config, lambda message: err.print(message)).serve(once=once)


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


@app.command("list")
def list_command(store: StoreOption = None, json_output: JsonOption = False) -> None:
    """The lab's agents: device, registered, last seen, revoked, jobs held."""
    from dataclasses import asdict

    from hilbench.profiles.jobs import JobQueue

    with open_store(store) as opened:
        found = JobQueue(opened).agents()
    if json_output:
        print_json([asdict(agent) for agent in found])
        return
    table = Table("agent", "device", "registered", "last seen", "revoked", "jobs held")
    for agent in found:
        table.add_row(agent.name, agent.device, _when(agent.registered_at),
                      _when(agent.last_seen), _when(agent.revoked_at), str(agent.leased_jobs))
    out.print(table)


@app.command("revoke")
def revoke_command(
    name: Annotated[str, typer.Argument(help="The agent to revoke.")],
    store: StoreOption = None,
) -> None:
    """Revoke an agent: its token stops working (within seconds on a running coordinator),
    its jobs go back to the queue, and its name cannot register again."""
    from hilbench.profiles.jobs import JobQueue

    with open_store(store) as opened:
        if not JobQueue(opened).revoke(name):
            known = {agent.name: agent for agent in JobQueue(opened).agents()}
            why = "was revoked already" if name in known else "is not registered"
            raise SettingsError(f"agent {name} {why}")
    out.print(f"revoked {name}", markup=False)
