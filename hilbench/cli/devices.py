"""`bench devices list | add | remove | show`."""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hilbench.cli.common import (
    JsonOption,
    StoreOption,
    checked_power_command,
    open_store,
    out,
    print_json,
)
from hilbench.core.errors import AgentError, DeviceError, DuplicateDeviceError, TransportError
from hilbench.core.records import DEVICE_KINDS, DeviceRecord
from hilbench.devices.adb_shell import DEFAULT_SERVER
from hilbench.devices.device import (
    DEFAULT_ADB_DIR,
    DEFAULT_REMOTE_DIR,
    adb_transport,
    open_device,
    sh_agent_transport,
    ssh_transport,
)
from hilbench.devices.registry import new_device_record
from hilbench.profiles.inventory import Activity, activity, device_row, fleet_rows, status
from hilbench.profiles.store import Store

app = typer.Typer(help="Register, list and inspect devices.", no_args_is_help=True)


def probe_info(record: DeviceRecord) -> dict[str, Any]:
    """What the device's agent reports about it (cores, memory, DVFS, runtimes)."""
    with tempfile.TemporaryDirectory(prefix="hilbench-probe-") as workdir:
        device = open_device(record, Path(workdir))
        try:
            return device.probe()
        finally:
            device.close()


def register(store: Store, record: DeviceRecord) -> DeviceRecord:
    """Probe a validated device and add it to the store (refusing duplicates first)."""
    if any(d.name == record.name for d in store.list_devices()):
        raise DuplicateDeviceError(f"device {record.name} is already registered")
    try:
        probed = replace(record, info=probe_info(record))
    except (TransportError, AgentError) as exc:
        raise DeviceError(f"{record.name}: cannot probe it: {exc}") from exc
    store.add_device(probed)
    return probed


@app.command("list")
def list_devices(store: StoreOption = None, json_output: JsonOption = False) -> None:
    """List registered devices."""
    with open_store(store) as opened:
        records = opened.list_devices()
        fleet = {row["device"]: row for row in fleet_rows(opened)}
    rows = [{**device_row(r), **{key: fleet[r.name][key] for key in
                                 ("transport", "status", "last_seen", "runs")}}
            for r in records]
    if json_output:
        print_json(rows)
        return
    if not rows:
        out.print("No devices registered. Run `bench demo` or `bench devices add`.")
        return
    table = Table("device", "kind", "class", "cores", "memory", "DVFS domains", "runtimes",
                  "status", "runs")
    for row in rows:
        memory = f"{row['memory_mb'] / 1024:.1f} GiB" if row["memory_mb"] else "?"
        table.add_row(
            row["device"],
            row["kind"] + (f" ({row['preset']})" if row["preset"] else ""),
            str(row["class"] or "?"),
            str(row["cpu_count"] or "?"),
            memory,
            ", ".join(row["dvfs_domains"]) or "none found",
            ", ".join(row["runtimes"]) or "none",
            str(row["status"]),
            str(row["runs"]),
        )
    out.print(table)


def agent_transport(agent: str, tool: str | None, tool_kind: str | None) -> dict[str, Any]:
    if agent == "sh":
        return sh_agent_transport(tool or "", tool_kind)
    if agent != "python":
        raise DeviceError(f"unknown agent {agent!r}: python or sh")
    if tool is not None or tool_kind is not None:
        raise DeviceError("--tool needs --agent sh (the Python agent runs models itself)")
    return {"agent": "python"}


