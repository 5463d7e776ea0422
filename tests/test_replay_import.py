"""`bench profiles import --public`: the public latency tables as runs of replay devices, and
measuring on a replay device."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas
import pytest
from sqlalchemy import create_engine, select

from hilbench.core.errors import DatasetError, DeviceError, ModelError, UnknownDeviceError
from hilbench.core.records import DeviceRecord
from hilbench.predictor.replay import (
    import_public,
    plan_public_import,
    replay_measure,
    replay_record,
    replay_run_id,
    replay_runs,
)
from hilbench.predictor.spaces import public
from hilbench.predictor.spaces.registry import (
    SPACE_FORMAT,
    hat_arch,
    hat_config,
    parse_source,
    source_sha256,
    space_source,
)
from hilbench.profiles.family import models_frame
from hilbench.profiles.schema import measurements, models, runs
from hilbench.profiles.store import Store
from hilbench.profiles.transfer import export_runs, import_runs
from tests.cli import bench, bench_json, one_line_error

DATA = public.data_root()
pytestmark = pytest.mark.skipif(not (DATA / public.NB201_FILE).is_file(),
                                reason=f"public latency data not found at {DATA}")


@pytest.fixture(scope="module")
def nb201() -> pandas.DataFrame:
    """The NB201 table as the file has it (read apart from the importer)."""
    return pandas.read_csv(DATA / public.NB201_FILE)


def _hat(device: str) -> pandas.DataFrame:
    return pandas.read_csv(DATA / f"wmt14ende_{device}_all.csv")


def _index(model_name: str) -> int:
    return int(model_name.rsplit("#", 1)[1])


def test_cli_import_nb201_stores_replay_devices_models_and_runs(
        tmp_path: Path, nb201: pandas.DataFrame) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    args = ("profiles", "import", "--public", "nb201", "--limit", "50",
            "--devices", "pixel3,eyeriss", "--seed", "7")
    first = bench(*args, store=store)
    assert first.returncode == 0, first.stderr
    assert "Imported 100 runs of nb201" in first.stdout and "rows/s" in first.stdout

    with Store.open(store) as opened:
        devices = {d.name: d for d in opened.list_devices()}
        assert sorted(devices) == ["replay-eyeriss", "replay-pixel3"]
        pixel3, eyeriss = devices["replay-pixel3"], devices["replay-eyeriss"]
        assert {pixel3.kind, eyeriss.kind} == {"replay"}
        assert pixel3.transport["type"] == "replay"
        assert pixel3.transport["tables"] == {"nb201": public.NB201_FILE}
        assert pixel3.info["measured"] is True and "HW-NAS-Bench" in pixel3.info["data_source"]
        assert eyeriss.info["simulated"] is True and eyeriss.info["class"] == "asic"

        stored_models = models_frame(opened)
        assert len(stored_models) == 50
        assert set(stored_models["format"]) == {SPACE_FORMAT}
        assert set(stored_models["size_bytes"]) == {0}
        for row in stored_models.to_dict(orient="records"):
            assert row["sha256"] == source_sha256(row["path"])
            assert row["path"] == space_source("nb201", nb201["arch"][_index(row["name"])])

        frame = opened.runs()
        assert len(frame) == 100
        assert set(frame["status"]) == {"ok"} and set(frame["verdict"]) == {"VALID"}
        assert set(frame["runtime"]) == {"replay"}
        for row in frame.to_dict(orient="records"):
            column = str(row["device"]).removeprefix("replay-") + "_ms"
            assert row["p50_ms"] == nb201[column][_index(row["model"])]
            assert row["mean_ms"] == row["p50_ms"]
            assert row["emulated_figures"] == ("latency" if column == "eyeriss_ms" else "")
        per_device = frame.groupby("device")["model"].apply(frozenset)
        assert per_device["replay-pixel3"] == per_device["replay-eyeriss"]  # same networks
        some = str(frame["run_id"][0])
        measurement = opened.measurement(some)
        assert measurement.samples_ns == () and measurement.reported is not None
        assert measurement.notes[0].startswith("replayed from nasbench201.csv.gz")

    again = bench(*args, store=store)
    assert again.returncode == 0, again.stderr
    assert "Imported 0 runs" in again.stdout and "100 already stored" in again.stdout
    with Store.open(store) as opened:
        assert len(opened.runs()) == 100 and len(models_frame(opened)) == 50

    shown = bench_json("profiles", "show", "--device", "replay-pixel3", "--limit", "100",
                       store=store)
    assert len(shown) == 50 and {r["device"] for r in shown} == {"replay-pixel3"}
    assert all(r["p50_ms"] == nb201["pixel3_ms"][_index(r["model"])] for r in shown)


def test_cli_refuses_unknown_devices_and_bad_arguments_writing_nothing(tmp_path: Path) -> None:
    db = tmp_path / "profiles.db"
    store = f"sqlite:///{db}"
    error = one_line_error(bench("profiles", "import", "--public", "nb201",
                                 "--devices", "pixel3,pixel9", store=store))
    assert "pixel9" in error and "raspi4" in error and "1080ti_32" in error
    error = one_line_error(bench("profiles", "import", "--public", "nb201", "runs.csv",
                                 store=store))
    assert "not both" in error
    assert "--public nb201|fbnet|hat" in one_line_error(bench("profiles", "import", store=store))
    assert not db.exists()


def test_import_is_idempotent_and_keeps_the_batch(store_url: str) -> None:
    plan = plan_public_import("nb201", ["raspi4", "replay-1080ti_32"], limit=20, seed=3)
    with Store.open(store_url) as opened:
        first = import_public(opened, plan)
        assert (first.devices_added, first.models_added, first.runs_added) == (2, 20, 40)
        again = import_public(opened, plan)
        assert (again.devices_added, again.models_added, again.runs_added) == (0, 0, 0)
        assert again.runs_present == 40
        more = import_public(opened, plan_public_import("nb201", ["raspi4"], limit=30, seed=4))
        assert more.runs_added + more.runs_present == 30
        assert len(opened.runs(device="replay-raspi4")) == 20 + more.runs_added
        gpu = opened.runs(device="replay-1080ti_32")
        assert len(gpu) == 20
        assert opened.measurement(str(gpu["run_id"][0])).settings.batch_size == 32
        assert opened.get_device("replay-1080ti_32").info["batch"] == 32


def _rows(url: str, table: Any, skip: tuple[str, ...]) -> list[dict[str, Any]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = [{k: v for k, v in row._mapping.items() if k not in skip}
                for row in connection.execute(select(table))]
    engine.dispose()
    return sorted(rows, key=repr)


def test_bulk_writes_the_rows_save_runs_writes(tmp_path: Path) -> None:
    """The importer's batched path and ``Store.save_runs`` store the same rows."""
    for space, device in (("nb201", "eyeriss"), ("hat", "cpu_xeon")):
        plan = plan_public_import(space, [device], limit=8)
        bulk, plain = f"sqlite:///{tmp_path}/{space}-bulk.db", f"sqlite:///{tmp_path}/{space}.db"
        with Store.open(bulk) as opened:
            import_public(opened, plan)
        table = plan.tables[0]
        record = replay_record(table.device, {space: table.file}, plan.data)
        with Store.open(plain) as opened:
            opened.add_device(record)
            assert opened.save_runs(list(replay_runs(record, table, space, 0.0))) == 8
        times = ("started_at", "finished_at", "added_at")
        for schema_table, skip in ((runs, ("id", "device_id", "model_id", *times)),
                                   (measurements, ("id", "run_id", *times)),
                                   (models, ("id", *times))):
            assert _rows(bulk, schema_table, skip) == _rows(plain, schema_table, skip)


