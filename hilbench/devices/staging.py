"""Putting files on a remote device once: the agent, the models, by size (models are named
by sha256, so a changed model is a new name)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hilbench.core.records import ModelRecord


class FileShell(Protocol):
    def push(self, local: Path, remote: str) -> None: ...

    def size(self, remote: str) -> int | None: ...


@dataclass(frozen=True)
class RemoteFolder:
    """``directory`` on a device reached over SSH or ADB (relative: under the login's home,
    or the emulated device's sandbox)."""

    shell: FileShell
    directory: str

    def _path(self, relative: str) -> str:
        """``directory/relative``, never starting with ``-`` (the agent's path is an argument
        to python and to sh, which would read it as options)."""
        remote = f"{self.directory}/{relative}"
        return f"./{remote}" if remote.startswith("-") else remote

    def put_bytes(self, name: str, content: bytes) -> str:
        """``content`` as ``directory/name`` unless a file of that size is there already."""
        remote = self._path(name)
        if self.shell.size(remote) != len(content):
            with tempfile.TemporaryDirectory() as folder:
                local = Path(folder) / name
                local.write_bytes(content)
                self.shell.push(local, remote)
        return remote

    def model_path(self, model: ModelRecord) -> str:
        remote = self._path(f"models/{model.sha256}.{model.format}")
        if self.shell.size(remote) != model.size_bytes:
            self.shell.push(Path(model.path), remote)
        return remote
