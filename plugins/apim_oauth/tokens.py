"""The issued access tokens, and the interface other plugins use to ask whether a bearer token is valid.

Another fake API opts into requiring a token by looking the service up at start-up, with a Protocol of its
own (or this one)::

    @runtime_checkable
    class TokenValidator(Protocol):
        async def verify(self, token: str) -> bool: ...

    @hookimpl
    def simulator_register_routes(context: PluginContext) -> Router:
        tokens = context.service("apim_oauth.tokens", TokenValidator)
        ...
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not await tokens.verify(token):
                return UNAUTHORISED

``verify`` knows every token issued by any worker of any simulator sharing ``SIMULATOR_STATE_URL`` (one
Redis round trip when this worker did not issue it); ``is_valid`` is synchronous and knows this worker's
tokens only.

Every plugin's services are registered before any routes, so plugin order does not matter; when
``apim_oauth`` is not enabled, ``context.service`` stops start-up naming the registered services
(``context.optional_service`` returns None instead).
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from typing import Final, Protocol, runtime_checkable

from simulator import ExpiringSet, SharedState

# Issued tokens are keyed by what this simulator makes (28 characters), so their budget only bounds a long
# test's growth; the entry count is the setting users tune.
TOKEN_STORE_MAX_BYTES: Final = 64 << 20


@runtime_checkable
class TokenValidator(Protocol):
    """What the ``apim_oauth.tokens`` service is, for other plugins."""

    def is_valid(self, token: str) -> bool:
        """True when this worker issued ``token`` and it has not expired (nor been evicted)."""
        ...

    async def verify(self, token: str) -> bool:
        """True when any simulator sharing this one's ``SIMULATOR_STATE_URL`` (or, without it, this worker)
        issued ``token`` and it has not expired."""
        ...


class TokenStore:
    """Issued access tokens with their expiry, bounded to ``max_entries`` (the oldest are forgotten first).

    With shared state (:meth:`share`) every token is also recorded in Redis for its lifetime, so ``verify``
    answers for tokens any worker of any simulator issued.
    """

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        # The lifetime is given per token (clients may shorten it), so the set's own ttl is never used.
        self._tokens = ExpiringSet(
            ttl=0, max_entries=max_entries, max_bytes=TOKEN_STORE_MAX_BYTES, clock=clock
        )
        self._shared: SharedState | None = None

    def share(self, shared: SharedState | None) -> None:
        """Record tokens in ``shared`` too (services are made before the plugin's context has its state)."""
        self._shared = shared

    async def add(self, token: str, lifetime_seconds: float) -> None:
        self.add_here(token, lifetime_seconds)
        if self._shared is not None:
            # None (Redis away) leaves the token known to this worker only; the state says so in the log.
            await self._shared.claim("tokens", token, lifetime_seconds)

    def add_here(self, token: str, lifetime_seconds: float) -> None:
        """Record ``token`` in this worker only (what :meth:`add` does first)."""
        self._tokens.add(token, lifetime_seconds)

    def is_valid(self, token: str) -> bool:
        return token in self._tokens

    async def verify(self, token: str) -> bool:
        if token in self._tokens:
            return True
        if self._shared is None or not token:
            return False
        return bool(await self._shared.contains("tokens", token))

    def __len__(self) -> int:
        return len(self._tokens)

    @property
    def bytes(self) -> int:
        """What the tokens are counted as weighing (at most ``TOKEN_STORE_MAX_BYTES``)."""
        return self._tokens.bytes


def new_token() -> str:
    """28 random URL-safe characters, like Apigee's opaque tokens.

    Not drawn from the seeded generator: with ``SIMULATOR_SEED`` every worker draws the same sequence, and
    two workers must never issue the same token.
    """
    return base64.urlsafe_b64encode(os.urandom(21)).decode()
