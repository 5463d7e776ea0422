"""Replay devices: the public latency tables (NAS-Bench-201, FBNet, HAT) stored as the
measurements of the devices that recorded them, so that the predictor trains on them and the
selector can "measure" on them like on any device.

One *replay device* per device of a table, kind ``replay``:

* ``replay-<name>`` for the devices of the NAS-Bench-201 and FBNet tables (both come from
  HELP, and the same device appears in both: ``replay-pixel3`` replays either space);
  ``replay-1080ti_32`` is a GTX 1080 Ti at batch 32;
* ``replay-hat-<name>`` for HAT's three devices (``replay-hat-cpu_xeon``): a different
  runtime and other networks than HELP's devices.

Its transport is ``{"type": "replay", "column": <the table's device name>, "tables": {space:
file}, "data": <the folder imported from>}`` (the files it replays, one per space imported for
it) and its info says who measured (HELP, HW-NAS-Bench through HELP, HAT) and whether the
figures are measured or simulated (eyeriss and fpga are simulated: their latency is an
*emulated figure*).

Each network is a model of format ``space`` (path: its source text, ``nb201:<cell>``; sha256:
that of the source text) and each (network, device) one OK run whose measurement carries
only the figure the table published, as the summary of a device's own benchmark tool does:
mean and p50 are the table's latency. NB201 and FBNet publish one figure per network and no
spread: it is stored as one observation (count 1, every percentile that figure, std 0, which
is what one raw sample gives). HAT publishes the standard deviations of the encoder and the
decoder: the std is that of their sum (taken as independent), the percentiles it did not
publish are unknown, and a configuration whose spread is above the default 10 % is INVALID
(unstable) as a measurement of ours would be. Run ids come from (device, source): importing
again adds nothing.

``replay_measure`` is what measuring on a replay device means: the recorded figure.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import pandas
from sqlalchemy import Connection, insert, select, update

from hilbench.core.dvfs import DvfsState
from hilbench.core.errors import (
    DatasetError,
    DeviceError,
    ModelError,
    SettingsError,
    StoreError,
    UnknownDeviceError,
)
from hilbench.core.measurement import Environment, Measurement
from hilbench.core.records import REPLAY_KIND, RUN_OK, DeviceRecord, ModelRecord, RunRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.core.stats import LatencySummary
from hilbench.core.throttle import frequency_stats_mhz, temperature_span_c
from hilbench.predictor.spaces import public
from hilbench.predictor.spaces.registry import (
    SPACE_FORMAT,
    SPACES,
    hat_arch,
    parse_source,
    source_sha256,
    space_source,
)
from hilbench.profiles.family import models_frame
from hilbench.profiles.schema import devices, measurements, models, runs
from hilbench.profiles.store import Store

REPLAY_RUNTIME = "replay"
REPLAY_VERSION = "1"
PREFIX = "replay-"
HAT_PREFIX = "replay-hat-"
HELP_SPACES = ("nb201", "fbnet")
TABLE_FILES = {"nb201": public.NB201_FILE, "fbnet": public.FBNET_FILE}
CHUNK = 5000
RUN_NAMESPACE = uuid.UUID("5d0c6f0e-2b7e-4c1a-9a51-6c1f3a4e0b27")
NOT_REPORTED = ("init_ms", "first_inference_ms", "peak_memory_mb", "energy_per_inference_mj",
                "avg_power_w")
NO_PERCENTILES = ("p90_ms", "p99_ms", "min_ms", "max_ms")
HAT_STD = ("latency_std_encoder", "latency_std_decoder")

HELP_SOURCE = "HELP (HayeonLee/HELP)"
HW_NAS_BENCH = "HW-NAS-Bench (RICE-EIC/HW-NAS-Bench), as merged by HELP"
HAT_SOURCE = "HAT (mit-han-lab/hardware-aware-transformers, latency_dataset)"


@dataclass(frozen=True)
class Hardware:
    """What a table's device is. ``measured``: False for simulated figures, None when the
    data README does not say (a device this catalog does not know)."""

    label: str
    device_class: str
    origin: str
    measured: bool | None


HARDWARE: dict[str, Hardware] = {
    "1080ti": Hardware("NVIDIA GeForce GTX 1080 Ti", "gpu", HELP_SOURCE, True),
    "2080ti": Hardware("NVIDIA GeForce RTX 2080 Ti", "gpu", HELP_SOURCE, True),
    "titan_rtx": Hardware("NVIDIA Titan RTX", "gpu", HELP_SOURCE, True),
    "titanx": Hardware("NVIDIA Titan X", "gpu", HELP_SOURCE, True),
    "gold_6226": Hardware("Intel Xeon Gold 6226", "cpu", HELP_SOURCE, True),
    "gold_6240": Hardware("Intel Xeon Gold 6240", "cpu", HELP_SOURCE, True),
    "silver_4114": Hardware("Intel Xeon Silver 4114", "cpu", HELP_SOURCE, True),
    "samsung_a50": Hardware("Samsung Galaxy A50 (latency in whole ms)", "phone", HELP_SOURCE,
                            True),
    "pixel3": Hardware("Google Pixel 3 (TFLite)", "phone", HW_NAS_BENCH, True),
    "raspi4": Hardware("Raspberry Pi 4 (TFLite)", "board", HW_NAS_BENCH, True),
    "eyeriss": Hardware("Eyeriss ASIC (simulated)", "asic", HW_NAS_BENCH, False),
    "fpga": Hardware("FPGA (simulated)", "fpga", HW_NAS_BENCH, False),
}
HAT_HARDWARE: dict[str, Hardware] = {
    "cpu_raspberrypi": Hardware("Raspberry Pi ARM Cortex-A72 CPU", "board", HAT_SOURCE, True),
    "cpu_xeon": Hardware("Intel Xeon CPU", "cpu", HAT_SOURCE, True),
    "gpu_titanxp": Hardware("NVIDIA Titan Xp GPU", "gpu", HAT_SOURCE, True),
}
BATCH_SUFFIX = re.compile(r"^(?P<base>.+)_(?P<batch>[0-9]+)$")


@dataclass(frozen=True)
class PublicDevice:
    """A device of a public table: ``column`` is its name there (``pixel3``, ``1080ti_32``,
    ``cpu_xeon``), ``batch`` the batch size it ran."""

    space: str
    column: str
    hardware: Hardware
    batch: int

    @property
    def name(self) -> str:
        return replay_name(self.space, self.column)


def replay_name(space: str, column: str) -> str:
    """``replay-<column>`` for NB201/FBNet devices, ``replay-hat-<column>`` for HAT's."""
    return f"{HAT_PREFIX if space == 'hat' else PREFIX}{column}"


