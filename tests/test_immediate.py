"""Requests answered from the protocol's parser callback (``Immediate``): the same bytes, counts and order as
the ASGI path, and the ASGI path whenever a fault, delay or anything unusual applies."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
import uvloop

from simulator import Request, Response, Router, hookimpl
from simulator.app import SimulatorApp, create_app, never_suspends
from simulator.delays import Fixed
from simulator.faults import FaultRule
from simulator.host import PluginHost
from simulator.protocol import CoalescingHttpToolsProtocol
from tests.conftest import free_port

CANNED = Response.text("canned")


class Plugin:
    """Routes for each case: canned, one that awaits, one that fails, one without a content-length."""

    @hookimpl
    def simulator_register_routes(self) -> Router:
        routes = Router()

        @routes.get("/t/canned", name="canned")
        async def canned(request: Request) -> Response:
            return CANNED.with_headers({"x-seen": request.headers.get("x-tag", "-")})

        @routes.get("/t/awaits", name="awaits")
        async def awaits(request: Request) -> Response:
            await asyncio.sleep(0)
            return Response.text("awaited")

        @routes.get("/t/fails", name="fails")
        async def fails(request: Request) -> Response:
            raise ValueError("boom")

        @routes.get("/t/unsized", name="unsized")
        async def unsized(request: Request) -> Response:
            return Response(200, b"abc", ((b"content-type", b"text/plain"),))

        @routes.post("/t/echo", name="echo")
        async def echo(request: Request) -> Response:
            form = request.received_form()
            return Response.text(f"{request.received!r} name={form.get('name')}")

        @routes.get("/t/bad-header", name="bad_header")
        async def bad_header(request: Request) -> Response:
            return Response(200, b"ok", ((b"content-length", b"2"), (b"x-bad", b"a\x01b")))

        return routes


def _host(env: dict[str, str] | None = None) -> PluginHost:
    return PluginHost.from_plugins({"t": Plugin()}, env=env or {})


@asynccontextmanager
async def _serving(app: SimulatorApp, **options: Any) -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="none",
        lifespan="off",
        log_level="warning",
        http=CoalescingHttpToolsProtocol,
        server_header=False,
        date_header=False,
        proxy_headers=False,  # as simulator serve runs it: the middleware would hide the app
        access_log=False,  # as well: uvicorn's access log needs its own path
        **options,
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await serving


async def _exchange(port: int, data: bytes, answers: int, heads: frozenset[int] = frozenset()) -> list[bytes]:
    """Send ``data`` in one write; read ``answers`` whole answers (each with a content-length or chunked;
    those numbered in ``heads`` answer HEAD requests: no body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        got = []
        for number in range(answers):
            head = await reader.readuntil(b"\r\n\r\n")
            fields = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
            }
            if fields.get(b"transfer-encoding") == b"chunked":
                body = await reader.readuntil(b"0\r\n\r\n")
            elif number in heads:
                body = b""
            else:
                body = await reader.readexactly(int(fields.get(b"content-length", b"0")))
            got.append(head + body)
        return got
    finally:
        writer.close()


def _run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return uvloop.run(scenario())


def test_a_handler_without_await_is_answerable_and_one_with_await_is_not() -> None:
    async def plain(request: Request) -> Response:
        return CANNED

    async def awaiting(request: Request) -> Response:
        await asyncio.sleep(0)
        return CANNED

    async def iterating(request: Request) -> Response:
        async with asyncio.Lock():
            return CANNED

    def synchronous(request: Request) -> Response:
        return CANNED

    assert never_suspends(plain)
    assert not never_suspends(awaiting)
    assert not never_suspends(iterating)
    assert not never_suspends(synchronous)


def test_only_a_route_with_nothing_armed_is_claimed() -> None:
    app = create_app(_host())

    def claim(method: str, path: str) -> Any:
        return app.claim_immediate({"method": method, "path": path, "extensions": {}})

    claimed = claim("GET", "/t/canned")
    assert claimed is not None
    endpoint = claimed[0]
    assert claim("HEAD", "/t/canned") is not None
    assert claim("POST", "/t/canned") is None  # 405: the ASGI path answers it
    assert claim("POST", "/t/echo") is not None  # a body: the protocol hands it over with the claim
    assert claim("GET", "/t/awaits") is None
    assert claim("GET", "/nowhere") is None
    endpoint.live.faults = ((1.0, FaultRule("status", 1.0, status=503)),)
    scope: dict[str, Any] = {"method": "GET", "path": "/t/canned", "extensions": {}}
    assert app.claim_immediate(scope) is None
    assert scope["extensions"]["simulator.matched"][0]["GET"] is endpoint  # for the dispatcher
    endpoint.live.faults = ()
    assert claim("GET", "/t/canned") is not None


