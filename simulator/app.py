"""The ASGI application: a lean dispatcher for plugin routes in front of FastAPI for everything else.

Plugin routes are the hot path: they are matched by :class:`~simulator.routing.Router`, run, delayed and
written straight to the ASGI ``send`` without FastAPI's per-request work. FastAPI serves the core's own
routes (``/_simulator/*``, its OpenAPI docs), unmatched paths and the lifespan.
"""

from __future__ import annotations

import asyncio
import dis
import gc
import inspect
import logging
import math
import time
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final, cast

from fastapi import FastAPI

import simulator
from simulator import control_api, faults, introspection, openapi, scenario
from simulator.control import Control, Pool
from simulator.errors import StartupError
from simulator.faults import FaultRule
from simulator.host import PluginHost
from simulator.http import (
    ARRIVED,
    BODY_TOO_LARGE,
    CONNECTION,
    MATCHED,
    RESPOND_LATER,
    Message,
    Receive,
    Request,
    RequestBodyTooLarge,
    RespondLater,
    Response,
    Scope,
    Send,
    WriteNow,
)
from simulator.observer import Observer
from simulator.peers import Incomplete, Mesh, Peers
from simulator.routing import Endpoint, RouteTable, allowed, pick
from simulator.scenario import Conductor
from simulator.shared import SharedControl

log = logging.getLogger("simulator")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

# Net allocations between young-generation collections in a serving process (CPython's default: 700).
GC_YOUNG_THRESHOLD: Final = 10_000