def public_device(space: str, column: str) -> PublicDevice:
    """The catalog entry of a table's device; ``<gpu>_<batch>`` gives the batch size."""
    catalog = HAT_HARDWARE if space == "hat" else HARDWARE
    found = catalog.get(column)
    if found is not None:
        return PublicDevice(space, column, found, 1)
    match = BATCH_SUFFIX.match(column)
    if match and match["base"] in catalog and catalog[match["base"]].device_class == "gpu":
        base = catalog[match["base"]]
        batch = int(match["batch"])
        return PublicDevice(space, column, Hardware(f"{base.label}, batch {batch}", "gpu",
                                                    base.origin, base.measured), batch)
    origin = HAT_SOURCE if space == "hat" else HELP_SOURCE
    return PublicDevice(space, column, Hardware(column, "unknown", origin, None), 1)


def replay_run_id(device: str, source: str) -> str:
    """The run id of a network's recorded latency on a replay device (deterministic)."""
    return uuid.uuid5(RUN_NAMESPACE, f"{device}\n{source}").hex


# ---- the tables ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceTable:
    """One device's networks and latencies from one table file, validated."""

    device: PublicDevice
    file: str
    digest: str
    indices: tuple[int, ...]
    sources: tuple[str, ...]
    latency_ms: tuple[float, ...]
    std_ms: tuple[float, ...] | None = None

    def __len__(self) -> int:
        return len(self.sources)

    def select(self, positions: Sequence[int]) -> DeviceTable:
        std = self.std_ms
        return DeviceTable(
            self.device, self.file, self.digest, tuple(self.indices[p] for p in positions),
            tuple(self.sources[p] for p in positions),
            tuple(self.latency_ms[p] for p in positions),
            None if std is None else tuple(std[p] for p in positions))


