"""Agent entry point: ``python -m hilbench.agents run`` (job JSON on stdin, result JSON on
stdout, progress lines on stderr) and ``python -m hilbench.agents probe --root /``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from hilbench.agents import AGENT_VERSION
from hilbench.agents.coordinator import AgentConfig, PullingAgent
from hilbench.agents.job import execute
from hilbench.agents.protocol import JobSpec, error_result, ok_result, progress_line
from hilbench.agents.sysfs import probe
from hilbench.core.errors import HilbenchError, UnsupportedFormatError


def _report_progress(phase: str, fraction: float) -> None:
    sys.stderr.write(progress_line(phase, fraction) + "\n")
    sys.stderr.flush()


def _stop_on_term(signum: int, frame: object) -> None:
    """TERM (a cancelled run, Ctrl-C on the host) or HUP (the SSH or adb session closed)
    unwinds the job like an error does, so that what it changed on the device (pinned DVFS
    levels) is put back."""
    raise SystemExit(128 + signum)


def _run() -> int:
    for name in ("SIGTERM", "SIGHUP"):  # SIGHUP: the transport's session went away
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _stop_on_term)
    text = sys.stdin.read()
    job_id = "?"
    try:
        job = JobSpec.from_json(text)
        job_id = job.job_id
        measurement = execute(job, _report_progress)
    except HilbenchError as exc:
        sys.stdout.write(error_result(job_id, exc) + "\n")
        return 0
    sys.stdout.write(ok_result(job_id, measurement) + "\n")
    return 0


def _probe(root: str) -> int:
    info = probe(Path(root))
    info["agent_version"] = AGENT_VERSION
    info["python_version"] = sys.version.split()[0]
    info["runtimes"] = _runtimes()
    sys.stdout.write(json.dumps(info) + "\n")
    return 0


def _runtimes() -> dict[str, dict[str, object]]:
    """The runtimes this device can run models with, and their versions."""
    found: dict[str, dict[str, object]] = {}
    try:
        import onnxruntime

        found["onnxruntime"] = {
            "version": onnxruntime.__version__,
            "providers": list(onnxruntime.get_available_providers()),
        }
    except ImportError:
        pass
    try:
        from hilbench.agents.runners.litert import LiteRtRunner

        litert = LiteRtRunner()
        found[litert.name] = {"version": litert.version(), "providers": ["CPU"]}
    except UnsupportedFormatError:
        pass
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hilbench.agents")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the job JSON read from stdin")
    probe_parser = commands.add_parser("probe", help="describe this device as JSON")
    probe_parser.add_argument("--root", default="/", help="sysfs/procfs root")
    connect = commands.add_parser("connect", help="register with a coordinator, pull jobs")
    connect.add_argument("--coordinator", required=True, help="http://host:port")
    connect.add_argument("--enroll-token", required=True)
    connect.add_argument("--name", required=True, help="this agent's name")
    connect.add_argument("--device", required=True, help="the device it measures")
    connect.add_argument("--state-dir", default=str(Path.home() / ".hilbench-agent"))
    connect.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    connect.add_argument("--once", action="store_true", help="exit when the queue is empty")
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run()
    if args.command == "connect":
        return _connect(args)
    return _probe(args.root)


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _connect(args: argparse.Namespace) -> int:
    config = AgentConfig(args.coordinator, args.enroll_token, args.name, args.device,
                         Path(args.state_dir), args.poll)
    try:
        PullingAgent(config, _log).serve(once=args.once)
    except HilbenchError as exc:
        _log(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
