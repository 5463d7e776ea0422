"""The dashboard's pages as a user sees them (Streamlit's AppTest runs the real app script
and its pages), on a copy of the store `bench demo` fills: its devices, runs, the digits
family and the selector's answers, compared with what the store and `bench select` say."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import hilbench.dashboard
from hilbench.profiles import Store
from tests.cli import in_process
from tests.conftest import DemoStore

APP = str(Path(hilbench.dashboard.__file__).resolve().parent / "app.py")
FAMILY = "digits-transformer"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, demo_store: DemoStore) -> str:
    return demo_store.copy(tmp_path_factory.mktemp("dashboard-app"))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """No predictor trained: every candidate is a measurement or says why it is not."""
    root = tmp_path_factory.mktemp("dashboard-home")
    return {"XDG_DATA_HOME": str(root / "data"), "XDG_CACHE_HOME": str(root / "cache")}


def start(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], store: str) -> AppTest:
    for name, value in {**env, "HILBENCH_STORE": store}.items():
        monkeypatch.setenv(name, value)
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], store: str) -> Iterator[AppTest]:
    yield start(monkeypatch, env, store)


def show(app: AppTest, page: str) -> AppTest:
    app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def texts(elements: Any) -> list[str]:
    return [str(element.value) for element in elements]


def charts(app: AppTest) -> int:
    return len(app.get("vega_lite_chart"))


def test_fleet_lists_every_device_with_its_status_capabilities_and_runs(
        app: AppTest, store: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    show(app, "fleet.py")
    assert texts(app.title) == ["Fleet"]
    with Store.open(store) as opened:
        runs = opened.runs().groupby("device").size().to_dict()
        names = [d.name for d in opened.list_devices()]
    status = app.dataframe[0].value.set_index("device")
    assert list(status.index) == names == ["emu-fpga", "emu-jetson", "emu-phone", "emu-server",
                                           "local"]
    assert status["runs"].to_dict() == runs
    assert set(status["status"]) <= {"online", "on demand"}  # online: a run within 90 s
    assert status.at["emu-phone", "kind"] == "emulated (phone)"
    assert status.at["local", "transport"] == "this machine"
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["devices"] == "5" and metrics["runs"] == str(sum(runs.values()))
    capabilities = app.table[0].value
    dvfs = "DVFS domains: levels (MHz, count)"
    phone = capabilities.loc["emu-phone"]
    assert phone["cores"] == "8" and phone["memory GiB"] == "6.0"
    assert "cpu4-7: 710-2419 MHz (6)" in phone[dvfs]
    assert phone["sensors"].startswith("power: battery:battery")
    assert "power modes: 15W, 10W, 7W" in capabilities.at["emu-jetson", dvfs]
    assert "onnxruntime" in capabilities.at["local", "runtimes"]
    # `bench devices list` reads the same rows
    listed = json.loads(in_process(capsys, monkeypatch, env, "devices", "list", "--json",
                                   "--store", store).stdout)
    assert {row["device"]: row["runs"] for row in listed} == runs
    assert {row["device"]: row["status"] for row in listed} == status["status"].to_dict()


def test_runs_page_filters_and_shows_a_runs_verdict_distribution_and_traces(
        app: AppTest, store: str) -> None:
    show(app, "runs.py")
    with Store.open(store) as opened:
        phone = opened.runs(device="emu-phone", model=FAMILY)
    run = phone.iloc[0]
    app.multiselect(key="run_devices").set_value(["emu-phone"]).run()
    listed = app.dataframe[0].value
    assert set(listed["device"]) == {"emu-phone"} and len(listed) == 5
    app.selectbox(key="run").set_value(run.run_id).run()
    assert not app.exception
    expected = "VALID" if run.verdict == "VALID" else f"INVALID: {run.reasons}"
    shown = texts(app.success) + texts(app.warning)
    assert shown == [f"Verdict: {expected}"]
    assert texts(app.subheader)[0].startswith(f"emu-phone · {FAMILY} · ")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["timed runs"] == str(int(run["count"]))
    assert metrics["p90 (ms)"] == f"{run.p90_ms:.3g}"
    # histogram + box, latency per run, then power, frequency and temperature traces
    assert charts(app) == 5
    environment = app.dataframe[1].value.set_index("")["value"]
    assert environment["runtime"].startswith("onnxruntime")
    assert "cpu4-7" in environment["DVFS"]


def test_tradeoffs_page_plots_the_selectors_candidates(app: AppTest, store: str) -> None:
    show(app, "tradeoffs.py")
    assert app.selectbox(key="trade_family").value == FAMILY
    from hilbench.dashboard.data import Ask, recommend
    from hilbench.selector.query import answer_json

    with Store.open(store) as opened:
        data = answer_json(recommend(opened, Ask(FAMILY), None, "no predictor"))
    caption = texts(app.caption)[0]
    assert caption.startswith(f"{data['candidates']} candidates at batch 64 "
                              f"({data['measured']} measured, 0 predicted)")
    assert "Nothing is predicted" in caption
    assert charts(app) == 4  # latency x accuracy, energy x latency, DVFS latency and energy
    app.selectbox(key="dvfs_device").set_value("emu-jetson").run()
    assert any("measured at one DVFS level (power mode 0 (15W))" in text
               for text in texts(app.caption))


def _select_json(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                 env: dict[str, str], store: str, app: AppTest) -> dict[str, Any]:
    """What `bench select --json` prints for the question the page's widgets ask."""
    per_dvfs = app.selectbox(key="per_dvfs").value
    result = in_process(
        capsys, monkeypatch, env, "select", "--family", FAMILY, "--json", "--no-verify",
        "--lc", f"{app.slider(key='lc').value}ms", "--ac", str(app.slider(key="ac").value),
        "--objective", str(app.selectbox(key="objective").value),
        "--percentile", str(app.selectbox(key="rec_statistic").value),
        "--risk", str(app.radio(key="risk").value), "--store", store,
        *(["--per-dvfs", str(per_dvfs)] if per_dvfs != "(none)" else []))
    assert result.returncode in (0, 1), result.stderr
    monkeypatch.setenv("HILBENCH_STORE", store)  # in_process took it away from the app
    return dict(json.loads(result.stdout))


