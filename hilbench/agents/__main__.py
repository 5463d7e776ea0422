"""Agent entry point: ``python -m hilbench.agents run`` (job JSON on stdin, result JSON on
stdout, progress lines on stderr) and ``python -m hilbench.agents probe --root /``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hilbench.agents import AGENT_VERSION
from hilbench.agents.job import execute
from hilbench.agents.protocol import JobSpec, error_result, ok_result, progress_line
from hilbench.agents.sysfs import probe
from hilbench.core.errors import HilbenchError


def _report_progress(phase: str, fraction: float) -> None:
    sys.stderr.write(progress_line(phase, fraction) + "\n")
    sys.stderr.flush()


def _run() -> int:
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
    found: dict[str, dict[str, object]] = {}
    try:
        import onnxruntime
    except ImportError:
        return found
    found["onnxruntime"] = {
        "version": onnxruntime.__version__,
        "providers": list(onnxruntime.get_available_providers()),
    }
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hilbench.agents")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the job JSON read from stdin")
    probe_parser = commands.add_parser("probe", help="describe this device as JSON")
    probe_parser.add_argument("--root", default="/", help="sysfs/procfs root")
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run()
    return _probe(args.root)


if __name__ == "__main__":
    sys.exit(main())
