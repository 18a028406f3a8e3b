"""The delay variables, honoured by the real image with a real clock (the README's `docker run` example)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from simulator.testing import SimulatorContainer

pytestmark = pytest.mark.container


@pytest.fixture(scope="module")
def base_url(simulator_image: str) -> Iterator[str]:
    env = {"ELID_DELAY_SECONDS": "2", "APIM_DELAY_SECONDS": "1", "APIM_VALIDATION": "off"}
    with SimulatorContainer(simulator_image, env=env) as sim:
        yield sim.get_base_url()


def timed(call: Callable[[], httpx.Response]) -> tuple[int, float]:
    started = time.monotonic()
    status = call().status_code
    return status, time.monotonic() - started


def test_health_is_never_delayed(base_url: str) -> None:
    status, elapsed = timed(lambda: httpx.get(f"{base_url}/health"))
    assert status == 200
    assert elapsed < 0.5


def test_patient_check_takes_elid_delay_seconds(base_url: str) -> None:
    status, elapsed = timed(
        lambda: httpx.get(f"{base_url}/eligibility-signposting-api/patient-check/9686368973", timeout=10)
    )
    assert status == 200
    assert 2.0 <= elapsed < 2.8


def test_token_takes_apim_delay_seconds(base_url: str) -> None:
    status, elapsed = timed(
        lambda: httpx.post(f"{base_url}/oauth2/token", data={"grant_type": "client_credentials"}, timeout=10)
    )
    assert status == 200
    assert 1.0 <= elapsed < 1.8
