"""What the dispatcher tells about each answered request, and everything that reads it.

The dispatcher calls :meth:`Observer.record` once per plugin request (the hot path: a few additions and an
append). The rest runs beside the requests on the event loop: a copy of the counts every 10 s (for "the
last minute"), the access log's flush, the CloudWatch records once a minute, and answers to the other
workers (``simulator/peers.py``) so that the one asked sums them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from simulator import cloudwatch
from simulator.accesslog import AccessLog
from simulator.http import Request
from simulator.journal import (
    ID_CHARS,
    PATH_CHARS,
    QUERY_CHARS,
    Entry,
    Found,
    Journal,
    Query,
    masked,
    newest_first,
)
from simulator.metrics import (
    FINE_FLOOR,
    FINE_SCALE,
    LATENCY_BUCKETS,
    OVERSHOOT_BUCKETS,
    SNAPSHOT_SECONDS,
    Metrics,
    RouteStats,
    merge,
)
from simulator.peers import Peers
from simulator.settings import CoreSettings

log = logging.getLogger("simulator")

_REQUEST_ID = b"x-request-id"
_CORRELATION_ID = b"x-correlation-id"


class Observer:
    """One worker's metrics, journal and logs; merged with its peers' when asked."""

    def __init__(self, core: CoreSettings, metrics: Metrics, peers: Peers | None = None) -> None:
        self.core = core
        self.metrics = metrics
        self.journal = Journal(core.journal_size)
        self.access_log = AccessLog(core.access_log) if core.access_log != "off" else None
        self._emitter = (
            cloudwatch.Emitter(core.cloudwatch_namespace, core.service_name)
            if core.cloudwatch == "emf"
            else None
        )
        self._record_metrics = core.metrics
        self._entries = core.journal_size > 0 or self.access_log is not None
        self._bodies = core.journal_body_bytes if core.journal_bodies else 0
        self._pid = os.getpid()
        # Journal times are epoch seconds, from the monotonic times the dispatcher already has.
        self._epoch = time.time() - time.monotonic()
        self.peers = peers if peers is not None else Peers(None)
        self.peers.handle("snapshot", self._peer_snapshot)
        self.peers.handle("journal", self._peer_journal)
        self.peers.handle("journal_clear", self._peer_clear)
        self._tasks: list[asyncio.Task[None]] = []

    # -- the hot path -------------------------------------------------------------------------------------

    def record(
        self,
        stats: RouteStats,
        request: Request,
        status: int,
        asked: float,
        arrived: float,
        written: float,
        fault: str | None = None,
        _bisect: Callable[[tuple[float, ...], float], int] = bisect_left,
        _log: Callable[[float], float] = math.log,
    ) -> None:
        """Count one answered request. Runs for every request, so it is one function, with locals and no
        helper calls (measured: each call and allocation shows in the benchmark).

        A request a fault fired on (``fault``, its kind) is counted by status (0 when it got no answer) and
        journalled, but kept out of the latency histograms: a hang is the fault asked for, not overshoot.
        """
        scope = request.scope
        latency = written - arrived
        if self._record_metrics:
            series = stats.methods.get(scope["method"]) or stats.series(scope["method"])
            statuses = series.statuses
            statuses[status] = statuses.get(status, 0) + 1
            if fault is None:
                series.delivered_sum += latency
                if asked:
                    series.asked[_bisect(LATENCY_BUCKETS, asked)] += 1
                    series.asked_sum += asked
                    overshoot = latency - asked if latency > asked else 0.0
                else:
                    overshoot = latency
                series.overshoot[_bisect(OVERSHOOT_BUCKETS, overshoot)] += 1
                series.overshoot_sum += overshoot
                index = int(_log(latency / FINE_FLOOR) * FINE_SCALE) + 1 if latency > FINE_FLOOR else 0
                fine = series.fine
                fine[index] = fine.get(index, 0) + 1
        if self._entries:
            request_id = correlation_id = None
            headers = request.parsed_headers
            if headers is not None:
                request_id = headers.get("x-request-id")
                correlation_id = headers.get("x-correlation-id")
            else:
                for name, value in scope["headers"]:
                    if name == _REQUEST_ID:
                        request_id = value.decode("latin-1")
                    elif name == _CORRELATION_ID:
                        correlation_id = value.decode("latin-1")
            path = scope["path"]
            query = scope.get("query_string")
            body = request.body_read
            entry = (  # Entry's fields, as a plain tuple (see Journal)
                written + self._epoch,
                scope["method"],
                path if len(path) <= PATH_CHARS else path[:PATH_CHARS],
                query[:QUERY_CHARS].decode("latin-1") if query else "",
                stats.plugin,
                stats.route,
                status,
                asked,
                latency,
                request_id if request_id is None or len(request_id) <= ID_CHARS else request_id[:ID_CHARS],
                correlation_id
                if correlation_id is None or len(correlation_id) <= ID_CHARS
                else correlation_id[:ID_CHARS],
                masked(body, self._bodies) if body and self._bodies else None,
                fault,
            )
            if self.journal.size:
                self.journal.add(entry)
            if self.access_log is not None:
                self.access_log.add(entry)

    # -- beside the requests ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.peers.start()
        self.metrics.keep_history()
        self._every(SNAPSHOT_SECONDS, self.metrics.keep_history)
        if self.access_log is not None:
            self._every(0.2, self.access_log.flush)
        if self._emitter is not None and (self.peers.mesh is None or self.peers.mesh.index == 0):
            emitter = self._emitter
            self._every_async(self.core.cloudwatch_seconds, lambda: self._emit(emitter))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.access_log is not None:
            self.access_log.flush()
        await self.peers.stop()

    def _every(self, seconds: float, action: Callable[[], None]) -> None:
        async def repeat() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    action()
                except Exception:
                    log.exception("periodic %s failed", getattr(action, "__name__", action))

        self._tasks.append(asyncio.create_task(repeat()))

    def _every_async(self, seconds: float, action: Callable[[], Awaitable[None]]) -> None:
        async def repeat() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await action()
                except Exception:
                    log.exception("periodic task failed")

        self._tasks.append(asyncio.create_task(repeat()))

    async def _emit(self, emitter: cloudwatch.Emitter) -> None:
        emitter.emit(await self.snapshots())

    # -- reading, merged over every worker -------------------------------------------------------------------

    async def snapshots(self, *, history: bool = False, complete: bool = False) -> list[dict[str, Any]]:
        """This worker's snapshot and every peer's that answered (``complete``: every peer's, or
        :class:`~simulator.peers.Incomplete`)."""
        mine = self.metrics.snapshot(history=history)
        return [mine, *await self.peers.ask_all("snapshot", complete=complete, history=history)]

    async def merged(self) -> dict[str, Any]:
        return merge(await self.snapshots())

    async def requests(self, query: Query, *, complete: bool = True) -> Found:
        """Every worker's matching journal entries, newest first (``truncated`` if any worker's, or the
        merged answer, reached :data:`~simulator.journal.ANSWER_BYTES`)."""
        mine = await self.journal.find(query)
        theirs = await self.peers.ask_all("journal", complete=complete, query=query.as_json())
        merged = newest_first(
            [mine.entries, *([Entry(*row) for row in answer["entries"]] for answer in theirs)], query.limit
        )
        truncated = mine.truncated or merged.truncated or any(answer["truncated"] for answer in theirs)
        return Found(merged.entries, truncated)

    async def clear_requests(self) -> int:
        cleared = sum(int(n) for n in await self.peers.ask_all("journal_clear", complete=True))
        return self.journal.clear() + cleared

    async def _peer_snapshot(self, request: Mapping[str, Any]) -> Any:
        return self.metrics.snapshot(history=bool(request.get("history")))

    async def _peer_journal(self, request: Mapping[str, Any]) -> Any:
        found = await self.journal.find(Query.from_json(request["query"]))
        return {"entries": [list(entry) for entry in found.entries], "truncated": found.truncated}

    async def _peer_clear(self, request: Mapping[str, Any]) -> Any:
        return self.journal.clear()
