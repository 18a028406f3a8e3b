"""A real Prometheus (Debian's ``prometheus``) scrapes a two-worker simulator under a known load: its query
API gives the request totals the load generator sent, exactly, and an overshoot p99 within 2 ms of what the
load generator (wrk, exact percentiles, 200 persistent connections) measured for a 2 s delay.

Needs ``prometheus`` and ``wrk``; without them the test skips, unless ``TEST_REQUIRE_PROMETHEUS=1`` (CI).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = [pytest.mark.server, pytest.mark.slow]
Serve = Callable[..., str]
ROOT = Path(__file__).resolve().parents[2]
PATIENT = "/eligibility-signposting-api/patient-check/9686368973"
CONNECTIONS = 200  # each request delayed 2 s: 100 requests a second


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``prometheus(target) -> API base``: a Prometheus on loopback scraping ``target`` every second."""
    missing = [tool for tool in ("prometheus", "wrk") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("TEST_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(f"{', '.join(missing)} not installed (TEST_REQUIRE_PROMETHEUS=1)")
        pytest.skip(f"{', '.join(missing)} not installed: Prometheus scraping is not exercised")
    procs: list[subprocess.Popen[bytes]] = []
    logs = contextlib.ExitStack()

    def start(target: str) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        log = logs.enter_context((tmp_path / "prometheus.log").open("wb"))
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: simulator\n"
            "    metrics_path: /_simulator/metrics\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
        )
        proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        procs.append(proc)
        api = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{api}/-/ready", timeout=1).status_code == 200:
                    return api
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(
            "prometheus did not become ready: " + (tmp_path / "prometheus.log").read_text()[-2000:]
        )

    with logs:
        yield start
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def query(api: str, promql: str) -> float:
    answer = httpx.get(f"{api}/api/v1/query", params={"query": promql}).json()
    assert answer["status"] == "success", answer
    (result,) = answer["data"]["result"]
    return float(result["value"][1])


def scraped(api: str, promql: str, want: float, seconds: float = 20) -> float:
    """The value once Prometheus has scraped what the simulator counted (or the last value seen)."""
    deadline = time.monotonic() + seconds
    value = -1.0
    while time.monotonic() < deadline:
        try:
            value = query(api, promql)
        except (AssertionError, ValueError):
            value = -1.0
        if value == want:
            return value
        time.sleep(0.5)
    return value


def paced_wrk(base: str, path: str, connections: int, delay_ms: int, seconds: int) -> tuple[float, int]:
    """wrk with ``paced.lua``: ``connections`` persistent connections whose requests arrive evenly; (the exact
    p99 of the delayed requests' latencies in ms, the delayed requests sent)."""
    threads = 2
    out = subprocess.run(
        [
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
            "-s", str(Path(__file__).with_name("paced.lua")), base,
            "--", str(connections // threads), str(delay_ms), path,
        ],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    figures = dict(re.findall(r"^(sent|answered|delayed-p99-us) (\d+)$", out, re.MULTILINE))
    assert "Socket errors" not in out, out
    assert int(figures["answered"]) > 0.7 * int(figures["sent"]), out
    return int(figures["delayed-p99-us"]) / 1000, int(figures["sent"])


def test_prometheus_reads_the_exact_total_and_the_overshoot_the_load_generator_saw(
    serve: Serve, prometheus: Callable[[str], str]
) -> None:
    base = serve(
        {"SIMULATOR_WORKERS": "2", "SIMULATOR_PLUGINS": "health,eligibility", "ELID_DELAY_SECONDS": "2"},
        timeout=20,
    )
    api = prometheus(base.removeprefix("http://"))

    # A known number of undelayed requests, from eight clients (connections spread over both workers).
    def hit(count: int) -> int:
        with httpx.Client() as client:
            return sum(client.get(f"{base}/health").status_code == 200 for _ in range(count))

    with ThreadPoolExecutor(8) as pool:
        answered = sum(pool.map(hit, [125] * 8))
    assert answered == 1000
    total = scraped(api, 'sum(simulator_requests_total{route="health.health"})', 1000)
    assert total == 1000

    # A 2 s delay under 200 connections: wrk's exact p99 against histogram_quantile over the buckets. The
    # requests wrk left unanswered when it stopped are answered (to a closed socket) and counted too.
    p99, sent = paced_wrk(base, PATIENT, CONNECTIONS, 2000, 12)
    client_overshoot = p99 - 2000
    assert scraped(api, 'sum(simulator_requests_total{route="eligibility.patient_check"})', sent) == sent
    buckets = 'simulator_overshoot_seconds_bucket{route="eligibility.patient_check"}'
    promql = f"histogram_quantile(0.99, sum by (le) ({buckets}))"
    prometheus_overshoot = query(api, promql) * 1000
    print(f"\np99 overshoot: wrk {client_overshoot:.2f} ms, Prometheus {prometheus_overshoot:.2f} ms")
    assert abs(prometheus_overshoot - client_overshoot) <= 2.0, (prometheus_overshoot, client_overshoot)
    assert client_overshoot >= 0  # never early
