"""The built-in plugins end to end in the real image, and the selection of plugins by environment variable."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from simulator.testing import SimulatorContainer
from tests.plugins.nhs_login.login_support import CLIENT_ID, REDIRECT, private_pem, token_form

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
    assert {plugin["name"] for plugin in listing["plugins"]} >= {
        "health",
        "eligibility",
        "apim_oauth",
        "nhs_login",
    }


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


def sign_in(base_url: str, issuer: str = "http://localhost:9123") -> str:
    """A whole NHS login sign-in against a container: authorize, then the code for an ID token."""
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "s",
    }
    redirect = httpx.get(f"{base_url}/authorize", params=params)
    assert redirect.status_code == 302, redirect.text
    code = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
    form = token_form(f"{issuer}/token", grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    answer = httpx.post(f"{base_url}/token", data=form)
    assert answer.status_code == 200, answer.text
    id_token: str = answer.json()["id_token"]
    return id_token


def test_nhs_login_signs_in_under_a_read_only_root(simulator_image: str) -> None:
    with SimulatorContainer(simulator_image, plugins=["nhs_login"]).with_kwargs(read_only=True) as sim:
        base_url = sim.get_base_url()
        discovery = httpx.get(f"{base_url}/.well-known/openid-configuration").json()
        assert discovery["issuer"] == "http://localhost:9123"  # LOGIN_ROOT_URL's default, the original's
        keys = jwt.PyJWKSet.from_dict(httpx.get(f"{base_url}/.well-known/jwks.json").json())
        token = sign_in(base_url)
    claims = jwt.decode(token, keys.keys[0].key, algorithms=["RS512"], audience=CLIENT_ID)
    assert claims["nhs_number"] == "9686368973"


def test_two_tasks_given_one_key_verify_each_others_tokens(simulator_image: str) -> None:
    """Behind a load balancer a token signed by one task must verify with the JWKS another one serves."""
    env = {"SIMULATOR_PLUGINS": "nhs_login", "LOGIN_PRIVATE_KEY": private_pem("shared-task-key")}
    with (
        SimulatorContainer(simulator_image, env=env) as one,
        SimulatorContainer(simulator_image, env=env) as two,
    ):
        token = sign_in(one.get_base_url())
        keys = jwt.PyJWKSet.from_dict(httpx.get(f"{two.get_base_url()}/.well-known/jwks.json").json())
        with SimulatorContainer(simulator_image, plugins=["nhs_login"]) as default:
            other = httpx.get(f"{default.get_base_url()}/.well-known/jwks.json").json()["keys"][0]["kid"]
    (key,) = keys.keys
    assert jwt.get_unverified_header(token)["kid"] == key.key_id != other
    assert (
        jwt.decode(token, key.key, algorithms=["RS512"], audience=CLIENT_ID)["iss"] == "http://localhost:9123"
    )
