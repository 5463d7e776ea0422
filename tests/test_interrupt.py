"""Ctrl-C during `bench run`: the jobs on the devices stop, finished runs stay stored,
nothing half-done is stored, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.cli import BENCH, bench, bench_json


def _agent_children(parent: int) -> list[int]:
    """Agent worker processes started by ``parent``."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if f"PPid:\t{parent}\n" in text and b"hilbench.agents" in cmdline:
            found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_ctrl_c_stops_device_jobs_and_keeps_the_store_clean(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    for name, preset in (("phone", "phone"), ("board", "jetson")):
        assert bench("devices", "add", name, "--preset", preset, store=store).returncode == 0
    model = Path(__file__).parents[1] / "hilbench/assets/tiny-bert.onnx"
    process = subprocess.Popen(
        [BENCH, "run", "-m", str(model), "--min-time", "60s", "--max-time", "120s",
         "--store", store],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell that starts jobs in the background makes them ignore SIGINT: undo that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    agents: list[int] = []
    while len(agents) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        agents = _agent_children(process.pid)
    assert len(agents) == 2, "both devices should be running a job"
    time.sleep(1.0)
    os.kill(process.pid, signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode != 0
    assert "Traceback" not in stderr
    time.sleep(0.5)
    assert not [pid for pid in agents if _alive(pid)], "agent processes survived Ctrl-C"
    assert bench_json("profiles", "show", store=store) == []
