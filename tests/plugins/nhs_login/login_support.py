"""Helpers for the NHS login tests: client keys, client assertions, and one sign-in done by hand."""

from __future__ import annotations

import time
import uuid
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "vita-app-test"
REDIRECT = "https://app.example/api/auth/callback/nhs-login"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@cache
def client_key(name: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(name: str = "app") -> str:
    return (
        client_key(name)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )


def public_pem(name: str = "app") -> str:
    public = client_key(name).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def assertion(token_url: str, client_id: str = CLIENT_ID, *, key: str = "app", **overrides: Any) -> str:
    """An RS512 client assertion as Auth.js makes it: aud [issuer, token_endpoint], 60 s, no kid."""
    issuer = token_url.rsplit("/token", 1)[0]
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": [issuer, token_url],
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 60,
    }
    headers = overrides.pop("headers", None)
    algorithm = overrides.pop("algorithm", "RS512")
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, client_key(key), algorithm=algorithm, headers=headers)


def token_form(token_url: str, **fields: Any) -> dict[str, str]:
    form = {"client_assertion_type": JWT_BEARER, "client_assertion": assertion(token_url)}
    form.update({k: v for k, v in fields.items() if v is not None})
    return form


def authorize_params(**overrides: str | None) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "s-1",
        "prompt": "none",
    }
    params.update({k: v for k, v in overrides.items() if v is not None})
    return {k: v for k, v in params.items() if overrides.get(k, "") is not None}


def callback(response: httpx.Response) -> dict[str, list[str]]:
    """The query of a /authorize redirect, every value of every name."""
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query, keep_blank_values=True)


def claims_of(token: str) -> dict[str, Any]:
    found: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return found


def query(params: dict[str, str]) -> str:
    return urlencode(params)
