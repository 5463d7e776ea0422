"""Faults the tests inject: a server killed with every process it started (a device or a
link that goes away mid-job), a folder on a small or on a read-only file system."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _parents() -> dict[int, int]:
    """Every process's parent, from /proc."""
    found: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            found[int(stat.parent.name)] = int(text[text.rindex(")") + 2:].split()[1])
    return found


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs (sshd's sessions call setsid(), so a
    process group does not hold them)."""
    parents = _parents()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` and everything it started, as a power cut would."""
    for pid in [*descendants(process.pid), process.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)


def _runs_a_job(words: list[bytes]) -> bool:
    """hilbench's agent on a job: the zipapp pushed to a device (``... agent-*.pyz run``)
    or the worker of ``bench agent`` (``python -m hilbench.agents run``)."""
    agent = b"hilbench.agents" in words or any(w.endswith(b".pyz") for w in words)
    return agent and b"run" in words


def wait_for_job(server: subprocess.Popen[Any], timeout_s: float = 60) -> None:
    """Until a process under ``server`` runs a job: the device is busy with it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(_runs_a_job(_cmdline(pid).split(b"\0")) for pid in descendants(server.pid)):
            return
        time.sleep(0.05)
    raise AssertionError("no job started on the device")


@dataclass
class Saboteur:
    """Runs ``act`` in a thread once a job runs under ``server``; ``error`` holds what
    went wrong there, for the test to raise."""

    server: subprocess.Popen[bytes]
    act: Callable[[], None]
    delay_s: float = 0.5
    error: Exception | None = None

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            wait_for_job(self.server)
            time.sleep(self.delay_s)  # mid-job: the worker is loading or measuring
            self.act()
        except (AssertionError, OSError, RuntimeError, subprocess.SubprocessError) as exc:
            self.error = exc  # raised by join(), in the test's thread

    def join(self) -> None:
        self._thread.join(timeout=60)
        if self.error is not None:
            raise self.error


def _mount(*argv: str) -> bool:
    done = subprocess.run(["mount", *argv], capture_output=True, check=False)
    return done.returncode == 0


@contextlib.contextmanager
def tmpfs(folder: Path, size: str, read_only: bool = False) -> Iterator[bool]:
    """A tmpfs of ``size`` on ``folder`` (read-only if asked); yields False, mounting
    nothing, where this process may not mount (no CAP_SYS_ADMIN)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = _mount("-t", "tmpfs", "-o", options, "tmpfs", str(folder))
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def remount(folder: Path, read_only: bool) -> None:
    assert _mount("-o", "remount," + ("ro" if read_only else "rw"), str(folder))


def fill(folder: Path, leave_bytes: int) -> Path:
    """Fill the file system under ``folder`` but ``leave_bytes``; returns the filler."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - max(0, leave_bytes - free)))
    return filler


def file_size_limit(limit_bytes: int) -> Callable[[], None]:
    """A ``preexec_fn``: files the child writes cannot grow past ``limit_bytes`` (writes
    fail with EFBIG, SIGXFSZ ignored): a full disk where mounting is not allowed."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return limit
