"""Fixtures for the eligibility plugin: a fresh plugin host and in-process client per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest

import plugins.eligibility
import plugins.health
from simulator.app import create_app
from simulator.host import PluginHost

Client = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's ELID_DELAY_SECONDS or NBS_URL must not change what these tests see.
    for name in os.environ:
        if name.startswith(("SIMULATOR_", "ELID_")) or name == "NBS_URL":
            monkeypatch.delenv(name)


def build_host() -> PluginHost:
    return PluginHost.from_plugins({"health": plugins.health, "eligibility": plugins.eligibility})


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Client:
    """``async with client(ELID_X="y") as c``: a host built from those variables, served in-process."""

    @asynccontextmanager
    async def make(**env: str) -> AsyncIterator[httpx.AsyncClient]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        app = create_app(build_host())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http

    return make
