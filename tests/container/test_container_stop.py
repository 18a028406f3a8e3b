"""`docker stop` (SIGTERM) with a delayed request in flight: it finishes, new connections fail, exit 0."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from simulator.testing import SimulatorContainer

pytestmark = pytest.mark.container


def test_sigterm_drains_in_flight_requests_then_exits_0(simulator_image: str) -> None:
    with SimulatorContainer(simulator_image, delays={"ELID": 3}) as sim, ThreadPoolExecutor(2) as pool:
        base_url = sim.get_base_url()
        container = sim.get_wrapped_container()
        started = time.monotonic()
        in_flight = pool.submit(
            httpx.get, f"{base_url}/eligibility-signposting-api/patient-check/9686368973", timeout=10
        )
        time.sleep(0.5)
        # `docker stop`: SIGTERM, then SIGKILL after 20 s, more than the 3 s the request still needs.
        stopping = pool.submit(container.stop, timeout=20)
        time.sleep(0.5)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base_url}/health", timeout=2)

        response = in_flight.result()
        answered = time.monotonic() - started
        stopping.result()
        stopped = time.monotonic() - started
        container.reload()
        state = container.attrs["State"]
        logs = container.logs().decode()

    assert response.status_code == 200, response.text
    assert 3.0 <= answered < 4.0
    assert stopped < 5.0, "the server waited for more than its in-flight requests"
    assert (state["ExitCode"], state["OOMKilled"]) == (0, False), logs
