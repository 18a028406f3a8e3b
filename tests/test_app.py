"""The dispatcher in process: routing, methods, HEAD, body limits, introspection and delay arithmetic."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest

import plugins.health
from simulator import PluginSettings, Request, Response, Route, Router, SettingsConfigDict, hookimpl
from simulator.app import SimulatorApp
from simulator.host import PluginHost
from simulator.http import ARRIVED, Handler


class ZooSettings(PluginSettings):
    model_config = SettingsConfigDict(env_prefix="ZOO_")


def echo(label: str) -> Handler:
    async def handler(request: Request) -> Response:
        return Response.json({"route": label, "params": request.path_params, "method": request.method})

    return handler


async def read_body(request: Request) -> Response:
    return Response.json({"size": len(await request.body())})


async def broken(request: Request) -> Response:
    raise RuntimeError("bug")


class Zoo:
    @hookimpl
    def simulator_settings_class(self) -> type[PluginSettings]:
        return ZooSettings

    @hookimpl
    def simulator_register_routes(self) -> Iterable[Route]:
        yield Route("/zoo/{animal}", echo("animal"), name="animal")
        yield Route("/zoo/_status", echo("status"), name="status")
        yield Route("/zoo/{animal}/{food}", echo("food"), name="food")
        yield Route("/zoo/{rest:path}", echo("rest"), methods=("*",), name="rest")
        yield Route("/upload", read_body, methods=("POST",), name="upload")
        yield Route("/broken", broken, name="broken")
        yield Route("/fast", echo("fast"), name="fast", delayed=False)


class RecordingSleeper:
    """Replaces asyncio.sleep and advances a fake clock, so delay arithmetic is exact."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def sleeper() -> RecordingSleeper:
    return RecordingSleeper()