@app.command("add")
def add_device(
    name: Annotated[str, typer.Argument(help="Unique device name.")],
    kind: Annotated[
        str, typer.Option("--kind", help=f"One of: {', '.join(DEVICE_KINDS)}.")
    ] = "emulated",
    preset: Annotated[
        str | None,
        typer.Option("--preset", help="Emulated preset: phone, jetson, server or fpga."),
    ] = None,
    ssh: Annotated[
        str | None, typer.Option("--ssh", help="Reach it over SSH: user@host[:port].")
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="SSH private key file.")] = None,
    known_hosts: Annotated[
        str | None,
        typer.Option("--known-hosts", help="known_hosts file (default ~/.ssh/known_hosts)."),
    ] = None,
    adb: Annotated[
        str | None, typer.Option("--adb", help="Reach it through adb: SERIAL or host:port.")
    ] = None,
    adb_server: Annotated[
        str, typer.Option("--adb-server", help="The adb server, host:port.")
    ] = DEFAULT_SERVER,
    python: Annotated[
        str, typer.Option("--python", help="Python on the device that runs the agent.")
    ] = "python3",
    remote_dir: Annotated[
        str | None,
        typer.Option("--remote-dir", help="Folder on the device for agent and models "
                     f"[default: {DEFAULT_REMOTE_DIR} over SSH, {DEFAULT_ADB_DIR} over adb]."),
    ] = None,
    sysfs_root: Annotated[
        str, typer.Option("--sysfs-root", help="Where the device's /sys and /proc are.")
    ] = "/",
    agent: Annotated[
        str, typer.Option("--agent", help="python (the device has Python >= 3.8) or sh "
                          "(no Python: runs the device's own benchmark tool, see --tool).")
    ] = "python",
    tool: Annotated[
        str | None,
        typer.Option("--tool", help="With --agent sh: path of benchmark_model or "
                     "onnxruntime_perf_test on the device (push it there first)."),
    ] = None,
    tool_kind: Annotated[
        str | None,
        typer.Option("--tool-kind", help="benchmark_model or onnxruntime_perf_test, when the "
                     "file name does not say."),
    ] = None,
    power_command: Annotated[
        str | None,
        typer.Option("--power-command", help="A command on the device that prints its power "
                     "in watts (a USB power meter's CLI): used as its energy sensor."),
    ] = None,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Register a device, probe it and show what was found."""
    transport = None
    if ssh is not None and adb is not None:
        raise DeviceError("choose one of --ssh and --adb")
    if ssh is not None:
        if key is None:
            raise DeviceError("--ssh needs --key PATH (the private key that logs in)")
        kind = "ssh"
        transport = ssh_transport(ssh, key, python, known_hosts, remote_dir or DEFAULT_REMOTE_DIR)
    if adb is not None:
        kind = "adb"
        transport = adb_transport(adb, adb_server, python, remote_dir or DEFAULT_ADB_DIR,
                                  sysfs_root)
    if transport is not None:
        transport.update(agent_transport(agent, tool, tool_kind))
    elif agent != "python" or tool is not None:
        raise DeviceError("--agent sh and --tool are for devices reached with --ssh or --adb")
    if checked_power_command(power_command) is not None:
        transport = {**(transport or {}), "power_command": power_command}
    record = new_device_record(name, kind, preset, transport)
    with open_store(store) as opened:
        added = register(opened, record)
    if json_output:
        print_json(device_row(added))
    else:
        out.print(f"Added device [bold]{added.name}[/] ({added.kind}).")


@app.command("remove")
def remove_device(
    name: Annotated[str, typer.Argument(help="Device to remove (its runs are kept).")],
    store: StoreOption = None,
) -> None:
    """Unregister a device. Its stored runs stay in the store."""
    with open_store(store) as opened:
        opened.remove_device(name)
    out.print(f"Removed device [bold]{name}[/]; its runs stay in the store.")


@app.command("show")
def show_device(
    name: Annotated[str, typer.Argument(help="Device name.")],
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Everything known about one device."""
    with open_store(store) as opened:
        record = opened.get_device(name)
        seen = activity(opened).get(name, Activity())
    state, last_seen = status(record, seen, time.time())
    if json_output:
        print_json({**device_row(record), "info": record.info, "runs": seen.runs,
                    "status": state, "last_seen": last_seen})
        return
    row = device_row(record)
    out.print(f"[bold]{record.name}[/]  kind={record.kind}  preset={record.preset or '-'}")
    for line in _describe(record.info, row, seen.runs):
        out.print(line)
    when = (datetime.fromtimestamp(last_seen).isoformat(sep=" ", timespec="seconds")
            if last_seen is not None else "never")
    out.print(f"  status:   {state}, last seen {when}", markup=False)


def _describe(info: dict[str, Any], row: dict[str, Any], runs: int) -> list[str]:
    lines = [
        f"  class:    {row['class'] or '?'}",
        f"  OS:       {row['os'] or '?'}",
        f"  CPU:      {row['cpu_model'] or '?'} ({row['cpu_count'] or '?'} CPUs)",
        f"  memory:   {row['memory_mb']:.0f} MiB" if row["memory_mb"] else "  memory:   ?",
        f"  python:   {info.get('python_version', '?')}, agent {info.get('agent_version', '?')}",
    ]
    if info.get("description"):
        lines.insert(1, f"  about:    {info['description']}")
    for runtime, details in sorted(info.get("runtimes", {}).items()):
        providers = ", ".join(details.get("providers", []))
        where = details.get("version") or details.get("path") or "?"
        lines.append(f"  runtime:  {runtime} {where} [{providers}]")
    domains = info.get("dvfs", {}).get("domains", [])
    if not domains:
        lines.append("  DVFS:     no cpufreq domains found")
    for domain in domains:
        levels = ", ".join(f"{f / 1000:.0f}" for f in domain.get("available_khz", []))
        lines.append(
            f"  DVFS:     {domain['name']} governor={domain.get('governor') or '?'} "
            f"levels(MHz)=[{levels or '?'}]"
        )
    sensors = info.get("sensors", {})
    for kind, names in sorted(sensors.items()):
        lines.append(f"  sensors:  {kind}: {', '.join(names)}")
    if not sensors:
        lines.append("  sensors:  none found")
    lines.append(f"  runs:     {runs}")
    return lines
