"""In-memory stores for what fakes remember between requests (issued tokens, used ``jti``s, codes).

Every store is keyed by client input, so every store is bounded in bytes as well as entries: an
unauthenticated client must not be able to make the server keep more than the budget, however large the
keys it sends.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable

# What one entry costs besides its key: the ordered dict's slot and links, and the float expiry.
ENTRY_OVERHEAD_BYTES = 120
_sizeof = sys.getsizeof


class ExpiringSet:
    """Keys that count as present until their time-to-live passes, bounded in entries and bytes.

    Entries leave in insertion order: expired ones as new keys arrive, and, past ``max_entries`` or
    ``max_bytes``, the oldest first (a key older than that is then forgotten: the price of bounded memory).
    Where every key gets the same time-to-live, insertion order is expiry order, so a sweep stops at the
    first live entry.

    Args:
        ttl: default seconds a key stays present.
        max_entries: at most this many keys.
        max_bytes: at most this many bytes of keys plus per-entry overhead (``sys.getsizeof`` of the key
            plus :data:`ENTRY_OVERHEAD_BYTES`).
        clock: seconds, monotonic (injectable for tests).
    """

    __slots__ = ("_bytes", "_clock", "_entries", "_max_bytes", "_max_entries", "_ttl")

    def __init__(
        self,
        *,
        ttl: float,
        max_entries: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # key -> expiry. A key's size is computed again when it leaves (strings are immutable): no tuple each.
        self._entries: OrderedDict[str, float] = OrderedDict()
        self._ttl = ttl
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._bytes = 0

    def add(self, key: str, ttl: float | None = None) -> None:
        """Remember ``key`` for ``ttl`` seconds (default: the store's), as the newest entry."""
        entries = self._entries
        if key in entries:
            del entries[key]
            self._bytes -= _sizeof(key) + ENTRY_OVERHEAD_BYTES
        now = self._clock()
        entries[key] = now + (self._ttl if ttl is None else ttl)
        self._bytes += _sizeof(key) + ENTRY_OVERHEAD_BYTES
        while entries:
            first = next(iter(entries))
            if entries[first] > now and len(entries) <= self._max_entries and self._bytes <= self._max_bytes:
                return
            del entries[first]
            self._bytes -= _sizeof(first) + ENTRY_OVERHEAD_BYTES

    def __contains__(self, key: object) -> bool:
        expiry = self._entries.get(key) if isinstance(key, str) else None
        if expiry is None:
            return False
        if expiry <= self._clock():
            del self._entries[key]  # type: ignore[arg-type]
            self._bytes -= _sizeof(key) + ENTRY_OVERHEAD_BYTES
            return False
        return True

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The bytes the entries are counted as, at most ``max_bytes``."""
        return self._bytes
