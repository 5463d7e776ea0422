"""Accuracy metrics: built-ins by name, or a custom function named by an entry point.

Built-in names:

- ``top1`` (also ``accuracy``), ``top<k>`` such as ``top5``: the fraction of examples whose
  label is among the k highest scores; outputs are scores (logits) ``[N, C]``, labels ints ``[N]``.
- ``macro_f1`` (also ``f1``): F1 per class, averaged over the classes that occur in the labels
  or the predictions (argmax); a class that is never predicted counts with F1 = 0.
- ``cosine``: cosine similarity of each example's output (flattened) with the base model's,
  averaged over the examples; for embedding models, needs no labels.
- ``agreement``: the fraction of argmax (over the last axis) equal to the base model's.

A custom metric is ``package.module:function`` with the signature
``(outputs, labels, base_outputs) -> float``; labels and base outputs are None when the dataset
has no labels or no base model was given.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy

from hilbench.core.errors import DatasetError, ModelError, SettingsError, first_line

MetricFunction = Callable[[numpy.ndarray, numpy.ndarray | None, numpy.ndarray | None], float]

_TOP_K = re.compile(r"top(\d+)")
_ENTRY_POINT = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
_ALIASES = {"accuracy": "top1", "f1": "macro_f1"}


@dataclass(frozen=True)
class Metric:
    """A named metric. Built-ins say whether they need labels or the base model's outputs;
    a custom one gets whatever is available."""

    name: str
    function: MetricFunction
    needs_labels: bool = False
    needs_base: bool = False
    custom: bool = False

    def __call__(self, outputs: numpy.ndarray, labels: numpy.ndarray | None,
                 base_outputs: numpy.ndarray | None) -> float:
        if self.needs_labels and labels is None:
            raise DatasetError(f"metric {self.name} needs labels; the dataset has none")
        if self.needs_base and base_outputs is None:
            raise SettingsError(f"metric {self.name} compares with the base model; give the "
                                "base model too")
        if not self.custom:
            return self.function(outputs, labels, base_outputs)
        return _call_custom(self, outputs, labels, base_outputs)


# --- built-in metrics ---------------------------------------------------------------------------


def top_k_accuracy(outputs: numpy.ndarray, labels: numpy.ndarray, k: int = 1) -> float:
    """Fraction of examples whose label is among the ``k`` highest scores of ``outputs [N, C]``
    (ties go to the lower class index)."""
    scores, classes = _scores(outputs), _class_labels(labels, len(outputs))
    if not 1 <= k <= scores.shape[1]:
        raise SettingsError(f"top-{k} accuracy needs 1 <= k <= {scores.shape[1]} classes")
    _check_label_range(classes, scores.shape[1])
    best = numpy.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float((best == classes[:, None]).any(axis=1).mean())


def macro_f1(outputs: numpy.ndarray, labels: numpy.ndarray) -> float:
    """Unweighted mean over classes of 2TP / (2TP + FP + FN), predictions being the argmax of
    ``outputs [N, C]``; the classes are those in the labels or the predictions."""
    scores = _scores(outputs)
    truth = _class_labels(labels, len(scores))
    predicted = scores.argmax(axis=1)
    scores_per_class = []
    for cls in numpy.union1d(truth, predicted):
        tp = int(numpy.sum((predicted == cls) & (truth == cls)))
        fp = int(numpy.sum((predicted == cls) & (truth != cls)))
        fn = int(numpy.sum((predicted != cls) & (truth == cls)))
        scores_per_class.append(2 * tp / (2 * tp + fp + fn))
    return float(numpy.mean(scores_per_class))


def cosine_similarity(outputs: numpy.ndarray, base_outputs: numpy.ndarray) -> float:
    """Mean over examples of the cosine between each example's flattened output and the base
    model's (two zero vectors count as 1, one zero vector as 0)."""
    a, b = _paired(outputs, base_outputs, "cosine")
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    norms = numpy.linalg.norm(a, axis=1) * numpy.linalg.norm(b, axis=1)
    dots = numpy.sum(a * b, axis=1)
    both_zero = (numpy.linalg.norm(a, axis=1) == 0) & (numpy.linalg.norm(b, axis=1) == 0)
    cosines = numpy.where(norms > 0, dots / numpy.where(norms > 0, norms, 1.0), 0.0)
    return float(numpy.where(both_zero, 1.0, cosines).mean())


def agreement(outputs: numpy.ndarray, base_outputs: numpy.ndarray) -> float:
    """Fraction of argmax over the last axis equal to the base model's."""
    a, b = _paired(outputs, base_outputs, "agreement")
    if a.ndim < 2:
        raise ModelError(f"agreement needs scores with a class axis, got shape {list(a.shape)}")
    return float((a.argmax(axis=-1) == b.argmax(axis=-1)).mean())


# --- resolving names ------------------------------------------------------------------------------


