"""The workers' mesh: questions gathered from every peer, and what a missing peer does to each route."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from typing import Any

import pytest

import plugins.health
from simulator.peers import Incomplete, Mesh, Peers
from simulator.testing import AsyncSimulatorClient


async def test_peers_answer_each_other_and_a_missing_one_is_named() -> None:
    group = secrets.token_hex(4)

    async def hello(index: int, request: Mapping[str, Any]) -> Any:
        return {"from": index, "echo": request["word"]}

    def handlers(index: int) -> dict[str, Any]:
        async def handler(request: Mapping[str, Any]) -> Any:
            return await hello(index, request)

        return {"hello": handler}

    async def stuck(request: Mapping[str, Any]) -> Any:
        await asyncio.sleep(5)

    first = Peers(Mesh(group, 0, 4), handlers(0))
    second = Peers(Mesh(group, 1, 4), handlers(1))
    third = Peers(Mesh(group, 2, 4), {"hello": stuck})
    for peers in (first, second, third):
        await peers.start()
    try:
        # Worker 3 never started: left out, even of a complete question (it has nothing to say yet).
        # Worker 2 listens but does not answer in time: left out of a tolerant question; a complete one
        # fails naming it.
        assert await first.ask_all("hello", wait=0.3, word="hi") == [{"from": 1, "echo": "hi"}]
        with pytest.raises(Incomplete) as missing:
            await first.ask_all("hello", wait=0.3, complete=True, word="hi")
        assert missing.value.missing == [2]
        assert await second.ask_all("nope", wait=0.3) == []  # an unknown question: no answer
    finally:
        for peers in (first, second, third):
            await peers.stop()


async def test_a_worker_that_does_not_answer_makes_counting_routes_503() -> None:
    async def stuck(request: Mapping[str, Any]) -> Any:
        await asyncio.sleep(5)

    group = secrets.token_hex(4)
    peer = Peers(Mesh(group, 1, 2), {op: stuck for op in ("snapshot", "journal", "journal_clear")})
    await peer.start()
    async with AsyncSimulatorClient({"health": plugins.health}) as client:
        await client.get("/health")
        # This worker now has a peer that listens but does not answer (stuck, or far too busy).
        client.app.peers.mesh = Mesh(group, 0, 2)
        for method, path in (
            ("GET", "/_simulator/metrics"),
            ("GET", "/_simulator/requests"),
            ("DELETE", "/_simulator/requests"),
        ):
            response = await client.request(method, path)
            assert response.status_code == 503, (method, path)
            assert response.headers["retry-after"] == "1"
            assert "worker 1 did not answer" in response.json()["detail"]
        # The dashboard's routes show what answered.
        stats = await client.get("/_simulator/stats")
        assert stats.status_code == 200
        assert stats.json()["workers"] == 1
        assert (await client.get("/_simulator/plugins")).status_code == 200
    await peer.stop()
