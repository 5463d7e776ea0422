"""NVIDIA Jetson power modes (``nvpmodel``) and ``jetson_clocks``, where the board has them.

A Jetson's power mode caps its clocks (and on real boards the online cores); ``nvpmodel -m
ID`` switches it and ``/var/lib/nvpmodel/status`` (``pmode:0001``) says which is active.
``jetson_clocks`` holds every clock at its maximum; ``jetson_clocks --store FILE`` saves the
clocks first and ``--restore FILE`` puts them back. The modes a board offers are listed in
``/etc/nvpmodel.conf`` as ``< POWER_MODEL ID=0 NAME=15W >`` lines.

The tools are looked up under the device's root (``usr/sbin/nvpmodel``,
``usr/bin/jetson_clocks``: where L4T installs them), so an emulated Jetson's tree carries its
own. Both need root: where one refuses, nothing is changed and the run says so."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Callable, Sequence, Tuple

from hilbench.core.errors import SettingsError

NVPMODEL = "usr/sbin/nvpmodel"
JETSON_CLOCKS = "usr/bin/jetson_clocks"
NVPMODEL_CONF = "etc/nvpmodel.conf"
NVPMODEL_STATUS = "var/lib/nvpmodel/status"
TOOL_TIMEOUT_S = 60.0
# Keys of a job's dvfs_pin that are not cpufreq/devfreq domains:
POWER_MODE_KEY = "nvpmodel"  # value: the power mode's ID
MAX_CLOCKS_KEY = "jetson_clocks"  # value: 1

_MODE_LINE = re.compile(r"^<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+?)\s*>", re.MULTILINE)
_STATUS = re.compile(r"pmode:\s*(\d+)")

ToolRunner = Callable[[Sequence[str]], Tuple[int, str]]


@dataclass(frozen=True)
class PowerMode:
    id: int
    name: str


def read_power_modes(root: Path) -> tuple[PowerMode, ...]:
    """The power modes of ``/etc/nvpmodel.conf``; none where the board has no nvpmodel."""
    try:
        text = (root / NVPMODEL_CONF).read_text()
    except OSError:
        return ()
    return tuple(PowerMode(int(i), name) for i, name in _MODE_LINE.findall(text))


def current_power_mode(root: Path) -> int | None:
    try:
        match = _STATUS.search((root / NVPMODEL_STATUS).read_text())
    except OSError:
        return None
    return int(match.group(1)) if match else None


def power_mode_label(root: Path) -> str | None:
    """``"1 (7W)"``: the active mode with its name, for the run's environment."""
    current = current_power_mode(root)
    if current is None:
        return None
    names = {mode.id: mode.name for mode in read_power_modes(root)}
    return f"{current} ({names[current]})" if current in names else str(current)


def tool_path(root: Path, relative: str) -> Path | None:
    path = root / relative
    return path if path.is_file() else None


def probe_jetson(root: Path) -> dict[str, object]:
    """What the host needs to plan ``--dvfs nvpmodel=...`` and ``--dvfs jetson_clocks``."""
    modes = read_power_modes(root)
    if not modes and tool_path(root, JETSON_CLOCKS) is None:
        return {}
    return {"jetson": {
        "power_modes": [{"id": mode.id, "name": mode.name} for mode in modes],
        "power_mode": current_power_mode(root),
        "nvpmodel": tool_path(root, NVPMODEL) is not None,
        "jetson_clocks": tool_path(root, JETSON_CLOCKS) is not None,
    }}


def run_tool(argv: Sequence[str]) -> tuple[int, str]:
    """Run a board tool with no stdin (nvpmodel asks about rebooting on some switches; the
    answer is then no), returning its exit code and its output."""
    try:
        done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=TOOL_TIMEOUT_S,
                              text=True, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return done.returncode, done.stdout


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


