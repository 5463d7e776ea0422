"""The emulated Jetson's own ``nvpmodel`` and ``jetson_clocks``, working on its sysfs tree.

    python -m hilbench.devices.emulated_tools.jetson nvpmodel ROOT -q | -p --verbose | -m ID
    python -m hilbench.devices.emulated_tools.jetson jetson_clocks ROOT [--store F|--restore F]

The emulated tree carries them as ``usr/sbin/nvpmodel`` and ``usr/bin/jetson_clocks`` (small
sh scripts that call this module), where L4T installs the real ones. ``nvpmodel`` reads
``etc/nvpmodel.conf`` like the real one: ``< PARAM TYPE=CLOCK NAME=X >`` blocks say which
sysfs files a clock's ``MIN_FREQ`` / ``MAX_FREQ`` are, ``< POWER_MODEL ID=N NAME=... >``
blocks set them (0 or -1: the clock's lowest / highest level), and the active mode is written
to ``var/lib/nvpmodel/status`` as ``pmode:000N``. The emulated modes cap frequencies only
(real boards also take cores offline)."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hilbench.agents.jetson import NVPMODEL_CONF, NVPMODEL_STATUS, current_power_mode

_BLOCK = re.compile(r"^<\s*(\w+)\s*(.*?)\s*>\s*$")


@dataclass(frozen=True)
class Clock:
    """A clock the conf names: its sysfs files, relative to the root."""

    name: str
    files: dict[str, str] = field(default_factory=dict)  # MIN_FREQ / MAX_FREQ / FREQ_TABLE


@dataclass(frozen=True)
class Mode:
    id: int
    name: str
    settings: tuple[tuple[str, str, int], ...]  # (clock, MIN_FREQ|MAX_FREQ, value)


def _attributes(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


def parse_conf(text: str) -> tuple[dict[str, Clock], list[Mode]]:
    clocks: dict[str, Clock] = {}
    modes: list[Mode] = []
    current: Clock | list[tuple[str, str, int]] | None = None
    for line in text.splitlines():
        block = _BLOCK.match(line.strip())
        if block:
            kind, attributes = block.group(1), _attributes(block.group(2))
            if kind == "PARAM" and attributes.get("TYPE") == "CLOCK":
                current = clocks.setdefault(attributes["NAME"], Clock(attributes["NAME"]))
            elif kind == "POWER_MODEL":
                current = []
                modes.append(Mode(int(attributes["ID"]), attributes["NAME"], ()))
            else:
                current = None
            continue
        parts = line.split()
        if isinstance(current, Clock) and len(parts) == 2:
            current.files[parts[0]] = parts[1].lstrip("/")
        elif isinstance(current, list) and len(parts) == 3 and parts[2].lstrip("-").isdigit():
            current.append((parts[0], parts[1], int(parts[2])))
            modes[-1] = Mode(modes[-1].id, modes[-1].name, tuple(current))
    return clocks, modes


def _read(path: Path) -> str:
    return path.read_text().strip()


def _write_limits(root: Path, min_file: str, max_file: str, low: int, high: int) -> None:
    """min <= max at every step, as the kernel insists."""
    if high >= int(_read(root / max_file)):
        pairs = ((max_file, high), (min_file, low))
    else:
        pairs = ((min_file, low), (max_file, high))
    for name, value in pairs:
        (root / name).write_text(f"{value}\n")


def _apply_mode(root: Path, clocks: dict[str, Clock], mode: Mode) -> None:
    for name, clock in clocks.items():
        wanted = {key: value for clock_name, key, value in mode.settings if clock_name == name}
        if not wanted or "MIN_FREQ" not in clock.files or "MAX_FREQ" not in clock.files:
            continue
        table = sorted(int(f) for f in _read(root / clock.files["FREQ_TABLE"]).split())
        low = wanted.get("MIN_FREQ", 0)
        high = wanted.get("MAX_FREQ", -1)
        low = table[0] if low <= 0 else low
        high = table[-1] if high <= 0 else high
        _write_limits(root, clock.files["MIN_FREQ"], clock.files["MAX_FREQ"], low, high)
        current = clock.files.get("CUR_FREQ")
        if current and (root / current).exists():
            value = min(max(int(_read(root / current)), low), high)
            (root / current).write_text(f"{value}\n")


def nvpmodel(root: Path, argv: Sequence[str]) -> int:
    clocks, modes = parse_conf((root / NVPMODEL_CONF).read_text())
    by_id = {mode.id: mode for mode in modes}
    if argv[:1] == ["-q"]:
        current = current_power_mode(root)
        name = by_id[current].name if current in by_id else "unknown"
        sys.stdout.write(f"NV Power Mode: {name}\n{current}\n")
        return 0
    if argv[:1] == ["-p"]:
        for mode in modes:
            sys.stdout.write(f"POWER_MODEL: ID={mode.id} NAME={mode.name}\n")
        return 0
    if len(argv) == 2 and argv[0] == "-m" and argv[1].isdigit() and int(argv[1]) in by_id:
        _apply_mode(root, clocks, by_id[int(argv[1])])
        (root / NVPMODEL_STATUS).write_text(f"pmode:{int(argv[1]):04d} fmode:quiet\n")
        return 0
    sys.stdout.write(f"NVPM ERROR: invalid arguments {' '.join(argv)}\n")
    return 1


def _clock_dirs(root: Path) -> list[tuple[Path, str, str, str]]:
    """(folder, min file, max file, current file) of every cpufreq policy and devfreq."""
    found = [(p, "scaling_min_freq", "scaling_max_freq", "scaling_cur_freq")
             for p in sorted(root.glob("sys/devices/system/cpu/cpufreq/policy*"))]
    found += [(d, "min_freq", "max_freq", "cur_freq")
              for d in sorted(root.glob("sys/class/devfreq/*"))]
    return found


def jetson_clocks(root: Path, argv: Sequence[str]) -> int:
    if len(argv) == 2 and argv[0] == "--store":
        lines = [f"{(folder / name).relative_to(root)}:{_read(folder / name)}"
                 for folder, low, high, _ in _clock_dirs(root) for name in (low, high)]
        Path(argv[1]).write_text("\n".join(lines) + "\n")
        return 0
    if len(argv) == 2 and argv[0] == "--restore":
        stored = dict(line.rsplit(":", 1) for line in Path(argv[1]).read_text().split())
        for folder, low, high, _ in _clock_dirs(root):
            low_file, high_file = (str((folder / n).relative_to(root)) for n in (low, high))
            if low_file in stored and high_file in stored:
                _write_limits(root, low_file, high_file, int(stored[low_file]),
                              int(stored[high_file]))
        return 0
    if argv[:1] == ["--show"]:
        for folder, low, high, _ in _clock_dirs(root):
            sys.stdout.write(f"{folder.name} MinFreq={_read(folder / low)} "
                             f"MaxFreq={_read(folder / high)}\n")
        return 0
    if not argv:  # every clock at the highest its power mode allows, as the real one
        for folder, low, high, current in _clock_dirs(root):
            top = int(_read(folder / high))
            _write_limits(root, str((folder / low).relative_to(root)),
                          str((folder / high).relative_to(root)), top, top)
            (folder / current).write_text(f"{top}\n")
        return 0
    sys.stdout.write(f"jetson_clocks: unknown option {' '.join(argv)}\n")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] not in ("nvpmodel", "jetson_clocks"):
        sys.stderr.write("usage: jetson nvpmodel|jetson_clocks ROOT [ARGS]\n")
        return 2
    tool = nvpmodel if args[0] == "nvpmodel" else jetson_clocks
    return tool(Path(args[1]), args[2:])


if __name__ == "__main__":
    sys.exit(main())
