"""uvicorn's httptools protocol, with each response written in one call and delayed responses on time.

Four additions for speed (measured: see README, Performance):

- uvicorn writes the status line and headers, then the body, as two ``transport.write`` calls, and uvloop
  sends each at once: two ``send`` syscalls per response, the largest single cost of a canned answer. Here
  the writes of one event-loop step are joined and sent together at the end of that step.
- Each request's scope carries its arrival time (``scope["extensions"][ARRIVED]``), taken when its first
  bytes are parsed: under a burst the ASGI task starts later, and a delay measured from then would
  overshoot by the queueing time.
- Each request's scope carries a weak reference to its connection (``CONNECTION``), with which fault
  injection resets, closes or cuts it (``simulator/faults.py``).
- Each request's scope carries a ``RESPOND_LATER`` extension, which sends a prepared response from a timer
  callback. A delayed response that waits in a task instead is written only once the task's turn comes in
  the loop's queue of ready callbacks, behind every request that arrived meanwhile (with 2,000 delayed
  requests in flight, p99 overshoot over 4 paired runs: 24-42 ms from the timer, 29-47 ms from the task).

It also enforces what one connection may ask of a worker (:class:`Limits`, docs/reliability.md): the
size of a request head, counted as it arrives so that an oversized one is never parsed whole; the number
of header fields and the target's length; a body declared past the limit (flagged for the dispatcher,
which answers the plugin's own 413); the time a head may take (a sweep once a second); the connections open
at once (the oldest idle one gives way, else 503). And a client that half-closes after its request still
gets its answer.

This is the one module that relies on uvicorn's internals (``HttpToolsProtocol``'s ``scope``, ``cycle``,
``flow`` and ``transport``, ``RequestResponseCycle.send`` awaiting only while writes are paused). They are
pinned to the uvicorn minor in :data:`TESTED_UVICORN` (``pyproject.toml`` pins the same): :func:`choose`
checks them at start-up and falls back to uvicorn's stock protocol, with one warning, when they differ. The
application works the same either way, only slower.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import urllib.parse
import weakref
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Final

import httptools
import uvicorn
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from simulator.http import (
    ARRIVED,
    BODY_TOO_LARGE,
    CONNECTION,
    RESPOND_LATER,
    Message,
    RawHeaders,
    Send,
)

log = logging.getLogger("simulator")

#: The uvicorn minor whose internals this module was written and tested against.
TESTED_UVICORN: Final = "0.54"


def incompatibility() -> str | None:
    """Why this module cannot drive the installed uvicorn, or None when it can."""
    minor = ".".join(uvicorn.__version__.split(".")[:2])
    if minor != TESTED_UVICORN:
        return f"uvicorn {uvicorn.__version__} is not the tested {TESTED_UVICORN}.x"
    # Attributes are set in __init__, so their names are in its code; methods must exist on the class.
    needs: Iterable[tuple[type, str, tuple[str, ...]]] = (
        (
            HttpToolsProtocol,
            "__init__",
            ("scope", "cycle", "flow", "transport", "loop", "parser", "pipeline"),
        ),
        (FlowControl, "__init__", ("write_paused",)),
    )
    for cls, method, names in needs:
        missing = set(names) - set(getattr(cls, method).__code__.co_names)
        if missing:
            return f"uvicorn {uvicorn.__version__}'s {cls.__name__} has no {', '.join(sorted(missing))}"
    methods = (
        "on_message_begin",
        "on_headers_complete",
        "on_body",
        "on_message_complete",
        "connection_made",
        "send_400_response",
        "_unsupported_upgrade_warning",
        "_start_asgi_task",
        "on_response_complete",
    )
    for cls, name in ((HttpToolsProtocol, method) for method in methods):
        if not callable(getattr(cls, name, None)):
            return f"uvicorn {uvicorn.__version__}'s {cls.__name__} has no {name}()"
    if not inspect.iscoroutinefunction(getattr(RequestResponseCycle, "send", None)):
        return f"uvicorn {uvicorn.__version__}'s RequestResponseCycle.send is not a coroutine function"
    return None


def choose(log: logging.Logger, limits: Limits) -> type[asyncio.Protocol] | str:
    """The ``http`` protocol for uvicorn's Config: this module's with ``limits``, or ``"httptools"`` after
    one warning (uvicorn's own limits only, then: see docs/reliability.md)."""
    problem = incompatibility()
    if problem is None:
        return configured(limits)
    log.warning(
        "%s: serving with uvicorn's stock httptools protocol (two writes per response, delays from the task)",
        problem,
    )
    return "httptools"


class _CoalescingTransport:
    """Delegates to the real transport, except that writes wait for the end of the loop step.

    Every write path goes through the buffer (``write``, ``writelines``) or empties it first
    (``write_eof``, ``close``), so bytes never overtake each other; ``abort`` drops them, as it drops the
    real transport's buffer.
    """

    __slots__ = ("__weakref__", "_buffer", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._buffer:
            self._loop.call_soon(self.flush)
        self._buffer.append(data)

    def is_closing(self) -> bool:  # asked at every answer: not through __getattr__
        return self._transport.is_closing()

    def writelines(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Send what was written so far now instead of at the end of the loop step."""
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()  # a response written just before closing must still go out
        self._transport.close()

    def abort(self) -> None:
        self._buffer.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one connection may ask of a worker (``SIMULATOR_MAX_*`` and ``SIMULATOR_*_TIMEOUT``; see
    docs/reliability.md). Enforced here, before the application sees the request."""

    head_bytes: int = 65_536  # request line and headers together: 431 past it, before they are read whole
    url_bytes: int = 8_192  # the request target: 414
    headers: int = 100  # header fields: 431
    body_bytes: int = 1 << 20  # a Content-Length past it: the plugin's own 413, without reading the body
    header_timeout: float = 10.0  # open (or first byte of a request) to the end of its headers: 408
    connections: int = 10_000  # open at once in this worker: past it an idle one is closed, or 503


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that was answered and closed."""


_REASONS: Final = {
    408: b"408 Request Timeout",
    413: b"413 Content Too Large",
    414: b"414 URI Too Long",
    431: b"431 Request Header Fields Too Large",
    503: b"503 Service Unavailable",
}


def _refusal(status: int, text: str) -> bytes:
    body = text.encode() + b"\n"
    return b"".join((
        b"HTTP/1.1 ", _REASONS[status], b"\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ",
        str(len(body)).encode(), b"\r\nconnection: close\r\n\r\n", body,
    ))  # fmt: skip


class _Connections:
    """The connections open in this process, oldest first, and a once-a-second sweep that closes those
    whose request head is late (slowloris, or a connection that never sends)."""

    def __init__(self) -> None:
        self.open: dict[CoalescingHttpToolsProtocol, None] = {}
        self._sweeping = False
        self.refused = 0  # connections answered 503 at the limit: the first one is logged

    def add(self, protocol: CoalescingHttpToolsProtocol) -> None:
        self.open[protocol] = None
        if not self._sweeping:
            self._sweeping = True
            protocol.loop.call_later(1.0, self._sweep, protocol.loop)

    def make_room(self, limit: int) -> bool:
        """At the limit, close the oldest idle connection: a keep-alive one waiting for its next request
        (as nginx reuses its idle keep-alive connections), else one that has sent nothing for a second.
        False when every connection is busy."""
        if len(self.open) < limit:
            return True
        now = time.monotonic()
        for waited in (True, False):
            for protocol in self.open:
                if protocol.idle(now, kept_alive=waited):
                    protocol.transport.close()
                    del self.open[protocol]  # connection_lost comes later; the room is needed now
                    return True
        return False

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        late = [p for p in self.open if p.head_late(now)]
        for protocol in late:
            protocol.head_timed_out()
        if self.open:
            loop.call_later(1.0, self._sweep, loop)
        else:
            self._sweeping = False


_connections = _Connections()


def open_connections() -> int:
    return len(_connections.open)


def configured(limits: Limits) -> type[CoalescingHttpToolsProtocol]:
    """The protocol class, set to ``limits`` in this process (uvicorn instantiates the class it is given;
    worker processes get it by name, so each sets its limits again: see ``simulator/workers.py``)."""
    CoalescingHttpToolsProtocol.limits = limits
    return CoalescingHttpToolsProtocol


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[Limits] = Limits()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        coalescing = _CoalescingTransport(transport, self.loop)  # type: ignore[arg-type]
        super().connection_made(coalescing)  # type: ignore[arg-type]
        self._respond_later = partial(_respond_later, self.loop)
        # The application's Immediate interface (simulator/http.py), when uvicorn has nothing of its own to do
        # per request (its access log, its concurrency limit).
        immediate = not self.access_log and self.limit_concurrency is None
        self._claim = getattr(self.app, "claim_immediate", None) if immediate else None
        self._answer = getattr(self.app, "answer_immediate", None)
        self._claimed: object | None = None
        self._body: list[bytes] = []  # the claimed request's body, as it arrives
        self._keep_alive = True
        # Since when the connection waits for its next request after an answer written here (None: it does
        # not), and the timer that closes it timeout_keep_alive seconds after that.
        self._idle_from: float | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._connection = weakref.ref(coalescing)
        # The request head being read (between requests, uvicorn's keep-alive timeout covers the wait):
        # since when, and how many bytes of it have arrived.
        self._in_head = True
        self._head_since = time.monotonic()
        self._head_bytes = 0
        if not _connections.make_room(self.limits.connections):
            if not _connections.refused:
                log.warning(
                    "%d connections open in this worker (SIMULATOR_MAX_CONNECTIONS): answering 503 to new "
                    "ones until some close",
                    len(_connections.open),
                )
            _connections.refused += 1
            transport.write(_refusal(503, "too many connections"))  # type: ignore[attr-defined]
            transport.close()
            self._in_head = False
            return
        _connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        _connections.open.pop(self, None)
        self._idle_from = None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        super().connection_lost(exc)

    def idle(self, now: float, *, kept_alive: bool) -> bool:
        """Waiting for a request that has not begun, so that closing the connection loses nothing: after
        an answer (``kept_alive``), or since it opened more than a second ago."""
        if kept_alive:  # uvicorn arms its keep-alive timer once an answer is out and nothing is queued
            return (
                self.timeout_keep_alive_task is not None or self._idle_from is not None
            ) and not self._in_head
        return self.cycle is None and not self._head_bytes and now - self._head_since > 1.0

    def head_late(self, now: float) -> bool:
        if not self._in_head:
            return False
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A pipelined head behind an answer still due: uvicorn stops reading meanwhile, so the head
            # cannot end. Its time counts from when that answer is out.
            self._head_since = now
            return False
        return now - self._head_since > self.limits.header_timeout

    def head_timed_out(self) -> None:
        if self._head_bytes:  # a request began and its headers did not arrive in time
            self._refuse(408, "the request headers took too long (SIMULATOR_HEADER_TIMEOUT)")
        else:  # nothing was sent: nothing to answer
            self.transport.close()
        self._in_head = False

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            size = self._head_bytes + len(data)
            if size > self.limits.head_bytes:
                self._past_head_limit(data)
                return
            self._head_bytes = size
        # uvicorn's data_received from here (inlined: this runs for every read), except that a request this
        # protocol refused stops the parser quietly.
        self._idle_from = None
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _Refused):
                self._invalid()
        except httptools.HttpParserError:
            self._invalid()
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()  # no WebSocket here (ws="none")

    def _invalid(self) -> None:
        self.logger.warning("Invalid HTTP request received.")
        self.send_400_response("Invalid HTTP request received.")

    def _past_head_limit(self, data: bytes) -> None:
        # Parse only what the limit allows: past it the headers must have ended. httptools keeps a header it
        # has not finished in memory, and joining its pieces is quadratic (256 MB cost 77 s of CPU).
        room = self.limits.head_bytes - self._head_bytes
        self.data_received(data[:room])  # reaches the limit exactly: parsed as usual
        if self.transport.is_closing():
            return
        if self._in_head and self._head_bytes >= self.limits.head_bytes:  # still the same head
            self._refuse(431, "the request line and headers are too large (SIMULATOR_MAX_HEADER_BYTES)")
        elif len(data) > room:
            self.data_received(data[room:])  # the rest: a body, or the next request

    def eof_received(self) -> bool | None:  # type: ignore[override]
        # The client shut its side (``shutdown(SHUT_WR)``, ``nc -N``) after sending: answer what it sent,
        # then close.
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.more_body:  # its body was cut short: nothing to answer (the app sees a disconnect)
                return None
            # The newest request (queued ones before it are answered in turn): close after its answer.
            cycle.keep_alive = False
            return True
        # Answered already, but perhaps still in the write buffer (sent at the end of the loop step): the
        # transport closes itself after this returns, and only what it holds is sent first.
        self.transport.flush()  # type: ignore[attr-defined]
        return None

    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)  # not super(): one object less per request
        # When the request's first bytes were parsed: under a burst the ASGI task starts later than this,
        # and a delay measured from the task's start would overshoot by the queueing time. The
        # RespondLater is one object per connection holding only the loop: the scope must not reference the
        # cycle, which references the scope, or every request would leave a reference cycle.
        arrived = time.monotonic()
        if self.cycle is not None:
            # A later request on this connection (the first's head is timed and counted from the opening):
            # from here. Its first read went uncounted, so its head may pass the limit by that read's size
            # (uvloop reads at most 256 KiB) before it is refused: still bounded, and parsed in one piece.
            self._in_head = True
            self._head_since = arrived
            self._head_bytes = 0
        extensions: Any = {
            ARRIVED: arrived,
            RESPOND_LATER: self._respond_later,
            CONNECTION: self._connection,
        }
        self.scope["extensions"] = extensions

    def on_headers_complete(self) -> None:
        self._in_head = False
        limits = self.limits
        if len(self.url) > limits.url_bytes:
            self._refuse(414, "the request target is too long")
            raise _Refused
        if len(self.headers) > limits.headers:
            self._refuse(431, "too many header fields (SIMULATOR_MAX_HEADERS)")
            raise _Refused
        # A claim may take a request with no body, or with a Content-Length one within the limit (chunked
        # bodies and bodies past the limit take the ASGI path).
        claimable = True
        sized = False
        for name, value in self.headers:
            if name == b"content-length":
                # llhttp has checked it is digits (and not repeated); the dispatcher answers 413 in the
                # plugin's shape and closes, so the body is never buffered.
                sized = True
                if len(value) > 18 or int(value) > limits.body_bytes:
                    extensions: Any = self.scope["extensions"]
                    extensions[BODY_TOO_LARGE] = True
                    claimable = False
                break
            if name == b"transfer-encoding":
                claimable = False
        if claimable and self._claim is not None and self._claim_or_start(sized):
            return
        HttpToolsProtocol.on_headers_complete(self)  # not super(): one object less per request

    def _claim_or_start(self, sized: bool) -> bool:
        """For a request with nothing before it still to answer, and nothing uvicorn must do itself: the
        scope, then the application's claim to answer it from on_message_complete, or else its ASGI task.
        False for any other request (and a GET or HEAD with a body): uvicorn's on_headers_complete has it all
        to do."""
        parser = self.parser
        method = parser.get_method()
        if sized and (method == b"GET" or method == b"HEAD"):
            return False
        cycle = self.cycle
        if (
            (cycle is not None and not cycle.response_complete)
            or self.pipeline
            or self.expect_100_continue
            or self.flow.write_paused
            or parser.should_upgrade()
        ):
            return False
        # The scope as uvicorn's on_headers_complete fills it (which runs instead, when not claimed).
        scope: Any = self.scope
        http_version = parser.get_http_version()
        scope["method"] = method.decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        root_path = self.root_path
        if root_path:
            scope["path"] = root_path + path
            scope["raw_path"] = root_path.encode("ascii") + raw_path
        else:
            scope["path"] = path
            scope["raw_path"] = raw_path
        scope["query_string"] = parsed_url.query or b""
        keep_alive = http_version != "1.0" and parser.should_keep_alive()
        claim = self._claim(scope)  # type: ignore[misc]
        if claim is not None:
            self._claimed = claim
            self._keep_alive = keep_alive
            return True
        # Not claimed: the rest of uvicorn's on_headers_complete, without parsing the target again (a delayed
        # request paid 2 % more for that). Its concurrency limit is not set (else _claim is None), and nothing
        # is being answered, so the request starts at once.
        self.cycle = self._new_cycle(scope, keep_alive)
        self._start_asgi_task(self.cycle, self.app)
        return True

    def on_body(self, body: bytes) -> None:
        if self._claimed is None:
            HttpToolsProtocol.on_body(self, body)
        else:
            # A claimed request's body, kept until it is complete: at most SIMULATOR_MAX_BODY_BYTES (its
            # Content-Length was checked), as the ASGI path's Request.body() would join it.
            self._body.append(body)

    def on_message_complete(self) -> None:
        claimed = self._claimed
        if claimed is None:
            HttpToolsProtocol.on_message_complete(self)
            return
        self._claimed = None
        parts = self._body
        if parts:
            body = b"".join(parts)
            parts.clear()
        else:
            body = b""
        self._answer(claimed, self.scope, body, self._write_now)  # type: ignore[misc]

    def _write_now(self, status: int, headers: RawHeaders, body: bytes) -> None:
        """Write a claimed request's answer as uvicorn's ``send`` would have, in one call; an answer whose
        headers need more than that (no content-length, a ``connection`` header, a bad value) goes through
        a cycle, as the ASGI path would."""
        block = _header_block(headers)
        if block is None or (block[1] != len(body) and self.scope["method"] != "HEAD"):
            self._write_by_cycle(status, headers, body)
            return
        defaults = self.server_state.default_headers
        if defaults is not _defaults[0]:
            _defaults[:] = defaults, b"".join(b"%s: %s\r\n" % pair for pair in defaults)
        keep_alive = self._keep_alive
        transport = self.transport
        # Buffered: sent at the end of the loop step, with every answer written meanwhile on this connection
        # (pipelined ones), one write. Sending it when the parser returns instead counts fewer instructions
        # with one request at a time (callgrind) but cost a quarter of the throughput with 64 connections
        # (wrk, same run: canned 40,000-44,000 -> 52,000-53,000 requests/s, token 22,000 -> 29,000-32,000):
        # each answer woke the client for itself, and the reads and writes of every connection interleaved.
        end = b"\r\n" if keep_alive else _CLOSE
        transport.write(b"".join((STATUS_LINE[status], _defaults[1], block[0], end, body)))
        # uvicorn's on_response_complete, except for its keep-alive timer: one per request, armed here and
        # cancelled by the next request's data, cost 5 % of an answer. Instead the connection notes when it
        # fell idle, and one timer per connection, re-armed only when it fires early, closes it in time.
        self.server_state.total_requests += 1
        if not keep_alive:
            transport.close()
            return
        if transport.is_closing():
            return
        flow = self.flow
        if flow.read_paused:  # as flow.resume_reading(), without the call when reading goes on
            flow.resume_reading()
        loop = self.loop
        self._idle_from = loop.time()
        if self._idle_timer is None:
            self._idle_timer = loop.call_at(self._idle_from + self.timeout_keep_alive, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        idle_from = self._idle_from
        if idle_from is None:  # a request came meanwhile: re-armed once it is answered
            return
        due = idle_from + self.timeout_keep_alive
        if self.loop.time() >= due:
            self.timeout_keep_alive_handler()
        else:
            self._idle_timer = self.loop.call_at(due, self._idle_check)

    def _new_cycle(self, scope: Any, keep_alive: bool) -> RequestResponseCycle:
        """A request's cycle as uvicorn's on_headers_complete makes it, for a request without
        ``Expect: 100-continue`` (the only ones the claim path sees)."""
        return RequestResponseCycle(
            scope=scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=keep_alive,
            on_response=self.on_response_complete,
        )

    def _write_by_cycle(self, status: int, headers: RawHeaders, body: bytes) -> None:
        cycle = self.cycle = self._new_cycle(self.scope, self._keep_alive)
        cycle.more_body = False
        try:
            _run_to_end(cycle.send({"type": "http.response.start", "status": status, "headers": headers}))
            _run_to_end(cycle.send({"type": "http.response.body", "body": body}))
        except Exception as exc:  # as uvicorn's run_asgi handles an error raised by send
            self.logger.error("Exception in ASGI application\n", exc_info=exc)
            if not cycle.response_started:
                _run_to_end(cycle.send_500_response())
            else:
                self.transport.close()
        cycle.on_response = lambda: None

    def _refuse(self, status: int, text: str) -> None:
        self._in_head = False
        if not self.transport.is_closing():
            self.transport.write(_refusal(status, text))
            self.transport.close()


_CLOSE: Final = b"connection: close\r\n\r\n"
# uvicorn's default headers (the date), as bytes: rebuilt when uvicorn replaces the list (at its ticks).
_defaults: list[Any] = [None, b""]
# The last answer's headers, validated as uvicorn's send validates them, and their content-length: canned
# answers return the same tuple every time (held here, so that identity cannot be reused).
_last_headers: list[Any] = [None, None]


def _header_block(headers: RawHeaders) -> tuple[bytes, int] | None:
    """``headers`` as uvicorn writes them and their content-length, or None when uvicorn's send must handle
    them (no content-length, transfer-encoding or connection given, a name or value it refuses)."""
    if headers is _last_headers[0]:
        block: tuple[bytes, int] | None = _last_headers[1]
        return block
    length = None
    lines = []
    for name, value in headers:
        if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
            return None
        name = name.lower()
        if name == b"content-length":
            if length is None:
                if not value.isdigit():
                    return None
                length = int(value)
        elif name == b"transfer-encoding" or name == b"connection":
            return None
        lines.append(b"%s: %s\r\n" % (name, value))
    if length is None:
        return None
    block = b"".join(lines), length
    _last_headers[:] = headers, block
    return block


def _respond_later(
    loop: asyncio.AbstractEventLoop, send: Send, seconds: float, start: Message, body: Message
) -> asyncio.Future[float | None]:
    done: asyncio.Future[float | None] = loop.create_future()
    cycle = getattr(send, "__self__", None)
    if isinstance(cycle, RequestResponseCycle):
        loop.call_later(seconds, _deliver, cycle, done, start, body)
    else:  # ``send`` is a middleware's wrapper, not uvicorn's: only wait here, the caller sends
        loop.call_later(seconds, _resolve, done, None)
    return done


def _deliver(
    cycle: RequestResponseCycle, done: asyncio.Future[float | None], start: Message, body: Message
) -> None:
    if done.done():  # the waiting task was cancelled (a forced shutdown)
        return
    if cycle.flow.write_paused:  # uvicorn's send would have to wait for the reader: the caller sends
        done.set_result(None)
        return
    try:
        _run_to_end(cycle.send(start))  # type: ignore[arg-type]
        _run_to_end(cycle.send(body))  # type: ignore[arg-type]
    except Exception as exc:  # uvicorn's own checks (a bad header): raised in the task, as with await send
        done.set_exception(exc)
        return
    # The writes went to the _CoalescingTransport: send them now, not at the end of the loop step.
    cycle.transport.flush()  # type: ignore[attr-defined]
    done.set_result(time.monotonic())


def _resolve(done: asyncio.Future[float | None], result: float | None) -> None:
    if not done.done():
        done.set_result(result)


def _run_to_end(step: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that has nothing to wait for, synchronously."""
    try:
        step.send(None)
    except StopIteration:
        return
    step.close()
    raise RuntimeError("uvicorn's send suspended while writes were not paused")
