"""The ASGI application: a lean dispatcher for plugin routes in front of FastAPI for everything else.

Plugin routes are the hot path: they are matched by :class:`~simulator.routing.Router`, run, delayed and
written straight to the ASGI ``send`` without FastAPI's per-request work. FastAPI serves the core's own
routes (``/_simulator/*``, its OpenAPI docs), unmatched paths and the lifespan.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import FastAPI

import simulator
from simulator import introspection, openapi
from simulator.host import PluginHost
from simulator.http import (
    ARRIVED,
    RESPOND_LATER,
    Message,
    Receive,
    Request,
    RequestBodyTooLarge,
    RespondLater,
    Response,
    Scope,
    Send,
)
from simulator.routing import Endpoint, RouteTable, allowed, pick

log = logging.getLogger("simulator")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

# Net allocations between young-generation collections in a serving process (CPython's default: 700).
GC_YOUNG_THRESHOLD: Final = 10_000

_NOT_ALLOWED = Response.text("Method Not Allowed", status=405)
_NO_EXTENSIONS: Final[Mapping[str, Any]] = {}
_TOO_LARGE = Response.json({"detail": "Request body too large"}, status=413)
_INTERNAL = Response.json({"detail": "Internal simulator error"}, status=500)


def timer_seconds(seconds: float) -> float:
    """What to ask an event-loop timer for, so that it fires no earlier than ``seconds`` from now.

    Timers count whole milliseconds: uvloop rounds the delay to the nearest one and libuv measures it from a
    clock truncated to the millisecond, so a timer can fire up to 1.5 ms early (measured: 1.3 ms). A
    configured delay is a floor: wait for the first whole millisecond surely past it (0-2 ms late, not early).
    """
    return math.ceil(seconds * 1000 + 1) / 1000


async def sleep_at_least(seconds: float) -> None:
    """``asyncio.sleep`` that never returns before ``seconds`` have passed (see :func:`timer_seconds`)."""
    await asyncio.sleep(timer_seconds(seconds))


class SimulatorApp:
    """ASGI entry point. ``sleep`` and ``clock`` are injectable so delay logic can be tested exactly."""

    def __init__(
        self, host: PluginHost, *, sleep: Sleep = sleep_at_least, clock: Clock = time.monotonic
    ) -> None:
        self.host = host
        self.routes = RouteTable(
            Endpoint(route, plugin.name, plugin.delay if route.delayed else None, plugin.rng)
            for plugin in host.plugins.values()
            for route in plugin.routes
        )
        self.admin = _admin_app(host)
        self._sleep = sleep
        self._clock = clock
        self._max_body = host.core.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            extensions = scope.get("extensions") or _NO_EXTENSIONS
            arrived = extensions.get(ARRIVED) or self._clock()
            found = self.routes.match(scope["path"])
            if found is not None:
                table, params = found
                endpoint = pick(table, scope["method"])
                if endpoint is None:
                    response = _NOT_ALLOWED.with_headers({"allow": allowed(table)})
                    await _send(send, *_messages(response, head=False))
                    return
                request = Request(scope, receive, params, self._max_body)
                await self._serve(endpoint, request, arrived, extensions, send)
                return
        await self.admin(scope, receive, send)

    async def _serve(
        self,
        endpoint: Endpoint,
        request: Request,
        arrived: float,
        extensions: Mapping[str, Any],
        send: Send,
    ) -> None:
        try:
            response = await endpoint.route.handler(request)
        except RequestBodyTooLarge:
            response = _TOO_LARGE
        except Exception:
            log.exception("route %s failed on %s %s", endpoint.route.name, request.method, request.path)
            response = _INTERNAL
        start, body = _messages(response, head=request.method == "HEAD")
        if endpoint.delay is not None:
            # The delay is a deadline from arrival: time spent in the handler is absorbed, not added.
            remaining = arrived + endpoint.delay.sample(endpoint.rng) - self._clock()
            if remaining > 0:
                respond_later: RespondLater | None = extensions.get(RESPOND_LATER)
                if respond_later is None:
                    await self._sleep(remaining)
                elif await respond_later(send, timer_seconds(remaining), start, body):
                    return
        await _send(send, start, body)


def _messages(response: Response, *, head: bool) -> tuple[Message, Message]:
    """The ASGI ``http.response.start`` and ``http.response.body`` messages of ``response``."""
    return (
        {"type": "http.response.start", "status": response.status, "headers": response.raw_headers},
        {"type": "http.response.body", "body": b"" if head else response.body},
    )


async def _send(send: Send, start: Message, body: Message) -> None:
    await send(start)
    await send(body)


def _admin_app(host: PluginHost) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info(
            "simulator ready: plugins %s",
            ", ".join(host.plugins) or "(none)",
        )
        yield

    app = FastAPI(
        title="api-simulator",
        summary="The simulator's own routes (tag simulator) and every enabled plugin's routes (a tag each).",
        version=simulator.__version__,
        docs_url="/_simulator/docs",
        redoc_url=None,
        openapi_url="/_simulator/openapi.json",
        lifespan=lifespan,
    )
    app.state.host = host
    app.include_router(introspection.router)
    openapi.include_plugin_routes(app, host)
    return app


def create_app(host: PluginHost | None = None) -> SimulatorApp:
    """Build the application; without ``host``, from the environment."""
    return SimulatorApp(host or PluginHost.from_environment())


def serve_app(host: PluginHost | None = None) -> SimulatorApp:
    """What a ``simulator serve`` process serves (each worker calls it): :func:`create_app`, heap settled."""
    app = create_app(host)
    settle_heap()
    return app


def settle_heap() -> None:
    """Tune this process's garbage collector for thousands of requests waiting out their delays.

    A delayed request keeps its objects alive for the whole delay, so CPython's collector, which counts net
    allocations, runs every few dozen arrivals and traverses everything in flight plus every object left by
    start-up. With 2,000 delayed requests in flight one full collection took 63 ms and young ones up to 17 ms,
    and each pause landed on the answers due meanwhile (p99 overshoot of a 2 s delay: 80-135 ms). So collect
    start-up's garbage, freeze what survives (modules, plugin data: never garbage, no longer traversed), and
    let the young generation reach ``GC_YOUNG_THRESHOLD`` objects. The hot path's objects are acyclic and
    reference counting frees them at once; only cyclic garbage waits a little longer for a collection.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, oldest)