@pytest.fixture
async def client(sleeper: RecordingSleeper) -> AsyncIterator[httpx.AsyncClient]:
    env = {"ZOO_DELAY_SECONDS": "0.5", "SIMULATOR_MAX_BODY_BYTES": "1000"}
    host = PluginHost.from_plugins({"zoo": Zoo(), "health": plugins.health}, env=env)
    app = SimulatorApp(host, sleep=sleeper.sleep, clock=sleeper.clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as c:
        yield c


async def test_static_beats_template_beats_catch_all(client: httpx.AsyncClient) -> None:
    assert (await client.get("/zoo/_status")).json()["route"] == "status"
    assert (await client.get("/zoo/lion")).json() == {
        "route": "animal",
        "params": {"animal": "lion"},
        "method": "GET",
    }
    assert (await client.get("/zoo/lion/meat")).json()["params"] == {"animal": "lion", "food": "meat"}
    assert (await client.get("/zoo/a/b/c")).json()["params"] == {"rest": "a/b/c"}
    assert (await client.delete("/zoo/a/b/c")).json()["method"] == "DELETE"


async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.post("/zoo/lion")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


async def test_head_answers_headers_without_body(client: httpx.AsyncClient) -> None:
    response = await client.head("/health")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "7"


async def test_unknown_path_is_404_from_fastapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/nowhere")).status_code == 404


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    assert (await client.post("/upload", content=b"x" * 999)).json() == {"size": 999}
    assert (await client.post("/upload", content=b"x" * 1001)).status_code == 413


async def test_a_failing_handler_is_a_500_without_traceback(client: httpx.AsyncClient) -> None:
    response = await client.get("/broken")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal simulator error"}


async def test_delay_is_awaited_as_a_total_from_arrival(
    client: httpx.AsyncClient, sleeper: RecordingSleeper
) -> None:
    await client.get("/zoo/lion")
    assert sleeper.sleeps == [0.5]


async def test_processing_time_is_absorbed(sleeper: RecordingSleeper) -> None:
    async def slow(request: Request) -> Response:
        sleeper.now += 0.2  # the handler "takes" 0.2 s of the 0.5 s budget
        return Response.text("done")

    class Slow:
        @hookimpl
        def simulator_settings_class(self) -> type[PluginSettings]:
            return ZooSettings

        @hookimpl
        def simulator_register_routes(self) -> Iterable[Route]:
            yield Route("/slow", slow)

    host = PluginHost.from_plugins({"slow": Slow()}, env={"ZOO_DELAY_SECONDS": "0.5"})
    app = SimulatorApp(host, sleep=sleeper.sleep, clock=sleeper.clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as c:
        await c.get("/slow")
    assert sleeper.sleeps == [pytest.approx(0.3)]


async def test_health_and_core_routes_and_undelayed_routes_are_never_delayed(
    client: httpx.AsyncClient, sleeper: RecordingSleeper
) -> None:
    await client.get("/health")
    await client.get("/_simulator/plugins")
    await client.get("/fast")
    assert sleeper.sleeps == []


async def test_introspection_lists_plugins_routes_settings_and_delay(client: httpx.AsyncClient) -> None:
    body = (await client.get("/_simulator/plugins")).json()
    zoo = next(p for p in body["plugins"] if p["name"] == "zoo")
    fast = next(r for r in zoo["routes"] if r["name"] == "zoo.fast")
    assert {k: fast[k] for k in ("methods", "path", "summary", "delayed", "delay")} == {
        "methods": ["GET"],
        "path": "/fast",
        "summary": "",
        "delayed": False,
        "delay": {"policy": "none"},
    }
    assert fast["delivered"]["total"]["requests"] == 0
    assert zoo["delay"] == {"policy": "fixed", "seconds": 0.5}
    assert {"env": "ZOO_DELAY_SECONDS", "value": 0.5, "default": 0.0} in zoo["settings"]


async def test_delay_counts_from_the_arrival_the_protocol_recorded(sleeper: RecordingSleeper) -> None:
    """Under a burst the ASGI task starts after the request arrived: that queueing is part of the delay."""
    host = PluginHost.from_plugins({"zoo": Zoo()}, env={"ZOO_DELAY_SECONDS": "0.5"})
    app = SimulatorApp(host, sleep=sleeper.sleep, clock=sleeper.clock)
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/zoo/lion", "query_string": b"", "headers": []}
    extensions = {"extensions": {ARRIVED: sleeper.now - 0.2}}
    await app(scope | extensions, receive, send)  # type: ignore[arg-type]
    assert sleeper.sleeps == [pytest.approx(0.3)]
    assert sent[0]["status"] == 200


async def test_plugin_routes_are_in_the_openapi_document_with_their_parameters() -> None:
    router = Router(prefix="/shop")

    @router.get("/items/{item_id}")
    async def item(
        request: Request, item_id: int, detail: bool = False, tags: list[str] | None = None
    ) -> Response:
        """One item.

        With its price.
        """
        return Response.json({"id": item_id})

    class Shop:
        @hookimpl
        def simulator_register_routes(self) -> Router:
            return router

    app = SimulatorApp(PluginHost.from_plugins({"shop": Shop(), "health": plugins.health, "zoo": Zoo()}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as c:
        document = (await c.get("/_simulator/openapi.json")).json()
        assert (await c.get("/_simulator/docs")).status_code == 200
    operation = document["paths"]["/shop/items/{item_id}"]["get"]
    assert operation["tags"] == ["shop"]
    assert operation["summary"] == "One item."
    assert operation["description"] == "With its price."
    assert operation["operationId"] == "shop.item"
    assert operation["parameters"] == [
        {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}},
        {"name": "detail", "in": "query", "required": False, "schema": {"type": "boolean", "default": False}},
        {
            "name": "tags",
            "in": "query",
            "required": False,
            "schema": {"type": "array", "items": {"type": "string"}},
        },
    ]
    assert document["paths"]["/health"]["get"]["tags"] == ["health"]
    assert set(document["paths"]["/zoo/{rest}"]) == {"get", "post", "put", "patch", "delete"}
    assert "/_simulator/plugins" in document["paths"]
    assert {t["name"] for t in document["tags"]} == {"simulator", "shop", "health", "zoo"}


def test_the_pytest_fixture_makes_in_process_clients(simulator_client: Any) -> None:
    sim = simulator_client({"health": plugins.health, "zoo": Zoo()}, env={"ZOO_DELAY_SECONDS": "0"})
    assert sim.get("/health").text == "healthy"
    assert sim.head("/health").content == b""
    assert sim.get("/zoo/lion").json()["params"] == {"animal": "lion"}
    assert sim.host.plugins["zoo"].delay is None
