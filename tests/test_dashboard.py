"""The live dashboard (``GET /_simulator/``) in a real headless Chromium, against a real two-worker server
under load: the page polls ``/_simulator/stats``, draws its charts, and ends up showing exactly the request
count that the Prometheus metrics report and that the test sent, with no console errors.

Needs Debian's ``chromium`` and ``chromium-driver`` packages and the ``selenium`` package. Missing ones skip
the test, unless TEST_REQUIRE_BROWSER=1 (CI), where they fail it instead. The screenshot goes to
``$TEST_OUTPUT_DIR/dashboard.png`` (default ``.test-output/`` in the repository).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Serve

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# No network here: keep Chromium from making any background connection of its own.
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1440,900",
)
ROUTE = "eligibility.patient_check"
TOKEN = "dashboard-test-admin-token-0123"
FAULTS_STATE = """
const row = document.querySelector(`#routes-body tr[data-route="${arguments[0]}"]`);
const armed = row.querySelector(".faults");
const fired = {};
for (const chip of row.querySelectorAll("[data-fault]")) fired[chip.dataset.fault] = chip.dataset.count;
return {armed: armed ? armed.textContent : null, fired};
"""
PATIENT = "/eligibility-signposting-api/patient-check/9686368973"
NO_ID = "/eligibility-signposting-api/patient-check"  # 400, on its own route: a 4xx for the status mix
LOAD_SECONDS = 10.0
CLIENTS = 4
MAX_PER_CLIENT = 100  # at 0.2 s a request, about 50 fit in the load's time

# Everything the test reads from the page, read at once (the page re-renders every second).
PAGE_STATE = """
const route = arguments[0];
const row = document.querySelector(`#routes-body tr[data-route="${route}"]`);
const chart = document.querySelector(`[data-route-chart="${route}"] .chart`);
const noId = document.querySelector('#routes-body tr[data-route="eligibility.patient_check_no_id"]');
return {
  updates: Number(document.body.dataset.updates || 0),
  state: document.body.dataset.state,
  error: document.getElementById("error").textContent,
  workers: document.querySelector("[data-workers]").textContent,
  total: row ? row.querySelector("[data-total-requests]").textContent : null,
  liveRate: row ? Number(row.dataset.liveRate || 0) : 0,
  delay: row ? row.querySelector("[data-delay]").textContent : null,
  ratePoints: Number(document.getElementById("rate-chart").dataset.points || 0),
  latencyPoints: chart ? Number(chart.dataset.points || 0) : 0,
  journalRows: document.querySelectorAll(`#journal-body tr[data-journal-route="${route}"]`).length,
  badChips: noId ? Array.from(noId.querySelectorAll(".chip.s4")).map((c) => c.dataset.status) : [],
};
"""


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("TEST_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (TEST_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def output_dir() -> Path:
    folder = Path(os.environ.get("TEST_OUTPUT_DIR") or REPO / ".test-output")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    for program, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(program, os.X_OK):
            unavailable(f"{program} is missing (apt-get install {package})")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install selenium)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROMIUM_ARGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


class Load:
    """A few concurrent clients for about LOAD_SECONDS, each request on a new connection (so the kernel
    spreads them over the workers); counts every answer by route."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.deadline = time.monotonic() + LOAD_SECONDS
        self.sent: Counter[str] = Counter()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(n,), daemon=True) for n in range(CLIENTS)]

    def client(self, number: int) -> None:
        with httpx.Client(base_url=self.base, headers={"Connection": "close"}, timeout=10) as client:
            for count in range(MAX_PER_CLIENT):
                if time.monotonic() >= self.deadline:
                    return
                self.get(client, ROUTE, PATIENT)
                if count % 5 == 0:
                    self.get(client, "health.health", "/health")
                if number == 0 and count % 10 == 5:
                    self.get(client, "eligibility.patient_check_no_id", NO_ID)

    def get(self, client: httpx.Client, route: str, path: str) -> None:
        try:
            status = client.get(path).status_code
        except httpx.HTTPError as error:  # the count would be unknowable: the test fails on it
            with self.lock:
                self.errors.append(f"{path}: {error!r}")
            return
        with self.lock:
            self.sent[route] += 1
            self.statuses[route, status] += 1

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=LOAD_SECONDS + 15)
        assert not any(thread.is_alive() for thread in self.threads), "the load did not stop"


