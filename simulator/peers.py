"""The workers of one simulator talk to each other: a scrape, a journal query or a change made through one
worker gathers from (or reaches) all of them.

Each worker listens on a Linux *abstract* Unix socket, ``\\0api-simulator-<group>-<index>``: no file, so it
works under a read-only root filesystem with nothing mounted, and the names vanish with the processes. The
group is made by the supervisor (its pid and a random token), so two simulators on one machine never meet.
A message is a 4-byte length and a JSON object ``{"op": ..., ...}``; the answer is a length and JSON too.
A peer that does not answer within the timeout (being replaced, or stuck) is left out of that answer, or,
where a partial answer would mislead (a counter that goes down, a journal half cleared), the whole question
fails with :class:`Incomplete`, which the core's routes turn into a 503.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

log = logging.getLogger("simulator")

Handler = Callable[[Mapping[str, Any]], Awaitable[Any]]
_LENGTH: Final = struct.Struct(">I")
# A journal answer is at most 100,000 entries (the route's limit) of at most 2,960 bytes besides their bodies,
# and bodies are cut to SIMULATOR_JOURNAL_BODY_BYTES; the observer caps an answer's bodies to stay below this.
MAX_MESSAGE: Final = 256 << 20


_ABSENT: Final = object()  # "that worker is not listening"


class Incomplete(Exception):
    """Some workers did not answer a question that needs every one of them."""

    def __init__(self, op: str, missing: list[int]) -> None:
        super().__init__(
            f"worker {', '.join(map(str, missing))} did not answer {op!r} in time "
            "(being replaced, or busy): try again"
        )
        self.missing = missing


@dataclass(frozen=True, slots=True)
class Mesh:
    """Who this worker is among its peers."""

    group: str
    index: int
    count: int

    def address(self, index: int) -> str:
        return f"\0api-simulator-{self.group}-{index}"


class Peers:
    """This worker's end of the mesh: serves ``handlers`` to the others, asks them on demand."""

    def __init__(self, mesh: Mesh | None, handlers: Mapping[str, Handler] | None = None) -> None:
        self.mesh = mesh
        self._handlers: dict[str, Handler] = dict(handlers or {})
        self._server: asyncio.AbstractServer | None = None

    def handle(self, op: str, handler: Handler) -> None:
        """Answer the question ``op`` from other workers with ``handler`` (before :meth:`start`)."""
        self._handlers[op] = handler

    @property
    def others(self) -> list[int]:
        if self.mesh is None:
            return []
        return [i for i in range(self.mesh.count) if i != self.mesh.index]

    async def start(self) -> None:
        if self.mesh is None or self.mesh.count < 2:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.mesh.address(self.mesh.index))
        sock.listen(64)
        sock.setblocking(False)
        self._server = await asyncio.start_unix_server(self._serve, sock=sock)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def ask_all(
        self, op: str, wait: float = 1.0, *, complete: bool = False, **payload: Any
    ) -> list[Any]:
        """Every other worker's answer to ``op``: those that answered within ``wait`` seconds, or, with
        ``complete``, every worker that is listening (else :class:`Incomplete`).

        A worker that is not listening (not started yet, or dead and about to be replaced) is left out even
        then: it holds no counts or journal yet, and a worker that starts asks the others for the control
        state, so a change cannot miss it. One that listens but does not answer in time (stuck, or busy past
        ``wait``) is what makes a question incomplete.
        """
        others = self.others
        if not others:
            return []
        answers = await asyncio.gather(*(self._ask(i, op, payload, wait) for i in others))
        if complete and None in answers:
            raise Incomplete(op, [i for i, a in zip(others, answers, strict=True) if a is None])
        return [a for a in answers if a is not None and a is not _ABSENT]

    async def _ask(self, index: int, op: str, payload: Mapping[str, Any], wait: float) -> Any:
        assert self.mesh is not None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(wait):
                try:
                    await asyncio.get_running_loop().sock_connect(sock, self.mesh.address(index))
                except (ConnectionRefusedError, FileNotFoundError):
                    sock.close()
                    return _ABSENT  # nobody listens at that address
                reader, writer = await asyncio.open_unix_connection(sock=sock)
                try:
                    await _write(writer, {"op": op, **payload})
                    return await _read(reader)
                finally:
                    writer.close()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            sock.close()
            log.debug("worker %d did not answer %s: %s", index, op, exc)
            return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read(reader)
            handler = self._handlers.get(str(request.get("op"))) if isinstance(request, dict) else None
            answer = await handler(request) if handler is not None else None
            await _write(writer, answer)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        except Exception:  # a handler's bug must not kill the worker's loop
            log.exception("answering a peer failed")
        finally:
            writer.close()


async def _write(writer: asyncio.StreamWriter, value: Any) -> None:
    data = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    writer.write(_LENGTH.pack(len(data)) + data)
    await writer.drain()


async def _read(reader: asyncio.StreamReader) -> Any:
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > MAX_MESSAGE:
        raise ValueError(f"a peer message of {length} bytes")
    return orjson.loads(await reader.readexactly(length))
