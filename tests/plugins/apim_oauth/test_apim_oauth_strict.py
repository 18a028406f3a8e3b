"""Strict validation in process: API keys, the JWKS (inline, file, URL), signatures and ``aud``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.plugins.apim_oauth.apim_support import (
    API_KEY,
    DROP,
    TOKEN_URL,
    MakeClient,
    assertion,
    cc_form,
    jwks,
)


def strict(**env: str) -> dict[str, str]:
    return {"VALIDATION": "strict", "API_KEYS": f"other, {API_KEY}", "JWKS": json.dumps(jwks("app"))} | env


async def expect(client: httpx.AsyncClient, form: dict[str, str], status: int, error: str, text: str) -> None:
    response = await client.post("/oauth2/token", data=form)
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["error"], body["error_description"]) == (error, text)


async def test_a_correctly_signed_assertion_gets_a_token(make_client: MakeClient) -> None:
    client = await make_client(**strict(TOKEN_URL=TOKEN_URL))
    response = await client.post("/oauth2/token", data=cc_form())
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == "599"


@pytest.mark.parametrize(
    ("env", "changes", "status", "error", "text"),
    [
        (
            {},
            {"client_assertion": lambda: assertion(iss="unknown", sub="unknown")},
            401,
            "invalid_request",
            "Invalid 'iss'/'sub' claims in client_assertion JWT",
        ),
        (
            {"JWKS": ""},
            {},
            403,
            "public_key error",
            "You need to register a public key to use this authentication method"
            " - please contact support to configure",
        ),
        (
            {"JWKS": "http://127.0.0.1:9/jwks.json", "JWKS_TIMEOUT_SECONDS": "1"},
            {},
            403,
            "public_key error",
            "The JWKS endpoint, for your client_assertion can't be reached",
        ),
        (
            {"JWKS": "https://jwks.invalid"},  # no path: refused before any call, as on the platform
            {},
            403,
            "public_key error",
            "The JWKS endpoint, for your client_assertion can't be reached",
        ),
        (
            {},
            {"client_assertion": lambda: assertion({"kid": "unknown-kid"})},
            401,
            "invalid_request",
            "Invalid 'kid' header in client_assertion JWT - no matching public key",
        ),
        (
            {},
            {"client_assertion": lambda: assertion(key="intruder")},
            401,
            "public_key error",
            "JWT signature verification failed",
        ),
        (
            {},
            {"client_assertion": lambda: assertion(aud="https://int.api.service.nhs.uk/oauth2/token")},
            401,
            "invalid_request",
            "Missing or invalid 'aud' claim in client_assertion JWT",
        ),
        (
            {},
            {"client_assertion": lambda: assertion(aud=DROP)},
            401,
            "invalid_request",
            "Missing or invalid 'aud' claim in client_assertion JWT",
        ),
        (
            {},
            {"client_assertion": lambda: assertion(aud=TOKEN_URL + "/")},
            401,
            "invalid_request",
            "Missing or invalid 'aud' claim in client_assertion JWT",
        ),
    ],
    ids=[
        "unknown-api-key",
        "no-jwks",
        "jwks-unreachable",
        "jwks-url-without-path",
        "kid",
        "signature",
        "aud",
        "no-aud",
        "aud-slash",
    ],
)
async def test_strict_error_matrix(
    make_client: MakeClient, env: dict[str, str], changes: dict[str, Any], status: int, error: str, text: str
) -> None:
    client = await make_client(**strict(**env))
    # Assertions are made now, not when the tests were collected: they expire 5 minutes after they are made.
    changes = {name: value() if callable(value) else value for name, value in changes.items()}
    await expect(client, cc_form(**changes), status, error, text)


async def test_structural_errors_come_first(make_client: MakeClient) -> None:
    client = await make_client(**strict())
    bad = assertion({"alg": "RS256"}, iss="unknown", sub="unknown")
    await expect(
        client,
        cc_form(client_assertion=bad),
        400,
        "invalid_request",
        "Invalid 'alg' header in client_assertion JWT - unsupported JWT algorithm - must be 'RS512'",
    )


async def test_a_refused_api_key_still_uses_up_the_jti(make_client: MakeClient) -> None:
    client = await make_client(**strict())
    jwt = assertion(iss="unknown", sub="unknown", jti="once")
    await expect(
        client,
        cc_form(client_assertion=jwt),
        401,
        "invalid_request",
        "Invalid 'iss'/'sub' claims in client_assertion JWT",
    )
    await expect(
        client,
        cc_form(client_assertion=jwt),
        400,
        "invalid_request",
        "Non-unique 'jti' claim in client_assertion JWT",
    )


async def test_aud_is_derived_from_the_request_and_forwarded_headers(make_client: MakeClient) -> None:
    client = await make_client(**strict())
    direct = await client.post("/oauth2/token", data=cc_form())  # aud = http://t/oauth2/token
    assert direct.status_code == 200, direct.text
    public = "https://fake-api.example.com/oauth2/token"
    forwarded = {"x-forwarded-proto": "https", "x-forwarded-host": "fake-api.example.com"}
    ok = await client.post(
        "/oauth2/token", data=cc_form(client_assertion=assertion(aud=public)), headers=forwarded
    )
    assert ok.status_code == 200, ok.text
    alb = {"x-forwarded-proto": "https", "host": "fake-api.example.com"}  # an ALB keeps Host, adds the proto
    ok = await client.post("/oauth2/token", data=cc_form(client_assertion=assertion(aud=public)), headers=alb)
    assert ok.status_code == 200, ok.text
    wrong = await client.post("/oauth2/token", data=cc_form(client_assertion=assertion(aud=public)))
    assert wrong.status_code == 401


async def test_an_aud_list_holding_the_token_url_is_accepted(make_client: MakeClient) -> None:
    client = await make_client(**strict())
    response = await client.post(
        "/oauth2/token", data=cc_form(client_assertion=assertion(aud=["x", TOKEN_URL]))
    )
    assert response.status_code == 200, response.text


async def test_the_jwks_can_be_a_file_with_several_keys(make_client: MakeClient, tmp_path: Path) -> None:
    keys = {"keys": jwks("other", kid="int-2")["keys"] + jwks("app")["keys"]}
    (tmp_path / "jwks.json").write_text(json.dumps(keys))
    client = await make_client(**strict(JWKS=str(tmp_path / "jwks.json")))
    assert (await client.post("/oauth2/token", data=cc_form())).status_code == 200


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, list[str]]]:
    """An http JWKS host that records the User-Agent of each fetch."""
    agents: list[str] = []
    body = json.dumps(jwks("app")).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            agents.append(self.headers.get("user-agent", ""))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks/app.json", agents
    server.shutdown()
    server.server_close()


async def test_a_jwks_url_is_fetched_once_and_cached(
    make_client: MakeClient, jwks_server: tuple[str, list[str]]
) -> None:
    url, agents = jwks_server
    client = await make_client(**strict(JWKS=url))
    for _ in range(3):
        assert (await client.post("/oauth2/token", data=cc_form())).status_code == 200
    assert agents == ["APIM"]