@dataclass(frozen=True)
class PublicImport:
    """What ``import_public`` writes: checked tables, nothing stored yet."""

    space: str
    data: Path
    tables: tuple[DeviceTable, ...]

    @property
    def networks(self) -> int:
        return max((len(t) for t in self.tables), default=0)

    @property
    def runs(self) -> int:
        return sum(len(t) for t in self.tables)


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _table_path(root: Path, file: str) -> Path:
    if not root.is_dir():
        raise DatasetError(f"public latency data folder {root} not found; give --data or set "
                           f"{public.ENV_VAR}")
    path = root / file
    if not path.is_file():
        raise DatasetError(f"public latency table {path} not found")
    return path


def _sources(space: str, file: str, archs: Sequence[Any]) -> tuple[str, ...]:
    """Every network's source text, checked; a network twice is a malformed table."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for row, arch in enumerate(archs):
        try:
            source = space_source(space, str(arch))
        except ModelError as exc:
            raise DatasetError(f"{file} network {row}: {exc}") from exc
        if source in seen:
            raise DatasetError(f"{file}: network {row} is network {seen[source]} again "
                               f"({source[:60]})")
        seen[source] = row
        out.append(source)
    return tuple(out)


def _latencies(file: str, column: str, values: Any, spread: bool = False
               ) -> tuple[float, ...]:
    """Finite positive milliseconds (a ``spread`` may be 0), else the first bad one named."""
    numbers = pandas.to_numeric(pandas.Series(values), errors="coerce").to_numpy(dtype=float)
    bad = ~(numpy.isfinite(numbers) & ((numbers >= 0) if spread else (numbers > 0)))
    if bad.any():
        row = int(numpy.flatnonzero(bad)[0])
        value = list(values)[row]
        shown = "missing" if pandas.isna(value) else repr(str(value))
        raise DatasetError(f"{file}: {column} of network {row} is {shown}, not a latency in ms")
    return tuple(float(v) for v in numbers)


@functools.lru_cache(maxsize=4)
def _help_table(space: str, root: str, stamp: tuple[int, int]
                ) -> tuple[str, tuple[str, ...], pandas.DataFrame, tuple[int, ...]]:
    """NB201 or FBNet, read once per file version: digest, sources, one latency column per
    device (not checked yet), NB201 indices."""
    file = TABLE_FILES[space]
    loader = public.load_nb201 if space == "nb201" else public.load_fbnet
    long = loader(root)
    wide = long.pivot(index="arch_index", columns="device", values="latency_ms")
    archs = long.drop_duplicates("arch_index").sort_values("arch_index")
    sources = _sources(space, file, list(archs["arch"]))
    indices = tuple(int(i) for i in archs["arch_index"])
    return _digest(Path(root) / file), sources, wide, indices


def _help_tables(space: str, root: Path, columns: Sequence[str] | None) -> list[DeviceTable]:
    file = TABLE_FILES[space]
    path = _table_path(root, file)
    digest, sources, wide, indices = _help_table(space, str(root), _stamp(path))
    known = sorted(str(c) for c in wide.columns)
    chosen = _chosen(space, known, columns)
    return [DeviceTable(public_device(space, c), file, digest, indices, sources,
                        _latencies(file, f"{c}{public.DEVICE_SUFFIX}", wide[c].to_numpy()))
            for c in chosen]


@functools.lru_cache(maxsize=4)
def _hat_table(column: str, root: str, stamp: tuple[int, int]) -> DeviceTable:
    file = f"wmt14ende_{column}_all.csv"
    table = public.load_hat(column, root)
    sources = _sources("hat", file, [
        hat_arch(tuple(float(v) for v in row))
        for row in table[list(public.HAT_FEATURES)].itertuples(index=False, name=None)])
    latency = _latencies(file, "latency_mean_encoder + latency_mean_decoder",
                         table["latency_ms"].to_numpy())
    raw = pandas.read_csv(Path(root) / file)
    std = None
    if all(c in raw.columns for c in HAT_STD):
        parts = [_latencies(file, c, raw[c].to_numpy(), spread=True) for c in HAT_STD]
        std = tuple(math.hypot(e, d) for e, d in zip(*parts, strict=True))
    return DeviceTable(public_device("hat", column), file, _digest(Path(root) / file),
                       tuple(int(i) for i in table["config_id"]), sources, latency, std)


def _hat_tables(root: Path, columns: Sequence[str] | None) -> list[DeviceTable]:
    chosen = _chosen("hat", list(public.HAT_DEVICES), columns)
    tables = []
    for column in chosen:
        path = _table_path(root, f"wmt14ende_{column}_all.csv")
        tables.append(_hat_table(column, str(root), _stamp(path)))
    return tables


def _chosen(space: str, known: Sequence[str], wanted: Sequence[str] | None) -> list[str]:
    """The table's device names asked for (``replay-`` names accepted); unknown ones are
    refused with the list of valid ones."""
    if wanted is None:
        return list(known)
    prefix = HAT_PREFIX if space == "hat" else PREFIX
    names = [w.strip().removeprefix(prefix) for w in wanted if w.strip()]
    missing = [n for n in names if n not in known]
    if missing:
        raise UnknownDeviceError(f"unknown {space} device {', '.join(missing)}; the table has: "
                                 f"{', '.join(known)}")
    if not names:
        raise SettingsError(f"no {space} device named; the table has: {', '.join(known)}")
    return list(dict.fromkeys(names))


def parse_devices(spec: str | None) -> list[str] | None:
    """``--devices``: ``all`` (or nothing) for every device of the table, else names."""
    if spec is None or spec.strip() == "all":
        return None
    return [n.strip() for n in spec.split(",") if n.strip()]


def plan_public_import(space: str, devices_wanted: Sequence[str] | None = None,
                       limit: int | None = None, seed: int = 0,
                       data: str | Path | None = None) -> PublicImport:
    """Read and check what to import: every table, device name, network and latency, before
    anything is written. ``limit``: that many networks, drawn with ``seed``, the same ones
    on every device (for HAT, whose tables hold different networks per device, the same
    positions in each table)."""
    if space not in SPACES:
        raise SettingsError(f"unknown public table {space!r}; choose one of {', '.join(SPACES)}")
    if limit is not None and limit < 1:
        raise SettingsError(f"--limit must be >= 1, got {limit}")
    root = public.data_root(data)
    tables = _hat_tables(root, devices_wanted) if space == "hat" else \
        _help_tables(space, root, devices_wanted)
    if limit is not None:
        tables = [t.select(_draw(len(t), limit, seed)) if limit < len(t) else t
                  for t in tables]
    return PublicImport(space, root, tuple(tables))


def _draw(size: int, limit: int, seed: int) -> list[int]:
    """``limit`` positions out of ``size``, in table order: the same for the same seed."""
    drawn = numpy.random.default_rng(seed).choice(size, limit, replace=False)
    return sorted(int(p) for p in drawn)


# ---- records ------------------------------------------------------------------------------


def replay_record(device: PublicDevice, tables: dict[str, str], data: Path) -> DeviceRecord:
    """The replay device's registration."""
    hardware = device.hardware
    return DeviceRecord(
        name=device.name, kind=REPLAY_KIND,
        transport={"type": "replay", "column": device.column, "tables": dict(sorted(
            tables.items())), "data": str(data)},
        info={"class": hardware.device_class, "description": hardware.label,
              "data_source": hardware.origin, "measured": hardware.measured,
              "simulated": hardware.measured is False, "batch": device.batch,
              "spaces": sorted(tables),
              "runtimes": {REPLAY_RUNTIME: {"tables": dict(sorted(tables.items()))}}},
    )


