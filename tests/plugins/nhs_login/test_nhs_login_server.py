"""The whole sign-in chain against a real ``simulator serve``: a strict OIDC client (Authlib), the APIM token
exchange in strict mode, and a patient check, in one simulator; then 200 sign-ins across two workers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from authlib.integrations.base_client.sync_app import BaseApp, OAuth2Mixin
from authlib.integrations.base_client.sync_openid import OpenIDMixin
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from tests.plugins.apim_oauth import apim_support as apim
from tests.plugins.nhs_login.login_support import CLIENT_ID, REDIRECT, private_pem, public_pem, token_form

pytestmark = pytest.mark.server
Serve = Callable[..., str]
PATIENT_CHECK = "/eligibility-signposting-api/patient-check"


class OpenIDClient(OAuth2Mixin, OpenIDMixin, BaseApp):  # type: ignore[misc]
    """Authlib's OpenID Connect client, assembled as its Flask and Django integrations do it."""

    client_cls = OAuth2Session


def chain_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """NHS login (strict, one registered client), APIM (strict), eligibility: the chain's three fakes."""
    (tmp_path / "apim-jwks.json").write_text(json.dumps(apim.jwks()))
    clients = [{"client_id": CLIENT_ID, "redirect_uris": [REDIRECT], "public_key": public_pem()}]
    return {
        "SIMULATOR_PLUGINS": "health,nhs_login,apim_oauth,eligibility",
        "LOGIN_VALIDATION": "strict",
        "LOGIN_CLIENTS": json.dumps(clients),
        "APIM_VALIDATION": "strict",
        "APIM_API_KEYS": apim.API_KEY,
        "APIM_JWKS": str(tmp_path / "apim-jwks.json"),
        **extra,
    }


def exchange(base: str, id_token: str) -> httpx.Response:
    """The app's token exchange at APIM: the ID token as subject token, the app's APIM assertion."""
    form = apim.exchange_form(
        subject_token=id_token, client_assertion=apim.assertion(aud=f"{base}/oauth2/token")
    )
    return httpx.post(f"{base}/oauth2/token", data=form)


def test_authlib_signs_in_verifies_the_id_token_and_the_chain_reaches_patient_check(
    serve: Serve, tmp_path: Path
) -> None:
    base = serve(chain_env(tmp_path), base_vars=("LOGIN_ROOT_URL",))
    client = OpenIDClient(
        framework=None,
        name="nhs-login",
        client_id=CLIENT_ID,
        client_secret=private_pem(),
        server_metadata_url=f"{base}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile", "token_endpoint_auth_method": "private_key_jwt"},
        client_auth_methods=[PrivateKeyJWT(alg="RS512")],
    )
    started: dict[str, Any] = client.create_authorization_url(redirect_uri=REDIRECT)
    assert started["nonce"]
    redirect = httpx.get(started["url"], headers={"X-NHS-Number": "9658218873"})
    assert redirect.status_code == 302
    answer = parse_qs(urlsplit(redirect.headers["location"]).query)
    assert answer["state"] == [started["state"]]

    token: dict[str, Any] = client.fetch_access_token(redirect_uri=REDIRECT, code=answer["code"][0])
    # Authlib verifies the signature against jwks_uri, and iss, aud, exp, iat and the nonce.
    user = client.parse_id_token(token, nonce=started["nonce"])
    assert user["iss"] == base
    assert user["aud"] == CLIENT_ID
    assert user["nhs_number"] == "9658218873"
    assert user["identity_proofing_level"] == "P9"
    with pytest.raises(Exception, match="nonce"):
        client.parse_id_token(token, nonce="another-nonce")

    exchanged = exchange(base, token["id_token"])
    assert exchanged.status_code == 200, exchanged.text
    access = exchanged.json()["access_token"]
    eligibility = httpx.get(
        f"{base}{PATIENT_CHECK}/{user['nhs_number']}", headers={"Authorization": f"Bearer {access}"}
    )
    assert eligibility.status_code == 200
    assert eligibility.json()["processedSuggestions"][0]["condition"] == "RSV"


def test_apim_refuses_an_id_token_another_key_signed(serve: Serve, tmp_path: Path) -> None:
    base = serve(chain_env(tmp_path), base_vars=("LOGIN_ROOT_URL",))
    forged = apim.id_token(iss=base, header={"kid": "made-up"})
    assert (
        exchange(base, forged).json()["error_description"].startswith("Invalid 'kid' header in subject_token")
    )
    impostor = apim.id_token()  # the real sandpit's issuer: not this simulator's provider
    refused = exchange(base, impostor)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_request")


@pytest.mark.slow
def test_two_hundred_sign_ins_across_two_workers_all_verify_and_exchange(
    serve: Serve, tmp_path: Path
) -> None:
    base = serve(chain_env(tmp_path, SIMULATOR_WORKERS="2"), base_vars=("LOGIN_ROOT_URL",), timeout=20)
    keys = jwt.PyJWKSet.from_dict(httpx.get(f"{base}/.well-known/jwks.json").json())
    for i in range(200):
        # A new connection for each request: the kernel spreads them over both workers, so codes issued by
        # one are redeemed by the other, and tokens signed by either verify with the keys fetched once.
        redirect = httpx.get(
            f"{base}/authorize",
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT,
                "scope": "openid profile",
                "state": f"s{i}",
                "nonce": f"n{i}",
            },
        )
        code = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
        answer = httpx.post(
            f"{base}/token",
            data=token_form(
                f"{base}/token", grant_type="authorization_code", code=code, redirect_uri=REDIRECT
            ),
        )
        assert answer.status_code == 200, answer.text
        id_token = answer.json()["id_token"]
        kid = jwt.get_unverified_header(id_token)["kid"]
        claims = jwt.decode(id_token, keys[kid].key, algorithms=["RS512"], audience=CLIENT_ID, issuer=base)
        assert claims["nonce"] == f"n{i}"
        exchanged = exchange(base, id_token)
        assert exchanged.status_code == 200, exchanged.text


def test_the_load_test_targets_answer_as_promised(serve: Serve) -> None:
    import base64
    import subprocess
    import sys

    from tests.conftest import clean_env

    base = serve({"SIMULATOR_PLUGINS": "health,nhs_login"}, base_vars=("LOGIN_ROOT_URL",))
    simulator = str(Path(sys.executable).with_name("simulator"))

    def targets(kind: str) -> list[str]:
        done = subprocess.run(
            [simulator, "targets", "--kind", kind, "-n", "20", "--base-url", base],
            env=clean_env({"SIMULATOR_PLUGINS": "nhs_login"}),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.splitlines()

    for line in targets("signin"):
        method, url = line.split(" ", 1)
        assert method == "GET"
        assert httpx.get(url).status_code == 302
    for line in targets("code_grant"):
        target = json.loads(line)
        answer = httpx.post(
            target["url"],
            content=base64.b64decode(target["body"]),
            headers={"Content-Type": target["header"]["Content-Type"][0]},
        )
        assert answer.status_code == 200, answer.text
        assert "id_token" in answer.json()