_NOT_ALLOWED = Response.text("Method Not Allowed", status=405)
_NO_EXTENSIONS: Final[Mapping[str, Any]] = {}
_UNMATCHED: Final = object()
# The plugin's own answers (simulator_error_response) for a body past SIMULATOR_MAX_BODY_BYTES and for a
# request still running when the graceful stop's time is up.
_TOO_LARGE_RULE = FaultRule("status", 0.0, status=413)
_STOPPING_RULE = FaultRule("status", 0.0, status=503, retry_after=5)
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
    """ASGI entry point. ``sleep`` and ``clock`` are injectable so delay logic can be tested exactly.

    ``mesh`` says which worker of how many this process is (``simulator/peers.py``); ``connections``
    counts the open connections, where the server protocol can.
    """

    def __init__(
        self,
        host: PluginHost,
        *,
        sleep: Sleep = sleep_at_least,
        clock: Clock = time.monotonic,
        mesh: Mesh | None = None,
        connections: Callable[[], int] | None = None,
    ) -> None:
        self.host = host
        metrics = host.metrics
        metrics.connections = connections
        self.peers = Peers(mesh)
        shared = (
            SharedControl(host.core.state_url, host.core.service_name)
            if host.core.state_url is not None
            else None
        )
        self.control = Control(host.all_delay_kinds(), self.peers, host.core.workers, shared)
        endpoints = []
        for plugin in host.plugins.values():
            names = [route.name for route in plugin.routes]
            self.control.add_plugin(plugin.name, plugin.delay_spec, plugin.delay, plugin.faults, names)
            faults_rng = host.fault_rng(plugin.name)
            for route in plugin.routes:
                live = self.control.add_endpoint(plugin.name, route.name, route.delayed, faults_rng)
                stats = metrics.route(plugin.name, route.name)
                immediate = never_suspends(route.handler)
                endpoints.append(Endpoint(route, plugin.name, live, plugin.rng, stats, immediate))
        self.routes = RouteTable(endpoints)
        self.conductor = Conductor(self.control, self.peers)
        self._scenario = _startup_scenario(host.core.scenario, self.control)
        self.observer = Observer(host.core, metrics, self.peers)
        self.admin = _admin_app(host, self.observer, self.control, self.conductor, self._scenario)
        self._sleep = sleep
        self._clock = clock
        self._max_body = host.core.max_body_bytes
        self.cut_short = 0  # requests answered 503 because the stop's time was up (one log line says so)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            extensions = scope.get("extensions") or _NO_EXTENSIONS
            arrived = extensions.get(ARRIVED) or self._clock()
            path = scope["path"]
            found = extensions.get(MATCHED, _UNMATCHED)  # matched already when the protocol tried a claim
            if found is _UNMATCHED:
                found = self.routes.match(path)
            if found is not None:
                table, params = found
                endpoint = pick(table, scope["method"])
                request = Request(scope, receive, params, self._max_body)
                if endpoint is None:
                    response = _NOT_ALLOWED.with_headers({"allow": allowed(table)})
                    await _send(send, *_messages(response, head=False))
                    stats = next(iter(table.values())).stats
                    self.observer.record(stats, request, 405, 0.0, arrived, self._clock())
                    return
                if BODY_TOO_LARGE in extensions:
                    await self._refuse(endpoint, _TOO_LARGE_RULE, request, arrived, send)
                    return
                try:
                    await self._serve(endpoint, request, arrived, extensions, send)
                except asyncio.CancelledError:
                    # uvicorn cancels what is still running when SIMULATOR_GRACEFUL_TIMEOUT expires (or at a
                    # second Ctrl-C): a 503 in the fake's own shape, not uvicorn's 500 and a traceback each.
                    # Not re-raised: the task's end is the request's end, and uvicorn is stopping anyway.
                    if await self._refuse(endpoint, _STOPPING_RULE, request, arrived, send):
                        self.cut_short += 1
                return
            if not path.startswith("/_simulator"):
                self.observer.metrics.unrouted += 1
        await self.admin(scope, receive, send)

    def claim_immediate(self, scope: Scope) -> tuple[Endpoint, dict[str, str]] | None:
        """A request this app can answer from the server protocol's parser callback
        (``Immediate`` in ``simulator/http.py``): its route's handler never suspends, and no fault, delay or
        capacity model applies to it now (read per request: the control API changes them). The rest takes
        the ASGI path, unchanged, from the route found here (``MATCHED``)."""
        found = self.routes.match(scope["path"])
        if found is not None:
            table, params = found
            endpoint = pick(table, scope["method"])
            if endpoint is not None and endpoint.immediate:
                live = endpoint.live
                if not live.faults and live.delay is None and live.pool is None:
                    return endpoint, params
        scope["extensions"][MATCHED] = found
        return None

    def answer_immediate(
        self, claim: tuple[Endpoint, dict[str, str]], scope: Scope, body: bytes, write: WriteNow
    ) -> None:
        """What :meth:`_serve` does for a claimed request, without a task: the handler's coroutine runs to its
        end at once, ``write`` hands the answer to the transport, and it is recorded."""
        endpoint, params = claim
        request = Request(scope, _no_body, params, self._max_body, body=body)
        arrived = scope["extensions"][ARRIVED]
        # never_suspends saw a coroutine function: the handler's awaitable is its coroutine.
        handler = cast(Coroutine[Any, Any, Response], endpoint.route.handler(request))
        try:
            handler.send(None)
        except StopIteration as done:
            response: Response = done.value
        except RequestBodyTooLarge:  # cannot happen (the body is here), but the ASGI path's answer if it did
            response = self._error(endpoint, _TOO_LARGE_RULE)
        except Exception:
            log.exception("route %s failed on %s %s", endpoint.route.name, request.method, request.path)
            response = _INTERNAL
        else:  # it awaited after all (never_suspends cannot see through every call): not answerable here
            handler.close()
            log.error("route %s suspended though it never awaits", endpoint.route.name)
            response = _INTERNAL
        status = response.status
        write(status, response.raw_headers, b"" if scope["method"] == "HEAD" else response.body)
        self.observer.record(endpoint.stats, request, status, 0.0, arrived, self._clock())

    async def _serve(
        self,
        endpoint: Endpoint,
        request: Request,
        arrived: float,
        extensions: Mapping[str, Any],
        send: Send,
    ) -> None:
        stats = endpoint.stats
        live = endpoint.live
        if live.faults:
            draw = live.rng.random()
            for bound, rule in live.faults:
                if draw < bound:
                    await self._fault(endpoint, rule, request, arrived, extensions, send)
                    return
        pool = live.pool
        began = arrived  # when its service began: later than arrival for a request that queued
        if pool is not None:
            admitted = await self._admit(endpoint, pool, request, arrived, send)
            if admitted is None:
                return
            began = admitted
        stats.in_flight += 1
        try:
            response = await self._handle(endpoint, request)
            start, body = _messages(response, head=request.method == "HEAD")
            asked = 0.0
            written: float | None = None
            if live.delay is not None:
                # The delay is a deadline from arrival (from the end of its queueing, under a capacity
                # model): time spent in the handler is absorbed, not added.
                asked = live.delay.sample(endpoint.rng)
                remaining = began + asked - self._clock()
                if remaining > 0:
                    respond_later: RespondLater | None = extensions.get(RESPOND_LATER)
                    if respond_later is None:
                        await self._sleep(remaining)
                    else:
                        written = await respond_later(send, timer_seconds(remaining), start, body)
            if written is None:
                await _send(send, start, body)
                written = self._clock()
        finally:
            stats.in_flight -= 1
            if pool is not None:
                pool.release()
        # Queueing is what a capacity model asks for: it counts as asked, so overshoot stays the simulator's.
        self.observer.record(stats, request, response.status, asked + began - arrived, arrived, written)

    async def _handle(self, endpoint: Endpoint, request: Request) -> Response:
        """The route's answer: its 413 for a body past the limit, a 500 (logged) if the handler raised."""
        try:
            if endpoint.immediate and request.method not in _BODILESS:
                # A handler that never awaits reads its body as request.received (see never_suspends).
                await request.body()
            return await endpoint.route.handler(request)
        except RequestBodyTooLarge:  # a chunked body past the limit (a Content-Length one is refused first)
            return self._error(endpoint, _TOO_LARGE_RULE)
        except Exception:
            log.exception("route %s failed on %s %s", endpoint.route.name, request.method, request.path)
            return _INTERNAL

    async def _refuse(
        self, endpoint: Endpoint, rule: FaultRule, request: Request, arrived: float, send: Send
    ) -> bool:
        """The plugin's own error for ``rule.status``, closing the connection: a body too large to read,
        or a request cut short by the stop. False when it could not be sent."""
        response = self._error(endpoint, rule).with_headers({"connection": "close"})
        try:
            await _send(send, *_messages(response, head=request.method == "HEAD"))
        except (RuntimeError, OSError, asyncio.CancelledError):
            # The answer had begun, the client has gone, or the loop is closing while it does not read.
            return False
        self.observer.record(endpoint.stats, request, rule.status, 0.0, arrived, self._clock())
        return True

    async def _admit(
        self, endpoint: Endpoint, pool: Pool, request: Request, arrived: float, send: Send
    ) -> float | None:
        """A request of a route under a capacity model: when its service may begin (at once, or after its
        turn in the queue), or None when the queue was full and it got the fake's rejection."""
        stats = endpoint.stats
        if pool.try_acquire():
            return arrived
        if not pool.can_queue():
            stats.rejected += 1
            rule = pool.rejection
            response = self._error(endpoint, rule)
            await _send(send, *_messages(response, head=request.method == "HEAD"))
            self.observer.record(stats, request, rule.status, 0.0, arrived, self._clock(), "capacity")
            return None
        stats.queued += 1
        try:
            await pool.wait()
        finally:
            stats.queued -= 1
        return self._clock()

    async def _fault(
        self,
        endpoint: Endpoint,
        rule: FaultRule,
        request: Request,
        arrived: float,
        extensions: Mapping[str, Any],
        send: Send,
    ) -> None:
        """A request a fault rule fired on: the rule's answer (or none) instead of the route's, when the
        route's answer was due (a hang from arrival). Off the hot path: only requests a rule fired on."""
        stats = endpoint.stats
        stats.faults[rule.kind] = stats.faults.get(rule.kind, 0) + 1
        stats.in_flight += 1
        status = 0  # recorded for the faults that give no answer
        asked = 0.0
        try:
            if rule.kind == "status":
                response = self._error(endpoint, rule)
            elif rule.kind in ("slow_body", "truncate"):
                response = await self._handle(endpoint, request)
            else:
                response = None
            if endpoint.live.delay is not None and rule.kind != "hang":
                asked = endpoint.live.delay.sample(endpoint.rng)
                remaining = arrived + asked - self._clock()
                if remaining > 0:
                    await self._sleep(remaining)
            connection = extensions.get(CONNECTION) or _stock_connection(send)
            if response is None:
                await faults.no_answer(rule, connection, request.receive, arrived, self._clock)
            else:
                status = response.status
                start, body = _messages(response, head=request.method == "HEAD")
                if rule.kind == "status":
                    await _send(send, start, body)
                else:
                    await faults.partial_answer(
                        rule, start, body, send, connection, request.receive, self._sleep
                    )
        finally:
            stats.in_flight -= 1
        self.observer.record(stats, request, status, asked, arrived, self._clock(), rule.kind)

    def _error(self, endpoint: Endpoint, rule: FaultRule) -> Response:
        """The plugin's own error answer for a status fault (made for each: bodies carry per-answer ids)."""
        make = self.host.plugins[endpoint.plugin].error_response or faults.default_error
        try:
            made = make(rule.status, endpoint.route.name)
            if not isinstance(made, Response):
                raise TypeError(f"returned {type(made).__name__}, not a Response")
        except Exception:
            log.exception("plugin %s: its error response for %d failed", endpoint.plugin, rule.status)
            made = faults.default_error(rule.status, endpoint.route.name)
        made = Response(rule.status, made.body, made.raw_headers)
        if rule.status in (429, 503) and not any(name == b"retry-after" for name, _ in made.raw_headers):
            made = made.with_headers({"retry-after": str(rule.retry_after)})
        return made


