"""The local transport: argv lists (never shell code), exit codes, timeouts that stop the
whole process group."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from hilbench.core.errors import CommandTimeoutError, TransportError
from hilbench.devices.local_shell import LocalShell


def test_runs_argv_and_keeps_exit_code_and_streams() -> None:
    code = (
        "import sys; print(sys.stdin.read().upper()); "
        "print('warn', file=sys.stderr); sys.exit(3)"
    )
    result = LocalShell().run([sys.executable, "-c", code], timeout_s=30, stdin="job")
    assert result.returncode == 3
    assert result.stdout.strip() == "JOB"
    assert result.stderr.strip() == "warn"
    assert not result.ok and result.duration_s > 0


def test_shell_metacharacters_are_never_interpreted(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f"x; touch {marker}; $(touch {marker}) `touch {marker}`"
    result = LocalShell().run(
        [sys.executable, "-c", "import sys; print(sys.argv[1])", hostile], timeout_s=30
    )
    assert result.stdout.strip() == hostile
    assert not marker.exists()


def test_stderr_lines_reach_the_callback_while_running() -> None:
    seen: list[str] = []
    code = "import sys\nfor i in range(3): print(f'line {i}', file=sys.stderr, flush=True)"
    LocalShell().run([sys.executable, "-c", code], timeout_s=30, on_stderr_line=seen.append)
    assert seen == ["line 0", "line 1", "line 2"]


def test_timeout_stops_the_process_group(tmp_path: Path) -> None:
    child_pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(child_pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    start = time.monotonic()
    with pytest.raises(CommandTimeoutError, match="did not finish within 1 s"):
        LocalShell().run([sys.executable, "-c", code], timeout_s=1)
    assert time.monotonic() - start < 10
    child = Path(f"/proc/{child_pid_file.read_text()}/status")
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the command's child survived the timeout"


def _alive(status: Path) -> bool:
    """Running, not merely a zombie waiting for its parent to reap it."""
    try:
        return "State:\tZ" not in status.read_text()
    except OSError:
        return False


def test_push_and_pull_copy_files(tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"\x00\x01" * 1000)
    shell = LocalShell()
    shell.push(source, str(tmp_path / "device" / "model.bin"))
    shell.pull(str(tmp_path / "device" / "model.bin"), tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    with pytest.raises(TransportError, match="cannot copy"):
        shell.pull(str(tmp_path / "missing"), tmp_path / "x")


def test_missing_program_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match="cannot start"):
        LocalShell().run(["/nonexistent/program"], timeout_s=5)
