"""Keys, JWTs (well-formed or deliberately not) and forms for the token endpoint tests."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwt.algorithms import RSAAlgorithm

API_KEY = "test-app-api-key"
KID = "test-1"
TOKEN_URL = "http://t/oauth2/token"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
NHS_LOGIN = "https://auth.sandpit.signin.nhs.uk"
FORM = {"content-type": "application/x-www-form-urlencoded"}
DROP = object()

# `await make_client(VALIDATION="strict", ...)` (the conftest fixture): a client of a fresh in-process host.
MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


@cache
def private_key(name: str) -> rsa.RSAPrivateKey:
    # Always called positionally: @cache would key `f()` and `f("app")` apart.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(name: str = "app") -> bytes:
    return private_key(name).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def jwks(name: str = "app", kid: str = KID) -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(private_key(name).public_key()))
    return {"keys": [jwk | {"kid": kid, "use": "sig"}]}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(header: dict[str, Any], claims: dict[str, Any], key: str = "app") -> str:
    """A compact JWS with exactly this header, signed RS512 whatever the header's `alg` says."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = private_key(key).sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA512())
    return f"{signing_input}.{_b64(signature)}"


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = base | changes
    return {k: v for k, v in merged.items() if v is not DROP}


def assertion(header: dict[str, Any] | None = None, key: str = "app", **claims: Any) -> str:
    """A valid client assertion for API_KEY; ``header``/``claims`` change it (DROP removes an item)."""
    base_header = {"alg": "RS512", "typ": "JWT", "kid": KID}
    base_claims = {
        "iss": API_KEY,
        "sub": API_KEY,
        "aud": TOKEN_URL,
        "jti": str(uuid.uuid4()),
        "exp": int(time.time()) + 60,
    }
    return sign(_merge(base_header, header or {}), _merge(base_claims, claims), key)


def id_token(header: dict[str, Any] | None = None, key: str = "nhs-login", **claims: Any) -> str:
    """An NHS login style RS512 ID token."""
    base_header = {"alg": "RS512", "typ": "JWT", "kid": "nhs-login-1"}
    now = int(time.time())
    base_claims = {
        "iss": NHS_LOGIN,
        "sub": "49f470a1-cc52-49b7-beba-0f9cec937c46",
        "aud": "vaccinations-app",
        "iat": now,
        "exp": now + 3600,
        "identity_proofing_level": "P9",
        "nhs_number": "9686368973",
    }
    return sign(_merge(base_header, header or {}), _merge(base_claims, claims), key)


def cc_form(**changes: Any) -> dict[str, str]:
    """The client-credentials form with a fresh assertion; DROP removes a field."""
    base = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER}
    if "client_assertion" not in changes:
        base["client_assertion"] = assertion()
    return _merge(base, changes)


def exchange_form(**changes: Any) -> dict[str, str]:
    base = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token_type": ID_TOKEN,
        "client_assertion_type": JWT_BEARER,
    }
    if "client_assertion" not in changes:
        base["client_assertion"] = assertion()
    if "subject_token" not in changes:
        base["subject_token"] = id_token()
    return _merge(base, changes)


# The fields of the platform's answers, in order where the order is the platform's.
CLIENT_CREDENTIALS_BODY = ["access_token", "expires_in", "token_type", "issued_at"]
EXCHANGE_BODY = [
    "access_token",
    "expires_in",
    "token_type",
    "issued_token_type",
    "refresh_token",
    "refresh_token_expires_in",
    "refresh_count",
]
QUOTA_BODY = {
    "message",
    "scope",
    "policy",
    "limit",
    "interval",
    "timeunit",
    "ratelimiting_expiry_time_ms",
    "message_id",
}
