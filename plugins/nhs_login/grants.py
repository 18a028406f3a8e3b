"""Authorization codes and refresh tokens that carry their own state, so any worker (or task) redeems them.

A grant is ``base64url(JSON).base64url(HMAC)``: the JSON says who signed in, for which client and redirect
URI, with which nonce, scopes and vector of trust, and when it expires; the HMAC (a secret derived from the
signing key, see ``keys.py``) makes it unforgeable. Expiry and the bindings to client and redirect URI
therefore hold on every worker. Single use (codes) and rotation (refresh tokens) need memory of what was
redeemed: with ``SIMULATOR_STATE_URL`` that memory is in Redis, shared by every worker of every simulator;
without it (or while Redis does not answer) each process keeps a bounded set of redeemed grant ids, so a code
replayed to the worker that took it is refused, and one replayed to another worker within its ten minutes is
not (see docs/nhs-login.md).
"""

from __future__ import annotations

import hmac
import os
import time
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from plugins.nhs_login.keys import SigningKey, b64url, b64url_decode
from simulator import ExpiringSet, SharedState

CODE_SECONDS: Final = 600  # EIS 4.4: an authorization code lives 10 minutes at most
REFRESH_SECONDS: Final = 30 * 24 * 3600  # a refresh token lives 30 days
# What a process remembers of redeemed grants: ids are 22 characters, so this bounds memory at ~15 MiB.
_REDEEMED_MAX_ENTRIES: Final = 100_000
_REDEEMED_MAX_BYTES: Final = 16 << 20

Kind = Literal["code", "refresh"]


@dataclass(frozen=True, slots=True)
class Grant:
    """What a code or refresh token stands for."""

    kind: Kind
    grant_id: str
    client_id: str
    nhs_number: str
    scope: str
    vot: str
    auth_time: int
    expires: int
    redirect_uri: str | None = None  # codes: the redirect_uri /authorize was given, None if none
    nonce: str | None = None  # codes: the nonce /authorize was given

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires


class Grants:
    """Issues and redeems codes and refresh tokens."""

    def __init__(self, key: SigningKey, shared: SharedState | None = None) -> None:
        self._key = key
        self._shared = shared
        # Grants already redeemed (a code works once), until they expire; its size is a metric.
        self.redeemed = ExpiringSet(
            ttl=REFRESH_SECONDS, max_entries=_REDEEMED_MAX_ENTRIES, max_bytes=_REDEEMED_MAX_BYTES
        )

    def issue(
        self,
        kind: Kind,
        *,
        client_id: str,
        nhs_number: str,
        scope: str,
        vot: str,
        auth_time: int,
        redirect_uri: str | None = None,
        nonce: str | None = None,
    ) -> str:
        lifetime = CODE_SECONDS if kind == "code" else REFRESH_SECONDS
        body: dict[str, Any] = {
            "k": kind,
            "i": b64url(os.urandom(16)),
            "c": client_id,
            "u": nhs_number,
            "s": scope,
            "v": vot,
            "a": auth_time,
            "e": int(time.time()) + lifetime,
        }
        if redirect_uri is not None:
            body["r"] = redirect_uri
        if nonce is not None:
            body["n"] = nonce
        payload = b64url(orjson.dumps(body))
        return f"{payload}.{b64url(self._key.mac(payload.encode()))}"

    def read(self, token: str, kind: Kind) -> Grant | None:
        """The grant a well-formed, untampered token of this kind stands for (expired or not), else None."""
        payload, dot, mac = token.partition(".")
        if not dot or len(token) > 8192:
            return None
        try:
            valid = hmac.compare_digest(b64url_decode(mac), self._key.mac(payload.encode()))
            body = orjson.loads(b64url_decode(payload)) if valid else None
        except ValueError:
            return None
        if not isinstance(body, dict) or body.get("k") != kind:
            return None
        try:  # untampered means made here, but the default key is public: anyone can mint odd grants
            strings = {name: body[name] for name in "icusv"}
            if not all(isinstance(value, str) for value in strings.values()):
                return None
            redirect_uri, nonce = body.get("r"), body.get("n")
            if not isinstance(redirect_uri, str | None) or not isinstance(nonce, str | None):
                return None
            return Grant(
                kind=kind,
                grant_id=strings["i"],
                client_id=strings["c"],
                nhs_number=strings["u"],
                scope=strings["s"],
                vot=strings["v"],
                auth_time=int(body["a"]),
                expires=int(body["e"]),
                redirect_uri=redirect_uri,
                nonce=nonce,
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            return None

    async def redeem(self, grant: Grant) -> bool:
        """Mark the grant used; False when it had been redeemed already (by any simulator sharing Redis, or
        by this process when there is no Redis or it does not answer)."""
        ttl = max(1.0, grant.expires - time.time())
        if self._shared is not None:
            fresh = await self._shared.claim("redeemed", grant.grant_id, ttl)
            if fresh is not None:
                return fresh
        if grant.grant_id in self.redeemed:
            return False
        self.redeemed.add(grant.grant_id, ttl)
        return True
