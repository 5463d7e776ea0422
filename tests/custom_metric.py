"""Custom metrics for tests/test_variants_quant_accuracy.py, loaded by entry point
``tests.custom_metric:<name>`` as a user's own module would be."""

from __future__ import annotations

import numpy

NOT_A_FUNCTION = 42


def error_rate(outputs: numpy.ndarray, labels: numpy.ndarray | None,
               base_outputs: numpy.ndarray | None) -> float:
    """1 - top-1 accuracy."""
    assert labels is not None
    return float((outputs.argmax(axis=1) != labels).mean())


def max_abs_difference(outputs: numpy.ndarray, labels: numpy.ndarray | None,
                       base_outputs: numpy.ndarray | None) -> float:
    """Largest absolute difference from the base model's outputs (0 without a base model)."""
    if base_outputs is None:
        return 0.0
    return float(numpy.abs(outputs - base_outputs).max())


def broken(outputs: numpy.ndarray, labels: numpy.ndarray | None,
           base_outputs: numpy.ndarray | None) -> float:
    raise ValueError("this metric always fails")