def test_hat_import_sums_encoder_and_decoder(tmp_path: Path) -> None:
    plan = plan_public_import("hat", ["cpu_xeon", "replay-hat-gpu_titanxp"], limit=25, seed=1)
    with Store.open(f"sqlite:///{tmp_path}/profiles.db") as opened:
        result = import_public(opened, plan)
        assert result.devices == ("replay-hat-cpu_xeon", "replay-hat-gpu_titanxp")
        assert result.runs_added == 50
        assert opened.get_device("replay-hat-cpu_xeon").info["data_source"].startswith("HAT")
        for device in ("cpu_xeon", "gpu_titanxp"):
            raw = _hat(device)
            frame = opened.runs(device=f"replay-hat-{device}")
            assert len(frame) == 25
            for row in frame.to_dict(orient="records"):
                config = raw.iloc[_index(str(row["model"]))]
                assert row["p50_ms"] == pytest.approx(
                    config["latency_mean_encoder"] + config["latency_mean_decoder"])
                std = math.hypot(config["latency_std_encoder"], config["latency_std_decoder"])
                assert row["std_ms"] == pytest.approx(std)
                assert math.isnan(row["p90_ms"])
                assert row["verdict"] == ("VALID" if std / row["mean_ms"] <= 0.10 else "INVALID")
        model = models_frame(opened).iloc[0]
        space, arch = parse_source(str(model["path"]))
        assert space == "hat" and len(hat_config(arch).encoder_ffn_dims) > 0


