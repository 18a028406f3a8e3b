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
