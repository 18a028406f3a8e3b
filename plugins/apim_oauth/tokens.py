"""The issued access tokens, and the interface other plugins use to ask whether a bearer token is valid.

Another fake API opts into requiring a token by looking the service up at start-up, with a Protocol of its
own (or this one)::

    @runtime_checkable
    class TokenValidator(Protocol):
        def is_valid(self, token: str) -> bool: ...

    @hookimpl
    def simulator_register_routes(context: PluginContext) -> Router:
        tokens = context.service("apim_oauth.tokens", TokenValidator)
        ...
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not tokens.is_valid(token):
                return UNAUTHORISED

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

from simulator import ExpiringSet

# Issued tokens are keyed by what this simulator makes (28 characters), so their budget only bounds a long
# test's growth; the entry count is the setting users tune.
TOKEN_STORE_MAX_BYTES: Final = 64 << 20


@runtime_checkable
class TokenValidator(Protocol):
    """What the ``apim_oauth.tokens`` service is, for other plugins."""

    def is_valid(self, token: str) -> bool:
        """True when this simulator issued ``token`` and it has not expired (nor been evicted)."""
        ...


class TokenStore:
    """Issued access tokens with their expiry, bounded to ``max_entries`` (the oldest are forgotten first)."""

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        # The lifetime is given per token (clients may shorten it), so the set's own ttl is never used.
        self._tokens = ExpiringSet(
            ttl=0, max_entries=max_entries, max_bytes=TOKEN_STORE_MAX_BYTES, clock=clock
        )

    def add(self, token: str, lifetime_seconds: float) -> None:
        self._tokens.add(token, lifetime_seconds)

    def is_valid(self, token: str) -> bool:
        return token in self._tokens

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
