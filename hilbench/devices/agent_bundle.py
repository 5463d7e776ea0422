"""The agent as one zipapp (hilbench.core + hilbench.agents, stdlib only) to push to a
device that has Python but not hilbench. Deterministic: same sources, same bytes."""

from __future__ import annotations

import hashlib
import io
import zipfile
from functools import lru_cache
from pathlib import Path

import hilbench

PACKAGES = ("core", "agents")
ENTRY = "import sys\nfrom hilbench.agents.__main__ import main\nsys.exit(main())\n"
EPOCH = (1980, 1, 1, 0, 0, 0)


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


@lru_cache(maxsize=1)
def agent_bundle() -> bytes:
    """The zipapp's bytes: run it as ``python agent.pyz run|probe``."""
    root = Path(hilbench.__file__).parent
    sources = sorted(p for package in PACKAGES for p in (root / package).rglob("*.py"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _add(archive, "__main__.py", ENTRY.encode())
        _add(archive, "hilbench/__init__.py", (root / "__init__.py").read_bytes())
        for path in sources:
            _add(archive, f"hilbench/{path.relative_to(root).as_posix()}", path.read_bytes())
    return buffer.getvalue()


def bundle_name() -> str:
    """File name that changes whenever the agent's code does."""
    return f"agent-{hashlib.sha256(agent_bundle()).hexdigest()[:16]}.pyz"