def space_model(space: str, index: int, source: str, column: str | None = None) -> ModelRecord:
    """A network as a stored model: ``nb201#<index>``, ``fbnet#<index>``,
    ``hat-<device>#<config_id>`` (HAT's tables hold different networks per device)."""
    name = f"hat-{column}#{index}" if space == "hat" else f"{space}#{index}"
    return ModelRecord(sha256=source_sha256(source), name=name, format=SPACE_FORMAT,
                       path=source, size_bytes=0)


def replay_settings(batch: int) -> BenchmarkSettings:
    """One published figure per network: one timed run, no minimum duration."""
    return BenchmarkSettings(warmup_runs=0, warmup_duration_s=0.0, min_runs=1,
                             min_duration_s=0.0, max_runs=1, batch_size=batch)


def replay_measurement(record: DeviceRecord, source: str, latency_ms: float,
                       std_ms: float | None, file: str, digest: str, at: float,
                       settings: BenchmarkSettings | None = None) -> Measurement:
    """The measurement a table recorded for ``source`` on the replay device ``record``."""
    info, transport = record.info, record.transport
    batch = int(info.get("batch") or 1)
    if std_ms is None:  # one published figure: as one raw sample would summarise
        summary = LatencySummary(1, latency_ms, latency_ms, latency_ms, latency_ms, 0.0,
                                 latency_ms, latency_ms)
        unavailable: tuple[str, ...] = NOT_REPORTED
    else:
        summary = LatencySummary(1, latency_ms, latency_ms, None, None, std_ms, None, None)
        unavailable = (*NO_PERCENTILES, *NOT_REPORTED)
    column = str(transport.get("column") or record.name)
    kind = "simulated" if info.get("measured") is False else "measured"
    note = (f"replayed from {file} ({column}, {kind} by {info.get('data_source')}): a "
            "published figure, not measured by hilbench")
    environment = Environment(
        device=record.name, device_kind=REPLAY_KIND, runtime=REPLAY_RUNTIME,
        runtime_version=f"{file}@sha256:{digest[:12]}", execution_provider="table",
        model_sha256=source_sha256(source), threads=None, input_shapes=(), dvfs=DvfsState(),
        agent_version=f"replay-{REPLAY_VERSION}", python_version="none",
        platform=str(info.get("description") or column), hostname=column)
    return Measurement(
        environment=environment, settings=settings or replay_settings(batch), samples_ns=(),
        timed_duration_s=latency_ms / 1000.0, init_ms=None, first_inference_ms=None,
        peak_memory_mb=None, started_at=at, finished_at=at,
        emulated_figures=("latency",) if info.get("measured") is False else (),
        unavailable_figures=unavailable, reported=summary, notes=(note,))