def test_replay_measure_returns_the_recorded_latency(tmp_path: Path,
                                                     nb201: pandas.DataFrame) -> None:
    with Store.open(f"sqlite:///{tmp_path}/profiles.db") as opened:
        import_public(opened, plan_public_import("nb201", ["pixel3"], limit=5))
        import_public(opened, plan_public_import("hat", ["cpu_raspberrypi"], limit=2))
        stored = opened.runs(device="replay-pixel3").iloc[0]
        index = _index(str(stored["model"]))
        source = space_source("nb201", nb201["arch"][index])
        by_source = replay_measure(opened, "replay-pixel3", source)
        assert by_source == opened.measurement(replay_run_id("replay-pixel3", source))
        assert by_source.summary.p50_ms == nb201["pixel3_ms"][index]
        assert replay_measure(opened, "replay-pixel3", str(stored["model"])) == by_source

        imported = set(models_frame(opened)["path"])
        other = next(i for i in range(len(nb201))
                     if space_source("nb201", nb201["arch"][i]) not in imported)
        looked_up = replay_measure(opened, "replay-pixel3",
                                   space_source("nb201", nb201["arch"][other]))
        assert looked_up.summary.p50_ms == nb201["pixel3_ms"][other]
        assert looked_up.verdict.valid and looked_up.environment.device == "replay-pixel3"

        features = tuple(float(v) for v in _hat("cpu_raspberrypi").iloc[0, :10])
        hat = replay_measure(opened, "replay-hat-cpu_raspberrypi",
                             "hat:" + ",".join(repr(v) for v in features))
        row = _hat("cpu_raspberrypi").iloc[0]
        assert hat.summary.mean_ms == pytest.approx(row["latency_mean_encoder"]
                                                    + row["latency_mean_decoder"])
        recorded = {hat_arch(tuple(r)) for r in _hat("cpu_raspberrypi").iloc[:, :10].to_numpy()}
        elsewhere = next(a for a in (hat_arch(tuple(r)) for r in
                                     _hat("cpu_xeon").iloc[:, :10].to_numpy())
                         if a not in recorded)
        with pytest.raises(ModelError, match="not among"):
            replay_measure(opened, "replay-hat-cpu_raspberrypi", space_source("hat", elsewhere))
        with pytest.raises(DeviceError, match="replays nb201"):
            replay_measure(opened, "replay-pixel3", "fbnet:" + "-".join(["0"] * 22))
        opened.add_device(DeviceRecord("board", "local"))
        with pytest.raises(DeviceError, match="not a replay device"):
            replay_measure(opened, "board", source)
        with pytest.raises(UnknownDeviceError):
            replay_measure(opened, "replay-raspi4", source)

        out = tmp_path / "runs.csv"  # replayed runs survive export and import
        assert export_runs(opened, out, "csv") == 7
    with Store.open(f"sqlite:///{tmp_path}/copy.db") as copy:
        assert import_runs(copy, out) == 7
        assert copy.measurement(replay_run_id("replay-pixel3", source)) == by_source


def test_bad_tables_and_conflicting_devices_write_nothing(
        tmp_path: Path, nb201: pandas.DataFrame) -> None:
    with pytest.raises(DatasetError, match="not found"):
        plan_public_import("nb201", data=tmp_path / "nowhere")
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(DatasetError, match="not found"):
        plan_public_import("fbnet", data=data)
    table = nb201.head(20).astype({"pixel3_ms": object})
    table.loc[7, "pixel3_ms"] = "fast"
    table.loc[9, "raspi4_ms"] = None
    table.to_csv(data / public.NB201_FILE, index=False)
    with pytest.raises(DatasetError, match="pixel3_ms of network 7 is 'fast'"):
        plan_public_import("nb201", ["pixel3"], data=data)
    with pytest.raises(DatasetError, match="raspi4_ms of network 9 is missing"):
        plan_public_import("nb201", ["raspi4"], data=data)
    plan_public_import("nb201", ["eyeriss"], data=data)  # the other columns are fine
    nb201.head(20).assign(arch=lambda t: t["arch"].where(t.index != 3, "|bad~0|"))\
        .to_csv(data / public.NB201_FILE, index=False)
    with pytest.raises(DatasetError, match="network 3"):
        plan_public_import("nb201", data=data)
    pandas.concat([nb201.head(5), nb201.head(1)]).to_csv(data / public.NB201_FILE, index=False)
    with pytest.raises(DatasetError, match="network 5 is network 0 again"):
        plan_public_import("nb201", data=data)
    error = one_line_error(bench("profiles", "import", "--public", "nb201", "--data", str(data),
                                 store=f"sqlite:///{tmp_path}/cli.db"))
    assert "network 5" in error and not (tmp_path / "cli.db").exists()

    with Store.open(f"sqlite:///{tmp_path}/profiles.db") as opened:
        opened.add_device(DeviceRecord("replay-pixel3", "local"))
        plan = plan_public_import("nb201", ["raspi4", "pixel3"], limit=3)
        with pytest.raises(DeviceError, match="not a replay device"):
            import_public(opened, plan)
        assert [d.name for d in opened.list_devices()] == ["replay-pixel3"]
        assert opened.runs().empty and models_frame(opened).empty


def test_bench_run_on_all_devices_leaves_replay_devices_out() -> None:
    from hilbench.core.records import DeviceRecord
    from hilbench.devices.registry import select_devices

    fleet = [DeviceRecord("local", "local"), DeviceRecord("replay-pixel3", "replay")]
    assert [d.name for d in select_devices(fleet, "all")] == ["local"]
    assert [d.name for d in select_devices(fleet, "kind=replay")] == ["replay-pixel3"]
    assert [d.name for d in select_devices(fleet, "replay-pixel3")] == ["replay-pixel3"]
