"""The request journal: the last ``SIMULATOR_JOURNAL_SIZE`` plugin requests of each worker, newest first.

A ring (a ``deque`` with a maximum length), because an unbounded journal is what runs WireMock and MockServer
out of memory in soak tests. Each entry is a tuple made on the hot path; it becomes JSON only when someone
asks. Every field is bounded: paths and identifiers are cut, bodies (opt-in) are cut to
``SIMULATOR_JOURNAL_BODY_BYTES`` with their secrets masked, so the ring's memory is bounded in bytes too.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import orjson

# Fields a journal keeps from a request, cut to these lengths.
PATH_CHARS: Final = 512
QUERY_CHARS: Final = 512
ID_CHARS: Final = 128
# What an entry can weigh at most, besides its body: the bound the memory test checks.
ENTRY_MAX_BYTES: Final = 2 * (PATH_CHARS + QUERY_CHARS + 2 * ID_CHARS) + 400
# What one answer of GET /_simulator/requests holds at most (each worker's share, and the merged answer):
# 10,000 entries with 64 KiB bodies would be 640 MiB of JSON otherwise.
ANSWER_BYTES: Final = 64 << 20
# Entries scanned between two give-ways to the worker's requests.
_SLICE: Final = 20_000
MASK: Final = "***"
# Form fields and JSON keys that carry credentials: never stored as they came.
SECRETS: Final = frozenset(
    {
        "client_assertion", "subject_token", "refresh_token", "access_token", "id_token", "client_secret",
        "password", "assertion", "code", "code_verifier", "token",
    }
)  # fmt: skip
_FORM_SECRET: Final = re.compile(rf"(?i)(^|&)({'|'.join(sorted(SECRETS))})=[^&]*")
# A secret key's string value in text that is not valid JSON (cut by the size limit, or malformed).
_JSON_SECRET: Final = re.compile(rf'(?i)("(?:{"|".join(sorted(SECRETS))})"\s*:\s*")(?:[^"\\]|\\.)*"?')
# How deep a JSON body is walked for secrets; orjson itself refuses to write past 255 levels.
MAX_DEPTH: Final = 128
_BEARER: Final = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


class Entry(NamedTuple):
    """One answered request."""

    time: float  # epoch seconds when the answer was written
    method: str
    path: str
    query: str
    plugin: str
    route: str
    status: int
    delay_asked: float
    latency: float
    request_id: str | None
    correlation_id: str | None
    body: str | None
    fault: str | None  # the fault kind that fired on the request, if one did
    pid: int

    def as_json(self) -> dict[str, Any]:
        return {
            "time": datetime.fromtimestamp(self.time, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "plugin": self.plugin,
            "route": self.route,
            "status": self.status,
            "delay_asked": round(self.delay_asked, 6),
            "latency": round(self.latency, 6),
            "overshoot": round(max(0.0, self.latency - self.delay_asked), 6),
            "request_id": self.request_id,
            "correlation_id": self.correlation_id,
            "worker": self.pid,
            "fault": self.fault,
            "body": self.body,
        }


def masked(body: bytes, limit: int) -> str:
    """A request body as text, at most ``limit`` bytes of it, credentials replaced by ``***``."""
    text = body[:limit].decode("utf-8", "replace")
    if text.lstrip().startswith(("{", "[")):
        try:
            value = orjson.loads(body)
            return orjson.dumps(_mask_json(value, 0)).decode("utf-8", "replace")[:limit]
        except (orjson.JSONDecodeError, orjson.JSONEncodeError, _TooDeep):
            # Not JSON after all, cut, or nested past what we walk: mask what looks like a secret key's
            # value (a careless client's "password": "x" must not be kept because its JSON is broken).
            text = _JSON_SECRET.sub(lambda m: f'{m.group(1)}{MASK}"', text)
    text = _FORM_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}={MASK}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)}{MASK}", text)


class _TooDeep(Exception):
    pass


def _mask_json(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _TooDeep
    if isinstance(value, dict):
        return {k: MASK if k.lower() in SECRETS else _mask_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_json(v, depth + 1) for v in value]
    if isinstance(value, str):
        return _BEARER.sub(lambda m: f"{m.group(1)}{MASK}", value)
    return value


@dataclass(frozen=True, slots=True)
class Query:
    """Filters of ``GET /_simulator/requests``."""

    plugin: str | None = None
    route: str | None = None
    status: int | None = None
    status_class: int | None = None  # 5 for "5xx"
    since: float | None = None
    limit: int = 100

    def matches(self, entry: tuple[Any, ...]) -> bool:
        """Whether an entry (an :class:`Entry` or the plain tuple the ring holds) passes the filters."""
        return (
            (self.plugin is None or entry[4] == self.plugin)
            and (self.route is None or entry[5] == self.route)
            and (self.status is None or entry[6] == self.status)
            and (self.status_class is None or entry[6] // 100 == self.status_class)
            and (self.since is None or entry[0] >= self.since)
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Query:
        return cls(
            **{
                k: data[k]
                for k in ("plugin", "route", "status", "status_class", "since", "limit")
                if k in data
            }
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "route": self.route,
            "status": self.status,
            "status_class": self.status_class,
            "since": self.since,
            "limit": self.limit,
        }


class Found(NamedTuple):
    """What a journal search found."""

    entries: list[Entry]
    truncated: bool  # the byte limit was reached before ``limit`` entries were


def _weight(entry: tuple[Any, ...]) -> int:
    """About what an entry weighs as JSON: its text fields and a fixed overhead."""
    return (
        len(entry[2])
        + len(entry[3])
        + len(entry[9] or "")
        + len(entry[10] or "")
        + len(entry[11] or "")
        + 300
    )


class Journal:
    """The ring; ``size`` 0 keeps nothing (and costs nothing).

    It holds plain tuples in :class:`Entry`'s field order: a named tuple costs twice as much to make, and
    entries are made for every request but read only when someone asks.
    """

    def __init__(self, size: int, pid: int | None = None) -> None:
        self.size = size
        self._pid = os.getpid() if pid is None else pid  # the worker's: every entry of a ring has it
        self._entries: deque[tuple[Any, ...]] = deque(maxlen=max(size, 1))

    def add(self, entry: tuple[Any, ...]) -> None:
        self._entries.append(entry)

    async def find(self, query: Query, max_bytes: int = ANSWER_BYTES) -> Found:
        """The newest ``query.limit`` matching entries, newest first, at most ``max_bytes`` of them (about:
        their text fields, plus a fixed overhead each); ``truncated`` when the bytes ran out first.

        A ring of up to a million entries is scanned in slices, giving way to the worker's requests between
        them: a filter that matches nothing must not stall every delayed answer of the worker.
        """
        entries: Iterable[tuple[Any, ...]] = self._entries
        if len(self._entries) > _SLICE:
            entries = list(self._entries)  # a copy: requests are added while we give way
        found: list[Entry] = []
        size = 0
        for seen, entry in enumerate(reversed(entries), 1):  # type: ignore[call-overload]
            if query.matches(entry):
                size += _weight(entry)
                if size > max_bytes:
                    return Found(found, True)
                found.append(Entry._make((*entry, self._pid)))
                if len(found) >= query.limit:
                    break
            if seen % _SLICE == 0:
                await asyncio.sleep(0)
        return Found(found, False)

    def clear(self) -> int:
        cleared = len(self._entries)
        self._entries.clear()
        return cleared

    def __len__(self) -> int:
        return len(self._entries)


def newest_first(lists: Iterable[Iterable[Entry]], limit: int, max_bytes: int = ANSWER_BYTES) -> Found:
    """Several workers' answers merged: the newest ``limit`` entries of them all, within ``max_bytes``."""
    merged = sorted((e for entries in lists for e in entries), key=lambda e: e.time, reverse=True)
    size = 0
    for kept, entry in enumerate(merged[:limit]):
        size += _weight(entry)
        if size > max_bytes:
            return Found(merged[:kept], True)
    return Found(merged[:limit], False)