# What a coroutine's code does where it may suspend: await, async for, async with (and yield, for generators).
_SUSPENDING: Final = frozenset(
    {"GET_AWAITABLE", "GET_AITER", "GET_ANEXT", "BEFORE_ASYNC_WITH", "YIELD_VALUE"}
)


def never_suspends(handler: Any) -> bool:
    """Whether ``handler`` is an ``async def`` function (or method) whose body has no ``await`` (nor ``async
    for`` or ``async with``): its coroutine then runs to its end in one step, so it can be run without a
    task. Such a handler cannot await its body: the core reads it first, for any method but GET and HEAD,
    and the handler reads it as ``request.received`` (or ``received_form()``)."""
    if isinstance(handler, types.MethodType):
        handler = handler.__func__
    if not inspect.iscoroutinefunction(handler) or not isinstance(handler, types.FunctionType):
        return False
    return not any(ins.opname in _SUSPENDING for ins in dis.get_instructions(handler))


async def _no_body() -> Message:
    """``receive`` for a claimed request, whose Request holds its whole body already: nothing more."""
    return {"type": "http.request", "body": b"", "more_body": False}


# Methods whose body a handler that never awaits does not get (a claim never takes a GET or HEAD with one).
_BODILESS: Final = frozenset({"GET", "HEAD"})


