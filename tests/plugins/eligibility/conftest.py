"""Fixtures for the eligibility plugin: a fresh in-process simulator per test, configured by variables."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

import plugins.eligibility
import plugins.health
from simulator.host import PluginHost
from simulator.testing import AsyncSimulatorClient

Client = Callable[..., AsyncSimulatorClient]
PLUGINS = {"health": plugins.health, "eligibility": plugins.eligibility}


def build_host(env: Mapping[str, str] | None = None) -> PluginHost:
    return PluginHost.from_plugins(PLUGINS, env=env)


@pytest.fixture
def client() -> Client:
    """``async with client(ELID_X="y") as c``: the two plugins configured by exactly those variables."""

    def make(**env: str) -> AsyncSimulatorClient:
        return AsyncSimulatorClient(PLUGINS, env=env, base_url="http://t")

    return make