def replay_runs(record: DeviceRecord, table: DeviceTable, space: str, at: float,
                positions: Sequence[int] | None = None) -> Iterator[RunRecord]:
    """One OK run per network of ``table`` (or of those at ``positions``) on the replay
    device ``record``."""
    settings = replay_settings(table.device.batch)
    std = table.std_ms
    for position in range(len(table)) if positions is None else positions:
        source = table.sources[position]
        model = space_model(space, table.indices[position], source, table.device.column)
        measurement = replay_measurement(
            record, source, table.latency_ms[position], None if std is None else std[position],
            table.file, table.digest, at, settings)
        yield RunRecord(run_id=replay_run_id(record.name, source), device=record.name,
                        model=model, settings=settings, status=RUN_OK, started_at=at,
                        finished_at=at, measurement=measurement)


# ---- writing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    space: str
    devices: tuple[str, ...]
    devices_added: int
    networks: int
    models_added: int
    runs_added: int
    runs_present: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        total = self.runs_added + self.runs_present
        return total / self.seconds if self.seconds > 0 else float("inf")


def import_public(store: Store, plan: PublicImport) -> ImportResult:
    """Register the replay devices and store every model and run of ``plan`` in one
    transaction, in batches (``Store.save_runs`` stores about 400 runs/s: the full NB201
    table would take 13 minutes); runs already stored are skipped."""
    started = time.perf_counter()
    at = time.time()
    added = {"devices": 0, "models": 0, "runs": 0, "present": 0}
    with store.transaction() as connection:
        records = {t.device.name: _register(connection, t.device, plan, added)
                   for t in plan.tables}
        model_ids = _models(connection, plan, added)
        for table in plan.tables:
            record = records[table.device.name]
            device_pk = _device_pk(connection, record.name)
            for chunk in _chunks(range(len(table))):
                new = _new_positions(connection, record.name, table, chunk)
                added["present"] += len(chunk) - len(new)
                batch = list(replay_runs(record, table, plan.space, at, new))
                _write_runs(connection, batch, device_pk, model_ids)
                added["runs"] += len(batch)
    return ImportResult(plan.space, tuple(t.device.name for t in plan.tables), added["devices"],
                        plan.networks, added["models"], added["runs"], added["present"],
                        time.perf_counter() - started)


def _register(connection: Connection, device: PublicDevice, plan: PublicImport,
              added: dict[str, int]) -> DeviceRecord:
    """The replay device, registered now or already; a space imported for it the first time
    is added to what it replays. A device of that name that is not a replay device is
    refused (the transaction is rolled back: nothing is written)."""
    file = next(t.file for t in plan.tables if t.device == device)
    row = connection.execute(select(devices).where(devices.c.name == device.name)).first()
    if row is None:
        record = replay_record(device, {plan.space: file}, plan.data)
        connection.execute(insert(devices).values(
            name=record.name, kind=record.kind, preset=None, transport=record.transport,
            info=record.info, added_at=time.time()))
        added["devices"] += 1
        return record
    if row.kind != REPLAY_KIND:
        raise DeviceError(f"device {device.name} is registered as a {row.kind} device, not a "
                          "replay device: remove it or rename it first")
    tables = {str(k): str(v) for k, v in dict(row.transport or {}).get("tables", {}).items()}
    record = replay_record(device, {**tables, plan.space: file}, plan.data)
    if dict(row.transport or {}) != record.transport or dict(row.info or {}) != record.info:
        connection.execute(update(devices).where(devices.c.name == device.name).values(
            transport=record.transport, info=record.info))
    return record


