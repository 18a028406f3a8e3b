"""Token exchange (an NHS login ID token for an access token), in process."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.plugins.apim_oauth.apim_support import (
    API_KEY,
    DROP,
    EXCHANGE_BODY,
    NHS_LOGIN,
    MakeClient,
    assertion,
    exchange_form,
    id_token,
    jwks,
)


async def test_token_exchange_returns_the_token_exchange_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth2/token", data=exchange_form())
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == EXCHANGE_BODY
    assert all(isinstance(value, str) for value in body.values())
    assert body["expires_in"] == "599"
    assert body["token_type"] == "Bearer"
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["refresh_count"] == "0"
    assert body["refresh_token_expires_in"].isdigit()
    assert body["access_token"] != body["refresh_token"]


SUBJECT_CASES: list[tuple[str, Any, str]] = [
    ("missing", DROP, "Missing subject_token"),
    ("empty", "", "Missing subject_token"),
    ("not a JWT", "invalid", "Malformed JWT in subject_token"),
    ("kid missing", id_token({"kid": DROP}), "Missing 'kid' header in subject_token JWT"),
    ("typ wrong", id_token({"typ": "JWS"}), "Invalid 'typ' header in subject_token JWT - must be 'JWT'"),
    ("alg missing", id_token({"alg": DROP}), "Missing 'alg' header in subject_token JWT"),
    ("exp missing", id_token(exp=DROP), "Missing 'exp' claim in subject_token JWT"),
    (
        "exp a string",
        id_token(exp="9999999999"),
        "Invalid 'exp' claim in subject_token JWT - must be an integer",
    ),
    (
        "expired",
        id_token(exp=int(time.time()) - 10),
        "Invalid 'exp' claim in subject_token JWT - JWT has expired",
    ),
    ("iss missing", id_token(iss=DROP), "Missing 'iss' claim in subject_token JWT"),
    ("aud missing", id_token(aud=DROP), "Missing 'aud' claim in subject_token JWT"),
]


@pytest.mark.parametrize(
    ("subject_token", "text"), [c[1:] for c in SUBJECT_CASES], ids=[c[0] for c in SUBJECT_CASES]
)
async def test_subject_token_errors(client: httpx.AsyncClient, subject_token: Any, text: str) -> None:
    response = await client.post("/oauth2/token", data=exchange_form(subject_token=subject_token))
    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["error_description"]) == ("invalid_request", text)


async def test_the_grant_type_must_be_token_exchange(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth2/token", data=exchange_form(grant_type=DROP))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["error_description"] == "grant_type is invalid"


async def test_the_client_assertion_is_checked_first(client: httpx.AsyncClient) -> None:
    form = exchange_form(client_assertion=assertion(jti=DROP), subject_token="invalid")
    response = await client.post("/oauth2/token", data=form)
    assert response.json()["error_description"] == "Missing 'jti' claim in client_assertion JWT"


def strict_exchange() -> dict[str, str]:
    return {
        "VALIDATION": "strict",
        "API_KEYS": API_KEY,
        "JWKS": json.dumps(jwks("app")),
        "ID_TOKEN_ISSUERS": NHS_LOGIN,
        "ID_TOKEN_JWKS": json.dumps(jwks("nhs-login", kid="nhs-login-1")),
    }


async def test_strict_verifies_the_id_token(make_client: MakeClient) -> None:
    client = await make_client(**strict_exchange())
    ok = await client.post("/oauth2/token", data=exchange_form())
    assert ok.status_code == 200, ok.text
    rs256 = await client.post("/oauth2/token", data=exchange_form(subject_token=id_token({"alg": "RS256"})))
    assert rs256.status_code == 401  # signed RS512 but labelled RS256: the signature cannot verify
    cases = [
        (
            id_token(iss="https://evil.example"),
            400,
            "Missing or non-matching 'iss'/'sub' claims in client_assertion JWT",
        ),
        (
            id_token({"kid": "nope"}),
            401,
            "Invalid 'kid' header in subject_token JWT - no matching public key",
        ),
        (id_token(key="intruder"), 401, "JWT signature verification failed"),
    ]
    for token, status, text in cases:
        response = await client.post("/oauth2/token", data=exchange_form(subject_token=token))
        assert response.status_code == status, response.text
        assert response.json()["error_description"] == text
