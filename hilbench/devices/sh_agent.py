"""The host's side of the POSIX-sh agent (hilbench/agents/sh/hilbench-agent.sh): the
script itself, and what its output means. Pure functions, tested on captured output."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from hilbench.core.errors import AgentError
from hilbench.core.telemetry import Series, Telemetry, unit_of

SH_AGENT_FILE = "hilbench-agent.sh"
SH_AGENT_VERSION = 2
_HEADER = re.compile(r"^@@hilbench-sh-agent (\d+)$")


def sh_agent_script() -> bytes:
    return (resources.files("hilbench.agents") / "sh" / SH_AGENT_FILE).read_bytes()


def sh_agent_name() -> str:
    """The script's name on a device, by its content: an updated script is pushed again."""
    return f"hilbench-agent-{hashlib.sha256(sh_agent_script()).hexdigest()[:12]}.sh"


@dataclass(frozen=True)
class TimedLine:
    t_s: float | None
    text: str


def timed_lines(section: str) -> list[TimedLine]:
    """The tool's output as the agent stamped it: ``T LINE`` (a line without a time is kept,
    with none)."""
    lines = []
    for line in section.splitlines():
        stamp, _, rest = line.partition(" ")
        try:
            lines.append(TimedLine(float(stamp), rest))
        except ValueError:
            lines.append(TimedLine(None, line))
    return lines


@dataclass(frozen=True)
class AgentOutput:
    """One answer of the sh agent. ``files``: sysfs/procfs files it dumped, by path;
    ``markers``: its ``@@name value`` lines; ``sections``: ``tool`` output, ``trace``."""

    version: int
    files: dict[str, str] = field(default_factory=dict)
    markers: dict[str, str] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)

    def marker(self, name: str) -> str | None:
        return self.markers.get(name)


def parse_agent_output(text: str) -> AgentOutput:
    """Split the agent's output; ``AgentError`` if it is not the sh agent speaking, or a
    version this hilbench does not speak."""
    lines = text.splitlines()
    header = _HEADER.match(lines[0].strip()) if lines else None
    if header is None:
        first = lines[0][:80] if lines else "nothing"
        raise AgentError(f"the device's sh agent answered {first!r}, not its header")
    version = int(header.group(1))
    if version != SH_AGENT_VERSION:
        raise AgentError(f"sh agent version {version} on the device, this hilbench speaks "
                         f"{SH_AGENT_VERSION}: it is pushed again by the next run")
    files: dict[str, list[str]] = {}
    markers: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines[1:]:
        if line.startswith("@@section "):
            current = sections.setdefault(line[len("@@section "):], [])
        elif sections and current is not None:
            current.append(line)  # tool output and traces come last and may hold anything
        elif line.startswith("@@file "):
            current = files.setdefault(line[len("@@file "):], [])
        elif line.startswith("@@"):
            name, _, value = line[2:].partition(" ")
            markers[name] = value.strip()
            current = None
        elif current is not None:
            current.append(line)
    return AgentOutput(
        version=version,
        files={path: _joined(body) for path, body in files.items()},
        markers=markers,
        sections={name: _joined(body) for name, body in sections.items()},
    )


def _joined(body: list[str]) -> str:
    return "\n".join(body).rstrip("\n")


def write_tree(files: dict[str, str], root: Path) -> Path:
    """Lay the dumped files out under ``root``, so that the sysfs readers that read ``/`` on
    a device read them unchanged."""
    for path, text in files.items():
        relative = Path(path.lstrip("/"))
        if ".." in relative.parts:
            raise AgentError(f"the sh agent dumped a path outside its root: {path!r}")
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text + "\n")
    return root


def parse_trace(text: str, interval_s: float) -> Telemetry:
    """``T PATH VALUE`` lines into one series per sensor; lines that are not numbers (a
    sensor that answered garbage, a line cut by the kill) are dropped."""
    points: dict[str, tuple[list[float], list[float]]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        try:
            t_s, value = float(parts[0]), float(parts[2])
        except ValueError:
            continue
        times, values = points.setdefault(parts[1], ([], []))
        times.append(t_s)
        values.append(value)
    series = tuple(
        Series(sensor, unit_of(sensor), tuple(times), tuple(values))
        for sensor, (times, values) in sorted(points.items())
    )
    return Telemetry(interval_s, series)