def test_pipelined_answers_keep_their_order_and_are_all_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(_host())

    async def scenario() -> list[bytes]:
        async with _serving(app) as port:
            requests = (
                b"GET /t/canned HTTP/1.1\r\nhost: x\r\nx-tag: 1\r\n\r\n"
                b"GET /t/awaits HTTP/1.1\r\nhost: x\r\n\r\n"
                b"GET /t/canned HTTP/1.1\r\nhost: x\r\nx-tag: 3\r\n\r\n"
                b"HEAD /t/canned HTTP/1.1\r\nhost: x\r\nx-tag: 4\r\n\r\n"
                b"GET /t/canned HTTP/1.1\r\nhost: x\r\nx-tag: 5\r\n\r\n"
            )
            return await _exchange(port, requests, 5, heads=frozenset({3}))

    asgi_calls = []
    call = SimulatorApp.__call__

    async def counting(self: SimulatorApp, scope: Any, receive: Any, send: Any) -> None:
        asgi_calls.append(scope["path"])
        await call(self, scope, receive, send)

    monkeypatch.setattr(SimulatorApp, "__call__", counting)
    answers = _run(scenario)
    # The first from the parser's callback; those behind the one that awaits wait their turn in uvicorn's
    # pipeline, on the ASGI path.
    assert asgi_calls == ["/t/awaits", "/t/canned", "/t/canned", "/t/canned"]
    canned = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 6\r\n"
    assert answers[0] == canned + b"x-seen: 1\r\n\r\ncanned"
    assert answers[1].endswith(b"\r\n\r\nawaited")
    assert answers[2] == canned + b"x-seen: 3\r\n\r\ncanned"
    assert answers[3] == canned + b"x-seen: 4\r\n\r\n"  # HEAD: the GET's headers, no body
    assert answers[4] == canned + b"x-seen: 5\r\n\r\ncanned"
    statuses = app.observer.metrics.route("t", "t.canned").methods
    assert statuses["GET"].statuses == {200: 3}
    assert statuses["HEAD"].statuses == {200: 1}
    assert [entry[1:3] for entry in app.observer.journal._entries][-5:] == [
        ("GET", "/t/canned"),
        ("GET", "/t/awaits"),
        ("GET", "/t/canned"),
        ("HEAD", "/t/canned"),
        ("GET", "/t/canned"),
    ]


