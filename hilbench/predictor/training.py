"""The predictor's training set, read from the profile store, and the models fitted on it.

**Rows.** One row per (device, network, settings): a *network* is a model at concrete input
sizes (its sha256 with the run's batch, ``--dim`` and ``--shape`` settings; a model of the
public spaces by its source text), and the target is its p50 latency in ms (the mean when the
run has no p50), the median over the runs that share the row. Runs used: status ok, verdict
VALID, and (unless ``valid_only``) INVALID runs whose only reasons are about the spread
(``unstable``, ``stability unknown``): the target is the median, which their spread does not
move, while a run that was too short, had too few runs or was throttled is set aside, as is
every run of a model whose file can no longer be read.

**Settings.** Runs of one device under other runtime, threads or DVFS settings are not the
same device for a latency model (incompatible measurements are never combined): each device
is trained on its *main settings*, those with the most networks measured, and the runs under
other settings are counted as set aside.

**Features** come from the model files (``extract_features``, ``extract_tflite_features``) or,
for networks of the public spaces and the reference set, from their source
(``source_features``), and are cached on disk under hilbench's cache folder, keyed by the
model's sha256, its input sizes and ``FEATURE_SCHEMA_VERSION``.

**Models.** A device with at least ``DEVICE_MIN_ROWS`` rows gets its own ``LatencyModel``;
every device that measured the whole reference set (``hilbench.predictor.references``) joins
a ``TransferModel`` when at least two did. The training-set id is the sha256 of the sorted
run ids used.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy
import platformdirs
from sqlalchemy import select

from hilbench.core.dvfs import DvfsState
from hilbench.core.errors import ModelError, PredictorError, SettingsError
from hilbench.core.files import write_atomically
from hilbench.core.records import RUN_OK
from hilbench.predictor.features import (
    FEATURE_SCHEMA_VERSION,
    MODEL_FEATURE_NAMES,
    ModelFeatures,
    extract_features,
    extract_tflite_features,
    model_vector,
)
from hilbench.predictor.hardware import device_features
from hilbench.predictor.references import REFERENCE_BATCH, REFERENCES, reference_sha256s
from hilbench.predictor.spaces.registry import SPACE_FORMAT, source_features
from hilbench.profiles.schema import measurements, models, runs
from hilbench.profiles.store import Store

if TYPE_CHECKING:  # scikit-learn loads when a model is fitted, not for a refusal
    from hilbench.predictor.model import LatencyModel, TransferModel

Array = numpy.ndarray
DEVICE_MIN_ROWS = 10
TRANSFER_MIN_DEVICES = 2
SPREAD_REASONS = ("unstable:", "stability unknown:")
OTHER_SETTINGS = "measured under other settings (runtime, threads, DVFS) than the device's main"


# --------------------------------------------------------------------------------------------
# networks and runs


@dataclass(frozen=True)
class Network:
    """A model at concrete input sizes: one feature row. ``reference`` is the source of the
    reference network it is, if it is one."""

    sha256: str
    name: str
    format: str
    path: str
    batch: int = 1
    dims: tuple[tuple[str, int], ...] = ()
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    reference: str | None = None

    @property
    def sizes(self) -> str:
        """The input sizes as text: ``b1``, ``b8,sequence=64``, ``b1,x=1x3x32x32``."""
        parts = [f"b{self.batch}", *(f"{k}={v}" for k, v in self.dims),
                 *(f"{k}={'x'.join(map(str, v))}" for k, v in self.shapes)]
        return ",".join(parts)

    @property
    def key(self) -> str:
        """The identity of the feature row: a reference by its source, others by sha256."""
        return f"{self.reference or self.sha256}|{self.sizes}"

    @property
    def source(self) -> str | None:
        """The space source the features are built from, when not read from a file."""
        if self.reference is not None:
            return self.reference
        return self.path if self.format == SPACE_FORMAT else None


@dataclass(frozen=True)
class MeasuredRun:
    """One usable run: a network on a device under settings ``config`` (a key) with its
    target latency."""

    run_id: str
    device: str
    network: Network
    config: str
    config_label: str
    latency_ms: float
    verdict: str


@dataclass
class StoreRuns:
    """The usable runs of a store, and how many runs were set aside and why."""

    runs: list[MeasuredRun]
    set_aside: Counter[str]


def run_sizes(settings: Mapping[str, Any]
                    ) -> tuple[int, tuple[tuple[str, int], ...],
                               tuple[tuple[str, tuple[int, ...]], ...]]:
    batch = int(settings.get("batch_size") or 1)
    dims = tuple(sorted((str(k), int(v)) for k, v in dict(settings.get("dims") or {}).items()))
    shapes = tuple(sorted((str(k), tuple(int(d) for d in v))
                          for k, v in dict(settings.get("shapes") or {}).items()))
    return batch, dims, shapes


def run_config(runtime: str | None, version: str | None, provider: str | None,
            threads: int | None, dvfs: Mapping[str, Any] | None) -> tuple[str, str]:
    """A key and a label for the settings a run was measured under."""
    state = DvfsState.from_dict(dvfs) if dvfs else DvfsState()
    key_data = [runtime, version, provider, threads, [list(p) for p in state.policy()]]
    key = hashlib.sha256(json.dumps(key_data, default=str).encode()).hexdigest()[:12]
    label = f"{runtime or '?'} {version or ''}".strip()
    if provider and provider != "CPUExecutionProvider":
        label += f" ({provider})"
    if threads:
        label += f", {threads} threads"
    if state.power_mode:
        label += f", power mode {state.power_mode}"
    pinned = [f"{d.name} {d.max_khz / 1000:.0f} MHz" for d in state.domains
              if d.max_khz is not None and d.min_khz == d.max_khz]
    if pinned:
        label += ", pinned " + ", ".join(pinned)
    return key, label


def usable(verdict: str | None, reasons: Sequence[str] | None, valid_only: bool) -> str | None:
    """None when a run can be trained on, else why not."""
    if verdict == "VALID":
        return None
    found = list(reasons or [])
    if not valid_only and found and all(r.startswith(SPREAD_REASONS) for r in found):
        return None
    heads = sorted({r.split(":")[0] for r in found}) or ["no reason"]
    return f"INVALID ({', '.join(heads)})"


def load_runs(store: Store, valid_only: bool = False, sha256s: Iterable[str] | None = None
              ) -> StoreRuns:
    """Every ok run of the store (or of the models ``sha256s``) that can be trained on."""
    query = (
        select(runs.c.run_id, runs.c.device_name, runs.c.settings, runs.c.runtime,
               runs.c.runtime_version, runs.c.execution_provider, runs.c.threads, runs.c.dvfs,
               models.c.sha256, models.c.name, models.c.format, models.c.path,
               measurements.c.p50_ms, measurements.c.mean_ms, measurements.c.verdict,
               measurements.c.reasons)
        .join(models, models.c.id == runs.c.model_id)
        .join(measurements, measurements.c.run_id == runs.c.id)
        .where(runs.c.status == RUN_OK)
        .order_by(runs.c.id)
    )
    if sha256s is not None:
        query = query.where(models.c.sha256.in_(list(sha256s)))
    by_sha = reference_sha256s()
    by_name = {r.name: r.source for r in REFERENCES}
    sources = {r.source for r in REFERENCES}
    found: list[MeasuredRun] = []
    set_aside: Counter[str] = Counter()
    with store.connection() as connection:
        for row in connection.execute(query):
            why = usable(row.verdict, row.reasons, valid_only)
            latency = row.p50_ms if row.p50_ms is not None else row.mean_ms
            if why is None and not (latency and latency > 0):
                why = "no latency figure"
            if why is not None:
                set_aside[why] += 1
                continue
            batch, dims, shapes = run_sizes(row.settings or {})
            reference = None
            if batch == REFERENCE_BATCH and not dims and not shapes:
                if row.format == SPACE_FORMAT and row.path in sources:
                    reference = row.path
                elif row.format == "onnx":
                    reference = by_sha.get(row.sha256) or by_name.get(row.name)
            network = Network(row.sha256, row.name, row.format, row.path, batch, dims, shapes,
                              reference)
            key, label = run_config(row.runtime, row.runtime_version, row.execution_provider,
                                 row.threads, row.dvfs)
            found.append(MeasuredRun(row.run_id, row.device_name, network, key, label,
                                     float(latency), row.verdict))
    return StoreRuns(found, set_aside)


# --------------------------------------------------------------------------------------------
# features


def default_cache_folder() -> Path:
    return Path(platformdirs.user_cache_dir("hilbench")) / "features"


class FeatureCache:
    """Features of networks, kept as JSON files keyed by sha256, input sizes and schema."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or default_cache_folder()
        self.extracted = 0

    def _path(self, network: Network) -> Path:
        identity = network.source or network.sha256
        digest = hashlib.sha256(identity.encode()).hexdigest() if network.source else identity
        sizes = hashlib.sha256(network.sizes.encode()).hexdigest()[:12]
        return self.folder / f"{digest}-b{network.batch}-{sizes}-v{FEATURE_SCHEMA_VERSION}.json"

    def get(self, network: Network) -> ModelFeatures:
        """The network's features; ``ModelError`` when its model cannot be read."""
        path = self._path(network)
        try:
            return ModelFeatures.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, ModelError):
            pass
        features = network_features(network)
        self.extracted += 1
        with suppress(OSError):  # a cache that cannot be written only costs time
            write_atomically(path, json.dumps(features.to_dict(),
                                              separators=(",", ":")).encode())
        return features


