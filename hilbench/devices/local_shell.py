"""Transport to this machine: subprocess with argv lists, in a new session so a timeout
can stop the whole process group (TERM, then KILL)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from hilbench.core.errors import CommandTimeoutError, TransportError
from hilbench.core.shell import CommandResult, LineCallback, checked_argv

KILL_GRACE_S = 2.0


class LocalShell:
    """Runs commands on this machine. ``cancel()`` (from any thread) stops every command
    still running, e.g. when the user presses Ctrl-C."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()
        self._cancelled = False

    def close(self) -> None:
        """Nothing to release: every command is its own process."""

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            running = list(self._running)
        for process in running:
            _stop_group(process)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        stdin: str | None = None,
        on_stderr_line: LineCallback | None = None,
    ) -> CommandResult:
        start = time.perf_counter()
        try:
            process = subprocess.Popen(
                checked_argv(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise TransportError(f"cannot start {argv[0]}: {exc.strerror or exc}") from exc
        with self._lock:
            self._running.add(process)
            cancelled = self._cancelled
        if cancelled:
            _stop_group(process)
        try:
            return self._collect(process, argv, timeout_s, stdin, on_stderr_line, start)
        finally:
            with self._lock:
                self._running.discard(process)

    def _collect(
        self,
        process: subprocess.Popen[str],
        argv: Sequence[str],
        timeout_s: float,
        stdin: str | None,
        on_stderr_line: LineCallback | None,
        start: float,
    ) -> CommandResult:
        stdout_lines: list[str] = []
        stderr_lines: list[str] = []
        pumps = [
            threading.Thread(target=_pump, args=(process.stdout, stdout_lines, None)),
            threading.Thread(target=_pump, args=(process.stderr, stderr_lines, on_stderr_line)),
        ]
        for pump in pumps:
            pump.daemon = True
            pump.start()
        _feed(process, stdin)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            _stop_group(process)
            raise CommandTimeoutError(
                f"{Path(argv[0]).name} did not finish within {timeout_s:g} s and was stopped"
            ) from exc
        for pump in pumps:
            pump.join()
        if self._cancelled:
            raise TransportError(f"{Path(argv[0]).name} was stopped: the run was cancelled")
        return CommandResult(
            argv=tuple(argv),
            returncode=process.returncode,
            stdout="".join(stdout_lines),
            stderr="".join(stderr_lines),
            duration_s=time.perf_counter() - start,
        )

    def push(self, local: Path, remote: str) -> None:
        self._copy(local, Path(remote))

    def pull(self, remote: str, local: Path) -> None:
        self._copy(Path(remote), local)

    @staticmethod
    def _copy(source: Path, destination: Path) -> None:
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
        except OSError as exc:
            raise TransportError(f"cannot copy {source}: {exc.strerror or exc}") from exc

    def read_text(self, path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError as exc:
            raise TransportError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _feed(process: subprocess.Popen[str], text: str | None) -> None:
    if process.stdin is None:
        return
    try:
        if text:
            process.stdin.write(text)
        process.stdin.close()
    except BrokenPipeError:
        pass  # the command exited without reading its input; its exit code tells why


def _pump(stream: IO[str] | None, sink: list[str], callback: LineCallback | None) -> None:
    if stream is None:
        return
    for line in stream:
        sink.append(line)
        if callback is not None:
            callback(line.rstrip("\n"))


def _stop_group(process: subprocess.Popen[str]) -> None:
    for sig, wait_s in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