def _comparable(data: Any) -> Any:
    """The answer without its creation time, floats to 9 digits (LC passes through text)."""
    if isinstance(data, dict):
        return {k: _comparable(v) for k, v in data.items() if k != "created_at"}
    if isinstance(data, list):
        return [_comparable(v) for v in data]
    return float(f"{data:.9g}") if isinstance(data, float) else data


def test_recommend_shows_bench_selects_pick_and_the_lc_slider_changes_it(
        app: AppTest, store: str, env: dict[str, str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    show(app, "recommend.py")
    lc, ac = app.slider(key="lc"), app.slider(key="ac")
    lc.set_value(lc.max).run()  # every candidate meets LC and AC: there is a pick
    app.slider(key="ac").set_value(ac.min).run()
    expected = _select_json(capsys, monkeypatch, env, store, app)
    best = expected["best"]
    assert best is not None and best["source"] == "measured"
    pick = texts(app.success)
    assert len(pick) == 1 and pick[0].startswith(
        f"Pick: {best['device']} running {best['model']} ({best['setting']}): p90 "
        f"{best['latency_ms']:.3f} ms [measured]")
    shown = json.loads(app.code[0].value)  # the text the export button downloads
    assert _comparable(shown) == _comparable(expected)
    assert app.get("download_button")[0].label == "Export the answer as JSON"
    why = app.table[0].value["why"]
    assert why[best["device"]] == "best: holds the pick" and len(why) == 5
    assert charts(app) == 1
    device = app.selectbox(key="per_dvfs").value
    levels = app.table[1].value
    assert list(levels.index) == [level["dvfs"] for level in
                                  expected["reconfiguration"]["levels"]]
    assert device == expected["reconfiguration"]["device"]

    app.slider(key="lc").set_value(app.slider(key="lc").min).run()  # LC far below any p90
    assert not app.exception and not app.success
    assert texts(app.error)[0].startswith("Nothing feasible for p90 <= 0.05 ms")
    assert _select_json(capsys, monkeypatch, env, store, app)["best"] is None


def test_an_empty_store_says_how_to_get_data(monkeypatch: pytest.MonkeyPatch,
                                             env: dict[str, str], tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path}/empty.db"
    app = start(monkeypatch, env, empty)
    assert texts(app.title) == ["hilbench"]
    page = "\n".join(texts(app.markdown))
    assert "holds no devices and no runs" in page and f"bench demo --store {empty}" in page


def test_an_unreachable_store_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                          env: dict[str, str]) -> None:
    app = start(monkeypatch, env, "postgresql://nobody@127.0.0.1:1/none")
    errors = texts(app.error)
    assert len(errors) == 1 and errors[0].startswith("Cannot open the store: cannot open store")
    assert "\n" not in errors[0]


def test_an_agent_device_is_online_while_its_agents_call(tmp_path: Path) -> None:
    from hilbench.core.records import DeviceRecord
    from hilbench.profiles.inventory import AGENT_ONLINE_S, fleet_frame
    from hilbench.profiles.jobs import JobQueue

    with Store.open(f"sqlite:///{tmp_path}/agents.db") as opened:
        opened.add_device(DeviceRecord("jetson-1", "agent", None, {"coordinator": True}))
        opened.add_device(DeviceRecord("board", "ssh", None, {"ssh": "root@10.0.0.9"}))
        JobQueue(opened).register_agent("jetson-1-agent", "jetson-1")
        now = fleet_frame(opened).set_index("device")
        later = fleet_frame(opened, now=now.at["jetson-1", "last_seen"] + AGENT_ONLINE_S + 1)
    assert now.at["jetson-1", "status"] == "online"
    assert now.at["jetson-1", "transport"] == "coordinator agent"
    assert later.set_index("device").at["jetson-1", "status"] == "offline"
    assert now.at["board", "status"] == "on demand" and now.at["board", "runs"] == 0
    assert now.at["board", "transport"] == "ssh root@10.0.0.9"


def test_an_energy_counter_is_drawn_as_the_power_between_readings(store: str) -> None:
    from hilbench.profiles.traces import run_traces

    with Store.open(store) as opened:
        run = opened.runs(device="emu-server").iloc[0]
        measured = opened.measurement(run.run_id)
    traces = run_traces(measured.telemetry)
    power = traces[(traces["kind"] == "power") & traces["timed"]]
    assert set(power["sensor"]) == {"rapl:package-0"} and set(power["unit"]) == {"W"}
    assert measured.energy is not None
    assert power["value"].mean() == pytest.approx(measured.energy.avg_power_w, rel=0.25)
    frequency = traces[traces["kind"] == "frequency"]
    assert set(frequency["label"]) == {"cpufreq policy0"} and frequency["value"].max() <= 3500
