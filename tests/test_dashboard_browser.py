"""`bench dashboard` as a user meets it: the command serves the app on a free loopback port
over a copy of the store `bench demo` fills; Debian's headless Chromium (through its
chromedriver) loads each page, moves the LC slider and downloads the answer. Screenshots
go to the test's temp dir, and with ``HILBENCH_SCREENSHOTS=docs/dashboard`` also there (the
README's, shrunk to a 256-colour palette)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.cli import BENCH, bench, in_process, one_line_error
from tests.conftest import DemoStore
from tests.ports import free_port

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run")
WIDTH, HEIGHT = 1600, 1000
WAIT_S = 60
FAMILY = "digits-transformer"
# page path, its title, the charts it draws, a text it shows (tables are drawn on a canvas)
PAGES = (("", "Fleet", 0, "devices\n5\n"),
         ("runs?device=emu-jetson", "Runs", 5, "emu-jetson · "),
         ("tradeoffs", "Trade-offs", 4, "candidates at batch 64"),
         ("recommend", "Recommend", 1, "candidates at batch 64"))
REPOSITORY = Path(__file__).resolve().parents[1]
SWEPT = ("digits-transformer-int8", "digits-transformer-ffn50-int8")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No predictor trained: every candidate is a measurement or says why it is not."""
    return tmp_path_factory.mktemp("dashboard-browser")


@pytest.fixture(scope="module")
def env(home: Path) -> dict[str, str]:
    return {"XDG_DATA_HOME": str(home / "data"), "XDG_CACHE_HOME": str(home / "cache")}


