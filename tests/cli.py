"""Run `bench` through its real console-script entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = str(Path(sys.executable).parent / "bench")


def bench(
    *args: str, store: str | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    argv = [BENCH, *args]
    if store is not None:
        argv += ["--store", store]
    environment = {k: v for k, v in os.environ.items() if k != "HILBENCH_STORE"}
    environment.update(env or {})
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=environment, check=False
    )


def bench_json(*args: str, store: str | None = None) -> Any:
    result = bench(*args, "--json", store=store)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error a user sees: exit code 2 and exactly one line on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def in_process(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
               env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``bench``'s entry point in this process (what the console script calls), for the
    quick checks: a new process costs a second or two of imports."""
    from hilbench.cli.app import main

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HILBENCH_STORE", raising=False)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    code = exited.value.code
    return subprocess.CompletedProcess(args, code if isinstance(code, int) else 1,
                                       captured.out, captured.err)


class InProcess:
    """``bench`` and ``bench_json`` as above, run in this process (``in_process``): for
    tests that call many quick commands. The store, when given, is passed as ``--store``."""

    def __init__(self, capsys: pytest.CaptureFixture[str],
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self.capsys, self.monkeypatch = capsys, monkeypatch

    def bench(self, *args: str, store: str | None = None, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
        tail = ["--store", store] if store is not None else []
        return in_process(self.capsys, self.monkeypatch, env or {}, *args, *tail)

    def json(self, *args: str, store: str | None = None) -> Any:
        result = self.bench(*args, "--json", store=store)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