def test_unusual_answers_are_written_as_uvicorn_writes_them(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(_host())

    async def scenario() -> list[bytes]:
        async with _serving(app) as port:
            one = await _exchange(port, b"GET /t/unsized HTTP/1.1\r\nhost: x\r\n\r\n", 1)
            two = await _exchange(port, b"GET /t/fails HTTP/1.1\r\nhost: x\r\n\r\n", 1)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /t/bad-header HTTP/1.1\r\nhost: x\r\n\r\n")
            three = [await reader.read()]
            writer.close()
            closing = await _exchange(port, b"GET /t/canned HTTP/1.0\r\n\r\n", 1)
            return one + two + three + closing

    with caplog.at_level(logging.ERROR):
        unsized, fails, bad, closing = _run(scenario)
    assert [record.getMessage() for record in caplog.records if record.name == "simulator"] == [
        "route t.fails failed on GET /t/fails"
    ]
    chunked = b"content-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert unsized == b"HTTP/1.1 200 OK\r\n" + chunked
    assert fails.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert fails.endswith(b'Internal simulator error"}')
    assert bad == b""  # uvicorn refuses the header once the answer has begun: it closes, as from a task
    assert closing.endswith(b"x-seen: -\r\nconnection: close\r\n\r\ncanned")


def test_an_idle_connection_closes_after_the_keep_alive_timeout_and_a_busy_one_does_not() -> None:
    app = create_app(_host())
    request = b"GET /t/canned HTTP/1.1\r\nhost: x\r\n\r\n"

    async def scenario() -> tuple[float, bool]:
        async with _serving(app, timeout_keep_alive=0.5) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(6):  # 0.2 s apart: never idle for 0.5 s
                writer.write(request)
                await reader.readuntil(b"canned")
                await asyncio.sleep(0.2)
            busy_open = not reader.at_eof()
            started = time.monotonic()
            assert await reader.read() == b""  # closed by the server
            writer.close()
            return time.monotonic() - started, busy_open

    waited, busy_open = _run(scenario)
    assert busy_open
    assert 0.2 <= waited < 1.5  # 0.5 s after the last answer, 0.2 s of which were slept already


@pytest.mark.parametrize("arm", ["fault", "delay"])
def test_a_fault_or_delay_armed_at_run_time_takes_the_asgi_path(arm: str) -> None:
    app = create_app(_host())
    live = app.claim_immediate({"method": "GET", "path": "/t/canned", "extensions": {}})[0].live  # type: ignore[index]

    async def scenario() -> tuple[list[bytes], float]:
        async with _serving(app) as port:
            await _exchange(port, b"GET /t/canned HTTP/1.1\r\nhost: x\r\n\r\n", 1)
            if arm == "fault":
                live.faults = ((1.0, FaultRule("status", 1.0, status=503)),)
            else:
                live.delay = Fixed(0.2)
            started = time.monotonic()
            answer = await _exchange(port, b"GET /t/canned HTTP/1.1\r\nhost: x\r\n\r\n", 1)
            return answer, time.monotonic() - started

    (answer,), took = _run(scenario)
    if arm == "fault":
        assert answer.startswith(b"HTTP/1.1 503 ")
    else:
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert took >= 0.2


def _counting_asgi_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    call = SimulatorApp.__call__

    async def counting(self: SimulatorApp, scope: Any, receive: Any, send: Any) -> None:
        calls.append(f"{scope['method']} {scope['path']}")
        await call(self, scope, receive, send)

    monkeypatch.setattr(SimulatorApp, "__call__", counting)
    return calls


def _post(body: bytes, *, tag: str = "") -> bytes:
    head = f"POST /t/echo HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n{tag}\r\n"
    return head.encode() + body


def test_bodies_with_a_content_length_are_answered_from_the_callback_whole_and_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(_host())
    asgi_calls = _counting_asgi_calls(monkeypatch)

    async def scenario() -> tuple[list[bytes], bytes]:
        async with _serving(app) as port:
            pipelined = await _exchange(
                port,
                _post(b"name=one&x=1")
                + b"GET /t/canned HTTP/1.1\r\nhost: x\r\nx-tag: 2\r\n\r\n"
                + _post(b"")
                + _post(b"name=%C3%A9+three"),
                4,
            )
            # A body that arrives in pieces, after its head: answered once it is whole.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_post(b"name=split&rest=" + b"y" * 70_000)[:-70_000])
            await asyncio.sleep(0.05)
            writer.write(b"y" * 60_000)
            await asyncio.sleep(0.05)
            assert not reader._buffer  # type: ignore[attr-defined] - nothing answered before the end
            writer.write(b"y" * 10_000)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            split = await reader.readexactly(length)
            writer.close()
            return pipelined, split

    pipelined, split = _run(scenario)
    assert asgi_calls == []  # every one from the parser's callback
    assert pipelined[0].endswith(b"\r\n\r\nb'name=one&x=1' name=one")
    assert pipelined[1].endswith(b"x-seen: 2\r\n\r\ncanned")
    assert pipelined[2].endswith(b"\r\n\r\nb'' name=None")
    assert pipelined[3].endswith(b"\r\n\r\nb'name=%C3%A9+three' name=\xc3\xa9 three")
    assert split.startswith(b"b'name=split&rest=yyy")
    assert split.endswith(b"yyy' name=split")
    assert len(split) == len(repr(b"name=split&rest=" + b"y" * 70_000)) + len(" name=split")
    echo = app.observer.metrics.route("t", "t.echo").methods["POST"]
    assert echo.statuses == {200: 4}


def test_a_chunked_body_takes_the_asgi_path_and_the_handler_still_receives_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(_host({"SIMULATOR_MAX_BODY_BYTES": "1000"}))
    asgi_calls = _counting_asgi_calls(monkeypatch)
    chunked = b"POST /t/echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"

    async def scenario() -> list[bytes]:
        async with _serving(app) as port:
            fits = await _exchange(port, chunked + b"5\r\nname=\r\n3\r\nabc\r\n0\r\n\r\n", 1)
            past = b"%x\r\n%s\r\n0\r\n\r\n" % (1001, b"z" * 1001)
            too_large = await _exchange(port, chunked + past, 1)
            return fits + too_large

    fits, too_large = _run(scenario)
    assert asgi_calls == ["POST /t/echo", "POST /t/echo"]
    assert fits.endswith(b"\r\n\r\nb'name=abc' name=abc")
    # The plugin's own 413 (this one has no error hook: the core's default shape), not a 500.
    assert too_large.startswith(b"HTTP/1.1 413 ")
    assert b'"status":413' in too_large
