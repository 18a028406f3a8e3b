"""``SIMULATOR_STATE_URL``: two simulators ("tasks"), two workers each, sharing one real ``redis-server`` on
loopback: a control change posted to one is in force in all four processes within a second, a ``jti`` used
on one is refused on the other, a quota of N per minute admits N in total, an NHS login code or refresh
token is spent everywhere once redeemed, and an access token issued by one is valid on the other.

Needs ``redis-server`` (Debian's package); without it the test skips, unless ``TEST_REQUIRE_REDIS=1`` (CI).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from plugins.apim_oauth.tokens import TokenStore
from simulator import SharedState
from tests.conftest import free_port
from tests.plugins.apim_oauth.apim_support import assertion, cc_form
from tests.plugins.nhs_login import login_support as login

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


def test_a_code_or_refresh_token_redeemed_on_one_simulator_is_spent_on_the_other(
    serve: Serve, redis_url: str
) -> None:
    root = "http://login.shared.test"  # both "tasks" are one NHS login (one issuer, one key)
    env = {
        "SIMULATOR_WORKERS": "2",
        "SIMULATOR_PLUGINS": "nhs_login",
        "SIMULATOR_STATE_URL": redis_url,
        "LOGIN_ROOT_URL": root,
    }
    first, second = serve(env), serve(env)

    def redeem(base: str, **fields: str) -> httpx.Response:
        return httpx.post(f"{base}/token", data=login.token_form(f"{root}/token", **fields))

    signed_in = httpx.get(f"{first}/authorize", params=login.authorize_params())
    (code,) = login.callback(signed_in)["code"]
    granted = redeem(first, grant_type="authorization_code", code=code, redirect_uri=login.REDIRECT)
    assert granted.status_code == 200, granted.text
    for base in (second, first, second):  # new connections: every worker of both
        replay = redeem(base, grant_type="authorization_code", code=code, redirect_uri=login.REDIRECT)
        assert replay.json() == {"error": "invalid_grant", "error_description": "code has already been used"}

    refresh = granted.json()["refresh_token"]
    rotated = redeem(second, grant_type="refresh_token", refresh_token=refresh)
    assert rotated.status_code == 200, rotated.text
    for base in (first, second):
        spent = redeem(base, grant_type="refresh_token", refresh_token=refresh)
        assert spent.json()["error_description"] == "refresh_token has already been used"
    assert redeem(first, grant_type="refresh_token", refresh_token=rotated.json()["refresh_token"]).is_success


async def test_a_token_issued_by_one_simulator_is_valid_on_every_other(redis_url: str) -> None:
    # The apim_oauth.tokens service as two simulators' fakes see it: one Redis, two stores.
    states = [SharedState(redis_url, "tokens-test", "apim_oauth") for _ in range(2)]
    issuer, other = TokenStore(), TokenStore()
    issuer.share(states[0])
    other.share(states[1])
    try:
        await issuer.add("issued-on-task-1", 0.5)
        assert issuer.is_valid("issued-on-task-1")
        assert not other.is_valid("issued-on-task-1")  # the synchronous check knows its own worker only
        assert await other.verify("issued-on-task-1")
        assert not await other.verify("never-issued")
        assert not await other.verify("")
        await asyncio.sleep(0.6)  # its lifetime, in Redis as here
        assert not await other.verify("issued-on-task-1")
    finally:
        for state in states:
            await state.close()


async def test_without_redis_a_token_is_known_to_its_own_worker_only() -> None:
    gone = SharedState(f"redis://127.0.0.1:{free_port()}/0", "tokens-test", "apim_oauth")
    store = TokenStore()
    store.share(gone)
    await store.add("kept-here", 60)  # Redis refuses the connection: the token is this worker's alone
    assert await store.verify("kept-here")
    assert not await store.verify("elsewhere")
    await gone.close()
