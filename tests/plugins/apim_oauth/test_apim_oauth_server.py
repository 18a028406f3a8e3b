"""A standard OAuth2 client (Authlib, private_key_jwt RS512) against a real ``simulator serve``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc.jwk import RSAKey

from tests.plugins.apim_oauth.apim_support import API_KEY, KID, cc_form, exchange_form, jwks, private_pem

pytestmark = pytest.mark.server
FORM_TYPE = "application/x-www-form-urlencoded"
Serve = Callable[..., str]


class NhsPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """Authlib's private_key_jwt with the platform's rule: ``exp`` at most 5 minutes ahead.

    Authlib signs ``exp = iat + 3600`` and has no option for it, which the real endpoint refuses.
    """

    def sign(self, auth: Any, token_endpoint: str) -> str:
        token: str = private_key_jwt_sign(
            RSAKey.import_key(auth.client_secret),
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            alg="RS512",
            header={"kid": KID},
            expires_in=300,
        )
        return token


def fetch(base: str, auth_method: PrivateKeyJWT, client_id: str = API_KEY) -> dict[str, Any]:
    """What a client app does: Authlib's OAuth2Session with private_key_jwt client authentication."""
    secret = private_pem("app").decode()
    with OAuth2Session(client_id, secret, token_endpoint_auth_method=auth_method.name) as session:
        session.register_client_auth_method(auth_method)
        token: dict[str, Any] = session.fetch_token(f"{base}/oauth2/token", grant_type="client_credentials")
        return token


def raw_body(base: str) -> dict[str, Any]:
    """The same request as Authlib's, to see the JSON types before the client converts them."""
    form = cc_form(client_assertion=NhsPrivateKeyJWT().sign(_Auth(), f"{base}/oauth2/token"))
    response = httpx.post(f"{base}/oauth2/token", data=form)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class _Auth:
    client_id = API_KEY
    client_secret = private_pem("app").decode()


def assert_real_types(body: dict[str, Any]) -> None:
    assert set(body) == {"access_token", "expires_in", "token_type", "issued_at"}
    assert all(isinstance(value, str) for value in body.values())
    assert body["expires_in"] == "599"
    assert body["token_type"] == "Bearer"
    assert body["issued_at"].isdigit()


def test_authlib_gets_a_token_with_structural_validation(serve: Serve) -> None:
    base = serve({"SIMULATOR_PLUGINS": "health,apim_oauth"})
    token = fetch(base, NhsPrivateKeyJWT())
    assert token["token_type"] == "Bearer"
    assert token["access_token"]
    assert token["expires_at"] > time.time() + 590  # Authlib read "599" as the lifetime
    assert_real_types(raw_body(base))


def test_authlib_gets_a_token_with_strict_validation(serve: Serve, tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_text(json.dumps(jwks("app")))
    base = serve(
        {
            "SIMULATOR_PLUGINS": "health,apim_oauth",
            "APIM_VALIDATION": "strict",
            "APIM_API_KEYS": API_KEY,
            "APIM_JWKS": str(tmp_path / "jwks.json"),
        }
    )
    token = fetch(base, NhsPrivateKeyJWT())
    assert token["token_type"] == "Bearer"
    assert_real_types(raw_body(base))
    with pytest.raises(OAuthError) as refused:
        fetch(base, NhsPrivateKeyJWT(), client_id="unregistered-app")
    assert refused.value.description == "Invalid 'iss'/'sub' claims in client_assertion JWT"


def test_authlib_out_of_the_box_signs_exp_an_hour_ahead_and_is_refused(serve: Serve) -> None:
    base = serve({"SIMULATOR_PLUGINS": "apim_oauth"})
    with pytest.raises(OAuthError) as refused:
        fetch(base, PrivateKeyJWT(alg="RS512", headers={"kid": KID}))
    assert refused.value.error == "invalid_request"
    assert refused.value.description == (
        "Invalid 'exp' claim in client_assertion JWT - more than 5 minutes in future"
    )


def test_token_exchange_over_http(serve: Serve) -> None:
    base = serve({"SIMULATOR_PLUGINS": "apim_oauth"})
    response = httpx.post(f"{base}/oauth2/token", data=exchange_form())
    assert response.status_code == 200, response.text
    assert response.json()["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"


def test_apim_delay_seconds_delays_the_token_call(serve: Serve) -> None:
    base = serve({"SIMULATOR_PLUGINS": "health,apim_oauth", "APIM_DELAY_SECONDS": "1"})
    httpx.get(f"{base}/health")  # warm the connection path
    started = time.monotonic()
    response = httpx.post(f"{base}/oauth2/token", data=cc_form(), timeout=10)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert 1.0 <= elapsed < 1.5
    started = time.monotonic()
    assert httpx.get(f"{base}/health").status_code == 200
    assert time.monotonic() - started < 0.5  # the health check is never delayed


def test_off_accepts_any_post_over_http(serve: Serve) -> None:
    base = serve({"SIMULATOR_PLUGINS": "apim_oauth", "APIM_VALIDATION": "off"})
    response = httpx.post(f"{base}/oauth2/token", content=b"anything")
    assert response.status_code == 200
    assert response.json()["expires_in"] == "599"


@pytest.mark.parametrize(
    "env",
    [{}, {"APIM_RATE_LIMIT_PER_MINUTE": "1000"}],
    ids=["token_now (answered from the parser callback)", "token (a quota to wait on)"],
)
def test_both_handlers_give_the_same_answers_and_the_catch_all_413(serve: Serve, env: dict[str, str]) -> None:
    base = serve({"SIMULATOR_PLUGINS": "apim_oauth", "SIMULATOR_MAX_BODY_BYTES": "4096", **env})
    url = f"{base}/oauth2/token"
    form = cc_form()
    first = httpx.post(url, data=form)
    assert first.status_code == 200, first.text
    replayed = httpx.post(url, data=form)  # the same jti again
    assert replayed.status_code == 400
    assert replayed.json()["error_description"] == "Non-unique 'jti' claim in client_assertion JWT"
    assert httpx.post(url, content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    assert httpx.get(url).status_code == 405
    # Past SIMULATOR_MAX_BODY_BYTES, sized or chunked: the platform's catch-all error, not the core's.
    sized = httpx.post(url, content=b"a" * 5000, headers={"content-type": FORM_TYPE})
    chunked = httpx.post(url, content=iter([b"a" * 3000, b"a" * 2000]), headers={"content-type": FORM_TYPE})
    for response in (sized, chunked):
        assert response.status_code == 413
        assert response.json()["error"] == "unknown_error"
        assert response.json()["message_id"].startswith("rrt-")
