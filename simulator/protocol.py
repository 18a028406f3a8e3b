"""uvicorn's httptools protocol, with each response written to the socket in one call.

uvicorn writes the status line and headers, then the body, as two ``transport.write`` calls, and uvloop
sends each at once: two ``send`` syscalls per response, which profiling showed to be the largest single cost
of serving a canned answer. Here the writes of one event-loop step are joined and sent together at the end
of that step, so a response (or a batch of pipelined responses) costs one syscall. Nothing else changes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Scope key holding the request's arrival time (time.monotonic()); SimulatorApp measures delays from it.
ARRIVED: Final = "simulator.arrived"


class _CoalescingTransport:
    """Delegates to the real transport, except that writes wait for the end of the loop step."""

    __slots__ = ("_buffer", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._buffer:
            self._loop.call_soon(self._flush)
        self._buffer.append(data)

    def _flush(self) -> None:
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()  # a response written just before closing must still go out
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # When the request's first bytes were parsed: under a burst the ASGI task starts later than this,
        # and a delay measured from the task's start would overshoot by the queueing time.
        self.scope[ARRIVED] = time.monotonic()  # type: ignore[typeddict-unknown-key]
