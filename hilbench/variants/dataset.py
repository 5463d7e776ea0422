"""Datasets to measure accuracy on and to calibrate static quantization with.

A dataset is either one ``.npz`` file or a folder of ``.npy`` files. Arrays are named by the
model's input names (a folder holds ``<input name>.npy``); every array has a leading example
axis of the same length. An optional ``labels`` array (``labels.npy``) holds one label per
example. Arrays are loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy

from hilbench.core.errors import DatasetError, first_line

LABELS = "labels"
Dim = int | str | None


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name, numpy dtype name and shape (an int for a fixed dim, a name
    or None for a dynamic one). The first dim is the batch (example) axis."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]

    def describe(self) -> str:
        return f"{self.name} {self.dtype}[{', '.join(str(d) for d in self.shape)}]"


@dataclass(frozen=True)
class Batch:
    """Examples ``start .. start + size - 1`` of a dataset."""

    start: int
    inputs: Mapping[str, numpy.ndarray]
    labels: numpy.ndarray | None

    @property
    def size(self) -> int:
        return len(next(iter(self.inputs.values())))


@dataclass(frozen=True, eq=False)
class Dataset:
    """Read-only arrays with a leading example axis. ``sha256`` hashes the content (names,
    dtypes, shapes and bytes), so the same data gives the same hash from .npz or .npy files.
    Build one with ``make_dataset`` or ``load_dataset``."""

    name: str
    inputs: Mapping[str, numpy.ndarray]
    labels: numpy.ndarray | None
    sha256: str

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    @property
    def size(self) -> int:
        return len(self)

    def limit(self, count: int | None) -> Dataset:
        """The first ``count`` examples (all of them when ``count`` is None or larger)."""
        if count is None or count >= len(self):
            return self
        if count < 1:
            raise DatasetError(f"dataset limit must be at least 1, got {count}")
        labels = None if self.labels is None else self.labels[:count]
        return make_dataset({k: v[:count] for k, v in self.inputs.items()}, labels, self.name)

    def batches(self, batch_size: int) -> Iterator[Batch]:
        """Consecutive batches of ``batch_size`` examples; the last one may be shorter."""
        if batch_size < 1:
            raise DatasetError(f"batch size must be at least 1, got {batch_size}")
        for start in range(0, len(self), batch_size):
            stop = start + batch_size
            labels = None if self.labels is None else self.labels[start:stop]
            yield Batch(start, {k: v[start:stop] for k, v in self.inputs.items()}, labels)


def make_dataset(inputs: Mapping[str, numpy.ndarray], labels: numpy.ndarray | None = None,
                 name: str = "in-memory") -> Dataset:
    """A ``Dataset`` from arrays; ``DatasetError`` if they do not share one example count."""
    if not inputs:
        raise DatasetError(f"dataset {name} holds no input arrays")
    frozen = {key: _frozen(key, value, name) for key, value in sorted(inputs.items())}
    counts = {key: len(value) for key, value in frozen.items()}
    if len(set(counts.values())) != 1:
        found = ", ".join(f"{key}: {count}" for key, count in counts.items())
        raise DatasetError(f"dataset {name}: arrays have different example counts ({found})")
    count = next(iter(counts.values()))
    if count == 0:
        raise DatasetError(f"dataset {name} holds no examples")
    frozen_labels = None if labels is None else _frozen(LABELS, labels, name)
    if frozen_labels is not None and len(frozen_labels) != count:
        raise DatasetError(f"dataset {name}: {len(frozen_labels)} labels for {count} examples")
    return Dataset(name, MappingProxyType(frozen), frozen_labels,
                   _content_hash(frozen, frozen_labels))


def load_dataset(path: str | Path, name: str | None = None) -> Dataset:
    """Load an ``.npz`` file or a folder of ``.npy`` files; ``DatasetError`` if it is missing,
    corrupt, empty or inconsistent."""
    source = Path(path)
    label = name or source.stem
    if source.is_dir():
        arrays = _read_folder(source)
    elif source.is_file():
        arrays = _read_npz(source)
    else:
        raise DatasetError(f"dataset {source} does not exist (want an .npz file or a folder "
                           "of .npy files)")
    labels = arrays.pop(LABELS, None)
    if not arrays:
        raise DatasetError(f"dataset {source} holds no input arrays (only labels)"
                           if labels is not None else f"dataset {source} holds no arrays")
    return make_dataset(arrays, labels, label)


def check_inputs(dataset: Dataset, specs: Sequence[InputSpec]) -> None:
    """``DatasetError`` naming the first mismatch between the dataset and a model's inputs:
    a missing array, another dtype, another rank or another fixed trailing dim. Arrays that
    are no model input are allowed (they are not fed)."""
    for spec in specs:
        array = dataset.inputs.get(spec.name)
        if array is None:
            have = ", ".join(sorted(dataset.inputs))
            raise DatasetError(f"dataset {dataset.name} has no array for model input "
                               f"{spec.name!r} (it has: {have}; the model wants "
                               f"{_describe_all(specs)})")
        _check_array(dataset.name, spec, array)


def fixed_batch_size(specs: Sequence[InputSpec]) -> int | None:
    """The batch size a model insists on (a fixed leading dim), or None if it is dynamic."""
    fixed = {s.shape[0] for s in specs if s.shape and isinstance(s.shape[0], int)}
    return fixed.pop() if len(fixed) == 1 else None


def _check_array(dataset: str, spec: InputSpec, array: numpy.ndarray) -> None:
    if array.dtype.name != spec.dtype:
        raise DatasetError(f"dataset {dataset}: input {spec.name!r} is {array.dtype.name}, "
                           f"the model wants {spec.dtype}")
    if array.ndim != len(spec.shape):
        raise DatasetError(f"dataset {dataset}: input {spec.name!r} has examples of shape "
                           f"{_shape(array.shape[1:])}, the model wants {_shape(spec.shape[1:])}")
    for axis, (have, want) in enumerate(zip(array.shape[1:], spec.shape[1:], strict=True), 1):
        if isinstance(want, int) and want >= 0 and have != want:
            raise DatasetError(
                f"dataset {dataset}: input {spec.name!r} has examples of shape "
                f"{_shape(array.shape[1:])}, the model wants {_shape(spec.shape[1:])} "
                f"(axis {axis} is {have}, not {want})")


def _shape(dims: Sequence[Dim]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _describe_all(specs: Sequence[InputSpec]) -> str:
    return ", ".join(spec.describe() for spec in specs)


def _frozen(key: str, value: numpy.ndarray, dataset: str) -> numpy.ndarray:
    array = numpy.asarray(value)
    if array.dtype.hasobject:
        raise DatasetError(f"dataset {dataset}: array {key!r} holds Python objects")
    if array.ndim == 0:
        raise DatasetError(f"dataset {dataset}: array {key!r} is a scalar, not one value per "
                           "example")
    if array.flags.writeable or not array.flags.c_contiguous:
        array = numpy.array(array, order="C", copy=True)
        array.setflags(write=False)
    return array


def _content_hash(inputs: Mapping[str, numpy.ndarray], labels: numpy.ndarray | None) -> str:
    digest = hashlib.sha256()
    arrays = dict(inputs)
    if labels is not None:
        arrays[LABELS] = labels
    for key in sorted(arrays):
        array = arrays[key]
        digest.update(f"{key}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _read_npz(path: Path) -> dict[str, numpy.ndarray]:
    if path.suffix.lower() != ".npz":
        raise DatasetError(f"dataset {path} is not an .npz file or a folder of .npy files")
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"cannot read dataset {path}: not a valid .npz file (no zip "
                           "directory: truncated, or another format)")
    arrays: dict[str, numpy.ndarray] = {}
    member = "the archive"
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                member = f"array {key!r}"
                arrays[key] = archive[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, zlib.error) as exc:
        raise DatasetError(f"cannot read dataset {path}: {member}: {first_line(exc)}") from exc
    for key, value in arrays.items():
        if not isinstance(value, numpy.ndarray):
            raise DatasetError(f"cannot read dataset {path}: member {key!r} is not an .npy array")
    return arrays


def _read_folder(path: Path) -> dict[str, numpy.ndarray]:
    files = sorted(path.glob("*.npy"))
    if not files:
        raise DatasetError(f"dataset folder {path} holds no .npy files")
    arrays: dict[str, numpy.ndarray] = {}
    for file in files:
        try:
            arrays[file.stem] = numpy.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DatasetError(f"cannot read dataset file {file}: {first_line(exc)}") from exc
    return arrays

