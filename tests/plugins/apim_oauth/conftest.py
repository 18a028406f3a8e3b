"""An in-process simulator with only the ``apim_oauth`` plugin, configured per test by APIM_* variables."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

import plugins.apim_oauth
from simulator.testing import AsyncSimulatorClient
from tests.plugins.apim_oauth.apim_support import MakeClient


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """``await make_client(VALIDATION="strict", ...)``: a client of a fresh host with those APIM_* values."""
    clients: list[AsyncSimulatorClient] = []

    async def make(**env: str) -> httpx.AsyncClient:
        variables = {f"APIM_{name.upper()}": value for name, value in env.items()}
        client = AsyncSimulatorClient({"apim_oauth": plugins.apim_oauth}, env=variables, base_url="http://t")
        clients.append(await client.__aenter__())
        return client

    yield make
    for client in clients:
        await client.__aexit__()


@pytest.fixture
async def client(make_client: MakeClient) -> httpx.AsyncClient:
    """Default settings: structural validation."""
    return await make_client()
