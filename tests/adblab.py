"""The real adb server (Debian's adb, private HOME and port) and the project's emulated
Android device on loopback: the peers the ADB transport is tested against."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ports import free_ports


@dataclass(frozen=True)
class AdbLab:
    adb: str
    server: str
    serial: str
    sandbox: Path
    env: dict[str, str]
    emulator: subprocess.Popen[bytes]


def _wait_for(port: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def run_adb_lab(folder: Path) -> Iterator[AdbLab]:
    adb = shutil.which("adb")
    if adb is None:
        pytest.fail("adb not installed: .ci/run installs Debian's adb")
    device_port, server_port = free_ports(2)
    sandbox = folder / "sandbox"
    emulator = subprocess.Popen([sys.executable, "-m", "hilbench.devices.adb_emulator",
                                 "--port", str(device_port), "--sandbox", str(sandbox)])
    env = {**os.environ, "HOME": str(folder), "ANDROID_ADB_SERVER_PORT": str(server_port)}
    try:
        _wait_for(device_port)
        subprocess.run([adb, "-P", str(server_port), "start-server"], env=env, check=True,
                       capture_output=True, timeout=60)
        yield AdbLab(adb, f"127.0.0.1:{server_port}", f"127.0.0.1:{device_port}", sandbox, env,
                     emulator)
    finally:
        subprocess.run([adb, "-P", str(server_port), "kill-server"], env=env,
                       capture_output=True, check=False, timeout=60)
        emulator.terminate()
        emulator.wait(timeout=10)
