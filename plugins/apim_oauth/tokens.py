"""The issued access tokens, and the interface other plugins use to ask whether a bearer token is valid.

Another fake API opts into requiring a token by looking the store up at start-up::

    @hookimpl
    def simulator_register_routes(context):
        tokens: TokenValidator = context.generator("apim_oauth.token_store").generate()

        async def handler(request: Request) -> Response:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not tokens.is_valid(token):
                return UNAUTHORISED
            ...

Every plugin's generators are registered before any routes, so plugin order does not matter; when
``apim_oauth`` is not enabled, ``context.generator`` raises a ``KeyError`` naming the registered ones.
"""

from __future__ import annotations

import base64
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Protocol, runtime_checkable

Clock = Callable[[], float]


@runtime_checkable
class TokenValidator(Protocol):
    """What ``apim_oauth.token_store``'s ``generate()`` returns."""

    def is_valid(self, token: str) -> bool:
        """True when this simulator issued ``token`` and it has not expired (nor been evicted)."""
        ...


class TokenStore:
    """Issued access tokens with their expiry, bounded to ``max_entries`` (the oldest are forgotten first)."""

    def __init__(self, max_entries: int = 100_000, clock: Clock = time.monotonic) -> None:
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def add(self, token: str, lifetime_seconds: float) -> None:
        now = self._clock()
        entries = self._expiry
        entries[token] = now + lifetime_seconds
        # Lifetimes are (nearly) all equal, so the front holds the next to expire: drop those as we go.
        while entries:
            first_key, first_expiry = next(iter(entries.items()))
            if first_expiry > now and len(entries) <= self._max:
                break
            del entries[first_key]

    def is_valid(self, token: str) -> bool:
        expiry = self._expiry.get(token)
        if expiry is None:
            return False
        if expiry <= self._clock():
            del self._expiry[token]
            return False
        return True

    def __len__(self) -> int:
        return len(self._expiry)


class ReplayCache:
    """Keys seen within ``ttl_seconds`` (the real proxy remembers (sub, jti) for 30 days), bounded in size.

    Every entry gets the same lifetime, so insertion order is expiry order: expired entries are dropped from
    the front as new ones arrive, and past ``max_entries`` the oldest goes first (a replay older than that is
    then accepted: the price of bounded memory).
    """

    def __init__(self, max_entries: int, ttl_seconds: float, clock: Clock = time.monotonic) -> None:
        self._expiry: OrderedDict[Hashable, float] = OrderedDict()
        self._max = max_entries
        self._ttl = ttl_seconds
        self._clock = clock

    def seen(self, key: Hashable) -> bool:
        expiry = self._expiry.get(key)
        return expiry is not None and expiry > self._clock()

    def add(self, key: Hashable) -> None:
        now = self._clock()
        entries = self._expiry
        entries[key] = now + self._ttl
        entries.move_to_end(key)
        while entries:
            first_key, first_expiry = next(iter(entries.items()))
            if first_expiry > now and len(entries) <= self._max:
                break
            del entries[first_key]

    def __len__(self) -> int:
        return len(self._expiry)


def new_token() -> str:
    """28 random URL-safe characters, like Apigee's opaque tokens.

    Not drawn from the seeded generator: with ``SIMULATOR_SEED`` every worker draws the same sequence, and
    two workers must never issue the same token.
    """
    return base64.urlsafe_b64encode(os.urandom(21)).decode()
