"""How hilbench talks to a device: argv lists in, exit code + output out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

from hilbench.core.errors import TransportError

LineCallback = Callable[[str], None]


def checked_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` as a list, refused (``TransportError``) when it is empty or an argument
    holds a NUL byte, which no exec can pass on (a remote shell would cut the command line
    there); every other character is data."""
    words = list(argv)
    if not words:
        raise TransportError("empty command")
    for word in words:
        if "\0" in word:
            raise TransportError(f"cannot run {words[0][:60]!r}: an argument holds a NUL byte "
                                 f"({word[:60]!r})")
    return words


@dataclass(frozen=True)
class CommandResult:
    """What one command on a device produced."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Shell(Protocol):
    """A transport to one device. Commands are argv lists, never shell strings."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        stdin: str | None = None,
        on_stderr_line: LineCallback | None = None,
    ) -> CommandResult:
        """Run ``argv``; raise ``CommandTimeoutError`` past ``timeout_s``."""
        ...

    def read_text(self, path: str) -> str:
        """Read a small text file on the device."""
        ...

    def push(self, local: Path, remote: str) -> None:
        """Copy a file to the device."""
        ...

    def pull(self, remote: str, local: Path) -> None:
        """Copy a file from the device."""
        ...

    def cancel(self) -> None:
        """Stop every command still running (from any thread); later ones fail at once."""
        ...

    def close(self) -> None:
        """Release the connection, if the transport keeps one."""
        ...
