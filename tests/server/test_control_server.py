"""Runtime control and faults against real ``simulator serve`` processes (two workers): a change made through
one worker is in force in every worker, a replacement worker adopts it, and each fault kind does to a raw
socket what the docs say, at its seeded rate."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import clean_env, start_server, stop_servers
from tests.procs import workers_of

pytestmark = pytest.mark.server
Serve = Callable[..., str]
TOKEN = "server-test-admin-token-0123456789"
ADMIN = {"authorization": f"Bearer {TOKEN}"}
PATIENT = "/eligibility-signposting-api/patient-check/9686368973"
BASE_ENV = {
    "SIMULATOR_WORKERS": "2",
    "SIMULATOR_PLUGINS": "health,eligibility",
    "SIMULATOR_ADMIN_TOKEN": TOKEN,
    "SIMULATOR_SEED": "42",
}


def asked_by_worker(base: str, count: int) -> dict[int, set[float]]:
    """``count`` requests on new connections (the kernel spreads them), then each worker's asked delays."""
    httpx.delete(f"{base}/_simulator/requests").raise_for_status()
    for _ in range(count):
        assert httpx.get(f"{base}{PATIENT}").status_code == 200
    entries = httpx.get(f"{base}/_simulator/requests", params={"limit": count}).json()["requests"]
    seen: dict[int, set[float]] = {}
    for entry in entries:
        seen.setdefault(entry["worker"], set()).add(entry["delay_asked"])
    return seen


def test_a_change_through_one_worker_is_in_force_in_both(serve: Serve) -> None:
    base = serve(BASE_ENV)
    assert asked_by_worker(base, 40).keys() == set(workers_of_base(base))
    started = time.monotonic()
    changed = httpx.put(
        f"{base}/_simulator/plugins/eligibility/delay",
        json={"policy": "fixed", "seconds": 0.05},
        headers=ADMIN,
    )
    took = time.monotonic() - started
    assert changed.status_code == 200, changed.text
    assert changed.json()["workers"] == 2
    seen = asked_by_worker(base, 40)
    assert len(seen) == 2  # both workers answered
    assert all(asked == {0.05} for asked in seen.values()), seen
    print(f"\ndelay change in force in 2 workers when its answer came: {took * 1000:.1f} ms")
    assert took < 1.0


def workers_of_base(base: str) -> list[int]:
    entries = httpx.get(f"{base}/_simulator/requests", params={"limit": 100}).json()["requests"]
    return sorted({e["worker"] for e in entries})


