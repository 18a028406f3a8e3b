"""The ASGI application: a lean dispatcher for plugin routes in front of FastAPI for everything else.

Plugin routes are the hot path: they are matched by :class:`~simulator.routing.Router`, run, delayed and
written straight to the ASGI ``send`` without FastAPI's per-request work. FastAPI serves the core's own
routes (``/_simulator/*``, its OpenAPI docs), unmatched paths and the lifespan.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from simulator import introspection
from simulator.host import PluginHost
from simulator.http import Receive, Request, RequestBodyTooLarge, Response, Scope, Send
from simulator.protocol import ARRIVED
from simulator.routing import Router, Target, allowed, pick

log = logging.getLogger("simulator")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

_NOT_ALLOWED = Response.text("Method Not Allowed", status=405)
_TOO_LARGE = Response.json({"detail": "Request body too large"}, status=413)
_INTERNAL = Response.json({"detail": "Internal simulator error"}, status=500)


class SimulatorApp:
    """ASGI entry point. ``sleep`` and ``clock`` are injectable so delay logic can be tested exactly."""

    def __init__(
        self, host: PluginHost, *, sleep: Sleep = asyncio.sleep, clock: Clock = time.monotonic
    ) -> None:
        self.host = host
        self.router = Router(
            Target(route, plugin.name, plugin.delay if route.delayed else None, plugin.rng)
            for plugin in host.plugins.values()
            for route in plugin.routes
        )
        self.admin = _admin_app(host)
        self._sleep = sleep
        self._clock = clock
        self._max_body = host.core.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            arrived = scope.get(ARRIVED) or self._clock()
            found = self.router.match(scope["method"], scope["path"])
            if found is not None:
                table, params = found
                target = pick(table, scope["method"])
                if target is None:
                    response = _NOT_ALLOWED.with_headers(((b"allow", allowed(table).encode()),))
                    await _send(send, response, head=False)
                    return
                await self._serve(target, Request(scope, receive, params, self._max_body), arrived, send)
                return
        await self.admin(scope, receive, send)

    async def _serve(self, target: Target, request: Request, arrived: float, send: Send) -> None:
        try:
            response = await target.route.handler(request)
        except RequestBodyTooLarge:
            response = _TOO_LARGE
        except Exception:
            log.exception("route %s failed on %s %s", target.route.name, request.method, request.path)
            response = _INTERNAL
        if target.delay is not None:
            # The delay is a deadline from arrival: time spent in the handler is absorbed, not added.
            remaining = arrived + target.delay.sample(target.rng) - self._clock()
            if remaining > 0:
                await self._sleep(remaining)
        await _send(send, response, head=request.method == "HEAD")


async def _send(send: Send, response: Response, *, head: bool) -> None:
    await send({"type": "http.response.start", "status": response.status, "headers": response.headers})
    await send({"type": "http.response.body", "body": b"" if head else response.body})


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
        summary="Core routes of the simulator; plugin routes are listed at /_simulator/plugins.",
        docs_url="/_simulator/docs",
        redoc_url=None,
        openapi_url="/_simulator/openapi.json",
        lifespan=lifespan,
    )
    app.state.host = host
    app.include_router(introspection.router)
    return app


def create_app(host: PluginHost | None = None) -> SimulatorApp:
    """Build the application; without ``host``, from the environment (what each worker process does)."""
    return SimulatorApp(host or PluginHost.from_environment())
