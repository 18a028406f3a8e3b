"""Metrics, journal, access log and CloudWatch records, in process: the arithmetic and the formats."""

from __future__ import annotations

import io
import itertools
import json
import math
import tracemalloc
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import plugins.health
from simulator.accesslog import AccessLog
from simulator.cloudwatch import Emitter, records
from simulator.http import Request
from simulator.journal import ENTRY_MAX_BYTES, PATH_CHARS, Query, masked
from simulator.metrics import (
    LATENCY_BUCKETS,
    OVERSHOOT_BUCKETS,
    Metrics,
    bucket_quantile,
    fine_index,
    fine_value,
    merge,
    percentile,
)
from simulator.observer import Observer
from simulator.prometheus import render
from simulator.settings import CoreSettings
from simulator.stats import summary, windowed


def request(
    path: str = "/x", headers: list[tuple[bytes, bytes]] | None = None, query: bytes = b""
) -> Request:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"method": "GET", "path": path, "query_string": query, "headers": headers or []}
    return Request(scope, receive, {})


def observer(**core: Any) -> Observer:
    return Observer(CoreSettings(**core), Metrics())


def test_fine_buckets_are_half_a_percent_wide() -> None:
    for seconds in (0.0002, 0.0031, 0.05, 2.0, 2.003, 17.5):
        upper = fine_value(fine_index(seconds))
        assert seconds <= upper <= seconds * 1.0051
    assert fine_index(0.00005) == 0


def test_the_overshoot_buckets_resolve_a_few_milliseconds() -> None:
    assert OVERSHOOT_BUCKETS[:3] == (0.0005, 0.001, 0.0015)
    widths = [b - a for a, b in itertools.pairwise(OVERSHOOT_BUCKETS) if b <= 0.05]
    assert max(widths) <= 0.001 + 1e-12
    assert list(OVERSHOOT_BUCKETS) == sorted(set(OVERSHOOT_BUCKETS))


def test_record_counts_statuses_asked_overshoot_and_delivered() -> None:
    watch = observer(journal_size=0)
    stats = watch.metrics.route("demo", "demo.slow")
    watch.record(stats, request(), 200, 2.0, 10.0, 12.0042)  # asked 2 s, delivered 2.0042 s
    watch.record(stats, request(), 200, 2.0, 20.0, 21.9)  # never early in practice; counted as 0 overshoot
    watch.record(stats, request(), 503, 0.0, 30.0, 30.0002)
    series = stats.methods["GET"]
    assert series.statuses == {200: 2, 503: 1}
    assert series.asked_buckets()[LATENCY_BUCKETS.index(2.0)] == 2
    assert series.asked_buckets()[0] == 1  # no delay asked: counted in the first bucket, at snapshot time
    assert series.overshoot[OVERSHOOT_BUCKETS.index(0.0045)] == 1  # 4 ms lands in (4 ms, 4.5 ms]
    assert series.overshoot[0] == 2  # 0 and 0.2 ms
    assert math.isclose(series.delivered_sum, 2.0042 + 1.9 + 0.0002)
    assert sum(series.delivered_buckets()) == 3


def test_snapshots_of_two_workers_add_up_and_render_as_prometheus_text() -> None:
    one, two = observer(journal_size=0), observer(journal_size=0)
    for watch, n in ((one, 3), (two, 5)):
        stats = watch.metrics.route("eligibility", "eligibility.patient_check")
        for _ in range(n):
            watch.record(stats, request(), 200, 0.5, 0.0, 0.502)
        watch.metrics.route("health", "health.health")
    merged = merge([one.metrics.snapshot(), two.metrics.snapshot()])
    text = render(merged, seed=7).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = families["simulator_requests"]
    (sample,) = [s for s in requests.samples if s.labels["route"] == "eligibility.patient_check"]
    assert sample.value == 8
    assert sample.labels == {
        "plugin": "eligibility",
        "route": "eligibility.patient_check",
        "method": "GET",
        "status": "200",
    }
    assert families["simulator_workers"].samples[0].value == 2
    for name in (
        "simulator_response_seconds",
        "simulator_delay_asked_seconds",
        "simulator_overshoot_seconds",
    ):
        count = [s for s in families[name].samples if s.name == f"{name}_count"]
        assert [s.value for s in count] == [8]
        assert set(count[0].labels) == {"plugin", "route", "method"}
    assert 'simulator_in_flight{plugin="health",route="health.health"} 0.0' in text
    assert 'simulator_info{seed="7"' in text


def test_bucket_quantile_interpolates_as_prometheus_does() -> None:
    counts = [0] * (len(OVERSHOOT_BUCKETS) + 1)
    counts[OVERSHOOT_BUCKETS.index(0.002)] = 99  # (1.5, 2] ms
    counts[OVERSHOOT_BUCKETS.index(0.02)] = 1  # (19.5, 20] ms
    assert bucket_quantile(OVERSHOOT_BUCKETS, counts, 0.5) == pytest.approx(0.0015 + 0.0005 * 50 / 99)
    assert bucket_quantile(OVERSHOOT_BUCKETS, counts, 0.995) == pytest.approx(0.0195 + 0.0005 * 0.5)
    assert bucket_quantile(OVERSHOOT_BUCKETS, [0] * len(counts), 0.5) is None
    assert percentile({}, 0.99) is None