def _device_pk(connection: Connection, name: str) -> int:
    return int(connection.execute(select(devices.c.id).where(devices.c.name == name))
               .scalar_one())


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _models(connection: Connection, plan: PublicImport, added: dict[str, int]
            ) -> dict[str, int]:
    """sha256 -> models.id of every network of ``plan``, adding the new ones."""
    wanted: dict[str, ModelRecord] = {}
    for table in plan.tables:
        for index, source in zip(table.indices, table.sources, strict=True):
            model = space_model(plan.space, index, source, table.device.column)
            wanted.setdefault(model.sha256, model)
    ids: dict[str, int] = {}
    shas = list(wanted)
    for chunk in _chunks(shas):
        query = select(models.c.sha256, models.c.id).where(models.c.sha256.in_(chunk))
        ids.update({str(s): int(i) for s, i in connection.execute(query)})
    new = [wanted[s] for s in shas if s not in ids]
    now = time.time()
    for chunk in _chunks(new):
        connection.execute(insert(models), [
            {"sha256": m.sha256, "name": m.name, "format": m.format, "path": m.path,
             "size_bytes": m.size_bytes, "parent_sha256": m.parent_sha256,
             "compression": m.compression, "added_at": now} for m in chunk])
        query = select(models.c.sha256, models.c.id).where(
            models.c.sha256.in_([m.sha256 for m in chunk]))
        ids.update({str(s): int(i) for s, i in connection.execute(query)})
    added["models"] += len(new)
    return ids


def _new_positions(connection: Connection, device: str, table: DeviceTable,
                   positions: Sequence[int]) -> list[int]:
    """The positions of ``table`` whose run is not stored yet (nothing is built for the
    others: importing again is quick)."""
    ids = {replay_run_id(device, table.sources[p]): p for p in positions}
    query = select(runs.c.run_id).where(runs.c.run_id.in_(list(ids)))
    present = set(connection.execute(query).scalars())
    return [p for run_id, p in ids.items() if run_id not in present]


def _write_runs(connection: Connection, batch: Sequence[RunRecord], device_pk: int,
                model_ids: dict[str, int]) -> None:
    """New runs and their measurements, as ``Store.save_runs`` would store them (the rows
    are compared in the tests), in three statements."""
    if not batch:
        return
    connection.execute(insert(runs), [_run_row(r, device_pk, model_ids[r.model.sha256])
                                      for r in batch])
    query = select(runs.c.run_id, runs.c.id).where(runs.c.run_id.in_([r.run_id for r in batch]))
    pks = {str(r): int(i) for r, i in connection.execute(query)}
    connection.execute(insert(measurements), [_measurement_row(pks[r.run_id], r) for r in batch])


def _run_row(run: RunRecord, device_pk: int, model_pk: int) -> dict[str, Any]:
    measurement = run.measurement
    if measurement is None:
        raise StoreError(f"replayed run {run.run_id} has no measurement")
    environment = measurement.environment
    return {
        "run_id": run.run_id, "campaign_id": run.campaign_id, "device_id": device_pk,
        "device_name": run.device, "model_id": model_pk, "status": run.status,
        "error": run.error, "settings": run.settings.to_dict(), "started_at": run.started_at,
        "finished_at": run.finished_at, "environment": environment.to_dict(),
        "env_key": environment.compatibility_key(), "runtime": environment.runtime,
        "runtime_version": environment.runtime_version,
        "execution_provider": environment.execution_provider, "threads": environment.threads,
        "dvfs": environment.dvfs.to_dict(),
    }


