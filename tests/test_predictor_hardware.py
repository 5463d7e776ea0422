"""The transfer model's device profile comes from what `bench devices add` probed: the
emulated phone and server as registered, and a replay device that knows only its class."""

from __future__ import annotations

import math
from pathlib import Path

import numpy
import pytest

from hilbench.core.errors import SettingsError
from hilbench.predictor.hardware import DEVICE_FEATURE_NAMES, device_features
from hilbench.predictor.model import DeviceData, TransferModel
from hilbench.profiles import Store
from tests.cli import bench


def _profile(vector: numpy.ndarray) -> dict[str, float]:
    return dict(zip(DEVICE_FEATURE_NAMES, vector.tolist(), strict=True))


def test_registered_devices_are_described_by_their_probe(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/profiles.db"
    for name, preset in (("phone", "phone"), ("server", "server")):
        added = bench("devices", "add", name, "--preset", preset, store=store)
        assert added.returncode == 0, added.stderr
    with Store.open(store) as opened:
        infos = {d.name: d.info for d in opened.list_devices()}
    phone, server = _profile(device_features(infos["phone"])), \
        _profile(device_features(infos["server"]))
    assert phone["log2_cpu_count"] == 3.0 and server["log2_cpu_count"] == 4.0
    assert phone["max_cpu_ghz"] == pytest.approx(2.419)  # the big cluster, not the little
    assert server["max_cpu_ghz"] == pytest.approx(3.5)
    assert phone["log2_memory_gb"] == pytest.approx(math.log2(6))
    assert phone["class_phone"] == 1.0 and phone["class_server"] == 0.0
    assert server["class_server"] == 1.0


def test_a_figure_the_probe_did_not_give_is_missing_not_zero() -> None:
    replayed = _profile(device_features({"class": "gpu", "description": "GTX 1080 Ti"}))
    assert math.isnan(replayed["log2_cpu_count"]) and math.isnan(replayed["max_cpu_ghz"])
    assert replayed["class_gpu"] == 1.0 and replayed["class_cpu"] == 0.0
    unknown = device_features({})
    assert numpy.isnan(unknown).all()


def test_the_transfer_model_takes_profiles_of_one_length() -> None:
    rng = numpy.random.default_rng(0)
    features = rng.random((40, 5))
    rows = numpy.arange(40)
    profile = device_features({"class": "cpu", "cpu_count": 4})
    known = {f"d{i}": DeviceData(rows, numpy.exp(features @ rng.random(5)) * (i + 1), profile)
             for i in range(3)}
    model = TransferModel(list(range(5))).fit(features, known, held_out=False)
    model.adapt("new", features, DeviceData(rows[:10], known["d0"].latency_ms[:10]))  # NaNs
    assert model.predict("new", features[10:]).median_ms.shape == (30,)
    with pytest.raises(SettingsError, match="profile of 2 figures"):
        model.adapt("odd", features, DeviceData(rows[:10], known["d0"].latency_ms[:10],
                                                numpy.ones(2)))