class BoardPowerPin:
    """``with BoardPowerPin(root, mode=1, max_clocks=True):`` switches the power mode, then
    holds the clocks at their maximum, and puts both back on the way out, whatever happens.
    ``notes`` says what the board refused."""

    def __init__(self, root: Path, mode: int | None = None, max_clocks: bool = False,
                 runner: ToolRunner = run_tool) -> None:
        self._root = root
        self._mode = mode
        self._max_clocks = max_clocks
        self._run = runner
        self._saved_mode: int | None = None
        self._clocks_file: Path | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self.notes: list[str] = []

    def __enter__(self) -> BoardPowerPin:
        try:
            if self._mode is not None:
                self._switch_mode(self._mode)
            if self._max_clocks:
                self._hold_max_clocks()
        except BaseException:  # also TERM/HUP on the way in: put back what was changed
            self.restore()
            raise
        return self

    def _tool(self, relative: str, what: str) -> Path:
        path = tool_path(self._root, relative)
        if path is None:
            raise SettingsError(f"this device has no {what} ({relative} is missing)")
        return path

    def _switch_mode(self, mode: int) -> None:
        modes = {m.id: m.name for m in read_power_modes(self._root)}
        if mode not in modes:
            listed = ", ".join(f"{i} ({name})" for i, name in sorted(modes.items()))
            raise SettingsError(f"nvpmodel has no power mode {mode}; modes: {listed or 'none'}")
        tool = self._tool(NVPMODEL, "nvpmodel")
        saved = current_power_mode(self._root)
        if saved == mode:
            return
        self._saved_mode = saved  # before switching: a signal mid-switch still restores
        code, output = self._run([str(tool), "-m", str(mode)])
        if code != 0 or current_power_mode(self._root) != mode:
            self._saved_mode = None
            self.notes.append(f"DVFS: power mode {mode} ({modes[mode]}) not set (nvpmodel: "
                              f"{_last_line(output)}; it needs root): the frequencies "
                              "observed are recorded instead")

    def _hold_max_clocks(self) -> None:
        tool = self._tool(JETSON_CLOCKS, "jetson_clocks")
        self._folder = tempfile.TemporaryDirectory(prefix="hilbench-clocks-")
        stored = Path(self._folder.name) / "l4t_dfs.conf"
        code, output = self._run([str(tool), "--store", str(stored)])
        if code == 0:
            code, output = self._run([str(tool)])
        if code != 0:
            self.notes.append(f"DVFS: jetson_clocks not applied ({_last_line(output)}; it "
                              "needs root): the frequencies observed are recorded instead")
            if stored.exists():
                self._run([str(tool), "--restore", str(stored)])
            return
        self._clocks_file = stored

    def restore(self) -> None:
        """Clocks first (they were stored in the mode the run asked for), then the mode."""
        if self._clocks_file is not None:
            tool = self._tool(JETSON_CLOCKS, "jetson_clocks")
            code, output = self._run([str(tool), "--restore", str(self._clocks_file)])
            if code != 0:
                self.notes.append(f"DVFS: jetson_clocks --restore failed: {_last_line(output)}")
            self._clocks_file = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        if self._saved_mode is not None:
            tool = self._tool(NVPMODEL, "nvpmodel")
            code, output = self._run([str(tool), "-m", str(self._saved_mode)])
            if code != 0:
                self.notes.append(f"DVFS: power mode {self._saved_mode} not restored: "
                                  f"{_last_line(output)}")
            self._saved_mode = None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.restore()


def split_pin(pin: dict[str, int]) -> tuple[dict[str, int], int | None, bool]:
    """(cpufreq/devfreq levels, power mode, hold clocks at max) out of a job's dvfs_pin."""
    levels = {k: v for k, v in pin.items() if k not in (POWER_MODE_KEY, MAX_CLOCKS_KEY)}
    return levels, pin.get(POWER_MODE_KEY), bool(pin.get(MAX_CLOCKS_KEY))
