"""The real ``simulator serve`` process, over HTTP, as users run it."""

from __future__ import annotations

import asyncio
import subprocess

import httpx
import pytest

from tests.conftest import Serve, clean_env, free_port, simulator_command
from tests.rawhttp import many, timed_get

pytestmark = pytest.mark.server


def test_health_is_healthy_text(serve: Serve) -> None:
    base = serve()
    response = httpx.get(f"{base}/health")
    assert (response.status_code, response.text, response.headers["content-type"]) == (
        200,
        "healthy",
        "text/plain",
    )


def test_selection_by_env_serves_only_the_chosen_plugins(serve: Serve) -> None:
    base = serve({"SIMULATOR_PLUGINS": "health"})
    body = httpx.get(f"{base}/_simulator/plugins").json()
    assert [p["name"] for p in body["plugins"]] == ["health"]
    assert httpx.get(f"{base}/eligibility-signposting-api/patient-check/9686368973").status_code == 404


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SIMULATOR_PLUGINS": "nope"}, "unknown plugin(s) nope; available: "),
        ({"ELID_DELAY_SECONDS": "abc"}, "invalid setting ELID_DELAY_SECONDS='abc'"),
        ({"APIM_DELAY_SECONDS": "-1"}, "invalid setting APIM_DELAY_SECONDS='-1'"),
        ({"ELID_DELAY": '{"policy":"lognormal","median":2,"p99":1}'}, "invalid setting ELID_DELAY="),
        ({"SIMULATOR_PORT": "ninety"}, "invalid setting SIMULATOR_PORT='ninety'"),
    ],
)
def test_bad_settings_exit_before_listening_with_one_line(env: dict[str, str], expected: str) -> None:
    # A free loopback port, so a server that wrongly starts cannot collide with anything.
    env = {"SIMULATOR_HOST": "127.0.0.1", "SIMULATOR_PORT": str(free_port())} | env
    result = subprocess.run(
        simulator_command(), env=clean_env(env), capture_output=True, text=True, timeout=15
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("simulator: error: ")
    assert expected in lines[0]


def test_unknown_plugin_error_lists_the_available_ones() -> None:
    result = subprocess.run(
        simulator_command(),
        env=clean_env({"SIMULATOR_PLUGINS": "nope"}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "apim_oauth, eligibility, health" in result.stderr


@pytest.mark.slow
def test_one_second_delay_for_200_concurrent_requests(serve: Serve) -> None:
    """Every request takes the configured second, none much longer, and /health stays instant."""
    base = serve({"SPIKY_DELAY_SECONDS": "1", "SIMULATOR_PLUGINS": "health,spiky"})
    port = int(base.rsplit(":", 1)[1])

    async def measure() -> tuple[list[tuple[int, float]], tuple[int, float]]:
        delayed = asyncio.ensure_future(many("127.0.0.1", port, "/spiky/quote", 200))
        await asyncio.sleep(0.3)
        health = await timed_get("127.0.0.1", port, "/health")
        return await delayed, health

    results, (health_status, health_time) = asyncio.run(measure())
    assert {status for status, _ in results} == {200}
    durations = sorted(seconds for _, seconds in results)
    assert durations[0] >= 1.0  # a delay is a floor: never early
    assert durations[-1] < 1.1, durations[-5:]
    assert health_status == 200
    assert health_time < 0.1
