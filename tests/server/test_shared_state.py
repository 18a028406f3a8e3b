"""``SIMULATOR_STATE_URL``: two simulators ("tasks"), two workers each, sharing one real ``redis-server`` on
loopback: a control change posted to one is in force in all four processes within a second, a ``jti`` used
on one is refused on the other, and a quota of N per minute admits N in total.

Needs ``redis-server`` (Debian's package); without it the test skips, unless ``TEST_REQUIRE_REDIS=1`` (CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.plugins.apim_oauth.apim_support import assertion, cc_form

pytestmark = pytest.mark.server
Serve = Callable[..., str]
TOKEN = "shared-state-admin-token-0123456789"
ADMIN = {"authorization": f"Bearer {TOKEN}"}
PATIENT = "/eligibility-signposting-api/patient-check/9686368973"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A throwaway ``redis-server`` on loopback, nothing persisted, stopped at teardown."""
    if shutil.which("redis-server") is None:
        if os.environ.get("TEST_REQUIRE_REDIS") == "1":
            pytest.fail("redis-server not installed (TEST_REQUIRE_REDIS=1)")
        pytest.skip("redis-server not installed: shared state is not exercised")
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with (tmp_path / "redis.log").open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while (
            subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout
            != "PONG\n"
        ):
            assert proc.poll() is None, (tmp_path / "redis.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not answer"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def delays_by_worker(base: str, count: int = 24) -> dict[int, set[float]]:
    httpx.delete(f"{base}/_simulator/requests").raise_for_status()
    for _ in range(count):  # a new connection each: the kernel spreads them over the workers
        assert httpx.get(f"{base}{PATIENT}").status_code == 200
    entries = httpx.get(f"{base}/_simulator/requests", params={"limit": count}).json()["requests"]
    seen: dict[int, set[float]] = {}
    for entry in entries:
        seen.setdefault(entry["worker"], set()).add(entry["delay_asked"])
    return seen


def test_a_change_through_one_task_is_in_force_in_every_worker_of_both(serve: Serve, redis_url: str) -> None:
    env = {
        "SIMULATOR_WORKERS": "2",
        "SIMULATOR_PLUGINS": "health,eligibility",
        "SIMULATOR_ADMIN_TOKEN": TOKEN,
        "SIMULATOR_STATE_URL": redis_url,
    }
    first, second = serve(env), serve(env)
    route = "eligibility.patient_check"
    changed_at = time.monotonic()
    changed = httpx.put(
        f"{first}/_simulator/plugins/eligibility/delay",
        json={"policy": "fixed", "seconds": 0.01, "route": route},
        headers=ADMIN,
    )
    assert changed.status_code == 200, changed.text
    # The other task's workers: requests on new connections (either worker takes each) until both have
    # answered one with the new delay.
    httpx.delete(f"{second}/_simulator/requests").raise_for_status()
    updated: set[int] = set()
    took = None
    while took is None and time.monotonic() < changed_at + 5:
        httpx.get(f"{second}{PATIENT}")
        (entry,) = httpx.get(f"{second}/_simulator/requests", params={"limit": 1}).json()["requests"]
        if entry["delay_asked"] == 0.01:
            updated.add(entry["worker"])
            if len(updated) == 2:
                took = time.monotonic() - changed_at
    both = delays_by_worker(second)
    assert len(both) == 2, both
    assert all(asked == {0.01} for asked in both.values()), both
    mine = delays_by_worker(first)
    assert len(mine) == 2, mine
    assert all(asked == {0.01} for asked in mine.values()), mine
    assert took is not None
    print(f"\na change through task 1 was in force in both workers of task 2 within {took * 1000:.0f} ms")
    assert took < 1.0
    # A simulator (task) that starts later reads the newest state from Redis.
    late = serve(env)
    assert (
        httpx.get(f"{late}/_simulator/plugins/eligibility/delay").json()["in_force"][route]["seconds"] == 0.01
    )


def apim_env(redis_url: str, **more: str) -> dict[str, str]:
    return {
        "SIMULATOR_WORKERS": "2",
        "SIMULATOR_PLUGINS": "apim_oauth",
        "SIMULATOR_STATE_URL": redis_url,
        **more,
    }


def test_a_jti_used_on_one_simulator_is_refused_on_the_other(serve: Serve, redis_url: str) -> None:
    first, second = serve(apim_env(redis_url)), serve(apim_env(redis_url))
    jwt = assertion(jti="shared-once")
    assert httpx.post(f"{first}/oauth2/token", data=cc_form(client_assertion=jwt)).status_code == 200
    for base in (second, first, second):  # new connections: every worker of both
        again = httpx.post(f"{base}/oauth2/token", data=cc_form(client_assertion=jwt))
        assert again.status_code == 400, again.text
        assert again.json()["error_description"] == "Non-unique 'jti' claim in client_assertion JWT"
    # A jti whose exp is too far ahead is refused for that, and not recorded (as without Redis).
    far = assertion(jti="far", exp=int(time.time()) + 3600)
    assert (
        "more than 5 minutes in future"
        in httpx.post(f"{first}/oauth2/token", data=cc_form(client_assertion=far)).text
    )
    assert (
        "more than 5 minutes in future"
        in httpx.post(f"{second}/oauth2/token", data=cc_form(client_assertion=far)).text
    )


def test_a_quota_of_n_per_minute_admits_n_across_every_worker_of_both(serve: Serve, redis_url: str) -> None:
    quota = 12
    env = apim_env(redis_url, APIM_RATE_LIMIT_PER_MINUTE=str(quota))
    bases = [serve(env), serve(env)]
    statuses = [
        httpx.post(f"{bases[i % 2]}/oauth2/token", data=cc_form()).status_code for i in range(3 * quota)
    ]
    assert statuses.count(200) == quota, statuses
    assert statuses.count(429) == 2 * quota
    refused = httpx.post(f"{bases[1]}/oauth2/token", data=cc_form())
    assert refused.json()["policy"] == "quota"
    assert refused.json()["ratelimiting_expiry_time_ms"] > time.time() * 1000