def resolve_metric(spec: str | Metric) -> Metric:
    """A built-in by name (``top1``, ``top5``, ``macro_f1``, ``cosine``, ``agreement`` ...) or
    a custom function by entry point ``package.module:function``; ``SettingsError`` otherwise."""
    if isinstance(spec, Metric):
        return spec
    name = _ALIASES.get(spec.strip(), spec.strip())
    builtin = _builtin(name)
    if builtin is not None:
        return builtin
    if ":" in name:
        return load_entry_point(name)
    raise SettingsError(f"unknown metric {spec!r}: use top1, top<k>, macro_f1, cosine, "
                        "agreement or a custom function as package.module:function")


def resolve_metrics(specs: Sequence[str | Metric]) -> tuple[Metric, ...]:
    if isinstance(specs, str):
        specs = [specs]
    metrics = tuple(resolve_metric(spec) for spec in specs)
    if not metrics:
        raise SettingsError("no metric given")
    names = [metric.name for metric in metrics]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SettingsError(f"metric given twice: {', '.join(duplicates)}")
    return metrics


def load_entry_point(spec: str) -> Metric:
    """Import ``package.module:function``; ``SettingsError`` if it cannot be imported or is not
    a function."""
    if not _ENTRY_POINT.fullmatch(spec):
        raise SettingsError(f"custom metric {spec!r} is not an entry point "
                            "package.module:function")
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise SettingsError(f"cannot import module {module_name!r} of custom metric {spec!r}: "
                            f"{type(exc).__name__}: {first_line(exc)}") from exc
    function = getattr(module, attribute, None)
    if function is None:
        raise SettingsError(f"custom metric {spec!r}: module {module_name!r} has no "
                            f"{attribute!r}")
    if not callable(function):
        raise SettingsError(f"custom metric {spec!r} is not callable")
    return Metric(spec, function, custom=True)


def _builtin(name: str) -> Metric | None:
    top = _TOP_K.fullmatch(name)
    if top:
        k = int(top.group(1))
        if k < 1:
            raise SettingsError(f"metric {name}: k must be at least 1")
        return Metric(name, lambda o, labels, _b: top_k_accuracy(o, _need(labels), k),
                      needs_labels=True)
    if name == "macro_f1":
        return Metric(name, lambda o, labels, _b: macro_f1(o, _need(labels)), needs_labels=True)
    if name == "cosine":
        return Metric(name, lambda o, _l, base: cosine_similarity(o, _need(base)),
                      needs_base=True)
    if name == "agreement":
        return Metric(name, lambda o, _l, base: agreement(o, _need(base)), needs_base=True)
    return None


def _call_custom(metric: Metric, outputs: numpy.ndarray, labels: numpy.ndarray | None,
                 base_outputs: numpy.ndarray | None) -> float:
    try:
        value = metric.function(outputs, labels, base_outputs)
    except Exception as exc:
        raise SettingsError(f"custom metric {metric.name} failed: {type(exc).__name__}: "
                            f"{first_line(exc)}") from exc
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"custom metric {metric.name} returned {type(value).__name__}, "
                            "not a number") from exc
    if not math.isfinite(number):
        raise SettingsError(f"custom metric {metric.name} returned {number}")
    return number


def _need(array: numpy.ndarray | None) -> numpy.ndarray:
    if array is None:  # Metric.__call__ checks first; this keeps the types honest
        raise SettingsError("metric input missing")
    return array


def _scores(outputs: numpy.ndarray) -> numpy.ndarray:
    scores = numpy.asarray(outputs)
    if scores.ndim != 2:
        raise ModelError(f"classification metrics need scores [examples, classes], got shape "
                         f"{list(scores.shape)} (choose the logits output)")
    return scores


def _class_labels(labels: numpy.ndarray, count: int) -> numpy.ndarray:
    classes = numpy.asarray(labels)
    if classes.ndim != 1 or not numpy.issubdtype(classes.dtype, numpy.integer):
        raise DatasetError(f"classification metrics need one integer label per example, got "
                           f"{classes.dtype.name} labels of shape {list(classes.shape)}")
    if len(classes) != count:
        raise DatasetError(f"{len(classes)} labels for {count} outputs")
    return classes


def _check_label_range(classes: numpy.ndarray, count: int) -> None:
    if classes.size and (classes.min() < 0 or classes.max() >= count):
        raise DatasetError(f"labels range from {classes.min()} to {classes.max()}, the model "
                           f"has {count} classes")


def _paired(outputs: numpy.ndarray, base: numpy.ndarray,
            metric: str) -> tuple[numpy.ndarray, numpy.ndarray]:
    a = numpy.asarray(outputs, dtype=numpy.float64)
    b = numpy.asarray(base, dtype=numpy.float64)
    if a.shape != b.shape:
        raise ModelError(f"{metric}: outputs of shape {list(a.shape)} cannot be compared with "
                         f"the base model's {list(b.shape)}")
    return a, b

