"""Transport to an Android device through the adb server (adbutils): shell v2 so that the
exit code is kept, sync for files, ``serial`` or ``host:port`` (adb over TCP/IP). Commands
are argv lists joined with ``shlex.quote``."""

from __future__ import annotations

import shlex
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import adbutils

from hilbench.core.errors import CommandTimeoutError, DeviceError, TransportError
from hilbench.core.shell import CommandResult, LineCallback, checked_argv

DEFAULT_SERVER = "127.0.0.1:5037"
STDIN_DIR = "/data/local/tmp"
# Runs "$@" with its stdin from the file "$1": our constant script, user text stays data.
_WITH_STDIN = 'f="$1"; shift; "$@" < "$f"; code=$?; rm -f "$f"; exit $code'


def parse_server(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise DeviceError(f"invalid adb server {text!r}: expected host:port")
    return host, int(port)


class AdbShell:
    """Runs commands on one Android device through the adb server."""

    def __init__(self, serial: str, server: str = DEFAULT_SERVER,
                 stdin_dir: str = STDIN_DIR) -> None:
        self._serial = serial
        self._host, self._port = parse_server(server)
        self._stdin_dir = stdin_dir
        self._lock = threading.Lock()
        self._device: Any = None
        self._cancelled = False

    def _connected(self) -> Any:
        with self._lock:
            if self._cancelled:
                raise TransportError(f"{self._serial}: the run was cancelled")
            if self._device is None:
                self._device = self._connect()
            return self._device

    def _check_server(self) -> None:
        """adbutils starts an adb server on the default port when it finds none; for any
        other server address that would be the wrong server, so refuse instead."""
        if f"{self._host}:{self._port}" == DEFAULT_SERVER:
            return  # like the adb command: the local default server starts on demand
        try:
            socket.create_connection((self._host, self._port), timeout=3).close()
        except OSError as exc:
            raise TransportError(
                f"{self._serial}: cannot reach the adb server at {self._host}:{self._port}: "
                f"{exc.strerror or exc}"
            ) from exc

    def _connect(self) -> Any:
        self._check_server()
        client = adbutils.AdbClient(host=self._host, port=self._port)
        try:
            try:
                device, state = self._attach(client)
            except adbutils.AdbError:
                if ":" not in self._serial:
                    raise
                # adb over TCP/IP: a device that went away stays "offline" in the adb server
                # even once it is back; disconnect it and connect again, as a user would
                client.disconnect(self._serial)
                device, state = self._attach(client)
        except (adbutils.AdbError, EOFError) as exc:
            raise TransportError(f"{self._serial}: {_short(exc)}") from exc
        except OSError as exc:
            raise TransportError(
                f"{self._serial}: cannot reach the adb server at {self._host}:{self._port}: "
                f"{exc.strerror or exc}"
            ) from exc
        if state != "device":
            raise TransportError(f"{self._serial}: device is {state}, not ready")
        return device

    def _attach(self, client: Any) -> tuple[Any, str]:
        """The device (``adb connect`` first for host:port serials) and its state."""
        if ":" in self._serial:
            answer = client.connect(self._serial, timeout=10)
            if "connected" not in answer:
                raise TransportError(f"{self._serial}: adb connect failed: {answer.strip()}")
        device = client.device(self._serial)
        return device, str(device.get_state())

    def run(self, argv: Sequence[str], *, timeout_s: float, stdin: str | None = None,
            on_stderr_line: LineCallback | None = None) -> CommandResult:
        start = time.perf_counter()
        command = checked_argv(argv)
        device = self._connected()
        if stdin:
            remote = f"{self._stdin_dir}/hilbench-stdin-{uuid.uuid4().hex}"
            self._push_bytes(device, stdin.encode(), remote)
            command = ["sh", "-c", _WITH_STDIN, "sh", remote, *command]
        try:
            result = device.shell2(shlex.join(command), timeout=timeout_s, v2=True)
        except adbutils.AdbTimeout as exc:
            raise CommandTimeoutError(
                f"{self._serial}: {argv[0]} did not finish within {timeout_s:g} s"
            ) from exc
        except (adbutils.AdbError, OSError, EOFError) as exc:
            self.close()  # the next command connects anew: the device may come back
            raise TransportError(f"{self._serial}: device lost: {_short(exc)}") from exc
        if on_stderr_line is not None:
            for line in result.stderr.splitlines():
                on_stderr_line(line)
        return CommandResult(tuple(argv), int(result.returncode), result.stdout, result.stderr,
                             time.perf_counter() - start)

    def _push_bytes(self, device: Any, data: bytes, remote: str) -> None:
        try:
            device.sync.push(data, remote, mode=0o644)
        except (adbutils.AdbError, OSError, EOFError) as exc:
            self.close()
            raise TransportError(f"{self._serial}: cannot push {remote}: {_short(exc)}") from exc

    def push(self, local: Path, remote: str) -> None:
        device = self._connected()
        self.run(["mkdir", "-p", "--", str(Path(remote).parent)], timeout_s=30)
        try:
            device.sync.push(str(local), remote, mode=0o755)
        except (adbutils.AdbError, OSError, EOFError) as exc:
            raise TransportError(f"{self._serial}: cannot push {local}: {_short(exc)}") from exc

    def pull(self, remote: str, local: Path) -> None:
        try:
            self._connected().sync.pull(remote, str(local))
        except (adbutils.AdbError, OSError, EOFError) as exc:
            raise TransportError(f"{self._serial}: cannot pull {remote}: {_short(exc)}") from exc

    def size(self, remote: str) -> int | None:
        try:
            info = self._connected().sync.stat(remote)
        except (adbutils.AdbError, OSError, EOFError) as exc:
            raise TransportError(f"{self._serial}: cannot stat {remote}: {_short(exc)}") from exc
        return None if info.mode == 0 else int(info.size)

    def read_text(self, path: str) -> str:
        result = self.run(["cat", "--", path], timeout_s=30)
        if result.returncode != 0:
            raise TransportError(f"{self._serial}: cannot read {path}: {result.stderr.strip()}")
        return result.stdout

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True

    def close(self) -> None:
        with self._lock:
            self._device = None


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
