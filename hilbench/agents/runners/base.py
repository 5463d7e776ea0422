"""The runner interface every runtime implements (onnxruntime now, LiteRT next)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence, Union

Dim = Union[int, str, None]


@dataclass(frozen=True)
class TensorSpec:
    """A model input as the runtime declares it. ``dtype`` is a numpy dtype name; dims are
    ints, symbolic names, or None for an unnamed dynamic axis."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]


class LoadedModel(Protocol):
    """A model ready to run."""

    @property
    def inputs(self) -> Sequence[TensorSpec]: ...

    @property
    def default_dims(self) -> Mapping[str, int]:
        """Sizes for symbolic dimensions that the model file itself suggests."""
        ...

    @property
    def threads(self) -> int | None:
        """Intra-op threads in use (None: the runtime's default)."""
        ...

    def run(self, feeds: dict[str, Any]) -> None: ...


class Runner(Protocol):
    """A runtime that can load one model format."""

    name: str

    def version(self) -> str: ...

    def load(self, path: Path, threads: int | None, execution_provider: str) -> LoadedModel:
        """Load ``path``; raise ``ModelError`` if the runtime refuses it."""
        ...
