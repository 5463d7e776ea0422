"""Transport to a device over SSH (paramiko): key authentication, host-key checking on,
one connection per device reused for every command, SFTP for files. Commands are argv
lists joined with ``shlex.quote``: nothing a user typed is ever run as shell code."""

from __future__ import annotations

import re
import select
import shlex
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko

from hilbench.core.errors import CommandTimeoutError, DeviceError, TransportError
from hilbench.core.shell import CommandResult, LineCallback, checked_argv

CONNECT_TIMEOUT_S = 10.0
_TARGET = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.:_-]+?)(?::(?P<port>\d+))?$")
_READ_CHUNK = 65536
# What SFTP raises: OSError for the file system, SSHException or EOFError for a dropped link.
_SFTP_ERRORS = (OSError, EOFError, paramiko.SSHException)


@dataclass(frozen=True)
class SshTarget:
    """``user@host[:port]`` with the key that logs in and the known_hosts file that
    vouches for the host (None: the user's ~/.ssh/known_hosts)."""

    user: str
    host: str
    port: int
    key_path: str
    known_hosts: str | None = None

    @classmethod
    def parse(cls, text: str, key_path: str, known_hosts: str | None = None) -> SshTarget:
        match = _TARGET.match(text.strip())
        if not match:
            raise DeviceError(f"invalid SSH target {text!r}: expected user@host or user@host:port")
        port = int(match.group("port") or 22)
        if not 0 < port < 65536:
            raise DeviceError(f"invalid SSH port {port} in {text!r}")
        if not Path(key_path).expanduser().is_file():
            raise DeviceError(f"SSH key not found: {key_path}")
        return cls(match.group("user"), match.group("host"), port, key_path, known_hosts)

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


class SshShell:
    """Runs commands on a device over one reused SSH connection."""

    def __init__(self, target: SshTarget, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self._target = target
        self._connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._client: paramiko.SSHClient | None = None
        self._channels: set[paramiko.Channel] = set()
        self._cancelled = False

    # connection ------------------------------------------------------------------------

    def _connected(self) -> paramiko.SSHClient:
        with self._lock:
            if self._cancelled:
                raise TransportError(f"{self._target.address}: the run was cancelled")
            if self._client is None or not _alive(self._client):
                self._client = self._connect()
            return self._client

    def _connect(self) -> paramiko.SSHClient:
        target = self._target
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            if target.known_hosts:
                client.load_host_keys(str(Path(target.known_hosts).expanduser()))
            else:
                client.load_system_host_keys()
            client.connect(
                target.host, port=target.port, username=target.user,
                key_filename=str(Path(target.key_path).expanduser()), look_for_keys=False,
                allow_agent=False, timeout=self._connect_timeout_s,
                banner_timeout=self._connect_timeout_s, auth_timeout=self._connect_timeout_s,
            )
        except paramiko.AuthenticationException as exc:
            raise TransportError(
                f"{target.address}: the key {target.key_path} was refused"
            ) from exc
        except paramiko.BadHostKeyException as exc:
            raise TransportError(
                f"{target.address}: host key does not match known_hosts: possible "
                "man-in-the-middle, or the device was reinstalled"
            ) from exc
        except paramiko.SSHException as exc:
            raise TransportError(self._ssh_error(exc)) from exc
        except (OSError, EOFError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise TransportError(f"{target.address}: cannot connect: {reason}") from exc
        return client

    def _ssh_error(self, exc: paramiko.SSHException) -> str:
        target = self._target
        if "not found in known_hosts" in str(exc):
            return (
                f"{target.address}: unknown host key; check it and add it with "
                f"`ssh-keyscan -p {target.port} {target.host} >> ~/.ssh/known_hosts` "
                "(or pass --known-hosts FILE)"
            )
        return f"{target.address}: SSH failed: {str(exc).splitlines()[0] if str(exc) else exc!r}"

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            channels = list(self._channels)
        for channel in channels:
            channel.close()

    # commands --------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        stdin: str | None = None,
        on_stderr_line: LineCallback | None = None,
    ) -> CommandResult:
        start = time.perf_counter()
        command = shlex.join(["sh", "-c", _REPORT_PID, "sh", *checked_argv(argv)])
        transport = self._connected().get_transport()
        if transport is None:
            raise TransportError(f"{self._target.address}: connection lost")
        try:
            channel = transport.open_session(timeout=self._connect_timeout_s)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"{self._target.address}: connection lost: {exc}") from exc
        with self._lock:
            self._channels.add(channel)
        try:
            channel.exec_command(command)
            if stdin:
                channel.sendall(stdin.encode())
            channel.shutdown_write()
            remote = _RemoteProcess(on_stderr_line)
            stdout, stderr = _drain(channel, start + timeout_s, remote.line)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"{self._target.address}: connection lost: {exc}") from exc
        finally:
            with self._lock:
                self._channels.discard(channel)
        if stdout is None:
            channel.close()
            self._stop_remote(remote.pid)
            raise CommandTimeoutError(
                f"{self._target.address}: {argv[0]} did not finish within {timeout_s:g} s"
            )
        if self._cancelled:
            raise TransportError(f"{self._target.address}: the run was cancelled")
        returncode = channel.recv_exit_status()
        if returncode == -1 and not channel.eof_received:  # closed without exit nor EOF
            self._forget(transport)
            raise TransportError(f"{self._target.address}: connection lost mid-command: the "
                                 "device or its sshd went away")
        return CommandResult(
            argv=tuple(argv), returncode=returncode, stdout=stdout,
            stderr=remote.strip(stderr), duration_s=time.perf_counter() - start,
        )

    def _forget(self, transport: paramiko.Transport) -> None:
        """Drop a connection that died, so that the next command connects anew."""
        with self._lock:
            if self._client is not None and self._client.get_transport() is transport:
                self._client.close()
                self._client = None

    def _stop_remote(self, pid: int | None) -> None:
        """TERM, then KILL, the command that ran past its timeout (closing the channel
        alone leaves it running on the device)."""
        if pid is None:
            return
        stop = f"kill -TERM {pid} 2>/dev/null; sleep 2; kill -KILL {pid} 2>/dev/null; true"
        transport = self._connected().get_transport()
        try:
            if transport is not None:
                channel = transport.open_session(timeout=self._connect_timeout_s)
                channel.exec_command(shlex.join(["sh", "-c", stop]))
                channel.recv_exit_status()
                channel.close()
        except (paramiko.SSHException, OSError, EOFError):
            pass  # the device went away: nothing left to stop there

    # files -----------------------------------------------------------------------------

    def _sftp(self) -> paramiko.SFTPClient:
        try:
            return self._connected().open_sftp()
        except paramiko.SSHException as exc:
            raise TransportError(f"{self._target.address}: SFTP unavailable: {exc}") from exc

    def read_text(self, path: str) -> str:
        try:
            with self._sftp() as sftp, sftp.open(path, "r") as handle:
                return handle.read().decode()
        except _SFTP_ERRORS as exc:
            raise TransportError(f"{self._target.address}: cannot read {path}: {exc}") from exc

    def push(self, local: Path, remote: str) -> None:
        """Copy ``local`` to ``remote`` (its folder is created); atomic by rename."""
        try:
            with self._sftp() as sftp:
                _makedirs(sftp, str(Path(remote).parent))
                partial = f"{remote}.part"
                sftp.put(str(local), partial)
                sftp.posix_rename(partial, remote)
        except _SFTP_ERRORS as exc:
            raise TransportError(f"{self._target.address}: cannot push {local}: {exc}") from exc

    def pull(self, remote: str, local: Path) -> None:
        """Copy ``remote`` to ``local``."""
        try:
            with self._sftp() as sftp:
                sftp.get(remote, str(local))
        except _SFTP_ERRORS as exc:
            raise TransportError(f"{self._target.address}: cannot pull {remote}: {exc}") from exc

    def size(self, remote: str) -> int | None:
        """Size of a remote file, None when it does not exist."""
        try:
            with self._sftp() as sftp:
                return sftp.stat(remote).st_size
        except FileNotFoundError:
            return None
        except _SFTP_ERRORS as exc:
            raise TransportError(f"{self._target.address}: cannot stat {remote}: {exc}") from exc