def test_a_replacement_worker_adopts_the_others_state(tmp_path: Path) -> None:
    proc, base = start_server(BASE_ENV, tmp_path / "server.log")
    try:
        rules = [{"kind": "status", "status": 503, "probability": 1, "route": "eligibility.patient_check"}]
        armed = httpx.put(f"{base}/_simulator/plugins/eligibility/faults", json=rules, headers=ADMIN)
        assert armed.status_code == 200
        before = workers_of(proc.pid)
        time.sleep(
            5.5
        )  # the supervisor replaces a worker that has served for 5 s (one dying sooner stops it)
        os.kill(before[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = workers_of(proc.pid)
            if len(now) == 2 and before[0] not in now:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the worker was not replaced")
        time.sleep(1.5)  # the replacement's start-up, including its question to its peer
        statuses = Counter(httpx.get(f"{base}{PATIENT}").status_code for _ in range(40))
        assert statuses == {503: 40}, statuses
        journal = httpx.get(f"{base}/_simulator/requests", params={"limit": 40}).json()["requests"]
        assert len({e["worker"] for e in journal}) == 2  # the replacement answered some of them
    finally:
        stop_servers([proc])


# -- each fault kind, from a raw socket ----------------------------------------------------------------------

HANG = 0.3
SLOW = 0.3


async def one_request(port: int) -> tuple[str, float]:
    """What a raw client sees of one ``Connection: close`` request: ok, reset, closed (nothing arrived:
    a close or a hang), truncated or slow, and how long it took. Told apart by what arrived, not by how long
    it took (a loaded machine slows every answer, a close included): a slow body spreads its bytes over its
    seconds; a hang is a close that never comes sooner than its seconds, checked by the test."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {PATIENT} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    data = b""
    first = last = 0.0
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            last = time.monotonic()
            first = first or last
            data += chunk
    except ConnectionResetError:
        return "reset", time.monotonic() - started
    finally:
        writer.close()
    took = time.monotonic() - started
    if not data:
        return "closed", took
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    if len(body) < length:
        return "truncated", took
    return ("slow" if last - first >= SLOW * 0.8 else "ok"), took


async def many(port: int, count: int) -> list[tuple[str, float]]:
    gate = asyncio.Semaphore(50)

    async def limited() -> tuple[str, float]:
        async with gate:
            return await one_request(port)

    return await asyncio.gather(*(limited() for _ in range(count)))


@pytest.mark.parametrize(
    ("rule", "seen_as"),
    [
        ({"kind": "reset"}, "reset"),
        ({"kind": "close"}, "closed"),
        ({"kind": "hang", "seconds": HANG}, "closed"),
        ({"kind": "slow_body", "seconds": SLOW}, "slow"),
        ({"kind": "truncate"}, "truncated"),
    ],
)
def test_each_connection_fault_fires_at_its_seeded_rate(
    serve: Serve, tmp_path: Path, rule: dict[str, object], seen_as: str
) -> None:
    base = serve(BASE_ENV)
    port = int(base.rsplit(":", 1)[1])
    probability, count = 0.2, 2000
    armed = httpx.put(
        f"{base}/_simulator/plugins/eligibility/faults",
        json=[{**rule, "probability": probability}],
        headers=ADMIN,
    )
    assert armed.status_code == 200, armed.text
    outcomes = asyncio.run(many(port, count))
    kinds = Counter(kind for kind, _ in outcomes)
    assert set(kinds) <= {"ok", seen_as}, kinds
    mean, sd = count * probability, math.sqrt(count * probability * (1 - probability))
    assert mean - 3.29 * sd <= kinds[seen_as] <= mean + 3.29 * sd, kinds
    print(f"\n{rule['kind']}: {kinds[seen_as]} of {count} (expected {mean:.0f} +- {3.29 * sd:.0f})")
    if rule["kind"] in ("hang", "slow_body"):
        durations = [took for kind, took in outcomes if kind == seen_as]
        assert max(durations) < 2.0  # bounded by the rule
        if rule["kind"] == "hang":
            assert min(durations) >= HANG * 0.95  # held for its seconds, never closed early
    text = httpx.get(f"{base}/_simulator/metrics").text
    fired = [
        line
        for line in text.splitlines()
        if line.startswith("simulator_faults_total{") and f'kind="{rule["kind"]}"' in line
    ]
    assert fired, text
    assert float(fired[0].rsplit(" ", 1)[1]) == kinds[seen_as]
    # The server is still healthy, and no fault left an error in its log.
    assert httpx.get(f"{base}/health").status_code == 200
    log = (tmp_path / "server-0.log").read_text()
    assert "Traceback" not in log
    assert " ERROR " not in log


def ctl(base: str, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = clean_env({"SIMULATOR_ADMIN_TOKEN": token} if token else {})
    command = [str(Path(sys.executable).with_name("simulator")), "ctl", "--url", base, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)


def test_simulator_ctl_steers_a_running_server(serve: Serve) -> None:
    base = serve(BASE_ENV)
    done = ctl(base, "set-delay", "eligibility", "0.05", "--route", "eligibility.patient_check")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["in_force"]["eligibility.patient_check"] == {
        "policy": "fixed",
        "seconds": 0.05,
    }
    shown = json.loads(ctl(base, "get-delay", "eligibility", token=None).stdout)
    assert shown["routes"] == {"eligibility.patient_check": {"policy": "fixed", "seconds": 0.05}}
    rules = '[{"kind": "status", "status": 429, "probability": 1}]'
    assert ctl(base, "set-faults", "eligibility", rules).returncode == 0
    assert httpx.get(f"{base}{PATIENT}").status_code == 429
    assert json.loads(ctl(base, "get-faults", "eligibility").stdout)["armed"][0]["kind"] == "status"
    assert ctl(base, "reset").returncode == 0
    assert httpx.get(f"{base}{PATIENT}").status_code == 200
    refused = ctl(base, "set-faults", "eligibility", "[]", token=None)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert "401" in refused.stderr
    bad = ctl(base, "set-faults", "eligibility", '[{"kind": "boom", "probability": 1}]')
    assert bad.returncode == 1
    assert "422 invalid faults: rule 0: 'kind' must be one of" in bad.stderr
    not_json = ctl(base, "set-delay", "eligibility", "{nope")
    assert not_json.returncode == 1
    assert "is not JSON" in not_json.stderr
    gone = ctl("http://127.0.0.1:9", "get-delay", "eligibility")
    assert gone.returncode == 2
    assert "did not answer" in gone.stderr


# -- the capacity model --------------------------------------------------------------------------------------

CAPACITY, SERVICE = 5, 0.2  # 5 in service at once, 0.2 s each: 25 requests/s at most


def capacity_server(serve: Serve, queue: int) -> str:
    base = serve({**BASE_ENV, "SIMULATOR_WORKERS": "1", "ELID_DELAY_SECONDS": str(SERVICE)})
    model = {"concurrency": CAPACITY, "queue": queue, "route": "eligibility.patient_check"}
    armed = httpx.put(f"{base}/_simulator/plugins/eligibility/capacity", json=model, headers=ADMIN)
    assert armed.status_code == 200, armed.text
    assert armed.json()["in_force"]["eligibility.patient_check"]["concurrency"] == CAPACITY
    return base


def test_capacity_queues_a_closed_loop_of_four_times_its_concurrency(serve: Serve) -> None:
    # 4C clients, each sending its next request when the last is answered, queue large enough for them all:
    # Little's law predicts latency = clients / throughput = 4C / (C / S) = 4 S, and no rejection.
    base = capacity_server(serve, queue=1000)
    clients, seconds = 4 * CAPACITY, 6.0

    async def load() -> list[tuple[int, float]]:
        done: list[tuple[int, float]] = []
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:

            async def one() -> None:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    started = time.monotonic()
                    answer = await client.get(PATIENT)
                    done.append((answer.status_code, time.monotonic() - started))

            await asyncio.gather(*(one() for _ in range(clients)))
        return done

    done = asyncio.run(load())
    steady = [took for status, took in done[clients:]]  # after the first round fills the queue
    assert {status for status, _ in done} == {200}
    mean = sum(steady) / len(steady)
    predicted = clients / CAPACITY * SERVICE
    print(
        f"\nclosed loop of {clients}: mean latency {mean * 1000:.0f} ms, predicted {predicted * 1000:.0f} ms"
    )
    assert abs(mean - predicted) <= 0.1 * predicted
    throughput = len(done) / seconds
    assert abs(throughput - CAPACITY / SERVICE) <= 0.1 * CAPACITY / SERVICE + 4, throughput


def test_capacity_rejects_what_an_open_loop_of_four_times_its_rate_overflows(serve: Serve) -> None:
    # Requests arrive at 4x what the model serves (100/s against 25/s); the queue holds Q. Predicted: the
    # share rejected is 1 - C / (lambda S) = 75 % once the queue is full (less at first: C + Q are admitted
    # at once), each with the fake's 503; an admitted request waits Q / C services, then its own: S (1 + Q/C).
    queue, rate, seconds = 10, 4 * CAPACITY / SERVICE, 6.0
    base = capacity_server(serve, queue=queue)

    async def load() -> list[tuple[int, float, float]]:
        done: list[tuple[int, float, float]] = []
        async with httpx.AsyncClient(
            base_url=base, timeout=30, limits=httpx.Limits(max_connections=400)
        ) as client:

            async def one(at: float) -> None:
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                started = time.monotonic()
                answer = await client.get(PATIENT)
                done.append((answer.status_code, started - begin, time.monotonic() - started))
                if answer.status_code == 503:
                    assert answer.json()["resourceType"] == "OperationOutcome"

            begin = time.monotonic() + 0.5
            await asyncio.gather(*(one(begin + i / rate) for i in range(int(rate * seconds))))
        return done

    done = asyncio.run(load())
    later = [(status, took) for status, at, took in done if at >= 2.0]  # the queue full by then
    rejected = sum(1 for status, _ in later if status == 503) / len(later)
    admitted = [took for status, took in later if status == 200]
    latency = sum(admitted) / len(admitted)
    predicted_share = 1 - CAPACITY / (rate * SERVICE)
    predicted_latency = SERVICE * (1 + queue / CAPACITY)
    print(
        f"\nopen loop at {rate:.0f}/s: {rejected:.1%} rejected (predicted {predicted_share:.0%}), admitted "
        f"mean latency {latency * 1000:.0f} ms (predicted {predicted_latency * 1000:.0f} ms)"
    )
    assert abs(rejected - predicted_share) <= 0.1 * predicted_share
    assert abs(latency - predicted_latency) <= 0.1 * predicted_latency
    text = httpx.get(f"{base}/_simulator/metrics").text
    (line,) = [
        ln
        for ln in text.splitlines()
        if ln.startswith("simulator_capacity_rejected_total{") and 'route="eligibility.patient_check"' in ln
    ]
    assert float(line.rsplit(" ", 1)[1]) == sum(1 for status, _, _ in done if status == 503)


# -- scenarios -----------------------------------------------------------------------------------------------

SCENARIO_YAML = """\
name: brownout
phases:
  - {at: 0, name: normal}
  - at: 1.5
    name: slow and failing
    plugins:
      eligibility:
        delay: {policy: fixed, seconds: 0.05, route: eligibility.patient_check}
        faults: [{kind: status, status: 503, probability: 0.5}]
  - {at: 3.0, name: recovered, reset: true}
"""


def phase_now(base: str) -> str | None:
    for line in httpx.get(f"{base}/_simulator/metrics").text.splitlines():
        if line.startswith("simulator_scenario_phase{"):
            return line.split('phase="', 1)[1].split('"', 1)[0]
    return None


def test_a_scenario_file_switches_its_phases_on_time_in_every_worker(serve: Serve, tmp_path: Path) -> None:
    timeline = tmp_path / "brownout.yaml"
    timeline.write_text(SCENARIO_YAML)
    base = serve({**BASE_ENV, "SIMULATOR_SCENARIO": str(timeline)})
    # The first worker starts it as it starts; the other may answer a moment before.
    deadline = time.monotonic() + 5
    while (started := httpx.get(f"{base}/_simulator/scenario").json()["started"]) is None:
        assert time.monotonic() < deadline, "the scenario did not start"
        time.sleep(0.02)
    seen: dict[str, float] = {}
    while time.time() < started + 4.0:
        phase = phase_now(base)  # a new connection each time: either worker answers
        if phase is not None and phase not in seen:
            seen[phase] = time.time() - started
        if phase == "slow and failing" and "checked" not in seen:
            seen["checked"] = 0
            with httpx.Client() as client:  # one connection: 12 answers of 50 ms, well inside the phase
                statuses = Counter(client.get(f"{base}{PATIENT}").status_code for _ in range(12))
            assert set(statuses) == {200, 503}, statuses
            entries = httpx.get(f"{base}/_simulator/requests", params={"status": "200", "limit": 5}).json()
            assert {e["delay_asked"] for e in entries["requests"]} == {0.05}
        time.sleep(0.02)
    assert {httpx.get(f"{base}{PATIENT}").status_code for _ in range(20)} == {200}
    scenario = httpx.get(f"{base}/_simulator/scenario").json()
    assert scenario["phase"] == "recovered"
    assert [p["name"] for p in scenario["phases"]] == ["normal", "slow and failing", "recovered"]
    late = {p["name"]: p["entered"] - started - p["at"] for p in scenario["phases"]}
    print(f"\nphases entered late by (s): {late}; first seen in the metrics at (s after the start): {seen}")
    assert all(0 <= lateness <= 0.1 for lateness in late.values()), late
    # Each was visible in the metrics soon after (a scrape takes tens of milliseconds; the first phase was
    # in force before this test began to look).
    assert "normal" in seen
    for phase in scenario["phases"][1:]:
        assert 0 <= seen[phase["name"]] - phase["at"] <= 0.3, seen


def test_a_scenario_posted_at_runtime_runs_and_a_reset_stops_it(serve: Serve) -> None:
    base = serve(BASE_ENV)
    timeline = {
        "name": "spike",
        "phases": [
            {
                "at": 0,
                "name": "failing",
                "plugins": {"eligibility": {"faults": [{"kind": "status", "status": 500, "probability": 1}]}},
            },
            {"at": 30, "name": "never reached", "reset": True},
        ],
    }
    started = httpx.put(f"{base}/_simulator/scenario", json=timeline, headers=ADMIN)
    assert started.status_code == 200, started.text
    time.sleep(0.3)
    assert phase_now(base) == "failing"
    assert httpx.get(f"{base}{PATIENT}").status_code == 500
    assert httpx.post(f"{base}/_simulator/reset", headers=ADMIN).status_code == 200
    assert phase_now(base) is None
    assert httpx.get(f"{base}{PATIENT}").status_code == 200
    bad = httpx.put(f"{base}/_simulator/scenario", json={"phases": [{"at": 5}, {"at": 1}]}, headers=ADMIN)
    assert bad.status_code == 422
    assert "phase 1: 'at' must be later than the phase before (5 s)" in bad.json()["detail"]
    unauthorised = httpx.put(f"{base}/_simulator/scenario", json=timeline)
    assert unauthorised.status_code == 401


def test_a_bad_scenario_file_stops_start_up_in_one_line(tmp_path: Path) -> None:
    timeline = tmp_path / "bad.json"
    timeline.write_text('{"phases": [{"at": 0, "plugins": {"eligibility": {"faults": [{"kind": "boom"}]}}}]}')
    env = clean_env({**BASE_ENV, "SIMULATOR_SCENARIO": str(timeline), "SIMULATOR_PORT": "0"})
    done = subprocess.run(
        [str(Path(sys.executable).with_name("simulator")), "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(
        f"simulator: error: invalid setting SIMULATOR_SCENARIO={timeline}: phase 0: plugin eligibility:"
    )
