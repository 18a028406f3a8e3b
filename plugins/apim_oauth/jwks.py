"""Public keys for signature checks: a JWKS given inline, in a file or at an http(s) URL (fetched, cached).

PyJWT's ``PyJWKClient`` was considered for URL key sets and does not fit the platform's behaviour: it
fetches the set again whenever a ``kid`` is unknown (under load, a client with a wrong ``kid`` would cost a
fetch per request, where the platform answers from its hour-long cache), keeps no back-off after a failed
fetch, and refuses keys whose own ``alg`` differs from the token's (registered JWKS files often say RS256
for keys used with RS512).
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from jwt import PyJWK
from jwt.exceptions import PyJWKError

Keys = Mapping[str, PyJWK]
Fetch = Callable[[str, float], bytes]

# A failed fetch is retried at most this often: under load, every request would otherwise start one.
_RETRY_AFTER_FAILURE = 5.0


class JwksUnavailable(Exception):
    """The key set cannot be fetched or parsed; the real proxy answers 403 ``public_key error``."""


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def check_source(source: str) -> None:
    """Settings-time check: an inline document or a file must hold a usable JWKS; URLs are fetched later."""
    if is_url(source):
        return
    parse(_read_local(source))


def _read_local(source: str) -> bytes:
    text = source.strip()
    if text.startswith("{"):
        return text.encode()
    try:
        return Path(text).read_bytes()
    except OSError as exc:
        raise ValueError(f"not a JWKS document, a readable file or an http(s) URL ({exc.strerror})") from None


def parse(raw: bytes) -> dict[str, PyJWK]:
    """RSA keys by ``kid``; keys without a ``kid`` can never match a JWT's header, so they are skipped."""
    try:
        document: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError("the JWKS is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('the JWKS has no "keys" list')
    keys: dict[str, PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not isinstance(entry.get("kid"), str):
            continue
        try:
            # The key's own `alg` (RS256 in some registered files) must not stop an RS512 check.
            keys[entry["kid"]] = PyJWK({k: v for k, v in entry.items() if k != "alg"}, algorithm="RS512")
        except PyJWKError as exc:
            raise ValueError(f"JWKS key {entry['kid']!r} is unusable: {exc}") from None
    return keys


def fetch_url(url: str, timeout: float) -> bytes:
    # The real proxy's callout sends this User-Agent; some JWKS hosts log it.
    request = urllib.request.Request(url, headers={"User-Agent": "APIM"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: bytes = response.read(1 << 20)
        return body


class KeySource:
    """The keys of one JWKS source; :meth:`keys` raises :class:`JwksUnavailable` when it cannot be had.

    A URL is fetched on first use in a worker thread with a bounded timeout, then cached for
    ``cache_seconds`` (the real proxy caches for an hour), so key rotation shows after that long.
    """

    def __init__(
        self,
        source: str,
        *,
        timeout: float = 5.0,
        cache_seconds: float = 3600.0,
        fetch: Fetch = fetch_url,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, PyJWK] | None = None
        self._until = 0.0
        self._failed_until = 0.0
        self._lock = asyncio.Lock()
        if not is_url(source):
            self._keys = parse(_read_local(source))
            self._until = float("inf")

    async def keys(self) -> Keys:
        now = self._clock()
        if self._keys is not None and now < self._until:
            return self._keys
        async with self._lock:
            now = self._clock()
            if self._keys is not None and now < self._until:
                return self._keys
            if now < self._failed_until:
                raise JwksUnavailable(self.source)
            try:
                self._keys = await self._load()
            except Exception as exc:  # any failure (DNS, TLS, HTTP status, bad JSON) is "can't be reached"
                self._failed_until = now + _RETRY_AFTER_FAILURE
                raise JwksUnavailable(self.source) from exc
            self._until = now + self._cache_seconds
            return self._keys

    async def _load(self) -> dict[str, PyJWK]:
        # The real proxy refuses a URL without a path before calling it (a bare host is "unreachable").
        if urlsplit(self.source).path in ("", "/"):
            raise ValueError("JWKS URL has no path")
        raw = await asyncio.to_thread(self._fetch, self.source, self._timeout)
        return parse(raw)
