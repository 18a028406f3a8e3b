"""An in-process simulator with only the ``apim_oauth`` plugin, configured per test by APIM_* variables."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest

import plugins.apim_oauth
from simulator.app import create_app
from simulator.host import PluginHost
from tests.plugins.apim_oauth.apim_support import MakeClient


@pytest.fixture(autouse=True)
def _no_inherited_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("APIM_", "SIMULATOR_")):
            monkeypatch.delenv(name)


@pytest.fixture
async def make_client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MakeClient]:
    """``await make_client(VALIDATION="strict", ...)``: a client of a fresh host with those APIM_* values."""
    clients: list[httpx.AsyncClient] = []

    async def make(**env: str) -> httpx.AsyncClient:
        for name, value in env.items():
            monkeypatch.setenv(f"APIM_{name.upper()}", value)
        host = PluginHost.from_plugins({"apim_oauth": plugins.apim_oauth})
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(host)), base_url="http://t")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def client(make_client: MakeClient) -> httpx.AsyncClient:
    """Default settings: structural validation."""
    return await make_client()
