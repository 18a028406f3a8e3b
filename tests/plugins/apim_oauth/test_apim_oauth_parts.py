"""The token service, the bounded store, the quota window and start-up errors."""

from __future__ import annotations

import pytest

import plugins.apim_oauth
from plugins.apim_oauth.jwks import JwksUnavailable, KeySource
from plugins.apim_oauth.ratelimit import RateLimiter
from plugins.apim_oauth.tokens import TokenStore, TokenValidator
from simulator import StartupError
from simulator.host import PluginHost
from simulator.testing import AsyncSimulatorClient
from tests.plugins.apim_oauth.apim_support import cc_form


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_other_plugins_can_ask_whether_a_bearer_token_is_valid() -> None:
    async with AsyncSimulatorClient({"apim_oauth": plugins.apim_oauth}, base_url="http://t") as client:
        tokens = client.host.services_by_name()["apim_oauth.tokens"].instance
        assert isinstance(tokens, TokenValidator)
        issued = (await client.post("/oauth2/token", data=cc_form())).json()["access_token"]
    assert tokens.is_valid(issued)
    assert not tokens.is_valid("not-issued")
    assert not tokens.is_valid("")


async def test_tokens_expire_and_the_store_is_bounded() -> None:
    clock = Clock()
    store = TokenStore(max_entries=2, clock=clock)
    await store.add("a", 10)
    await store.add("b", 10)
    await store.add("c", 10)
    assert len(store) == 2
    assert not store.is_valid("a")
    assert store.is_valid("b")
    assert await store.verify("b")
    clock.now += 10
    assert not store.is_valid("b")
    assert not await store.verify("b")


def test_the_quota_window_starts_at_the_first_request() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    assert limiter.hit("app") is None
    clock.now += 30
    assert limiter.hit("app") is None
    assert limiter.hit("app") == 1_060_000
    assert limiter.hit("other") is None
    clock.now += 30
    assert limiter.hit("app") is None


async def test_a_failed_jwks_fetch_is_not_retried_at_once() -> None:
    clock = Clock()
    calls: list[str] = []

    def fetch(url: str, timeout: float) -> bytes:
        calls.append(url)
        raise OSError("unreachable")

    source = KeySource("https://jwks.example/app.json", fetch=fetch, clock=clock)
    for _ in range(2):
        with pytest.raises(JwksUnavailable):
            await source.keys()
    assert len(calls) == 1
    clock.now += 6
    with pytest.raises(JwksUnavailable):
        await source.keys()
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("APIM_VALIDATION", "lenient", "APIM_VALIDATION='lenient'"),
        ("APIM_JWKS", "/no/such/file.json", "APIM_JWKS='/no/such/file.json'"),
        ("APIM_JWKS", '{"keys": 1}', 'no "keys" list'),
        ("APIM_RATE_LIMIT_PER_MINUTE", "-1", "APIM_RATE_LIMIT_PER_MINUTE='-1'"),
        ("APIM_DELAY_SECONDS", "soon", "APIM_DELAY_SECONDS='soon'"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(StartupError, match="invalid setting") as error:
        PluginHost.from_plugins({"apim_oauth": plugins.apim_oauth}, env={name: value})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_validation_is_case_insensitive() -> None:
    env = {"APIM_VALIDATION": "STRICT", "APIM_API_KEYS": " a , b,,"}
    host = PluginHost.from_plugins({"apim_oauth": plugins.apim_oauth}, env=env)
    settings = host.plugins["apim_oauth"].settings
    assert settings is not None
    assert settings.model_dump()["validation"] == "strict"
    assert settings.model_dump()["api_keys"] == {"a", "b"}
