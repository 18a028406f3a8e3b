"""An in-process simulator with the NHS login plugin, configured per test by LOGIN_* variables."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

import plugins.nhs_login
from simulator.testing import AsyncSimulatorClient

ROOT = "http://localhost:9123"
MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """``await make_client(LOGIN_VALIDATION="strict")``: a fresh simulator with exactly these variables."""
    clients: list[AsyncSimulatorClient] = []

    async def make(plugins: dict[str, object] | None = None, **env: str) -> httpx.AsyncClient:
        chosen = plugins or {"nhs_login": plugins_module()}
        client = AsyncSimulatorClient(chosen, env=env, base_url=ROOT, follow_redirects=False)
        clients.append(await client.__aenter__())
        return client

    yield make
    for client in clients:
        await client.__aexit__()


def plugins_module() -> object:
    return plugins.nhs_login


@pytest.fixture
async def login(make_client: MakeClient) -> httpx.AsyncClient:
    return await make_client()
