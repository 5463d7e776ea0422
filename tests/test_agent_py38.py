"""The agent must run on Python 3.8 (older Jetsons ship it)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from hilbench.devices.emulated import write_sysfs
from hilbench.devices.presets import get_preset

ROOT = Path(__file__).resolve().parents[1]


def _find_python38() -> str | None:
    """A working Python 3.8: on PATH, or a pyenv install (pyenv's shim refuses to run it
    unless it is the selected version)."""
    candidates = [
        shutil.which("python3.8"),
        *map(str, Path.home().glob(".pyenv/versions/3.8*/bin/python3.8")),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 8))"],
            capture_output=True, text=True, check=False,
        )
        if probe.stdout.strip() == "True":
            return candidate
    return None


PYTHON38 = _find_python38()

pytestmark = pytest.mark.skipif(PYTHON38 is None, reason="no python3.8 interpreter here")


def test_every_agent_and_core_module_imports_on_python38() -> None:
    packages = [ROOT / "hilbench" / "core", ROOT / "hilbench" / "agents"]
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for package in packages
        for path in package.rglob("*.py")
        if path.name != "__main__.py"
    )
    import_all = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)"
    result = subprocess.run(
        [str(PYTHON38), "-B", "-c", import_all, *modules],
        capture_output=True, text=True, check=False, cwd=ROOT, env={"PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert len(modules) > 15


def test_agent_probe_runs_on_python38(tmp_path: Path) -> None:
    root = write_sysfs(get_preset("jetson"), tmp_path / "jetson")
    result = subprocess.run(
        [str(PYTHON38), "-B", "-m", "hilbench.agents", "probe", "--root", str(root)],
        capture_output=True, text=True, check=False, cwd=ROOT, env={"PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["cpu_count"] == 6 and info["python_version"].startswith("3.8")
    assert info["dvfs"]["domains"][0]["available_khz"][-1] == 1510000
