"""Input tensors generated from a model's signature with a fixed seed."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from hilbench.agents.runners.base import Dim, TensorSpec
from hilbench.core.errors import SettingsError
from hilbench.core.settings import BenchmarkSettings

DEFAULT_DYNAMIC_DIM = 128
INT_HIGH = 100


def resolve_shape(
    spec: TensorSpec, settings: BenchmarkSettings, model_dims: Mapping[str, int]
) -> tuple[int, ...]:
    """Concrete shape for one input.

    Order: an explicit ``--shape NAME=...``; then per dynamic axis: ``--dim SYMBOL=N``, the
    batch size for the first axis, the model's own suggested size (metadata
    ``hilbench.default_dims``), else ``DEFAULT_DYNAMIC_DIM``."""
    if spec.name in settings.shapes:
        shape = settings.shapes[spec.name]
        if len(shape) != len(spec.shape):
            raise SettingsError(
                f"shape {list(shape)} for input {spec.name} has {len(shape)} axes; "
                f"the model declares {len(spec.shape)}: {list(spec.shape)}"
            )
        return shape
    return tuple(
        _resolve_dim(axis, dim, settings, model_dims) for axis, dim in enumerate(spec.shape)
    )


def _resolve_dim(
    axis: int, dim: Dim, settings: BenchmarkSettings, model_dims: Mapping[str, int]
) -> int:
    if isinstance(dim, int) and dim > 0:
        return dim
    if isinstance(dim, str) and dim in settings.dims:
        return settings.dims[dim]
    if axis == 0:
        return settings.batch_size
    if isinstance(dim, str) and dim in model_dims:
        return model_dims[dim]
    return DEFAULT_DYNAMIC_DIM


def make_feeds(
    specs: Sequence[TensorSpec], settings: BenchmarkSettings, model_dims: Mapping[str, int]
) -> dict[str, Any]:
    """Random inputs: floats ~ N(0, 1), integers in [0, INT_HIGH), masks all ones."""
    import numpy

    unknown = set(settings.shapes) - {s.name for s in specs}
    if unknown:
        raise SettingsError(
            f"--shape names unknown input(s) {', '.join(sorted(unknown))}; the model's inputs: "
            + ", ".join(s.name for s in specs)
        )
    rng = numpy.random.default_rng(settings.seed)
    feeds: dict[str, Any] = {}
    for spec in specs:
        shape = resolve_shape(spec, settings, model_dims)
        dtype = numpy.dtype(spec.dtype)
        if dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
        elif "mask" in spec.name.lower():
            feeds[spec.name] = numpy.ones(shape, dtype=dtype)
        else:
            feeds[spec.name] = rng.integers(0, INT_HIGH, size=shape).astype(dtype)
    return feeds


def input_shapes(feeds: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {name: tuple(int(d) for d in value.shape) for name, value in feeds.items()}
