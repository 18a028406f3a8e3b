"""Metrics, journal, access log and CloudWatch records of real ``simulator serve`` processes, two workers
each: every answer sums (or merges) both workers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import start_server, stop_servers
from tests.procs import rss_bytes, workers_of
from tests.rawhttp import keep_alive_load

pytestmark = pytest.mark.server
Serve = Callable[..., str]
PATIENT = "/eligibility-signposting-api/patient-check/9686368973"


def sent(base: str, count: int, path: str = PATIENT) -> None:
    """``count`` requests, each on a new connection, so the kernel spreads them over the workers."""
    for _ in range(count):
        assert httpx.get(f"{base}{path}").status_code == 200


def requests_total(base: str, route: str) -> float:
    text = httpx.get(f"{base}/_simulator/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return sum(s.value for s in families["simulator_requests"].samples if s.labels["route"] == route)


def log_lines(tmp_path: Path) -> list[str]:
    return [line for log in sorted(tmp_path.glob("server-*.log")) for line in log.read_text().splitlines()]


def test_metrics_and_journal_cover_both_workers_and_the_journal_clears(serve: Serve) -> None:
    base = serve({"SIMULATOR_WORKERS": "2", "SIMULATOR_PLUGINS": "health,eligibility"})
    sent(base, 120)
    assert requests_total(base, "eligibility.patient_check") == 120
    metrics = httpx.get(f"{base}/_simulator/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "simulator_workers 2.0" in metrics.text
    journal = httpx.get(f"{base}/_simulator/requests", params={"limit": 500}).json()
    entries = journal["requests"]
    assert len(entries) == 120
    assert len({e["worker"] for e in entries}) == 2  # both workers' rings, merged
    assert [e["time"] for e in entries] == sorted((e["time"] for e in entries), reverse=True)
    assert httpx.get(f"{base}/_simulator/requests", params={"status": "5xx"}).json()["requests"] == []
    assert httpx.delete(f"{base}/_simulator/requests").json() == {"cleared": 120}
    assert httpx.get(f"{base}/_simulator/requests").json()["requests"] == []
    stats = httpx.get(f"{base}/_simulator/plugins").json()
    (eligibility,) = [p for p in stats["plugins"] if p["name"] == "eligibility"]
    (route,) = [r for r in eligibility["routes"] if r["name"] == "eligibility.patient_check"]
    assert route["delivered"]["total"]["requests"] == 120
    assert route["delivered"]["minute"]["delivered"]["p50"] > 0


def test_the_access_log_writes_one_json_line_per_request(serve: Serve, tmp_path: Path) -> None:
    base = serve({"SIMULATOR_PLUGINS": "health,eligibility", "SIMULATOR_ACCESS_LOG": "json"})
    for i in range(5):
        headers = {"X-Request-ID": f"123e4567-e89b-12d3-a456-42661417400{i}"}
        assert httpx.get(f"{base}{PATIENT}", headers=headers).status_code == 200
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in log_lines(tmp_path) if line.startswith('{"type":"access"')]
        if len(lines) == 5 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [line["request_id"][-1] for line in lines] == ["0", "1", "2", "3", "4"]
    assert {line["route"] for line in lines} == {"eligibility.patient_check"}
    assert all(line["latency"] >= 0 and line["status"] == 200 for line in lines)


def test_cloudwatch_records_sum_both_workers(serve: Serve, tmp_path: Path) -> None:
    base = serve(
        {
            "SIMULATOR_WORKERS": "2",
            "SIMULATOR_PLUGINS": "health,eligibility",
            "SIMULATOR_CLOUDWATCH": "emf",
            "SIMULATOR_CLOUDWATCH_SECONDS": "1",
            "SIMULATOR_SERVICE_NAME": "fake-api",
            "ELID_DELAY_SECONDS": "0.05",
        }
    )
    sent(base, 40)
    time.sleep(2.5)
    records: list[dict[str, Any]] = [
        json.loads(line) for line in log_lines(tmp_path) if line.startswith('{"_aws"')
    ]
    task = [r for r in records if r["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Service"]]]
    assert task
    assert {r["Service"] for r in task} == {"fake-api"}
    assert sum(r["Requests"] for r in task) == 40  # each request in exactly one minute's record
    routes = [r for r in records if r.get("Route") == "eligibility.patient_check"]
    assert sum(r["Requests"] for r in routes) == 40
    with_traffic = [r for r in routes if r["Requests"]]
    assert all(50 <= r["DeliveredP99"] < 500 and 0 <= r["OvershootP99"] < 450 for r in with_traffic)


def test_request_bodies_are_journalled_only_when_asked_and_masked(serve: Serve) -> None:
    base = serve(
        {"SIMULATOR_PLUGINS": "apim_oauth", "SIMULATOR_JOURNAL_BODIES": "true", "APIM_VALIDATION": "off"}
    )
    form = {"grant_type": "client_credentials", "client_assertion": "eyJhbGciOi.secret.sig"}
    assert httpx.post(f"{base}/oauth2/token", data=form).status_code == 200
    (entry,) = httpx.get(f"{base}/_simulator/requests").json()["requests"]
    assert entry["body"] == "grant_type=client_credentials&client_assertion=***"
    plain = serve({"SIMULATOR_PLUGINS": "apim_oauth", "APIM_VALIDATION": "off"})
    assert httpx.post(f"{plain}/oauth2/token", data=form).status_code == 200
    assert httpx.get(f"{plain}/_simulator/requests").json()["requests"][0]["body"] is None


@pytest.mark.slow
def test_the_journal_stays_bounded_in_memory_under_100000_requests(tmp_path: Path) -> None:
    """Two workers with the default journal (10,000 entries each) and bodies on, fed requests whose every
    journalled field is over its cut (long paths, queries, identifiers, 3 KB bodies): the workers' memory
    after 100,000 requests is what it was once their rings were full."""
    env = {
        "SIMULATOR_WORKERS": "2",
        "SIMULATOR_PLUGINS": "health,eligibility,apim_oauth",
        "SIMULATOR_JOURNAL_BODIES": "true",
    }
    proc, base = start_server(env, tmp_path / "server.log")
    try:
        host, port = base.removeprefix("http://").split(":")
        long_id = "x" * 1000
        messages = [
            f"GET {PATIENT}?{'q' * 2000}={{i}} HTTP/1.1\r\nHost: s\r\nX-Request-ID: {long_id}\r\n\r\n",
            f"GET /eligibility-signposting-api/patient-check/{'9' * 1500} HTTP/1.1\r\nHost: s\r\n\r\n",
            "POST /oauth2/token HTTP/1.1\r\nHost: s\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"X-Correlation-ID: {long_id}\r\nContent-Length: 3000\r\n\r\n"
            + ("grant_type=client_credentials&client_assertion=" + "a" * 3000)[:3000],
        ]
        encoded = [m.replace("{i}", str(i)).encode() for i, m in enumerate(messages)]

        def load(count: int) -> dict[int, int]:
            return uvloop.run(keep_alive_load(host, int(port), encoded, count))

        statuses = load(30_000)
        workers = workers_of(proc.pid)
        full = sum(rss_bytes(w) for w in workers)
        for status, n in load(70_000).items():
            statuses[status] = statuses.get(status, 0) + n
        after = sum(rss_bytes(w) for w in workers)
        assert sum(statuses.values()) == 100_000, statuses
        assert 500 not in statuses, statuses
        journal = httpx.get(f"{base}/_simulator/requests", params={"limit": 100_000}, timeout=30).json()
        entries = journal["requests"]
        assert len(entries) == 2 * 10_000  # each worker keeps its newest 10,000
        assert max(len(e["body"] or "") for e in entries) <= 1024
        assert max(len(e["path"]) for e in entries) <= 512
        text = httpx.get(f"{base}/_simulator/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert sum(s.value for s in families["simulator_requests"].samples) == 100_000
        mib = f"{full / 2**20:.1f} MiB with full journals, {after / 2**20:.1f} MiB after 100,000 requests"
        print(f"\nworkers' RSS: {mib}")
        assert after - full < 8 * 2**20, (full, after)
    finally:
        stop_servers([proc])
