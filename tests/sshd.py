"""A real OpenSSH server on a free loopback port, with its own host key, client key and
config in a temporary folder: the peer the SSH transport is tested against."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ports import free_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass(frozen=True)
class SshServer:
    port: int
    user: str
    key: Path
    known_hosts: Path
    folder: Path

    @property
    def target(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def _wait_for(port: int, process: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {process.stderr.read() if process.stderr else ''}")
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("sshd did not start listening")


def configure_sshd(folder: Path) -> SshServer:
    """Keys, authorized_keys, known_hosts and an sshd_config for a server on a free port."""
    if not Path(SSHD).exists():
        pytest.fail("OpenSSH server not installed: .ci/run installs openssh-server")
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation directory
    _keygen(folder / "host_key")
    _keygen(folder / "client_key")
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    port = free_port()
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder}/host_key\n"
        f"AuthorizedKeysFile {folder}/authorized_keys\nPidFile {folder}/sshd.pid\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\nLogLevel ERROR\nMaxStartups 50\nMaxSessions 50\n"
    )
    host_key = (folder / "host_key.pub").read_text().split()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    return SshServer(port, user, folder / "client_key", folder / "known_hosts", folder)


def start_sshd(server: SshServer) -> subprocess.Popen[bytes]:
    """The server configured in ``server.folder``, listening once this returns."""
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(server.folder / "sshd_config")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        _wait_for(server.port, process)
    except RuntimeError:
        process.kill()
        process.wait(timeout=10)
        raise
    return process


def run_sshd(folder: Path) -> Iterator[SshServer]:
    server = configure_sshd(folder)
    process = start_sshd(server)
    try:
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)
