"""Relying parties and their ``private_key_jwt`` client authentication at ``/token``.

NHS login authenticates clients only with an RS512 JWT assertion (RFC 7523) signed with the key registered
at onboarding. What real clients send differs (see the README): Auth.js an ``aud`` array
``[issuer, token_endpoint]`` and a 60 s lifetime without ``kid``; APIM and Authlib a string ``aud`` and an
hour. ``LOGIN_VALIDATION`` decides how much is checked:

- ``structural`` (default): the assertion's form and claims: ``alg`` RS512, ``iss`` = ``sub`` = the client,
  ``aud`` the token URL or an array holding it, ``exp`` ahead but at most an hour (and a minute) away.
- ``strict``: also the signature, with the key ``LOGIN_CLIENTS`` registers for the client.
- ``off``: no client authentication at all (the original fake).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from plugins.nhs_login.keys import public_key
from plugins.nhs_login.settings import LoginSettings

JWT_BEARER: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Authlib and APIM sign assertions for an hour; a minute on top for their clocks.
MAX_LIFETIME_SECONDS: Final = 3600 + 60
_MAX_ASSERTION_BYTES: Final = 16 << 10


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    redirect_uris: frozenset[str]
    key: rsa.RSAPublicKey | None


class ClientAuthError(Exception):
    """A client authentication failure: ``invalid_client`` with this description."""


class Clients:
    """The registered clients (none registered = any client_id is accepted) and assertion checks."""

    def __init__(self, settings: LoginSettings) -> None:
        self.mode = settings.validation
        self.token_url = f"{settings.root_url}/token"
        self.registered: dict[str, Client] = {}
        for index, registration in enumerate(settings.clients):
            key = None
            if registration.public_key is not None:
                key = public_key(registration.public_key, f"LOGIN_CLIENTS[{index}].public_key")
            self.registered[registration.client_id] = Client(
                registration.client_id, frozenset(registration.redirect_uris), key
            )

    def get(self, client_id: str) -> Client | None:
        return self.registered.get(client_id)

    def authenticate(self, form: Mapping[str, str]) -> str:
        """The authenticated client_id, or raises :class:`ClientAuthError` saying why not."""
        if self.mode == "off":
            named = form.get("client_id") or _unverified_issuer(form.get("client_assertion"))
            return named or "unknown-client"
        assertion_type = form.get("client_assertion_type")
        assertion = form.get("client_assertion")
        if assertion_type is None and assertion is None:
            raise ClientAuthError("client authentication is required: private_key_jwt (client_assertion)")
        if assertion_type != JWT_BEARER:
            raise ClientAuthError(f"client_assertion_type must be {JWT_BEARER}")
        decoded = _decode(assertion or "")
        if decoded is None:
            raise ClientAuthError("client_assertion is not a JWT")
        header, claims, signing_input, signature = decoded
        if header.get("alg") != "RS512":
            raise ClientAuthError("client_assertion must be signed with RS512")
        client_id = claims.get("iss")
        if not isinstance(client_id, str) or not client_id or claims.get("sub") != client_id:
            raise ClientAuthError("client_assertion iss and sub must both be the client_id")
        if form.get("client_id") not in (None, client_id):
            raise ClientAuthError("client_id does not match the client_assertion's iss")
        client = self.registered.get(client_id)
        if self.registered and client is None:
            raise ClientAuthError(f"client {client_id!r} is not registered")
        if not _audience(claims.get("aud"), self.token_url):
            raise ClientAuthError(f"client_assertion aud must be {self.token_url} or an array containing it")
        exp = claims.get("exp")
        now = time.time()
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise ClientAuthError("client_assertion exp must be a number")
        if exp <= now:
            raise ClientAuthError("client_assertion has expired")
        if exp > now + MAX_LIFETIME_SECONDS:
            raise ClientAuthError("client_assertion exp is more than an hour ahead")
        if self.mode == "strict":
            if client is None or client.key is None:
                raise ClientAuthError(f"client {client_id!r} has no public key registered (LOGIN_CLIENTS)")
            try:
                client.key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA512())
            except InvalidSignature:
                raise ClientAuthError("client_assertion signature does not verify") from None
        return client_id


def _audience(aud: Any, token_url: str) -> bool:
    if isinstance(aud, str):
        return aud == token_url
    return isinstance(aud, list) and token_url in aud


def _unverified_issuer(assertion: str | None) -> str | None:
    decoded = _decode(assertion or "")
    iss = decoded[1].get("iss") if decoded else None
    return iss if isinstance(iss, str) and iss else None


def _decode(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes] | None:
    """A compact JWS's header, claims, signing input and signature, unverified; None if it is not one."""
    if len(token) > _MAX_ASSERTION_BYTES:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = (orjson.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2])
        signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except ValueError:
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims, f"{parts[0]}.{parts[1]}".encode(), signature
