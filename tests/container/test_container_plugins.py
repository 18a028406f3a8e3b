"""The three plugins end to end in the real image, and the selection of plugins by environment variable."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from simulator.testing import SimulatorContainer

pytestmark = pytest.mark.container

PATIENT_CHECK = "/eligibility-signposting-api/patient-check/9686368973"


@pytest.fixture(scope="module")
def base_url(simulator_image: str) -> Iterator[str]:
    """Every installed plugin with its defaults: no delays, structural token validation."""
    with SimulatorContainer(simulator_image) as sim:
        yield sim.get_base_url()


def test_health(base_url: str) -> None:
    response = httpx.get(f"{base_url}/health")
    assert (response.status_code, response.text) == (200, "healthy")
    assert response.headers["content-type"].startswith("text/plain")


def test_every_plugin_is_installed_and_enabled(base_url: str) -> None:
    listing = httpx.get(f"{base_url}/_simulator/plugins").json()
    assert {plugin["name"] for plugin in listing["plugins"]} >= {"health", "eligibility", "apim_oauth"}


def test_patient_check(base_url: str) -> None:
    response = httpx.get(f"{base_url}{PATIENT_CHECK}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json(), dict)


def test_token_without_signed_assertion_is_a_json_400(base_url: str) -> None:
    response = httpx.post(f"{base_url}/oauth2/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 400, response.text
    assert "error" in response.json()


def test_token_with_validation_off(simulator_image: str) -> None:
    with SimulatorContainer(simulator_image, env={"APIM_VALIDATION": "off"}) as sim:
        response = httpx.post(f"{sim.get_base_url()}/oauth2/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 200, response.text
    assert "access_token" in response.json()


def test_simulator_plugins_variable_selects_plugins(simulator_image: str) -> None:
    with SimulatorContainer(simulator_image, env={"SIMULATOR_PLUGINS": "health"}) as sim:
        base_url = sim.get_base_url()
        assert httpx.get(f"{base_url}/health").status_code == 200
        assert httpx.get(f"{base_url}{PATIENT_CHECK}").status_code == 404
        assert (
            httpx.post(f"{base_url}/oauth2/token", data={"grant_type": "client_credentials"}).status_code
            == 404
        )