def _measurement_row(run_pk: int, run: RunRecord) -> dict[str, Any]:
    measurement = run.measurement
    if measurement is None:
        raise StoreError(f"replayed run {run.run_id} has no measurement")
    summary, verdict = measurement.summary, measurement.verdict
    start_c, end_c = temperature_span_c(measurement.telemetry)
    return {
        "run_id": run_pk, "count": summary.count, "mean_ms": summary.mean_ms,
        "p50_ms": summary.p50_ms, "p90_ms": summary.p90_ms, "p99_ms": summary.p99_ms,
        "std_ms": summary.std_ms, "min_ms": summary.min_ms, "max_ms": summary.max_ms,
        "cv": summary.cv, "timed_duration_s": measurement.timed_duration_s,
        "init_ms": measurement.init_ms, "first_inference_ms": measurement.first_inference_ms,
        "peak_memory_mb": measurement.peak_memory_mb, "verdict": verdict.label,
        "reasons": list(verdict.reasons), "emulated_figures": list(measurement.emulated_figures),
        "unavailable_figures": list(measurement.unavailable_figures),
        "started_at": measurement.started_at, "finished_at": measurement.finished_at,
        "telemetry": None, "energy": None, "energy_per_inference_mj": None,
        "active_energy_per_inference_mj": None, "avg_power_w": None, "idle_power_w": None,
        "temp_start_c": start_c, "temp_end_c": end_c,
        "frequencies_mhz": frequency_stats_mhz(measurement.telemetry),
        "notes": list(measurement.notes),
    }


# ---- measuring on a replay device ---------------------------------------------------------


def normalized_source(store: Store, model: str) -> str:
    """The source text of ``model``: a space source (``nb201:...``; HAT features written as
    the importer writes them), or the name or sha256 prefix of a stored space model."""
    space, sep, arch = model.partition(":")
    if sep and space in SPACES:
        if space == "hat":
            try:
                features = tuple(float(v) for v in arch.split(","))
            except ValueError as exc:
                raise ModelError(f"HAT configuration {arch[:60]!r}: features must be "
                                 "numbers") from exc
            return space_source("hat", hat_arch(features))
        parse_source(model)
        return model
    frame = models_frame(store)
    found = frame[(frame["name"] == model) | frame["sha256"].str.startswith(model)]
    if found.empty:
        raise ModelError(f"model {model[:60]!r} is neither a space source (nb201:, fbnet:, hat:) "
                         "nor a stored model")
    row = found.iloc[0]
    if row["format"] != SPACE_FORMAT:
        raise ModelError(f"model {row['name']} is a .{row['format']} file: a replay device "
                         "only measures the space networks its tables recorded")
    return str(row["path"])


def replay_measure(store: Store, device: str, source: str,
                   data: str | Path | None = None) -> Measurement:
    """What measuring ``source`` (a space source or a stored space model) on the replay
    device ``device`` gives: the latency its table recorded. The stored run when it was
    imported, else looked up in the table file (``data``, else the default data folder,
    else the folder the device was imported from); a network the table does not hold is a
    ModelError."""
    record = store.get_device(device)
    if record.kind != REPLAY_KIND:
        raise DeviceError(f"device {device} is a {record.kind} device, not a replay device")
    source = normalized_source(store, source)
    space, _ = parse_source(source)
    tables = dict(record.transport.get("tables") or {})
    if space not in tables:
        raise DeviceError(f"{device} replays {', '.join(sorted(tables)) or 'nothing'}, not "
                          f"{space} networks")
    run_id = replay_run_id(device, source)
    stored = store.runs(device=device, model=source_sha256(source))
    if run_id in set(stored["run_id"]):
        return store.measurement(run_id)
    table = _full_table(record, space, data)
    try:
        position = table.sources.index(source)
    except ValueError:
        raise ModelError(f"{source[:60]} is not among the {len(table)} networks of "
                         f"{table.file}: {device} only replays what it recorded") from None
    std = table.std_ms
    return replay_measurement(record, source, table.latency_ms[position],
                              None if std is None else std[position], table.file,
                              table.digest, time.time())


def _full_table(record: DeviceRecord, space: str, data: str | Path | None) -> DeviceTable:
    column = str(record.transport.get("column") or "")
    file = str(record.transport["tables"][space])
    if data is not None:
        roots = [public.data_root(data)]
    else:
        roots = [public.data_root(None)]
        hint = record.transport.get("data")
        if hint:
            roots.append(Path(str(hint)))
    root = next((r for r in roots if (r / file).is_file()), roots[0])
    if space == "hat":
        return _hat_tables(root, [column])[0]
    return _help_tables(space, root, [column])[0]