_PID_PREFIX = "HILBENCH-PID "
# Reports the command's pid on stderr, then becomes the command: our constant script, the
# user's argv stays data.
_REPORT_PID = f'echo "{_PID_PREFIX}$$" >&2; exec "$@"'


class _RemoteProcess:
    """Takes the pid line out of the command's stderr."""

    def __init__(self, forward: LineCallback | None) -> None:
        self.pid: int | None = None
        self._forward = forward

    def line(self, text: str) -> None:
        if self.pid is None and text.startswith(_PID_PREFIX):
            self.pid = int(text[len(_PID_PREFIX):])
        elif self._forward is not None:
            self._forward(text)

    def strip(self, stderr: str) -> str:
        first, _, rest = stderr.partition("\n")
        return rest if first.startswith(_PID_PREFIX) else stderr


def _alive(client: paramiko.SSHClient) -> bool:
    transport = client.get_transport()
    return transport is not None and transport.is_active()


def _makedirs(sftp: paramiko.SFTPClient, folder: str) -> None:
    if folder in ("", ".", "/"):
        return
    try:
        sftp.stat(folder)
    except FileNotFoundError:
        _makedirs(sftp, str(Path(folder).parent))
        sftp.mkdir(folder)


def _drain(
    channel: paramiko.Channel, deadline: float, on_stderr_line: LineCallback | None
) -> tuple[str | None, str]:
    """Read stdout and stderr until the command exits; (None, stderr) past ``deadline``."""
    out, err = bytearray(), bytearray()
    pending = b""
    while True:
        while channel.recv_ready():
            out += channel.recv(_READ_CHUNK)
        while channel.recv_stderr_ready():
            chunk = channel.recv_stderr(_READ_CHUNK)
            err += chunk
            pending = _emit_lines(pending + chunk, on_stderr_line)
        finished = channel.exit_status_ready() and channel.eof_received
        if channel.closed or (finished and not channel.recv_ready()
                              and not channel.recv_stderr_ready()):
            break
        if time.perf_counter() > deadline:
            return None, err.decode(errors="replace")
        select.select([channel], [], [], 0.1)
    if pending and on_stderr_line is not None:
        on_stderr_line(pending.decode(errors="replace"))
    return out.decode(errors="replace"), err.decode(errors="replace")


def _emit_lines(buffer: bytes, callback: LineCallback | None) -> bytes:
    *lines, rest = buffer.split(b"\n")
    if callback is not None:
        for line in lines:
            callback(line.decode(errors="replace"))
    return rest