def requests_total(base: str, route: str) -> int:
    text = httpx.get(f"{base}/_simulator/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return int(sum(s.value for s in families["simulator_requests"].samples if s.labels["route"] == route))


def wait_for(
    driver: WebDriver, ready: Callable[[dict[str, Any]], bool], timeout: float, what: str
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        page: dict[str, Any] = driver.execute_script(PAGE_STATE, ROUTE)
        if ready(page):
            return page
        if time.monotonic() > deadline:
            raise AssertionError(f"the dashboard did not show {what} within {timeout} s: {page}")
        time.sleep(0.2)


def test_the_dashboard_follows_a_load_test_to_the_exact_count(serve: Serve, browser: WebDriver) -> None:
    base = serve(
        {
            "SIMULATOR_WORKERS": "2",
            "SIMULATOR_PLUGINS": "health,eligibility,apim_oauth",
            "ELID_DELAY_SECONDS": "0.2",
            "SIMULATOR_ADMIN_TOKEN": TOKEN,
        }
    )
    load = Load(base)
    load.start()
    try:
        browser.get(f"{base}/_simulator/")
        assert browser.title.startswith("api-simulator")
        during = wait_for(
            browser,
            lambda p: (
                p["updates"] >= 4 and p["ratePoints"] >= 3 and p["latencyPoints"] >= 3 and p["liveRate"] > 1
            ),
            timeout=LOAD_SECONDS,
            what="several polls, charted, with a live rate",
        )
        assert during["state"] == "live"
        assert during["workers"] == "2"
        assert during["delay"] == "fixed 200 ms"
        assert during["journalRows"] > 0
    finally:
        load.join()

    assert not load.errors
    assert load.statuses[ROUTE, 200] == load.sent[ROUTE] > 20
    sent = load.sent[ROUTE]
    assert requests_total(base, ROUTE) == sent
    after = wait_for(
        browser, lambda p: p["total"] == str(sent), timeout=8, what=f"{sent} requests for {ROUTE}"
    )
    assert after["state"] == "live"
    assert after["error"] == ""
    assert after["badChips"] == ["400"]  # the 400s of the other route, highlighted as 4xx
    assert requests_total(base, ROUTE) == sent

    # Steered while it runs (the control API): the page shows the delay and the fault now in force, and
    # the requests the fault fired on.
    admin = {"authorization": f"Bearer {TOKEN}"}
    delay = {"policy": "fixed", "seconds": 0.05, "route": ROUTE}
    httpx.put(f"{base}/_simulator/plugins/eligibility/delay", json=delay, headers=admin).raise_for_status()
    rules = [{"kind": "status", "status": 503, "probability": 0.5, "route": ROUTE}]
    httpx.put(f"{base}/_simulator/plugins/eligibility/faults", json=rules, headers=admin).raise_for_status()
    statuses = Counter(httpx.get(f"{base}{PATIENT}").status_code for _ in range(40))
    assert set(statuses) == {200, 503}
    wait_for(browser, lambda p: p["delay"] == "fixed 50 ms", timeout=8, what="the changed delay")
    expected = {"armed": "faults: status 50%", "fired": {"status": str(statuses[503])}}
    deadline = time.monotonic() + 8
    while (shown := browser.execute_script(FAULTS_STATE, ROUTE)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)  # the page polls once a second
    assert shown == expected

    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []

    screenshot = output_dir() / "dashboard.png"
    assert browser.save_screenshot(str(screenshot))
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 30_000, f"{screenshot} is only {len(data)} bytes"
