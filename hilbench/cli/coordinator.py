"""`bench serve` (the coordinator) and `bench agent` (a device that pulls jobs from it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hilbench.agents.coordinator import AgentConfig, PullingAgent
from hilbench.cli.common import StoreOption, checked_power_command, err, open_store

EnrollToken = Annotated[
    str,
    typer.Option("--enroll-token", envvar="HILBENCH_ENROLL_TOKEN",
                 help="Shared secret an agent shows once to register; it then gets its own."),
]


def serve_command(
    enroll_token: EnrollToken,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    lease_seconds: Annotated[
        float, typer.Option(help="A job whose agent is silent this long goes back to the queue.")
    ] = 30.0,
    store: StoreOption = None,
) -> None:
    """Run the coordinator: agents register, lease jobs and upload results into the store."""
    import uvicorn

    from hilbench.server.app import create_app

    with open_store(store) as opened:
        err.print(f"coordinator on http://{host}:{port}, store {opened.url}")
        uvicorn.run(create_app(opened, enroll_token, lease_seconds), host=host, port=port,
                    log_level="warning")


def agent_command(
    coordinator: Annotated[str, typer.Option(help="Coordinator URL, http://host:port.")],
    enroll_token: EnrollToken,
    name: Annotated[str, typer.Option(help="This agent's name (unique in the lab).")],
    device: Annotated[str, typer.Option(help="The device this agent measures.")],
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
) -> None:
    """Register this machine as a device with a coordinator and run the jobs it hands out."""
    folder = state_dir or Path.home() / ".hilbench-agent"
    config = AgentConfig(coordinator, enroll_token, name, device, folder, poll, sysfs_root,
                         checked_power_command(power_command))
    PullingAgent(config, lambda message: err.print(message)).serve(once=once)
