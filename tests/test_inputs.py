"""Inputs generated from a model's signature: shapes for dynamic axes, seeded values."""

from __future__ import annotations

import numpy
import pytest

from hilbench.agents.inputs import DEFAULT_DYNAMIC_DIM, make_feeds, resolve_shape
from hilbench.agents.runners.base import TensorSpec
from hilbench.core.errors import SettingsError
from hilbench.core.settings import BenchmarkSettings

IDS = TensorSpec("input_ids", "int64", ("batch", "sequence"))
MASK = TensorSpec("attention_mask", "int64", ("batch", "sequence"))
IMAGE = TensorSpec("pixels", "float32", (None, 3, "height", "width"))


def test_dynamic_axes_resolve_in_documented_order() -> None:
    model_dims = {"sequence": 64}
    assert resolve_shape(IDS, BenchmarkSettings(), model_dims) == (1, 64)
    assert resolve_shape(IDS, BenchmarkSettings(batch_size=8), model_dims) == (8, 64)
    assert resolve_shape(IDS, BenchmarkSettings(dims={"sequence": 16}), model_dims) == (1, 16)
    assert resolve_shape(IDS, BenchmarkSettings(shapes={"input_ids": (2, 5)}), model_dims) == (2, 5)
    fallback = (4, 3, DEFAULT_DYNAMIC_DIM, DEFAULT_DYNAMIC_DIM)
    assert resolve_shape(IMAGE, BenchmarkSettings(batch_size=4), {}) == fallback


def test_feeds_are_seeded_and_typed() -> None:
    first = make_feeds([IDS, MASK, IMAGE], BenchmarkSettings(seed=3), {"sequence": 8})
    again = make_feeds([IDS, MASK, IMAGE], BenchmarkSettings(seed=3), {"sequence": 8})
    other = make_feeds([IDS, MASK, IMAGE], BenchmarkSettings(seed=4), {"sequence": 8})
    for name in first:
        assert numpy.array_equal(first[name], again[name])
    assert not numpy.array_equal(first["pixels"], other["pixels"])
    assert first["input_ids"].dtype == numpy.int64 and first["input_ids"].shape == (1, 8)
    assert first["input_ids"].min() >= 0 and first["input_ids"].max() < 100
    assert (first["attention_mask"] == 1).all()
    assert first["pixels"].dtype == numpy.float32


def test_shapes_that_do_not_fit_the_model_are_refused() -> None:
    with pytest.raises(SettingsError, match="names unknown input"):
        make_feeds([IDS], BenchmarkSettings(shapes={"ids": (1, 2)}), {})
    with pytest.raises(SettingsError, match="has 3 axes; the model declares 2"):
        make_feeds([IDS], BenchmarkSettings(shapes={"input_ids": (1, 2, 3)}), {})
