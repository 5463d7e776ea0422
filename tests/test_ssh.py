"""The SSH transport and SSH devices against a real OpenSSH sshd on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hilbench.core.errors import CommandTimeoutError, DeviceError, TransportError
from hilbench.devices.emulated_tools import install
from hilbench.devices.ssh_shell import SshShell, SshTarget
from tests.cli import bench, bench_json, one_line_error
from tests.sshd import SshServer


def shell(server: SshServer, **changes: str) -> SshShell:
    target = SshTarget.parse(
        changes.get("target", server.target),
        changes.get("key", str(server.key)),
        changes.get("known_hosts", str(server.known_hosts)),
    )
    return SshShell(target, connect_timeout_s=5)


def test_commands_keep_exit_code_stdout_stderr_and_stdin(sshd: SshServer) -> None:
    remote = shell(sshd)
    code = (
        "import sys; data = sys.stdin.read(); print(data[::-1]); "
        "print('oops', file=sys.stderr); sys.exit(4)"
    )
    result = remote.run([sys.executable, "-c", code], timeout_s=30, stdin="abc")
    assert (result.returncode, result.stdout.strip(), result.stderr.strip()) == (4, "cba", "oops")
    again = remote.run(["true"], timeout_s=30)  # the same connection, reused
    assert again.ok
    remote.close()


def test_shell_metacharacters_in_arguments_are_never_run(sshd: SshServer, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = [f"; touch {marker}", f"$(touch {marker})", f"`touch {marker}`",
               f"' && touch {marker} '", f'" ; touch {marker} "', "a b  c", "*", "~", "$HOME"]
    result = shell(sshd).run(
        [sys.executable, "-c", "import sys; print('\\n'.join(sys.argv[1:]))", *hostile],
        timeout_s=30,
    )
    assert result.stdout.splitlines() == hostile
    assert not marker.exists()


def test_stderr_lines_stream_to_the_callback(sshd: SshServer) -> None:
    seen: list[str] = []
    code = (
        "import sys, time\nfor i in range(3):\n"
        "    print(f'p{i}', file=sys.stderr, flush=True)\n    time.sleep(0.05)"
    )
    shell(sshd).run([sys.executable, "-c", code], timeout_s=30, on_stderr_line=seen.append)
    assert seen == ["p0", "p1", "p2"]


def _sleepers(seconds: str) -> list[Path]:
    """Processes on this machine (the sshd's device) running ``sleep seconds``."""
    wanted = f"sleep\0{seconds}\0".encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes() == wanted:
                found.append(cmdline.parent)
        except OSError:
            continue
    return found


def test_timeout_stops_the_remote_command(sshd: SshServer) -> None:
    with pytest.raises(CommandTimeoutError, match="did not finish within 1 s"):
        shell(sshd).run(["sleep", "31.7"], timeout_s=1)
    deadline = time.monotonic() + 10
    while _sleepers("31.7") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _sleepers("31.7"), "the remote command outlived its timeout"


def test_files_push_and_read(sshd: SshServer, tmp_path: Path) -> None:
    local = tmp_path / "model.bin"
    local.write_bytes(b"x" * 100_000)
    remote = shell(sshd)
    destination = str(tmp_path / "remote" / "deep" / "model.bin")
    assert remote.size(destination) is None
    remote.push(local, destination)
    assert remote.size(destination) == 100_000
    remote.pull(destination, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == local.read_bytes()
    (tmp_path / "note.txt").write_text("hello")
    assert remote.read_text(str(tmp_path / "note.txt")) == "hello"


def test_unknown_host_key_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(TransportError, match=r"unknown host key.*ssh-keyscan"):
        shell(sshd, known_hosts=str(empty)).run(["true"], timeout_s=10)


def test_wrong_key_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    with pytest.raises(TransportError, match="was refused"):
        shell(sshd, key=str(other)).run(["true"], timeout_s=10)


def test_unreachable_host(sshd: SshServer) -> None:
    with pytest.raises(TransportError, match="cannot connect"):
        shell(sshd, target=f"{sshd.user}@127.0.0.1:1").run(["true"], timeout_s=10)


def test_bad_targets_are_refused_before_connecting(sshd: SshServer) -> None:
    with pytest.raises(DeviceError, match="invalid SSH target"):
        SshTarget.parse("no-user-here", str(sshd.key))
    with pytest.raises(DeviceError, match="SSH key not found"):
        SshTarget.parse("a@b", "/nonexistent/key")


def _add(
    sshd: SshServer, store: str, name: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    return bench("devices", "add", name, "--ssh", sshd.target, "--key", str(sshd.key),
                 "--known-hosts", str(sshd.known_hosts), "--python", sys.executable,
                 "--remote-dir", str(tmp_path / "remote"), store=store)


def test_ssh_device_end_to_end(sshd: SshServer, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    added = _add(sshd, store, "ssh-dev", tmp_path)
    assert added.returncode == 0, added.stderr
    row = bench_json("devices", "show", "ssh-dev", store=store)
    assert row["kind"] == "ssh" and row["cpu_count"] >= 1 and "onnxruntime" in row["runtimes"]
    assert list((tmp_path / "remote").glob("agent-*.pyz")), "the agent zipapp was pushed"
    model = Path(__file__).parents[1] / "hilbench/assets/tiny-bert.onnx"
    rows = bench_json("run", "-m", str(model), "-d", "ssh-dev", "--min-runs", "10",
                      "--min-time", "0.1s", store=store)
    assert rows[0]["status"] == "ok" and rows[0]["runs"] >= 10 and rows[0]["emulated_figures"] == []
    assert list((tmp_path / "remote" / "models").glob("*.onnx")), "the model was pushed"
    stored = bench_json("profiles", "show", "--device", "ssh-dev", store=store)
    assert stored[0]["run_id"] == rows[0]["run_id"]


def test_ssh_device_errors_are_one_line(sshd: SshServer, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    missing_key = bench("devices", "add", "x", "--ssh", sshd.target, store=store)
    assert "--ssh needs --key" in one_line_error(missing_key)
    (tmp_path / "empty").write_text("")
    unknown = bench("devices", "add", "x", "--ssh", sshd.target, "--key", str(sshd.key),
                    "--known-hosts", str(tmp_path / "empty"), store=store)
    assert "x: cannot probe it: " in one_line_error(unknown)
    assert "unknown host key" in unknown.stderr
    assert bench_json("devices", "list", store=store) == []


def test_board_without_python_runs_onnxruntime_perf_test_over_ssh(sshd: SshServer,
                                                                  tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    tool = install(tmp_path / "opt")["onnxruntime_perf_test"]
    added = bench("devices", "add", "board", "--ssh", sshd.target, "--key", str(sshd.key),
                  "--known-hosts", str(sshd.known_hosts), "--agent", "sh", "--tool", str(tool),
                  "--remote-dir", str(tmp_path / "remote"), store=store)
    assert added.returncode == 0, added.stderr
    assert bench_json("devices", "show", "board", store=store)["runtimes"] == [
        "onnxruntime_perf_test"]
    model = Path(__file__).parents[1] / "hilbench/assets/tiny-bert.onnx"
    result = bench("run", "-m", str(model), "-d", "board", "--threads", "1", "--min-runs", "25",
                   "--json", store=store)
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)[0]
    assert row["status"] == "ok" and row["runs"] == 25  # -r 25: exactly what it was asked
    assert row["min_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert row["std_ms"] is None and row["cv"] is None  # the tool prints no deviation
    assert row["verdict"] == "INVALID"
    assert "stability unknown: no standard deviation was reported" in row["reasons"]
    assert row["runtime"].startswith("onnxruntime_perf_test sha256:")
    assert row["init_ms"] > 0 and row["first_inference_ms"] is not None
