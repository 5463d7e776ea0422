"""The host's side of the POSIX-sh agent (hilbench/agents/sh/hilbench-agent.sh): the
script itself, and what its output means. Pure functions, tested on captured output."""

from __future__ import annotations

import hashlib
import posixpath
import re
import shlex
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from hilbench.agents.dvfs_control import CPUFREQ_FILES, DEVFREQ_FILES
from hilbench.agents.sysfs import dvfs_directories
from hilbench.core.dvfs import DomainState
from hilbench.core.errors import AgentError, DeviceError, SettingsError, first_line
from hilbench.core.fields import shown
from hilbench.core.telemetry import Series, Telemetry, unit_of

SH_AGENT_FILE = "hilbench-agent.sh"
SH_AGENT_VERSION = 3
EXTERNAL_SERIES = "external"  # the --power-command's readings, in watts (as the Python agent)
_HEADER = re.compile(r"^@@hilbench-sh-agent (\d+)$")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")  # as agents/power.py reads it


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
    ``markers``: its ``@@name value`` lines (the last of each name; ``repeated``: all of
    them, in order); ``sections``: ``tool`` output, ``trace``."""

    version: int
    files: dict[str, str] = field(default_factory=dict)
    markers: dict[str, str] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)
    repeated: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def marker(self, name: str) -> str | None:
        return self.markers.get(name)

    def all_markers(self, name: str) -> tuple[str, ...]:
        return self.repeated.get(name, ())


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
    markers: dict[str, list[str]] = {}
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
            markers.setdefault(name, []).append(value.strip())
            current = None
        elif current is not None:
            current.append(line)
    return AgentOutput(
        version=version,
        files={path: _joined(body) for path, body in files.items()},
        markers={name: values[-1] for name, values in markers.items()},
        sections={name: _joined(body) for name, body in sections.items()},
        repeated={name: tuple(values) for name, values in markers.items()},
    )


def _joined(body: list[str]) -> str:
    return "\n".join(body).rstrip("\n")


def write_tree(files: dict[str, str], root: Path) -> Path:
    """Lay the dumped files out under ``root``, so that the sysfs readers that read ``/`` on
    a device read them unchanged."""
    for path, text in files.items():
        relative = Path(path.lstrip("/"))
        if ".." in relative.parts or not relative.parts or "\0" in path:
            raise AgentError(f"the sh agent dumped a file at {shown(path)}, outside its "
                             "root")
        target = root / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text + "\n")
        except (OSError, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or first_line(exc)
            raise AgentError(f"the sh agent dumped {shown(path)}, which cannot be laid out "
                             f"here: {reason}") from exc
    return root


def _reading(sensor: str, rest: str) -> float | None:
    """A trace line's value: a sysfs file's number, or the last number the power command
    printed (as the Python agent reads an external meter)."""
    if sensor == EXTERNAL_SERIES:
        numbers = _NUMBER.findall(rest)
        return float(numbers[-1]) if numbers else None
    try:
        return float(rest) if len(rest.split()) == 1 else None
    except ValueError:
        return None


def _unit(sensor: str) -> str:
    return "W" if sensor == EXTERNAL_SERIES else unit_of(sensor)


def parse_trace(text: str, interval_s: float) -> Telemetry:
    """``T PATH VALUE`` (and ``T external OUTPUT``) lines into one series per sensor; lines
    that are not numbers (a sensor that answered garbage, a line cut by the kill) are
    dropped."""
    points: dict[str, tuple[list[float], list[float]]] = {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) != 3:
            continue
        try:
            t_s = float(parts[0])
        except ValueError:
            continue
        value = _reading(parts[1], parts[2])
        if value is None:
            continue
        times, values = points.setdefault(parts[1], ([], []))
        times.append(t_s)
        values.append(value)
    series = tuple(
        Series(sensor, _unit(sensor), tuple(times), tuple(values))
        for sensor, (times, values) in sorted(points.items())
    )
    return Telemetry(interval_s, series)


def _pin_files(domain: DomainState) -> tuple[tuple[str, str], int]:
    """The limit files of a domain and the sysfs value per kHz (cpufreq: kHz, devfreq: Hz)."""
    return (CPUFREQ_FILES, 1) if domain.cpus else (DEVFREQ_FILES, 1000)


def pin_arguments(files: dict[str, str], sysfs_root: str, pins: dict[str, int]) -> list[str]:
    """``--pin NAME DIR MIN_FILE MAX_FILE VALUE`` for each domain -> kHz in ``pins``, found in
    what ``dvfs`` dumped (the same reader as the Python agent's); ``SettingsError`` for a
    domain or a level the device does not have."""
    with tempfile.TemporaryDirectory(prefix="hilbench-sh-dvfs-") as folder:
        tree = write_tree(files, Path(folder))
        domains = {domain.name: (domain, path.relative_to(tree).as_posix())
                   for domain, path in dvfs_directories(tree)}
    arguments: list[str] = []
    for name, khz in pins.items():
        if name not in domains:
            raise SettingsError(f"no DVFS domain {name!r} the sh agent can pin on this device; "
                                f"it has {', '.join(domains) or 'none'}")
        domain, relative = domains[name]
        if domain.available_khz and khz not in domain.available_khz:
            raise SettingsError(f"{name} has no level {khz} kHz; its levels: "
                                f"{', '.join(str(f) for f in domain.available_khz)}")
        (low, high), unit = _pin_files(domain)
        arguments += ["--pin", name, posixpath.join(sysfs_root, relative), low, high,
                      str(khz * unit)]
    return arguments


def power_arguments(command: str | None) -> list[str]:
    """``--power-command N WORD...``: the device's power command as words (never one string
    for a shell), run by the agent's sampler."""
    if not command:
        return []
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise DeviceError(f"--power-command {command!r}: {exc}") from exc
    if not words:
        raise DeviceError("--power-command is empty")
    if "\0" in command:
        raise DeviceError(f"--power-command {command!r} holds a NUL byte")
    return ["--power-command", str(len(words)), *words]


def pin_notes(output: AgentOutput) -> list[str]:
    """What the agent could not pin, or put back, in the words of the Python agent's notes."""
    notes = []
    for marker in output.all_markers("dvfs-not-pinned"):
        name, _, why = marker.partition(" ")
        hint = "" if why.startswith("the kernel kept") else "; pinning needs root"
        notes.append(f"DVFS: {name} not pinned ({why}{hint}): the frequencies observed are "
                     "recorded instead")
    for marker in output.all_markers("dvfs-not-restored"):
        name, _, why = marker.partition(" ")
        notes.append(f"DVFS: {name} not restored ({why}): its limits stay as the run set them")
    return notes
