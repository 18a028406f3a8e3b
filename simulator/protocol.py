"""uvicorn's httptools protocol, with each response written in one call and delayed responses on time.

Four additions (the timing ones measured: see README, Performance):

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
import weakref
from collections.abc import Coroutine, Iterable
from functools import partial
from typing import Any, Final

import uvicorn
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from simulator.http import ARRIVED, CONNECTION, RESPOND_LATER, Message, Send

#: The uvicorn minor whose internals this module was written and tested against.
TESTED_UVICORN: Final = "0.54"


def incompatibility() -> str | None:
    """Why this module cannot drive the installed uvicorn, or None when it can."""
    minor = ".".join(uvicorn.__version__.split(".")[:2])
    if minor != TESTED_UVICORN:
        return f"uvicorn {uvicorn.__version__} is not the tested {TESTED_UVICORN}.x"
    # Attributes are set in __init__, so their names are in its code; methods must exist on the class.
    needs: Iterable[tuple[type, str, tuple[str, ...]]] = (
        (HttpToolsProtocol, "__init__", ("scope", "cycle", "flow", "transport", "loop")),
        (FlowControl, "__init__", ("write_paused",)),
    )
    for cls, method, names in needs:
        missing = set(names) - set(getattr(cls, method).__code__.co_names)
        if missing:
            return f"uvicorn {uvicorn.__version__}'s {cls.__name__} has no {', '.join(sorted(missing))}"
    for cls, name in ((HttpToolsProtocol, "on_message_begin"), (HttpToolsProtocol, "connection_made")):
        if not callable(getattr(cls, name, None)):
            return f"uvicorn {uvicorn.__version__}'s {cls.__name__} has no {name}()"
    if not inspect.iscoroutinefunction(getattr(RequestResponseCycle, "send", None)):
        return f"uvicorn {uvicorn.__version__}'s RequestResponseCycle.send is not a coroutine function"
    return None


def choose(log: logging.Logger) -> type[asyncio.Protocol] | str:
    """The ``http`` protocol for uvicorn's Config: this module's, or ``"httptools"`` after one warning."""
    problem = incompatibility()
    if problem is None:
        return CoalescingHttpToolsProtocol
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


# Connections open in this process (the metrics' simulator_open_connections).
_open = [0]


def open_connections() -> int:
    return _open[0]


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        coalescing = _CoalescingTransport(transport, self.loop)  # type: ignore[arg-type]
        super().connection_made(coalescing)  # type: ignore[arg-type]
        self._respond_later = partial(_respond_later, self.loop)
        self._connection = weakref.ref(coalescing)
        _open[0] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        _open[0] -= 1
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # When the request's first bytes were parsed: under a burst the ASGI task starts later than this,
        # and a delay measured from the task's start would overshoot by the queueing time. The
        # RespondLater is one object per connection holding only the loop: the scope must not reference the
        # cycle, which references the scope, or every request would leave a reference cycle.
        extensions: Any = {
            ARRIVED: time.monotonic(),
            RESPOND_LATER: self._respond_later,
            CONNECTION: self._connection,
        }
        self.scope["extensions"] = extensions


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