def test_windows_subtract_the_copy_kept_at_their_start() -> None:
    clock = [1000.0]
    metrics = Metrics(clock=lambda: clock[0])
    watch = Observer(CoreSettings(journal_size=0), metrics)
    stats = metrics.route("p", "p.r")
    for _ in range(10):
        watch.record(stats, request(), 200, 0.0, 0.0, 0.001)
    metrics.keep_history()  # t = 1000
    clock[0] = 1070.0
    for _ in range(4):
        watch.record(stats, request(), 500, 0.0, 0.0, 0.2)
    snapshot = metrics.snapshot(history=True)
    routes, length = windowed(snapshot, 60)
    assert length == 70
    row = summary(routes, length)["p.r"]
    assert row["requests"] == 4
    assert row["statuses"] == {"500": 4}
    assert row["delivered"]["p50"] == pytest.approx(0.2, rel=0.006)
    assert row["rate"] == pytest.approx(4 / 70)


async def test_the_journal_masks_secrets_cuts_long_values_and_filters() -> None:
    watch = observer(journal_size=3, journal_bodies=True, journal_body_bytes=200)
    stats = watch.metrics.route("apim_oauth", "apim_oauth.token")
    long_path = "/x" * 1000
    req = request(long_path, [(b"x-request-id", b"r" * 500), (b"x-correlation-id", b"c-1")], b"a=b")
    req._body = b"grant_type=client_credentials&client_assertion=eyJhbGci.eyJzdWIi.c2ln&scope=x"
    watch.record(stats, req, 400, 1.0, 0.0, 1.25)
    (entry,) = (await watch.journal.find(Query())).entries
    data = entry.as_json()
    assert len(data["path"]) == PATH_CHARS
    assert len(data["request_id"]) == 128
    assert data["correlation_id"] == "c-1"
    assert data["query"] == "a=b"
    assert data["body"] == "grant_type=client_credentials&client_assertion=***&scope=x"
    assert (data["delay_asked"], data["latency"], data["overshoot"]) == (1.0, 1.25, 0.25)
    assert data["time"].endswith("Z")
    for status in (200, 404, 503):
        watch.record(stats, request(), status, 0.0, 0.0, 0.001)

    async def statuses(query: Query) -> list[int]:
        return [e.status for e in (await watch.journal.find(query)).entries]

    assert await statuses(Query()) == [503, 404, 200]  # newest first; the ring kept 3
    assert await statuses(Query(status_class=5)) == [503]
    assert await statuses(Query(route="nope")) == []
    assert len(await statuses(Query(limit=2))) == 2
    cut = await watch.journal.find(Query(), max_bytes=700)  # room for two entries of ~300 bytes
    assert cut.truncated
    assert len(cut.entries) == 2
    assert watch.journal.clear() == 3


def test_json_bodies_and_bearer_tokens_are_masked() -> None:
    text = masked(
        b'{"subject_token": "eyJ.x.y", "nested": [{"code": "abc"}], "note": "Bearer abc.def"}', 1000
    )
    assert json.loads(text) == {"subject_token": "***", "nested": [{"code": "***"}], "note": "Bearer ***"}
    assert masked(b"x" * 5000, 100) == "x" * 100
    assert masked(b'{"Password": "s3cret", "user": "u"}', 1000) == '{"Password":"***","user":"u"}'
    # Broken JSON (cut, or a careless client's), and JSON nested past what is walked: still masked.
    cut = masked(b'{"user": "u", "password": "s3cret", "client_secret": "abc', 1000)
    assert "s3cret" not in cut
    assert "abc" not in cut
    assert '"user": "u"' in cut
    deep = b'{"a":' * 1000 + b'{"password": "s3cret"}' + b"}" * 1000
    assert "s3cret" not in masked(deep, 100_000)
    assert "s3cret" not in masked(b'[[[[{"password": "s3cret"}]]]]' * 1, 1000)


