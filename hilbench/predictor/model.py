"""Latency models on feature vectors: one device, and across devices with few-shot adaptation.

Both learn log latency (errors are relative, and latencies span orders of magnitude) and give
a prediction interval by conformal calibration on held-out errors: the interval is the
prediction times / divided by the held-out absolute log error's quantile at the asked
coverage (with the finite-sample correction), so about that fraction of new points falls
inside. ``LatencyModel`` picks its learner (gradient boosting, or a ridge regression on log
or on linear latency) by cross-validation.

``TransferModel`` is the cross-device model (in the spirit of HELP): a device is described by
its own log latencies on a few fixed reference networks (a hardware embedding), the model
learns ``log latency = f(network features, device embedding, probe profile)`` from every
known device (the profile: cores, top CPU frequency, memory and class, where the probe gave
them), and a new device needs only the references plus a handful more measurements: the
embedding comes from the references, and an affine correction in log space fitted on all of
its measurements absorbs what the embedding does not say. From ``RESIDUAL_MIN`` measurements
on, a ridge regression on the network features learns what is left (what this device does
that the others do not), and the interval comes from its cross-validated residuals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from hilbench.core.errors import SettingsError

Array = numpy.ndarray
DEFAULT_COVERAGE = 0.9
RESIDUAL_MIN = 30
RESIDUAL_FOLDS = 5
CROSS_FIT_FOLDS = 5


@dataclass(frozen=True)
class Predictions:
    """Median and interval per row, in milliseconds."""

    median_ms: Array
    lower_ms: Array
    upper_ms: Array


def _regressor(seed: int) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(max_iter=300, learning_rate=0.08, max_leaf_nodes=31,
                                         min_samples_leaf=10, l2_regularization=1e-3,
                                         random_state=seed)


def _log(latency_ms: Array) -> Array:
    values = numpy.asarray(latency_ms, dtype=float)
    if values.size == 0 or not numpy.all(values > 0):
        raise SettingsError("latencies to learn from must be positive milliseconds")
    logged: Array = numpy.log(values)
    return logged


def conformal_width(residuals: Array, coverage: float) -> float:
    """The absolute log error that ``coverage`` of new points stay within."""
    if not 0.0 < coverage < 1.0:
        raise SettingsError(f"coverage must be in (0, 1), not {coverage}")
    count = residuals.size
    level = min(1.0, numpy.ceil((count + 1) * coverage) / count)
    return float(numpy.quantile(numpy.abs(residuals), level))


LEARNERS = ("gbm", "ridge-log", "ridge-linear")
LEARNER_FOLDS = 5


@dataclass(frozen=True)
class _Learner:
    """One way to learn log latency: gradient boosting or a ridge on log latency (effects
    that multiply), or a ridge on the latency itself (costs that add, layer after layer)."""

    name: str
    seed: int

    def estimator(self) -> HistGradientBoostingRegressor | Pipeline:
        return _regressor(self.seed) if self.name == "gbm" else _ridge()

    def goal(self, target: Array) -> Array:
        goal: Array = numpy.exp(target) if self.name == "ridge-linear" else target
        return goal

    def to_log(self, predicted: Array, floor: float) -> Array:
        if self.name != "ridge-linear":
            return predicted
        logged: Array = numpy.log(numpy.maximum(predicted, floor))
        return logged


class LatencyModel:
    """One device: log latency from network features, with a conformal interval.

    Each of ``LEARNERS`` is cross-validated on the measurements (``LEARNER_FOLDS`` folds); the
    one with the lowest mean absolute log error is fitted on every row (``learner`` says
    which: boosting wins with many measurements, a ridge with few, on near-additive costs),
    and the interval width is the conformal quantile of its cross-validated errors."""

    def __init__(self, coverage: float = DEFAULT_COVERAGE, seed: int = 0) -> None:
        self.coverage = coverage
        self.seed = seed
        self.learner = ""
        self._learner = _Learner("gbm", seed)
        self._model: HistGradientBoostingRegressor | Pipeline = self._learner.estimator()
        self._width = 0.0
        self._floor = 0.0

    def fit(self, features: Array, latency_ms: Array) -> LatencyModel:
        target = _log(latency_ms)
        if len(target) < 10:
            raise SettingsError(f"{len(target)} measurements are too few to train on (need 10)")
        self._floor = float(numpy.exp(target.min())) * 0.1
        folds = KFold(min(LEARNER_FOLDS, len(target) // 2), shuffle=True,
                      random_state=self.seed)
        tried = []
        for name in LEARNERS:
            learner = _Learner(name, self.seed)
            held = cross_val_predict(learner.estimator(), features, learner.goal(target),
                                     cv=folds)
            errors = target - learner.to_log(held, self._floor)
            tried.append((float(numpy.mean(numpy.abs(errors))), LEARNERS.index(name),
                          learner, errors))
        _, _, self._learner, errors = min(tried, key=lambda entry: entry[:2])
        self.learner = self._learner.name
        self._width = conformal_width(errors, self.coverage)
        self._model = self._learner.estimator().fit(features, self._learner.goal(target))
        return self

    def predict(self, features: Array) -> Predictions:
        center = self._learner.to_log(self._model.predict(features), self._floor)
        return Predictions(numpy.exp(center), numpy.exp(center - self._width),
                           numpy.exp(center + self._width))


@dataclass(frozen=True)
class DeviceData:
    """A device's measurements: row indices into the feature matrix, and latencies; and,
    for the transfer model, what its probe says (``hilbench.predictor.hardware``), if
    known."""

    rows: Array
    latency_ms: Array
    profile: Array | None = None


class TransferModel:
    """Across devices: ``fit`` on known devices, ``adapt`` a device from a few
    measurements (the references among them), ``predict`` for any adapted device."""

    def __init__(self, references: Sequence[int], coverage: float = DEFAULT_COVERAGE,
                 seed: int = 0) -> None:
        if len(references) < 2:
            raise SettingsError("a hardware embedding needs at least 2 reference networks")
        self.references = numpy.asarray(references)
        self.coverage = coverage
        self.seed = seed
        self._model = _regressor(seed)
        self._described: dict[str, Array] = {}
        self._corrections: dict[str, tuple[float, float, float]] = {}
        self._residuals: dict[str, _Residual | None] = {}
        self._held_out: dict[str, tuple[Array, Array]] = {}
        self._profile_width = 0
        self._profile_kept = numpy.zeros(0, dtype=bool)

    def _describe(self, data: DeviceData, device: str) -> Array:
        """The device's vector: its hardware embedding, then the profile figures some known
        device has (NaN where unknown: missing values to the boosting)."""
        profile = numpy.full(self._profile_width, numpy.nan) if data.profile is None \
            else numpy.asarray(data.profile, dtype=float)
        if len(profile) != self._profile_width:
            raise SettingsError(f"{device}: a device profile of {len(profile)} figures; the "
                                f"model was fitted with {self._profile_width}")
        return numpy.concatenate([self._embedding(data, device), profile[self._profile_kept]])

    def _embedding(self, data: DeviceData, device: str) -> Array:
        by_row = dict(zip(data.rows.tolist(), _log(data.latency_ms).tolist(), strict=True))
        missing = [int(r) for r in self.references if int(r) not in by_row]
        if missing:
            raise SettingsError(f"{device} lacks {len(missing)} reference measurements "
                                f"(rows {missing[:5]}): measure the references first")
        values = numpy.array([by_row[int(r)] for r in self.references])
        centered: Array = values - values.mean()
        return centered  # the shape of the device, its level is the correction

    def _rows(self, features: Array, rows: Array, device: Array) -> Array:
        return numpy.hstack([features[rows], numpy.tile(device, (len(rows), 1))])

    def fit(self, features: Array, devices: Mapping[str, DeviceData],
            held_out: bool = True) -> TransferModel:
        """Learn from every known device's measurements (each must include the references).

        With ``held_out``, ``CROSS_FIT_FOLDS`` more models, each fitted without a fold of
        the networks (on every device), give each known device's predictions for networks
        the model never saw: ``adapt`` takes a known device's interval from those, as its
        own rows are in-sample for the full model and their errors would understate a new
        network's. Without it (devices to adapt are never among the known ones), the fit
        costs one model instead of six."""
        widths = {len(d.profile) for d in devices.values() if d.profile is not None}
        if len(widths) > 1:
            raise SettingsError("device profiles of different lengths cannot be mixed")
        self._profile_width = widths.pop() if widths else 0
        known = [d.profile for d in devices.values() if d.profile is not None]
        self._profile_kept = (numpy.isfinite(numpy.vstack(known)).any(axis=0) if known
                              else numpy.zeros(0, dtype=bool))  # all-NaN: no use, and
        # scikit-learn's binning fails on such a column
        blocks, targets, networks = [], [], []
        for name, data in devices.items():
            described = self._describe(data, name)
            level = _log(data.latency_ms).mean()
            blocks.append(self._rows(features, data.rows, described))
            targets.append(_log(data.latency_ms) - level)
            networks.append(data.rows)
        inputs, goal = numpy.vstack(blocks), numpy.concatenate(targets)
        self._model.fit(inputs, goal)
        self._held_out = {}
        held = _cross_fit(inputs, goal, numpy.concatenate(networks), self.seed) if held_out \
            else None
        if held is not None:
            starts = numpy.cumsum([0] + [len(rows) for rows in networks])
            for (name, data), start in zip(devices.items(), starts, strict=False):
                self._held_out[name] = (data.rows.copy(), held[start:start + len(data.rows)])
        return self

    def adapt(self, device: str, features: Array, data: DeviceData) -> None:
        """A device from its few measurements: embedding from the references, then an
        affine correction in log space and a conformal width from the residuals of that
        correction, scaled for its two fitted parameters (few points: the width is wide, as
        it should be); with ``RESIDUAL_MIN`` or more, a ridge on the features corrects what
        is left. A device the model was fitted on takes its width from the held-out
        predictions ``fit`` kept for it, when they cover the same rows."""
        described = self._describe(data, device)
        raw = self._model.predict(self._rows(features, data.rows, described))
        target = _log(data.latency_ms)
        slope, intercept = _affine(raw, target)
        residual_model: _Residual | None = None
        if len(raw) >= RESIDUAL_MIN:
            residual_model, held_out = _best_residual(features[data.rows],
                                                      slope * raw + intercept, target)
            width = conformal_width(target - held_out, self.coverage)
        else:
            width = _affine_width(raw, target, self.coverage)
        kept = self._held_out.get(device)
        if kept is not None and numpy.array_equal(kept[0], data.rows):
            width = max(width, _affine_width(kept[1], target, self.coverage))
        self._described[device] = described
        self._corrections[device] = (slope, intercept, width)
        self._residuals[device] = residual_model

    def predict(self, device: str, features: Array) -> Predictions:
        if device not in self._corrections:
            raise SettingsError(f"{device} is not adapted: measure its reference networks")
        slope, intercept, width = self._corrections[device]
        raw = self._model.predict(self._rows(features, numpy.arange(len(features)),
                                             self._described[device]))
        center = slope * raw + intercept
        residual_model = self._residuals.get(device)
        if residual_model is not None:
            center = residual_model.predict(features, center)
        return Predictions(numpy.exp(center), numpy.exp(center - width),
                           numpy.exp(center + width))


def _affine(raw: Array, target: Array) -> tuple[float, float]:
    """Slope (kept within [0.5, 2]) and intercept mapping the transfer model's output to a
    device's log latency. The intercept is the median offset: one model the other devices
    mislead about (a sparse variant on the only board that skips zeros) would otherwise
    shift every prediction."""
    slope = float(numpy.polyfit(raw, target, 1)[0]) if len(raw) >= 3 else 1.0
    slope = float(numpy.clip(slope, 0.5, 2.0))
    return slope, float(numpy.median(target - slope * raw))


def _affine_width(raw: Array, target: Array, coverage: float) -> float:
    """The conformal width of the affine correction's residuals, scaled up for its two
    fitted parameters (in-sample residuals understate new points' errors)."""
    slope, intercept = _affine(raw, target)
    scale = len(raw) / max(1, len(raw) - 2)
    return conformal_width((target - (slope * raw + intercept)) * scale, coverage)


def _cross_fit(inputs: Array, goal: Array, networks: Array, seed: int) -> Array | None:
    """Each row's prediction by a model fitted without its network (on any device): folds
    over networks, ``CROSS_FIT_FOLDS`` of them (fewer with fewer networks; None with one)."""
    unique = numpy.unique(networks)
    count = min(CROSS_FIT_FOLDS, len(unique))
    if count < 2:
        return None
    held = numpy.zeros(len(goal))
    fold_of = dict(zip(numpy.random.default_rng(seed).permutation(unique).tolist(),
                       numpy.arange(len(unique)) % count, strict=True))
    folds = numpy.array([fold_of[int(n)] for n in networks])
    for fold in range(count):
        test = folds == fold
        model = _regressor(seed).fit(inputs[~test], goal[~test])
        held[test] = model.predict(inputs[test])
    return held


def _ridge() -> Pipeline:
    return make_pipeline(StandardScaler(), RidgeCV(alphas=numpy.logspace(-3, 3, 13)))


@dataclass(frozen=True)
class _Residual:
    """What a device's own measurements add to the transfer prediction (log ms ``center``):
    ``log`` space, a ridge on the features learns the log residual (multiplicative effects);
    ``linear`` space, a ridge on the features and the predicted milliseconds learns the
    latency itself (additive costs per op, as an accelerator's)."""

    space: str
    ridge: Pipeline

    def inputs(self, features: Array, center: Array) -> Array:
        if self.space == "log":
            return features
        return numpy.hstack([features, numpy.exp(center)[:, None]])

    def target(self, center: Array, target: Array) -> Array:
        goal: Array = target - center if self.space == "log" else numpy.exp(target)
        return goal

    def predict(self, features: Array, center: Array) -> Array:
        value: Array = self.ridge.predict(self.inputs(features, center))
        if self.space == "log":
            shifted: Array = center + value
            return shifted
        floor = numpy.exp(center) * 0.05  # a ridge may cross zero far from its data
        logged: Array = numpy.log(numpy.maximum(value, floor))
        return logged


def _best_residual(features: Array, center: Array, target: Array) -> tuple[_Residual, Array]:
    """The residual model with the lower cross-validated log error, fitted on every row, and
    its cross-validated log predictions (for the interval)."""
    tried = []
    for space in ("log", "linear"):
        candidate = _Residual(space, _ridge())
        inputs, goal = candidate.inputs(features, center), candidate.target(center, target)
        held = cross_val_predict(candidate.ridge, inputs, goal, cv=RESIDUAL_FOLDS)
        held_log = (center + held if space == "log"
                    else numpy.log(numpy.maximum(held, numpy.exp(center) * 0.05)))
        tried.append((float(numpy.mean(numpy.abs(target - held_log))), space, candidate,
                      held_log))
    _, _, chosen, held_log = min(tried, key=lambda entry: (entry[0], entry[1]))
    chosen.ridge.fit(chosen.inputs(features, center), chosen.target(center, target))
    return chosen, held_log
