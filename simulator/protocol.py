"""uvicorn's httptools protocol, with each response written in one call and delayed responses on time.

Three additions, each measured (see README, Performance):

- uvicorn writes the status line and headers, then the body, as two ``transport.write`` calls, and uvloop
  sends each at once: two ``send`` syscalls per response, the largest single cost of a canned answer. Here
  the writes of one event-loop step are joined and sent together at the end of that step.
- Each request's scope carries its arrival time (``ARRIVED``), taken when its first bytes are parsed: under
  a burst the ASGI task starts later, and a delay measured from then would overshoot by the queueing time.
- Each request's scope carries ``RESPOND_LATER``, which sends a prepared response from a timer callback.
  A delayed response that waits in a task instead is written only once the task's turn comes in the loop's
  queue of ready callbacks, behind every request that arrived meanwhile (with 2,000 delayed requests in
  flight, p99 overshoot over 4 paired runs: 24-42 ms from the timer, 29-47 ms from the task).

The subclass relies on uvicorn's ``HttpToolsProtocol`` and ``RequestResponseCycle`` internals (``cycle``,
``flow.write_paused``, ``send`` awaiting only while writes are paused); the real-server tests cover them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from simulator.http import Message, Send

# Scope key holding the request's arrival time (time.monotonic()); SimulatorApp measures delays from it.
ARRIVED: Final = "simulator.arrived"

# Scope key of a RespondLater for this request; absent under other servers (and in-process tests).
RESPOND_LATER: Final = "simulator.respond_later"

RespondLater = Callable[[Send, float, Message, Message], Awaitable[bool]]
"""``respond_later(send, seconds, start, body)``: send the ASGI ``http.response.start`` and
``http.response.body`` messages through uvicorn's ``send`` from a timer callback ``seconds`` from now. The
awaitable's result is True once they are sent; False means the time has come but they could not be sent from
there (writes paused for a slow reader, or ``send`` wrapped by a middleware): the caller sends them itself."""


class _CoalescingTransport:
    """Delegates to the real transport, except that writes wait for the end of the loop step."""

    __slots__ = ("_buffer", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._buffer:
            self._loop.call_soon(self.flush)
        self._buffer.append(data)

    def flush(self) -> None:
        """Send what was written so far now instead of at the end of the loop step."""
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()  # a response written just before closing must still go out
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self._respond_later = partial(_respond_later, self.loop)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # When the request's first bytes were parsed: under a burst the ASGI task starts later than this,
        # and a delay measured from the task's start would overshoot by the queueing time.
        self.scope[ARRIVED] = time.monotonic()  # type: ignore[typeddict-unknown-key]
        # One object per connection, holding only the loop: the scope must not reference the cycle, which
        # references the scope, or every request would leave a reference cycle for the collector.
        self.scope[RESPOND_LATER] = self._respond_later  # type: ignore[typeddict-unknown-key]


def _respond_later(
    loop: asyncio.AbstractEventLoop, send: Send, seconds: float, start: Message, body: Message
) -> asyncio.Future[bool]:
    done: asyncio.Future[bool] = loop.create_future()
    cycle = getattr(send, "__self__", None)
    if isinstance(cycle, RequestResponseCycle):
        loop.call_later(seconds, _deliver, cycle, done, start, body)
    else:  # ``send`` is a middleware's wrapper, not uvicorn's: only wait here, the caller sends
        loop.call_later(seconds, _resolve, done, False)
    return done


def _deliver(cycle: RequestResponseCycle, done: asyncio.Future[bool], start: Message, body: Message) -> None:
    if done.done():  # the waiting task was cancelled (a forced shutdown)
        return
    if cycle.flow.write_paused:  # uvicorn's send would have to wait for the reader: the caller sends
        done.set_result(False)
        return
    try:
        _run_to_end(cycle.send(start))  # type: ignore[arg-type]
        _run_to_end(cycle.send(body))  # type: ignore[arg-type]
    except Exception as exc:  # uvicorn's own checks (a bad header): raised in the task, as with await send
        done.set_exception(exc)
        return
    # The writes went to the _CoalescingTransport: send them now, not at the end of the loop step.
    cycle.transport.flush()  # type: ignore[attr-defined]
    done.set_result(True)


def _resolve(done: asyncio.Future[bool], result: bool) -> None:
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
