"""``SIMULATOR_STATE_URL``: what several simulators (tasks) share through Redis or Valkey: runtime control
changes (:class:`SharedControl`) and plugins' replay caches and quotas (:class:`SharedState`).

Each worker keeps one connection for commands and one subscribed to the change channel. A change (a
plugin's whole state, ``simulator/control.py``) is written to a hash, so that a worker that starts later
reads every plugin's newest state, and published, so that every worker of every task applies it within
the time a message takes (milliseconds on one network). Requests never touch Redis: a worker applies a
message to its routes' in-force objects as any other change.

Keys, under ``api-simulator:<SIMULATOR_SERVICE_NAME>:``: ``control`` (a hash, plugin -> state JSON) and the
channel ``control``. Of two changes, the later (by the writer's clock in nanoseconds) wins everywhere.
When Redis cannot be reached, the worker says so once, keeps serving with what it has, and tries again
every few seconds; changes made meanwhile reach the workers of their own simulator only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

log = logging.getLogger("simulator")

RETRY_SECONDS: Final = 3.0
TIMEOUT_SECONDS: Final = 2.0

Apply = Callable[[str, Mapping[str, Any]], bool]


class SharedControl:
    """One worker's link to the shared control state."""

    def __init__(self, url: str, namespace: str) -> None:
        self._url = url
        self._prefix = f"api-simulator:{namespace}:"
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._apply: Apply | None = None
        self._warned = False

    @property
    def key(self) -> str:
        return self._prefix + "control"

    async def start(self, apply: Apply) -> None:
        """Read every plugin's newest state, then follow the channel (in the background, reconnecting)."""
        import redis.asyncio as redis  # only with SIMULATOR_STATE_URL

        self._apply = apply
        self._client = redis.from_url(
            self._url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
        )
        ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._follow(ready))
        with contextlib.suppress(TimeoutError):
            # Start-up waits for the first snapshot, not for an unreachable Redis.
            await asyncio.wait_for(asyncio.shield(ready), TIMEOUT_SECONDS * 2)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def publish(self, plugin: str, state: Mapping[str, Any]) -> bool:
        """Share one plugin's new state; False (and a warning) when Redis could not take it."""
        if self._client is None:
            return False
        message = orjson.dumps({"plugin": plugin, "state": state})
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hset(self.key, plugin, message)
                pipe.publish(self.key, message)
                await pipe.execute()
        except Exception as exc:
            log.warning("SIMULATOR_STATE_URL: the change to %s reached this simulator only: %s", plugin, exc)
            return False
        return True

    async def _follow(self, ready: asyncio.Future[None]) -> None:
        while True:
            try:
                async with self._client.pubsub() as channel:
                    await channel.subscribe(self.key)
                    # Subscribed first, then the snapshot: a change published in between is not missed.
                    for message in (await self._client.hgetall(self.key)).values():
                        self._take(message)
                    if not ready.done():
                        ready.set_result(None)
                    if self._warned:
                        log.info("SIMULATOR_STATE_URL: connected again")
                        self._warned = False
                    async for message in channel.listen():
                        if message.get("type") == "message":
                            self._take(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._warned:
                    log.warning(
                        "SIMULATOR_STATE_URL: cannot reach %s (%s); serving with the state it has, retrying",
                        _shown(self._url),
                        exc,
                    )
                    self._warned = True
                if not ready.done():
                    ready.set_result(None)
                await asyncio.sleep(RETRY_SECONDS)

    def _take(self, raw: bytes) -> None:
        assert self._apply is not None
        try:
            message = orjson.loads(raw)
            self._apply(str(message["plugin"]), message["state"])
        except Exception as exc:  # another version's message, or a plugin this simulator does not enable
            log.debug("SIMULATOR_STATE_URL: ignored a message: %s", exc)


def _shown(url: str) -> str:
    """The URL without its password."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


class SharedState:
    """What plugins share between simulators with ``SIMULATOR_STATE_URL``: ``context.state`` in their hooks
    (``None`` without it). Two atomic operations, enough for replay caches and quotas; keys are hashed, so an
    entry weighs the same whatever the client sent (a 700 KB ``jti`` is 64 hex characters here).

    Each call is one round trip to Redis. When Redis cannot answer within :data:`TIMEOUT_SECONDS`, a call
    returns ``None`` and the plugin falls back to its own per-worker state (it says so once in the log).
    """

    def __init__(self, url: str, namespace: str, plugin: str) -> None:
        self._url = url
        self._prefix = f"api-simulator:{namespace}:{plugin}:"
        self._client: Any = None
        self._warned = False

    def _key(self, name: str, key: str) -> str:
        return self._prefix + name + ":" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def _redis(self) -> Any:
        if self._client is None:
            import redis.asyncio as redis

            self._client = redis.from_url(
                self._url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
            )
        return self._client

    async def claim(self, name: str, key: str, ttl: float) -> bool | None:
        """Record ``key`` in the set ``name`` for ``ttl`` seconds: True if no simulator had it, False if one
        had, None if Redis did not answer."""
        try:
            done = await self._redis().set(self._key(name, key), b"1", nx=True, px=max(1, int(ttl * 1000)))
        except Exception as exc:
            self._unreachable(exc)
            return None
        self._warned = False
        return bool(done)

    async def contains(self, name: str, key: str) -> bool | None:
        try:
            found = await self._redis().exists(self._key(name, key))
        except Exception as exc:
            self._unreachable(exc)
            return None
        return bool(found)

    async def count(self, name: str, key: str, window: float) -> tuple[int, float] | None:
        """Count one event in ``key``'s window of ``window`` seconds (the window starts at its first event,
        in any simulator): ``(events so far, the window's end in epoch seconds)``, or None."""
        try:
            async with self._redis().pipeline(transaction=True) as pipe:
                full = self._key(name, key)
                pipe.set(full, 0, nx=True, px=max(1, int(window * 1000)))
                pipe.incr(full)
                pipe.pttl(full)
                _, events, left_ms = await pipe.execute()
        except Exception as exc:
            self._unreachable(exc)
            return None
        return int(events), time.time() + max(int(left_ms), 0) / 1000

    def _unreachable(self, exc: Exception) -> None:
        if not self._warned:
            log.warning(
                "SIMULATOR_STATE_URL: %s did not answer (%s): plugin state is per worker until it does",
                _shown(self._url),
                exc,
            )
            self._warned = True

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
