"""The access log (``SIMULATOR_ACCESS_LOG=text|json``): one line per plugin request, written off the hot path.

A request only appends its journal entry to a buffer; every 200 ms (and at shut-down) the buffer becomes
lines and one write to standard output. That write is blocking: an output that cannot keep up (a full pipe
to a slow log driver) holds the worker for as long, which shows as overshoot in the metrics rather than as
memory. A burst of more than ``MAX_PENDING`` requests between two flushes keeps the newest and says how
many lines were dropped, so the buffer is bounded either way.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable
from typing import Any, Final, Literal, TextIO

import orjson

from simulator.journal import Entry

Format = Literal["text", "json"]
FLUSH_SECONDS: Final = 0.2
MAX_PENDING: Final = 100_000


def text_line(entry: Entry) -> str:
    data = entry.as_json()
    query = f"?{data['query']}" if data["query"] else ""
    return (
        f"{data['time']} {data['method']} {data['path']}{query} {data['status']} route={data['route']} "
        f"asked={data['delay_asked']:.3f} latency={data['latency']:.4f} overshoot={data['overshoot']:.4f} "
        f"request_id={data['request_id'] or '-'} correlation_id={data['correlation_id'] or '-'}"
    )


def json_line(entry: Entry) -> str:
    data = entry.as_json()
    data.pop("body", None)
    return orjson.dumps({"type": "access", **data}).decode()


class AccessLog:
    def __init__(self, fmt: Format, stream: TextIO | None = None) -> None:
        self._format: Callable[[Entry], str] = text_line if fmt == "text" else json_line
        self._stream = stream
        self._pending: deque[tuple[Any, ...]] = deque(maxlen=MAX_PENDING)
        self._pid = os.getpid()
        self.dropped = 0

    def add(self, entry: tuple[Any, ...]) -> None:
        """An entry in the journal's tuple form (it becomes a line at the next flush)."""
        pending = self._pending
        if len(pending) == MAX_PENDING:
            self.dropped += 1  # the deque drops the oldest
        pending.append(entry)

    def flush(self) -> None:
        if not self._pending and not self.dropped:
            return
        entries, self._pending = self._pending, deque(maxlen=MAX_PENDING)
        lines = [self._format(Entry._make((*entry, self._pid))) for entry in entries]
        if self.dropped:
            lines.append(f"access log: {self.dropped} line(s) dropped: the output could not keep up")
            self.dropped = 0
        stream = self._stream or sys.stdout
        stream.write("\n".join(lines) + "\n")
        stream.flush()