def network_features(network: Network) -> ModelFeatures:
    source = network.source
    if source is not None:
        return source_features(source, batch=network.batch)
    shapes = {name: list(shape) for name, shape in network.shapes}
    if network.format == "tflite":
        return extract_tflite_features(network.path, input_shapes=shapes or None,
                                       batch=network.batch)
    return extract_features(network.path, input_shapes=shapes or None, dims=dict(network.dims),
                            batch=network.batch)


def seen_types(features: ModelFeatures) -> tuple[set[str], set[str]]:
    """The op types and live kernel kinds a network shows a model trained on it."""
    return set(features.op_histogram), {k.kind for k in features.kernels if k.live}


# --------------------------------------------------------------------------------------------
# the training set


@dataclass
class DeviceRows:
    """A device's rows: indices into the training set's networks, with their latencies."""

    name: str
    config: str
    config_label: str
    rows: list[int] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    runs: int = 0


@dataclass
class TrainingSet:
    networks: list[Network]
    features: Array
    ops: list[set[str]]
    kernels: list[set[str]]
    devices: dict[str, DeviceRows]
    run_ids: tuple[str, ...]
    set_aside: Counter[str]
    references: dict[str, int]  # reference source -> network index
    profiles: dict[str, Array] = field(default_factory=dict)  # device -> probe profile

    @property
    def id(self) -> str:
        return hashlib.sha256("\n".join(sorted(self.run_ids)).encode()).hexdigest()

    @property
    def rows(self) -> int:
        return sum(len(d.rows) for d in self.devices.values())

    def reference_rows(self) -> list[int] | None:
        """Network indices of the whole reference set, or None when some were never
        measured."""
        if any(r.source not in self.references for r in REFERENCES):
            return None
        return [self.references[r.source] for r in REFERENCES]

    def with_references(self, devices: Iterable[str]) -> list[str]:
        wanted = self.reference_rows()
        if wanted is None:
            return []
        return [d for d in devices if set(wanted) <= set(self.devices[d].rows)]