def _stock_connection(send: Send) -> Callable[[], Any] | None:
    """The connection under uvicorn's stock protocol (the fallback of ``simulator/protocol.py``): its
    ``send`` is a bound method of the request's cycle, which holds the transport."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    return (lambda: transport) if transport is not None else None


def _messages(response: Response, *, head: bool) -> tuple[Message, Message]:
    """The ASGI ``http.response.start`` and ``http.response.body`` messages of ``response``."""
    return (
        {"type": "http.response.start", "status": response.status, "headers": response.raw_headers},
        {"type": "http.response.body", "body": b"" if head else response.body},
    )


async def _send(send: Send, start: Message, body: Message) -> None:
    await send(start)
    await send(body)


def _startup_scenario(path: str | None, control: Control) -> Any:
    """``SIMULATOR_SCENARIO``'s timeline, validated (a bad one stops start-up in one line), or None."""
    if path is None:
        return None
    try:
        raw = scenario.load_file(path, control)
        scenario.parse(raw, control)
    except (ValueError, OSError) as exc:
        raise StartupError(f"invalid setting SIMULATOR_SCENARIO={path[:200]}: {exc}") from None
    return raw


def _admin_app(
    host: PluginHost,
    observer: Observer,
    control: Control,
    conductor: Conductor,
    timeline: Any,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await observer.start()  # starts the mesh too
        await control.sync()
        await conductor.sync()
        mesh = observer.peers.mesh
        if timeline is not None and conductor.status is None and (mesh is None or mesh.index == 0):
            # The first worker starts SIMULATOR_SCENARIO; the others learn it from it (or, if they start
            # first, ask it when it is up: they adopt whatever it tells them).
            await conductor.start(timeline)
        log.info(
            "simulator ready: plugins %s",
            ", ".join(host.plugins) or "(none)",
        )
        try:
            yield
        except asyncio.CancelledError:
            # A forced stop (a second Ctrl-C) skips uvicorn's lifespan shutdown and cancels this task as the
            # loop closes: shut down here, quietly (re-raised, Starlette would log it as a failed shutdown).
            pass
        finally:
            await conductor.stop()
            if control.shared is not None:
                await control.shared.stop()
            for state in host.shared_states:
                await state.close()
            await observer.stop()

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
    app.state.observer = observer
    app.state.control = control
    app.state.conductor = conductor
    app.include_router(introspection.router)
    app.include_router(control_api.router)
    app.add_exception_handler(Incomplete, introspection.incomplete)
    openapi.include_plugin_routes(app, host)
    return app


def create_app(host: PluginHost | None = None) -> SimulatorApp:
    """Build the application; without ``host``, from the environment."""
    return SimulatorApp(host or PluginHost.from_environment())


def serve_app(
    host: PluginHost | None = None,
    *,
    mesh: Mesh | None = None,
    connections: Callable[[], int] | None = None,
    restarts: int = 0,
) -> SimulatorApp:
    """What a ``simulator serve`` process serves (each worker calls it): the app, its heap settled."""
    app = SimulatorApp(host or PluginHost.from_environment(), mesh=mesh, connections=connections)
    app.observer.metrics.restarts = restarts
    settle_heap()
    return app


def report_stop(app: SimulatorApp) -> None:
    """Called once uvicorn has returned (every task has ended): one line for the requests cut short."""
    if app.cut_short:
        log.warning(
            "stopped with %d request(s) still waiting after SIMULATOR_GRACEFUL_TIMEOUT=%gs (or a second "
            "Ctrl-C): answered 503",
            app.cut_short,
            app.host.core.graceful_timeout,
        )


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
