"""Run `bench` through its real console-script entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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