def _main_config(device_runs: Sequence[MeasuredRun]) -> str:
    networks: dict[str, set[str]] = defaultdict(set)
    counts: Counter[str] = Counter()
    for run in device_runs:
        networks[run.config].add(run.network.key)
        counts[run.config] += 1
    return max(networks, key=lambda c: (len(networks[c]), counts[c], c))


Progress = Callable[[int, int], None]


def build_training_set(store: Store, valid_only: bool = False,
                       cache: FeatureCache | None = None,
                       progress: Progress | None = None) -> TrainingSet:
    """Read the store's usable runs into rows and their networks' features."""
    loaded = load_runs(store, valid_only)
    training = training_set(loaded.runs, loaded.set_aside, cache or FeatureCache(), progress)
    training.profiles.update({device.name: device_features(device.info)
                              for device in store.list_devices()
                              if device.name in training.devices})
    return training


def training_set(measured: Sequence[MeasuredRun], set_aside: Counter[str],
                 cache: FeatureCache, progress: Progress | None = None) -> TrainingSet:
    set_aside = Counter(set_aside)
    by_device: dict[str, list[MeasuredRun]] = defaultdict(list)
    for run in measured:
        by_device[run.device].append(run)
    chosen: list[MeasuredRun] = []
    for device_runs in by_device.values():
        main = _main_config(device_runs)
        for run in device_runs:
            if run.config == main:
                chosen.append(run)
            else:
                set_aside[OTHER_SETTINGS] += 1
    networks: dict[str, Network] = {}
    for run in chosen:
        networks.setdefault(run.network.key, run.network)
    feature_rows: dict[str, tuple[Array, set[str], set[str]]] = {}
    unreadable: set[str] = set()
    for done, (key, network) in enumerate(networks.items()):
        try:
            features = cache.get(network)
        except (ModelError, SettingsError):
            unreadable.add(key)
        else:
            feature_rows[key] = (model_vector(features), *seen_types(features))
        if progress is not None and cache.extracted:
            progress(done + 1, len(networks))
    order = [key for key in networks if key in feature_rows]
    index = {key: i for i, key in enumerate(order)}
    grouped: dict[tuple[str, str], list[MeasuredRun]] = defaultdict(list)
    for run in chosen:
        if run.network.key in unreadable:
            set_aside["model file missing or unreadable"] += 1
        else:
            grouped[(run.device, run.network.key)].append(run)
    devices: dict[str, DeviceRows] = {}
    run_ids: list[str] = []
    for (device, key), group in sorted(grouped.items()):
        rows = devices.setdefault(device, DeviceRows(device, group[0].config,
                                                     group[0].config_label))
        rows.rows.append(index[key])
        rows.latency_ms.append(float(numpy.median([r.latency_ms for r in group])))
        rows.runs += len(group)
        run_ids.extend(r.run_id for r in group)
    width = len(next(iter(feature_rows.values()))[0]) if feature_rows else 0
    matrix = (numpy.vstack([feature_rows[k][0] for k in order]) if order
              else numpy.zeros((0, width)))
    references = {networks[k].reference: index[k] for k in order
                  if networks[k].reference is not None}
    return TrainingSet(
        networks=[networks[k] for k in order], features=matrix,
        ops=[feature_rows[k][1] for k in order], kernels=[feature_rows[k][2] for k in order],
        devices=dict(sorted(devices.items())), run_ids=tuple(run_ids), set_aside=set_aside,
        references={str(s): i for s, i in references.items()},
    )


