"""A minimal asyncio HTTP/1.1 client for timing tests: one connection per request, almost no client cost.

httpx's pool adds hundreds of milliseconds of client-side queueing at a few hundred concurrent requests,
which would be measured as server overshoot.
"""

from __future__ import annotations

import asyncio
import time


async def timed_get(host: str, port: int, path: str) -> tuple[int, float]:
    """(status, seconds from sending the request to the end of the response)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        start = time.perf_counter()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()
        elapsed = time.perf_counter() - start
    finally:
        writer.close()
    return int(data.split(b" ", 2)[1]), elapsed


async def many(host: str, port: int, path: str, count: int) -> list[tuple[int, float]]:
    return list(await asyncio.gather(*(timed_get(host, port, path) for _ in range(count))))


async def keep_alive_load(
    host: str, port: int, requests: list[bytes], count: int, connections: int = 16
) -> dict[int, int]:
    """``count`` requests, taken in turn from ``requests`` (whole HTTP/1.1 messages), over ``connections``
    persistent connections, one at a time on each; the number of answers by status."""
    statuses: dict[int, int] = {}
    turn = iter(range(count))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in turn:
                writer.write(requests[i % len(requests)])
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return statuses