@pytest.fixture(scope="module")
def store(home: Path, demo_store: DemoStore, env: dict[str, str]) -> str:
    """The demo's store; for the README's screenshots, with a DVFS sweep of two variants on
    the emulated phone too (the DVFS curves and the per-level table then have levels)."""
    url = demo_store.copy(home)
    if os.environ.get("HILBENCH_SCREENSHOTS"):
        variants = demo_store.root / "variants"
        models = [arg for name in SWEPT for arg in ("-m", str(variants / f"{name}.onnx"))]
        swept = bench("run", *models, "--devices", "emu-phone", "--dvfs", "sweep", "--batch",
                      "64", "--min-time", "0.5s", store=url, env=env)
        assert swept.returncode == 0, swept.stderr
    return url


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "_stcore/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(store: str, env: dict[str, str], home: Path) -> Iterator[str]:
    """``bench dashboard --store URL --port N`` on loopback; TERM stops it and its server."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    environment = {k: v for k, v in os.environ.items() if k != "HILBENCH_STORE"}
    with (home / "server.log").open("w") as log:
        command = subprocess.Popen([BENCH, "dashboard", "--store", store, "--port", str(port)],
                                   env={**environment, **env}, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + WAIT_S
            while not _answers(url):
                assert command.poll() is None, (home / "server.log").read_text()
                assert time.monotonic() < deadline, "bench dashboard did not start"
                time.sleep(0.2)
            yield url
        finally:
            command.terminate()
            code = command.wait(timeout=30)
    assert code == 0, (home / "server.log").read_text()
    assert not _answers(url), "the streamlit server outlived bench dashboard"


@pytest.fixture(scope="module")
def downloads(home: Path) -> Path:
    folder = home / "downloads"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium or chromedriver not installed: .ci/run installs Debian's "
                    "chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def wait(browser: WebDriver, ready: Callable[[WebDriver], Any], what: str) -> Any:
    try:
        return WebDriverWait(browser, WAIT_S, poll_frequency=0.2).until(ready)
    except WebDriverException as exc:
        raise AssertionError(f"timed out waiting for {what}") from exc


def idle(browser: WebDriver) -> bool:
    """The app finished its run: no 'Running...' widget, no stale elements."""
    running = browser.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']")
    stale = browser.find_elements(By.CSS_SELECTOR, "[data-stale='true']")
    return not running and not stale


def main_text(browser: WebDriver) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, "[data-testid='stMain']").text)


def load(browser: WebDriver, url: str, title: str, charts: int, shown: str = "") -> None:
    """Open a page and wait until it shows its title, ``shown`` and its charts."""
    browser.set_window_size(WIDTH, HEIGHT)
    browser.get(url)
    wait(browser, lambda b: [h.text for h in b.find_elements(By.TAG_NAME, "h1")] == [title]
         and shown in main_text(b) and idle(b), f"the {title} page showing {shown!r}")
    wait(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, ".vega-embed svg, "
                                                ".vega-embed canvas")) >= charts,
         f"{charts} charts on {title}")
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")


def screenshot(browser: WebDriver, shots: Path, name: str) -> Path:
    """The whole page (the window grown to the main area's height), saved as NAME.png; also
    under $HILBENCH_SCREENSHOTS (relative to the repository), with a 256-colour palette."""
    height = browser.execute_script(
        "return document.querySelector('[data-testid=stMain]').scrollHeight")
    browser.set_window_size(WIDTH, int(height) + 40)
    time.sleep(1.0)  # charts re-lay out to the new size
    wait(browser, idle, "the app to settle")
    path = shots / f"{name}.png"
    assert browser.save_screenshot(str(path)), path
    browser.set_window_size(WIDTH, HEIGHT)
    target = os.environ.get("HILBENCH_SCREENSHOTS")
    if target:
        folder = REPOSITORY / target
        folder.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            image.convert("RGB").quantize(colors=256).save(folder / path.name, optimize=True)
    return path


def test_each_page_renders_on_the_demo_store(browser: WebDriver, server: str,
                                             shots: Path) -> None:
    for path, title, charts, shown in PAGES:
        load(browser, server + path, title, charts, shown)
        name = title.lower().replace("-", "")
        assert screenshot(browser, shots, name).stat().st_size > 10_000
    titles = [title for _, title, _, _ in PAGES]
    navigation = browser.find_element(By.CSS_SELECTOR, "[data-testid='stSidebarNav']").text
    assert [line for line in navigation.split("\n") if line in titles] == titles


def _alert(browser: WebDriver) -> str:
    """The pick, or that nothing is feasible, as the page says it (markdown shows <= as ≤)."""
    messages = browser.find_elements(
        By.CSS_SELECTOR, "[data-testid='stAlert'] [data-testid='stMarkdownContainer']")
    return " ".join(m.text.replace("≤", "<=").replace("≥", ">=") for m in messages
                    if m.text.startswith(("Pick:", "Nothing feasible")))


def _slider(browser: WebDriver, label: str) -> WebElement:
    """The slider's range input (react-aria keeps it visually hidden beside the thumb)."""
    return browser.find_element(By.CSS_SELECTOR, f"input[type='range'][aria-label^='{label}']")


def press(browser: WebDriver, slider: WebElement, key: str) -> None:
    """Focus the slider and press a key, as a keyboard user moves it."""
    browser.execute_script("arguments[0].focus()", slider)
    ActionChains(browser).send_keys(key).perform()


def _value(browser: WebDriver, label: str) -> str:
    return str(_slider(browser, label).get_attribute("value"))


def _minimum(browser: WebDriver, label: str) -> str:
    return str(_slider(browser, label).get_attribute("min"))


def test_moving_the_lc_slider_changes_the_recommendation(browser: WebDriver, server: str,
                                                         shots: Path) -> None:
    load(browser, server + "recommend", "Recommend", 1, "Export the answer as JSON")
    ac = "Accuracy constraint AC"
    press(browser, _slider(browser, ac), Keys.HOME)  # no accuracy bar
    wait(browser, lambda b: _value(b, ac) == _minimum(b, ac) and idle(b), "the lowest AC")
    press(browser, _slider(browser, "Latency constraint LC"), Keys.END)  # every one meets LC
    wait(browser, lambda b: idle(b) and "Pick:" in _alert(b), "a pick at the highest LC")
    before = _alert(browser)
    press(browser, _slider(browser, "Latency constraint LC"), Keys.HOME)  # one step: none
    wait(browser, lambda b: idle(b) and _alert(b) not in ("", before), "a new answer")
    after = _alert(browser)
    lowest = _minimum(browser, "Latency constraint LC")
    assert after.startswith(f"Nothing feasible for p90 <= {float(lowest):g} ms"), (before, after)
    assert _value(browser, "Latency constraint LC") == lowest
    screenshot(browser, shots, "recommend-lc-moved")


def test_the_export_button_downloads_what_bench_select_prints(
        browser: WebDriver, server: str, store: str, env: dict[str, str], downloads: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    load(browser, server + "recommend", "Recommend", 1, "Export the answer as JSON")
    lc, ac = _value(browser, "Latency constraint LC"), _value(browser, "Accuracy constraint AC")
    buttons = [b for b in browser.find_elements(By.CSS_SELECTOR, "button")
               if b.text.strip().endswith("Export the answer as JSON")]
    assert len(buttons) == 1
    buttons[0].click()
    target = downloads / "hilbench-answer.json"
    wait(browser, lambda _: target.exists() and target.stat().st_size > 0, "the download")
    device = browser.find_element(
        By.CSS_SELECTOR, "input[aria-label^='Per-DVFS']").get_attribute("value")
    printed = in_process(capsys, monkeypatch, env, "select", "--family", FAMILY, "--json",
                         "--no-verify", "--lc", f"{lc}ms", "--ac", str(ac), "--store", store,
                         *(["--per-dvfs", str(device)] if device != "(none)" else []))
    assert printed.returncode in (0, 1), printed.stderr
    assert _comparable(json.loads(target.read_text())) == _comparable(
        json.loads(printed.stdout))


def _comparable(data: Any) -> Any:
    """The answer without its creation time, floats to 9 digits (LC passes through text)."""
    if isinstance(data, dict):
        return {k: _comparable(v) for k, v in data.items() if k != "created_at"}
    if isinstance(data, list):
        return [_comparable(v) for v in data]
    return float(f"{data:.9g}") if isinstance(data, float) else data


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    unreachable = in_process(capsys, monkeypatch, env, "dashboard", "--store",
                             "postgresql://nobody@127.0.0.1:1/none")
    assert "cannot open store postgresql" in one_line_error(unreachable)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = in_process(capsys, monkeypatch, env, "dashboard", "--store",
                          f"sqlite:///{tmp_path}/profiles.db", "--port", str(port))
    assert one_line_error(busy) == (f"error: cannot listen on 127.0.0.1:{port}: "
                                    "Address already in use")
    bad_port = in_process(capsys, monkeypatch, env, "dashboard", "--port", "70000")
    assert bad_port.returncode == 2