def trainable(training: TrainingSet) -> bool:
    """Whether some device gets a model: one with its own, or two with the references."""
    if any(len(rows.rows) >= DEVICE_MIN_ROWS for rows in training.devices.values()):
        return True
    return len(training.with_references(training.devices)) >= TRANSFER_MIN_DEVICES


def too_few(training: TrainingSet) -> str:
    rows, count = training.rows, len(training.devices)
    return (f"{rows} measurement{'s' if rows != 1 else ''} on {count} "
            f"device{'s' if count != 1 else ''} are too few to train: a device needs "
            f"{DEVICE_MIN_ROWS} measured models, or {TRANSFER_MIN_DEVICES} devices the "
            "reference networks: run bench demo, bench run or bench predictor calibrate "
            "DEVICE first")


# --------------------------------------------------------------------------------------------
# fitting


@dataclass
class Fitted:
    """What training produced: the models (the artifact's payload) and, per device, the
    figures and seen types that go into the artifact's header."""

    device_models: dict[str, LatencyModel]
    transfer: TransferModel | None
    transfer_devices: tuple[str, ...]
    devices: dict[str, dict[str, Any]]
    transfer_ops: list[str]
    transfer_kernels: list[str]
    transfer_range: dict[str, list[float]]
    seconds: float

    def payload(self) -> dict[str, Any]:
        return {"device_models": self.device_models, "transfer": self.transfer,
                "transfer_devices": self.transfer_devices}


SINGLE_THREAD_BELOW = 20_000


