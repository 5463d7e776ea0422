"""`bench select` on the store `bench demo` fills: the digits family (FFN 0/50 % x fp32/int8,
top-1 recorded) measured at batch 64 on this machine and the emulated devices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hilbench.profiles import Store
from hilbench.profiles.family import accuracy_frame
from tests.cli import bench, in_process, one_line_error
from tests.conftest import DemoStore

FAMILY = "digits-transformer"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, demo_store: DemoStore) -> str:
    return demo_store.copy(tmp_path_factory.mktemp("select"))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """No predictor trained: every candidate is a measurement or says why it is not."""
    root = tmp_path_factory.mktemp("select-home")
    return {"XDG_DATA_HOME": str(root / "data"), "XDG_CACHE_HOME": str(root / "cache")}


def select(store: str, env: dict[str, str], *args: str) -> tuple[int, dict, str]:
    result = bench("select", "--family", FAMILY, *args, "--json", store=store, env=env)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def test_the_pick_meets_lc_and_ac_at_the_least_measured_energy(
        store: str, env: dict[str, str]) -> None:
    code, answer, _ = select(store, env, "--lc", "1s", "--ac", "0.98")
    assert code == 0
    best = answer["best"]
    assert answer["batch"] == 64 and best["batch"] == 64
    assert best["source"] == "measured" and best["latency_ms"] <= 1000
    with Store.open(store) as opened:
        scores = accuracy_frame(opened)
        runs = opened.runs()
    top1 = dict(zip(scores.model, scores.value, strict=True))
    assert best["accuracy"] == pytest.approx(top1[best["model"]]) and best["accuracy"] >= 0.98
    # every VALID run of an accurate enough model with an energy figure costs at least as much
    valid = runs[(runs.verdict == "VALID") & runs.model.map(lambda m: top1.get(m, 0) >= 0.98)
                 & runs.energy_per_inference_mj.notna()]
    assert len(valid) >= 1
    assert best["energy_mj"] <= valid.energy_per_inference_mj.min() * 1.0001
    assert answer["devices"][best["device"]] == "best: holds the pick"
    others = [why for name, why in answer["devices"].items() if name != best["device"]]
    # local's runs on this shared host may be INVALID for some models only: any story will do
    assert all(why.startswith(("feasible, but", "not measured and not predictable",
                               "no variant reaches AC", "nearest feasible variant"))
               for why in others), others
    assert answer["pareto"] and all(row["accuracy"] is not None for row in answer["pareto"])


def test_an_impossible_lc_is_an_answer_with_the_nearest_candidates(
        store: str, env: dict[str, str]) -> None:
    code, answer, stderr = select(store, env, "--lc", "1us", "--ac", "0.97", "--percentile",
                                  "p99")
    assert code == 1 and "no candidate meets the constraints" in stderr
    assert answer["best"] is None and answer["feasible"] == 0
    nearest = answer["nearest"]
    assert nearest and all(row["accuracy"] >= 0.97 for row in nearest)
    ratios = [row["latency_ms"] for row in nearest]
    assert ratios == sorted(ratios)
    measured = [why for why in answer["devices"].values() if "x LC" in why]
    assert measured and all("p99" in why and "> 0.001 ms" in why for why in measured)


def test_an_unreachable_ac_names_the_best_accuracy(store: str, env: dict[str, str]) -> None:
    """Each device is told the best top-1 among the models it has a VALID run of (which
    runs are VALID depends on this shared host's noise, so the store says)."""
    code, answer, _ = select(store, env, "--lc", "1s", "--ac", "0.999")
    assert code == 1
    with Store.open(store) as opened:
        scores = accuracy_frame(opened)
        runs = opened.runs()
    top1 = dict(zip(scores.model, scores.value, strict=True))
    valid = runs[(runs.verdict == "VALID") & runs.model.isin(list(top1))]
    told = {device: why for device, why in answer["devices"].items()
            if why.startswith("no variant reaches")}
    assert told and set(told) == set(valid.device)
    for device, why in told.items():
        best = max(top1[m] for m in valid[valid.device == device].model)
        assert f"no variant reaches AC (top1 >= 0.999): best {best:.4g} (" in why


def test_without_a_predictor_unmeasured_candidates_say_so(
        tmp_path: Path, demo_store: DemoStore, env: dict[str, str]) -> None:
    """At batch 1 nothing of the family was measured: without a predictor every device says
    so (tests/test_predictor_cli.py selects with one); a named predictor file that is not
    one is refused."""
    store = demo_store.copy(tmp_path)
    code, answer, _ = select(store, env, "--lc", "1s", "--batch", "1")
    assert code == 1 and answer["measured"] == 0 and answer["predicted"] == 0
    assert all(why.startswith("not measured and not predictable: no usable predictor")
               for why in answer["devices"].values())
    bogus = tmp_path / "bogus.hbp"
    bogus.write_text("not a predictor\n")
    refused = bench("select", "--family", FAMILY, "--lc", "1s", "--artifact", str(bogus),
                    store=store, env=env)
    assert "is not a hilbench predictor file" in one_line_error(refused)


@pytest.mark.parametrize(("args", "message"), [
    (["--lc", "20 parsecs"], "invalid duration"),
    (["--lc", "1s", "--devices", "nope"], "unknown device nope"),
    (["--lc", "1s", "--objective", "cost"], "--objective cost needs each device's cost"),
    (["--lc", "1s", "--objective", "cost", "--cost", "emu-phone=cheap"], "invalid --cost"),
    (["--lc", "1s", "--percentile", "p95"], "use one of mean, p50, p90, p99"),
    (["--lc", "1s", "--export", "x.json"], "--export writes the --per-dvfs table"),
    (["--lc", "1s", "--per-dvfs", "nope"], "--per-dvfs nope: not among the selected devices"),
    (["--lc", "1s", "--objective", "battery"], "--objective battery needs the inference rate"),
    (["--lc", "1s", "--rate", "fast"], "invalid --rate 'fast'"),
    (["--lc", "1s", "--rate", "-3"], "the inference rate must be a positive number"),
    (["--lc", "1s", "--battery", "nope=3"], "--battery names devices not selected: nope"),
])
def test_bad_input_is_one_line(store: str, env: dict[str, str], args: list[str], message: str,
                               capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    result = in_process(capsys, monkeypatch, env, "select", "--family", FAMILY, *args,
                        "--store", store)
    assert message in one_line_error(result)


def test_unknown_family_and_unrecorded_metric(store: str, env: dict[str, str],
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    missing = in_process(capsys, monkeypatch, env, "select", "--family", "no-such-model",
                         "--lc", "1s", "--store", store)
    assert "no model 'no-such-model' in the store" in one_line_error(missing)
    unrecorded = in_process(capsys, monkeypatch, env, "select", "--family", FAMILY, "--lc",
                            "1s", "--ac", "0.9", "--metric", "top5", "--store", store)
    assert unrecorded.returncode == 1  # every device says so: an answer, not an input error
    assert "no accuracy record for its candidates (top5 >= 0.9 asked)" in unrecorded.stdout


def test_per_dvfs_level_the_variant_that_meets_lc_there(
        tmp_path: Path, demo_store: DemoStore, env: dict[str, str]) -> None:
    """RT3's table: the emulated phone swept over its big cluster's levels with the base
    model and the FFN-50 % int8 variant, and an LC the base meets at the top level that
    nothing meets at the bottom one: every level has its row, highest first, with the
    variant chosen there or why none is; exported as the JSON a runtime loads."""
    store = demo_store.copy(tmp_path)
    variants = demo_store.root / "variants"
    models = [Path(__file__).parents[1] / "hilbench/assets/digits-transformer.onnx",
              variants / "digits-transformer-ffn50-int8.onnx"]
    swept = bench("run", *(a for m in models for a in ("-m", str(m))), "--devices",
                  "emu-phone", "--dvfs", "sweep", "--batch", "64", "--warmup", "2",
                  "--warmup-time", "0s", "--min-time", "0.1s", "--idle-time", "0s",
                  "--max-cv", "1", "--json", store=store, env=env)
    assert swept.returncode == 0, swept.stderr
    p90 = {(r["model"], r["dvfs_pinned_mhz"]["cpu4-7"]): r["p90_ms"]
           for r in json.loads(swept.stdout)}
    base = {mhz: ms for (model, mhz), ms in p90.items() if model == FAMILY}
    small = {mhz: ms for (model, mhz), ms in p90.items() if model != FAMILY}
    top, bottom = max(base), min(base)
    # an LC the base meets at the top level but the small variant misses at the bottom
    limit = (base[top] + small[bottom]) / 2
    assert base[top] < limit < small[bottom]
    export = tmp_path / "reconfiguration.json"
    result = bench("select", "--family", FAMILY, "--lc", f"{limit}ms", "--objective",
                   "latency", "--per-dvfs", "emu-phone", "--export", str(export), "--json",
                   "--devices", "emu-phone", store=store, env=env)
    assert result.returncode == 0, result.stderr
    table = json.loads(export.read_text())
    assert table == json.loads(result.stdout)["reconfiguration"]
    assert table["format"] == "hilbench-reconfiguration" and table["device"] == "emu-phone"
    pinned = [level for level in table["levels"] if level["pinned_khz"]]
    assert [level["pinned_khz"]["cpu4-7"] // 1000 for level in pinned] == sorted(
        base, reverse=True)  # every swept level, highest first
    assert pinned[0]["model"] == "digits-transformer-ffn50-int8"  # the fastest at the top
    assert pinned[-1]["model"] is None and "x LC" in pinned[-1]["why"]
    assert all(level["latency_ms"] <= limit for level in pinned if level["model"])
    assert Path(pinned[0]["model_path"]).is_file()


def test_battery_life_at_a_rate_picks_on_the_battery_device(
        store: str, env: dict[str, str]) -> None:
    """The emulated phone's probe read its battery (4,500 mAh at 3.4-4.4 V: 17.55 Wh); at 50
    inferences a second the pick's hours are its battery over idle power plus 50 x the
    energy one inference adds above idle, all from its stored runs. Other devices have no
    battery and say so; given one (--battery), they compete."""
    rate = 50
    code, answer, _ = select(store, env, "--lc", "1s", "--objective", "battery", "--rate",
                             f"{rate}/s")
    assert code == 0
    best = answer["best"]
    assert best["device"] == "emu-phone" and best["battery_wh"] == pytest.approx(17.55)
    with Store.open(store) as opened:
        runs = opened.runs()
    mine = runs[(runs.device == "emu-phone") & (runs.model == best["model"])
                & (runs.verdict == "VALID")]
    energy_j = mine.energy_per_inference_mj.median() / 1000
    power, idle = mine.avg_power_w.median(), mine.idle_power_w.median()
    active_j = energy_j - idle * energy_j / power
    assert 0 < active_j < energy_j
    assert best["battery_h"] == pytest.approx(17.55 / (idle + rate * active_j), rel=1e-6)
    assert answer["rate_per_s"] == rate and answer["latency_bound_ms"] == pytest.approx(20)
    feasible = [why for device, why in answer["devices"].items()
                if device != "emu-phone" and why.startswith("feasible")]
    assert feasible and all("battery life is unknown: no battery capacity known" in why
                            for why in feasible)
    _, given, _ = select(store, env, "--lc", "1s", "--objective", "battery", "--rate", "50",
                         "--battery", "emu-fpga=500")
    assert given["best"]["device"] == "emu-fpga" and given["best"]["battery_h"] > 24
    assert "reaches battery life" in given["devices"]["emu-phone"]


def test_a_rate_bounds_latency_by_the_time_between_inferences(
        store: str, env: dict[str, str]) -> None:
    """At 1,000/s each inference has 1 ms: only what meets that is feasible, and the
    others are told the bound came from the rate."""
    _, loose, _ = select(store, env, "--lc", "1s", "--objective", "latency")
    fastest = loose["best"]["latency_ms"]
    rate = 1000 / (fastest * 1.5)
    code, answer, _ = select(store, env, "--lc", "1s", "--rate", f"{rate}")
    assert code == 0 and answer["latency_bound_ms"] == pytest.approx(fastest * 1.5)
    assert answer["best"]["latency_ms"] <= fastest * 1.5
    slower = [why for why in answer["devices"].values() if why.startswith("nearest")]
    assert all(f"between inferences at {rate:g}/s" in why for why in slower)
    code, none, _ = select(store, env, "--lc", "1s", "--rate", f"{1000 / (fastest * 0.5)}")
    assert code == 1 and none["best"] is None