def test_the_journal_stays_within_its_byte_bound_whatever_is_sent() -> None:
    watch = observer(journal_size=10_000)
    stats = watch.metrics.route("p", "p.r")
    huge = [(b"x-request-id", b"i" * 8000), (b"x-correlation-id", b"c" * 8000)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(100_000):
        watch.record(stats, request(f"/{i}" + "p" * 4000, huge, b"q" * 4000), 200, 0.0, 0.0, 0.001)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(watch.journal) == 10_000
    assert used < 10_000 * ENTRY_MAX_BYTES, used


def test_the_access_log_writes_batched_text_and_json_lines() -> None:
    for fmt in ("text", "json"):
        out = io.StringIO()
        log = AccessLog(fmt, out)  # type: ignore[arg-type]
        watch = observer(journal_size=0, access_log=fmt)
        watch.access_log = log
        watch._entries = True
        stats = watch.metrics.route("eligibility", "eligibility.patient_check")
        watch.record(stats, request("/p", [(b"x-request-id", b"r-1")]), 200, 2.0, 0.0, 2.0031)
        assert out.getvalue() == ""  # nothing written on the request's path
        log.flush()
        line = out.getvalue().strip()
        if fmt == "json":
            data = json.loads(line)
            assert {k: data[k] for k in ("type", "method", "path", "status", "route", "request_id")} == {
                "type": "access",
                "method": "GET",
                "path": "/p",
                "status": 200,
                "route": "eligibility.patient_check",
                "request_id": "r-1",
            }
            assert data["overshoot"] == pytest.approx(0.0031)
        else:
            assert (
                " GET /p 200 route=eligibility.patient_check asked=2.000 latency=2.0031 overshoot=0.0031 "
                in line
            )
            assert line.endswith("request_id=r-1 correlation_id=-")


def test_emf_records_follow_the_embedded_metric_format() -> None:
    watch = observer(journal_size=0)
    stats = watch.metrics.route("eligibility", "eligibility.patient_check")
    watch.metrics.route("eligibility", "eligibility.status")  # idle: no record (a billed metric each)
    for _ in range(100):
        watch.record(stats, request(), 200, 2.0, 0.0, 2.0028)
    made = records(merge([watch.metrics.snapshot()])["routes"], "api-simulator", "fake-api", 1796169000.5)
    task, route = made
    assert task["_aws"]["Timestamp"] == 1796169000500
    (directive,) = task["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "api-simulator"
    assert directive["Dimensions"] == [["Service"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "Requests": "Count",
        "InFlight": "Count",
        "OvershootP99": "Milliseconds",
        "DeliveredP99": "Milliseconds",
    }
    assert (task["Service"], task["Requests"], task["InFlight"]) == ("fake-api", 100, 0)
    assert 2.5 <= task["OvershootP99"] <= 3.0
    assert route["Route"] == "eligibility.patient_check"
    assert route["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Service", "Route"]]
    out = io.StringIO()
    emitter = Emitter("ns", "svc", out)
    emitter.emit([watch.metrics.snapshot()])
    again = emitter.emit([watch.metrics.snapshot()])
    assert again[0]["Requests"] == 0  # the second minute saw no new request
    assert "OvershootP99" not in again[0]
    assert len(again) == 1  # the task's record only: the route was idle
    assert len(out.getvalue().splitlines()) == len(made) + 1


def test_emf_intervals_are_taken_worker_by_worker() -> None:
    # A sum over workers can go down (a peer that missed the scrape): each worker is diffed with itself.
    first, second = observer(journal_size=0), observer(journal_size=0)
    route = "eligibility.patient_check"

    def serve(watch: Observer, n: int) -> None:
        stats = watch.metrics.route("eligibility", route)
        for _ in range(n):
            watch.record(stats, request(), 200, 2.0, 0.0, 2.004)

    def snapshot(watch: Observer, pid: int) -> dict[str, Any]:
        return {**watch.metrics.snapshot(), "pid": pid}

    emitter = Emitter("ns", "svc", io.StringIO())
    serve(first, 10)
    serve(second, 10)
    assert emitter.emit([snapshot(first, 1), snapshot(second, 2)])[0]["Requests"] == 20
    serve(first, 5)
    serve(second, 5)
    missed = emitter.emit([snapshot(first, 1)])[0]  # worker 2 did not answer in time
    assert missed["Requests"] == 5
    back = emitter.emit([snapshot(first, 1), snapshot(second, 2)])[0]
    assert back["Requests"] == 5  # worker 2's five, counted late rather than lost or doubled
    assert 3.5 <= back["OvershootP99"] <= 4.5
    replacement = observer(journal_size=0)  # a worker started since the last interval: all of it counts
    serve(replacement, 3)
    assert emitter.emit([snapshot(first, 1), snapshot(replacement, 3)])[0]["Requests"] == 3


async def test_metrics_off_records_nothing_and_journal_zero_keeps_nothing() -> None:
    from simulator.testing import AsyncSimulatorClient

    env = {"SIMULATOR_METRICS": "false", "SIMULATOR_JOURNAL_SIZE": "0"}
    async with AsyncSimulatorClient({"health": plugins.health}, env=env) as client:
        await client.get("/health")
        text = (await client.get("/_simulator/metrics")).text
        journal = (await client.get("/_simulator/requests")).json()
    assert 'simulator_requests_total{method="GET",plugin="health"' not in text
    assert journal["requests"] == []


async def test_introspection_answers_bad_journal_filters_with_422() -> None:
    from simulator.testing import AsyncSimulatorClient

    async with AsyncSimulatorClient({"health": plugins.health}) as client:
        for bad in ("status=banana", "since=yesterday", "limit=0", "limit=x"):
            response = await client.get(f"/_simulator/requests?{bad}")
            assert response.status_code == 422, bad
        assert (
            await client.get("/_simulator/requests?status=2xx&since=2020-01-01T00:00:00Z")
        ).status_code == 200