@contextmanager
def fitting_threads(rows: int) -> Iterator[None]:
    """One OpenMP / BLAS thread for small fits: scikit-learn's boosting spends most of a
    fit on thread start-up and spin-waits with a few hundred rows, and on a loaded machine
    (tests beside a build) a 13-row fit took 15 s with every core and 0.3 s with one.
    scikit-learn is imported first: a limit reaches only the libraries already loaded."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    import hilbench.predictor.model  # noqa: F401  (limits reach only libraries loaded before)

    if rows >= SINGLE_THREAD_BELOW:
        yield
        return
    with threadpool_limits(limits=1):
        yield


def preferred_source(has_device_model: bool, in_transfer: bool) -> str | None:
    """Which model predicts a device: its own when it has one, else the transfer model."""
    if has_device_model:
        return "device"
    return "transfer" if in_transfer else None


def _fit_models(training: TrainingSet, coverage: float, train_rows: Mapping[str, Sequence[int]]
                ) -> tuple[dict[str, LatencyModel], TransferModel | None, tuple[str, ...]]:
    """Device models and the transfer model on the rows ``train_rows`` (positions into each
    device's rows)."""
    from hilbench.predictor.model import DeviceData, LatencyModel, TransferModel

    matrix = training.features
    device_models: dict[str, LatencyModel] = {}
    datas: dict[str, DeviceData] = {}
    for name, rows in training.devices.items():
        keep = list(train_rows[name])
        data = DeviceData(numpy.asarray([rows.rows[i] for i in keep], dtype=int),
                          numpy.asarray([rows.latency_ms[i] for i in keep], dtype=float),
                          training.profiles.get(name))
        datas[name] = data
        if len(keep) >= DEVICE_MIN_ROWS:
            device_models[name] = LatencyModel(coverage=coverage).fit(matrix[data.rows],
                                                                      data.latency_ms)
    references = training.reference_rows()
    transfer = None
    members: tuple[str, ...] = ()
    if references is not None:
        members = tuple(name for name, data in datas.items()
                        if set(references) <= set(data.rows.tolist()))
    if len(members) >= TRANSFER_MIN_DEVICES and references is not None:
        transfer = TransferModel(references, coverage=coverage)
        transfer.fit(matrix, {name: datas[name] for name in members})
        for name in members:
            transfer.adapt(name, matrix, datas[name])
    else:
        members = ()
    return device_models, transfer, members


def fit(training: TrainingSet, coverage: float) -> Fitted:
    """Fit every model the training set allows; ``PredictorError`` when it allows none."""
    if not 0.0 < coverage < 1.0:
        raise SettingsError(f"--coverage must be between 0 and 1 (exclusive), not {coverage}")
    if not trainable(training):
        raise PredictorError(too_few(training))
    with fitting_threads(training.rows):  # imports scikit-learn: not part of the fitting time
        started = time.perf_counter()
        everything = {name: range(len(rows.rows)) for name, rows in training.devices.items()}
        device_models, transfer, members = _fit_models(training, coverage, everything)
        seconds = time.perf_counter() - started
        figures = {name: _in_sample(training, rows, device_models.get(name),
                                    transfer if name in members else None)
                   for name, rows in training.devices.items()}
    transfer_ops: set[str] = set()
    transfer_kernels: set[str] = set()
    for name in members:
        for row in training.devices[name].rows:
            transfer_ops |= training.ops[row]
            transfer_kernels |= training.kernels[row]
    devices = {}
    for name, rows in training.devices.items():
        ops: set[str] = set().union(*(training.ops[r] for r in rows.rows))
        kernels: set[str] = set().union(*(training.kernels[r] for r in rows.rows))
        source = preferred_source(name in device_models, name in members)
        devices[name] = {
            "rows": len(rows.rows), "runs": rows.runs, "settings": rows.config_label,
            "settings_key": rows.config,
            "device_model": name in device_models,
            "learner": device_models[name].learner if name in device_models else None,
            "transfer": name in members, "source": source,
            "references": sum(1 for r in training.references.values() if r in rows.rows),
            "latency_ms": [min(rows.latency_ms), max(rows.latency_ms)],
            **{f"{kind}_{key}": value for kind, numbers in figures[name].items()
               for key, value in numbers.items()},
            "device_ops": sorted(ops), "device_kernels": sorted(kernels),
            "trained_range": trained_range(training.features[rows.rows]),
        }
    member_rows = [row for name in members for row in training.devices[name].rows]
    return Fitted(device_models, transfer, members, devices, sorted(transfer_ops),
                  sorted(transfer_kernels), trained_range(training.features[member_rows]),
                  seconds)


RANGE_FEATURES = ("log_flops", "log_kernel_bytes")


def trained_range(matrix: Array) -> dict[str, list[float]]:
    """The span of the networks a model was fitted on, per ``RANGE_FEATURES`` (log
    scale): a model outside it is an extrapolation."""
    if not len(matrix):
        return {}
    columns = [MODEL_FEATURE_NAMES.index(name) for name in RANGE_FEATURES]
    return {name: [float(matrix[:, c].min()), float(matrix[:, c].max())]
            for name, c in zip(RANGE_FEATURES, columns, strict=True)}


def _in_sample(training: TrainingSet, rows: DeviceRows, device_model: LatencyModel | None,
               transfer: TransferModel | None) -> dict[str, dict[str, float]]:
    """Median absolute % error and median interval factor (upper / median) on the
    device's own training rows, per model."""
    found: dict[str, dict[str, float]] = {}
    matrix = training.features[rows.rows]
    actual = numpy.asarray(rows.latency_ms)
    for kind, predict in (("device", device_model.predict if device_model else None),
                          ("transfer", (lambda x: transfer.predict(rows.name, x))
                           if transfer else None)):
        if predict is None:
            continue
        predicted = predict(matrix)
        found[kind] = {
            "fit_error_pct": round(float(numpy.median(
                numpy.abs(predicted.median_ms / actual - 1.0))) * 100, 2),
            "interval_factor": round(float(numpy.median(
                predicted.upper_ms / predicted.median_ms)), 3),
        }
    return found


# --------------------------------------------------------------------------------------------
# evaluation


@dataclass(frozen=True)
class Score:
    """Held-out figures of one model on one device."""

    device: str
    source: str
    measured: int
    predicted: int
    within_10pct: float | None
    median_abs_pct_error: float | None
    spearman: float | None
    interval_coverage: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _folds(training: TrainingSet, folds: int, seed: int) -> list[set[int]]:
    """Held-out network indices per fold: networks grouped by model sha256 (one model at
    two batch sizes is held out whole); the references always stay in training."""
    references = set(training.references.values())
    groups: dict[str, list[int]] = defaultdict(list)
    for i, network in enumerate(training.networks):
        if i not in references:
            groups[network.sha256].append(i)
    names = sorted(groups)
    if len(names) < 2:
        raise PredictorError(f"{len(names)} model{'s' if len(names) != 1 else ''} besides the "
                             "reference networks are too few to cross-validate: measure more "
                             "models (bench run)")
    if folds < 2:
        raise SettingsError(f"--folds must be >= 2, not {folds}")
    order = numpy.random.default_rng(seed).permutation(len(names))
    count = min(folds, len(names))
    return [{i for pos in order[k::count] for i in groups[names[pos]]} for k in range(count)]


def evaluate(training: TrainingSet, coverage: float, folds: int = 5, seed: int = 0
             ) -> list[Score]:
    """k-fold over models: per device and model kind, the share of held-out predictions
    within 10 % of the measurement, the median absolute % error, Spearman's rho and the
    fraction of measurements inside the interval."""
    collected: dict[tuple[str, str], list[tuple[float, float, float, float]]] = defaultdict(list)
    for held in _folds(training, folds, seed):
        with fitting_threads(training.rows):
            _score_fold(training, coverage, held, collected)
    return _scores(training, collected)


def _score_fold(training: TrainingSet, coverage: float, held: set[int],
                collected: dict[tuple[str, str], list[tuple[float, float, float, float]]]
                ) -> None:
    train_rows = {name: [i for i, r in enumerate(rows.rows) if r not in held]
                  for name, rows in training.devices.items()}
    device_models, transfer, members = _fit_models(training, coverage, train_rows)
    for name, rows in training.devices.items():
        test = [i for i, r in enumerate(rows.rows) if r in held]
        if not test:
            continue
        matrix = training.features[[rows.rows[i] for i in test]]
        actual = [rows.latency_ms[i] for i in test]
        kinds: list[tuple[str, Any]] = []
        if name in device_models:
            kinds.append(("device", device_models[name].predict(matrix)))
        if transfer is not None and name in members:
            kinds.append(("transfer", transfer.predict(name, matrix)))
        for kind, predicted in kinds:
            for j, value in enumerate(actual):
                collected[(name, kind)].append(
                    (value, float(predicted.median_ms[j]), float(predicted.lower_ms[j]),
                     float(predicted.upper_ms[j])))


def _scores(training: TrainingSet,
            collected: dict[tuple[str, str], list[tuple[float, float, float, float]]]
            ) -> list[Score]:
    from scipy.stats import spearmanr

    scores = []
    for name, rows in training.devices.items():
        measured = sum(1 for r in rows.rows if r not in training.references.values())
        for kind in ("device", "transfer"):
            points = collected.get((name, kind), [])
            if not points:
                continue
            actual, median, lower, upper = (numpy.asarray(v) for v in zip(*points, strict=True))
            error = numpy.abs(median / actual - 1.0)
            rho = None
            if len(points) >= 3 and numpy.ptp(actual) > 0 and numpy.ptp(median) > 0:
                value = float(spearmanr(actual, median).statistic)
                rho = None if math.isnan(value) else round(value, 3)
            scores.append(Score(
                device=name, source=kind, measured=measured, predicted=len(points),
                within_10pct=round(float(numpy.mean(error <= 0.10)), 3),
                median_abs_pct_error=round(float(numpy.median(error)) * 100, 2),
                spearman=rho,
                interval_coverage=round(float(numpy.mean((actual >= lower)
                                                         & (actual <= upper))), 3),
            ))
    return scores
