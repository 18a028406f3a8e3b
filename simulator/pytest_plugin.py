"""The ``simulator_client`` pytest fixture, registered through the ``pytest11`` entry point.

    def test_hello(simulator_client):
        sim = simulator_client({"weather": simulator_weather}, settings=[WeatherSettings(message="hi")])
        assert sim.get("/weather/hello").status_code == 200

It makes :class:`simulator.testing.SimulatorClient` objects and closes them after the test. Loaded by every
pytest run where the simulator is installed, so it imports nothing until a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from simulator.testing import SimulatorClient


@pytest.fixture
def simulator_client() -> Iterator[Callable[..., SimulatorClient]]:
    """``simulator_client(plugins, settings=..., env=..., core=...)``: an in-process client (sync tests)."""
    from simulator.testing import SimulatorClient

    clients: list[SimulatorClient] = []

    def make(plugins: Any, **options: Any) -> SimulatorClient:
        client = SimulatorClient(plugins, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
