"""NHS login in process: discovery, JWKS, /authorize, /token, /userinfo, and every error of the reference."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest

from simulator import StartupError
from simulator.host import PluginHost
from tests.plugins.nhs_login.conftest import ROOT, MakeClient, plugins_module
from tests.plugins.nhs_login.login_support import (
    CLIENT_ID,
    REDIRECT,
    assertion,
    authorize_params,
    callback,
    claims_of,
    public_pem,
    token_form,
)

TOKEN_URL = f"{ROOT}/token"


async def sign_in(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: str | None
) -> str:
    response = await client.get("/authorize", params=authorize_params(**params), headers=headers or {})
    (code,) = callback(response)["code"]
    return code


async def tokens(client: httpx.AsyncClient, code: str, **fields: Any) -> httpx.Response:
    form = token_form(TOKEN_URL, grant_type="authorization_code", code=code, redirect_uri=REDIRECT) | fields
    return await client.post("/token", data={k: v for k, v in form.items() if v is not None})


# -- discovery and keys ---------------------------------------------------------------------------------


async def test_discovery_has_the_sandpit_keys_and_every_url_on_the_root(login: httpx.AsyncClient) -> None:
    document = (await login.get("/.well-known/openid-configuration")).json()
    assert document["issuer"] == ROOT
    assert document["authorization_endpoint"] == f"{ROOT}/authorize"
    assert document["token_endpoint"] == TOKEN_URL
    assert document["userinfo_endpoint"] == f"{ROOT}/userinfo"
    assert document["jwks_uri"] == f"{ROOT}/.well-known/jwks.json"
    assert document["id_token_signing_alg_values_supported"] == ["RS512"]
    assert document["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert document["token_endpoint_auth_signing_alg_values_supported"] == ["RS512"]
    assert document["response_types_supported"] == ["code"]
    assert document["subject_types_supported"] == ["public"]
    assert "openid" in document["scopes_supported"]
    assert "nhs_app_credentials" in document["scopes_supported"]
    assert document["claims_supported"][:3] == ["iss", "aud", "sub"]
    assert "identity_proofing_level" in document["claims_supported"]
    assert "grant_types_supported" not in document  # the sandpit document has none
    assert all(value.startswith(ROOT) for key, value in document.items() if key.endswith("endpoint"))


async def test_the_root_url_sets_the_issuer_without_a_trailing_slash(make_client: MakeClient) -> None:
    client = await make_client(LOGIN_ROOT_URL="https://fake-api.example.com/")
    document = (await client.get("/.well-known/openid-configuration")).json()
    assert document["issuer"] == "https://fake-api.example.com"
    assert document["token_endpoint"] == "https://fake-api.example.com/token"


async def test_jwks_holds_the_signing_key_with_kid_alg_and_use(login: httpx.AsyncClient) -> None:
    (key,) = (await login.get("/.well-known/jwks.json")).json()["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS512", "sig")
    assert key["kid"]
    assert "d" not in key  # public only


# -- /authorize -----------------------------------------------------------------------------------------


async def test_authorize_redirects_with_a_code_and_the_state_once_each(login: httpx.AsyncClient) -> None:
    response = await login.get(
        "/authorize", params=authorize_params(redirect_uri=f"{REDIRECT}?keep=1&state=old&code=stale")
    )
    found = callback(response)
    assert found["state"] == ["s-1"]
    assert len(found["code"]) == 1
    assert found["keep"] == ["1"]
    assert response.headers["location"].startswith(REDIRECT + "?")
    assert response.headers["cache-control"] == "no-store"


async def test_authorize_by_post_and_the_original_fallback_to_app_root_url(make_client: MakeClient) -> None:
    client = await make_client(APP_ROOT_URL="https://app.test:3000")
    response = await client.post("/authorize", data=authorize_params(redirect_uri=None))
    assert response.headers["location"].startswith("https://app.test:3000/api/auth/callback/nhs-login?code=")


@pytest.mark.parametrize(
    ("params", "error", "description"),
    [
        ({"response_type": None}, "invalid_request", "response_type is missing"),
        ({"response_type": "token"}, "unsupported_response_type", "Unsupported response_type value"),
        ({"scope": "profile"}, "invalid_scope", "scope must contain openid"),
        ({"scope": "openid profile basic_demographics"}, "invalid_scope", "cannot be requested together"),
        ({"prompt": "consent"}, "invalid_request", "prompt must be none or login"),
        ({"vtr": "P9.Cp.Cd"}, "invalid_request", "vtr must be a JSON array"),
        ({"vtr": '["P9.Xx"]'}, "invalid_request", "not a vector of trust"),
        ({"login_hint": "1234567890"}, "invalid_request", "is not a valid NHS number"),
        ({"nonce": "n" * 3000}, "invalid_request", "nonce is too long"),
    ],
)
async def test_authorize_errors_redirect_with_the_real_codes_and_the_state(
    login: httpx.AsyncClient, params: dict[str, str | None], error: str, description: str
) -> None:
    found = callback(await login.get("/authorize", params=authorize_params(**params)))
    assert found["error"] == [error]
    assert description in found["error_description"][0]
    assert found["state"] == ["s-1"]
    assert "code" not in found


@pytest.mark.parametrize(
    ("headers", "params", "error", "description"),
    [
        ({"X-Test-Oauth-Error": "true"}, {}, "access_denied", "Simulated NHS Login error"),
        ({"X-Test-Oauth-Error": "ConsentNotGiven"}, {}, "access_denied", "ConsentNotGiven"),
        ({"X-Test-Oauth-Error": "sso_login_required"}, {}, "sso_login_required", "Simulated NHS Login error"),
        ({}, {"test_oauth_error": "server_error"}, "server_error", "Simulated NHS Login error"),
        (
            {"Cookie": "a=b; simulator_oauth_error=unauthorized_client"},
            {},
            "unauthorized_client",
            "Simulated NHS Login error",
        ),
    ],
)
async def test_a_test_picks_an_error_by_header_parameter_or_cookie(
    login: httpx.AsyncClient, headers: dict[str, str], params: dict[str, str], error: str, description: str
) -> None:
    found = callback(await login.get("/authorize", params=authorize_params(**params), headers=headers))
    assert found["error"] == [error]
    assert found["error_description"] == [description]
    assert found["state"] == ["s-1"]


async def test_without_a_registration_any_redirect_uri_is_honoured_but_a_bad_one_is_not(
    login: httpx.AsyncClient,
) -> None:
    assert callback(await login.get("/authorize", params=authorize_params(redirect_uri="http://x.test/cb")))
    for bad in ("javascript:alert(1)", "/relative", "https://x.test/cb#frag"):
        response = await login.get("/authorize", params=authorize_params(redirect_uri=bad))
        assert response.status_code == 400
        assert "location" not in response.headers
        assert response.json()["error"] == "invalid_request"


async def test_registered_clients_get_exact_redirect_uris_and_unknown_ones_no_redirect(
    make_client: MakeClient,
) -> None:
    clients = json.dumps([{"client_id": CLIENT_ID, "redirect_uris": [REDIRECT], "public_key": public_pem()}])
    client = await make_client(LOGIN_CLIENTS=clients)
    assert callback(await client.get("/authorize", params=authorize_params()))["code"]
    unknown = await client.get("/authorize", params=authorize_params(redirect_uri="https://evil.example/cb"))
    assert unknown.status_code == 400
    assert "location" not in unknown.headers
    assert unknown.json() == {
        "error": "invalid_request",
        "error_description": "redirect_uri is not registered for this client",
    }
    stranger = await client.get("/authorize", params=authorize_params(client_id="someone-else"))
    assert stranger.status_code == 400
    assert stranger.json()["error"] == "unauthorized_client"
    missing = await client.get("/authorize", params=authorize_params(client_id=None))
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")


# -- /token and the ID token ---------------------------------------------------------------------------


async def test_a_code_gives_tokens_with_the_references_claims(login: httpx.AsyncClient) -> None:
    code = await sign_in(login, nonce="n-0S6_WzA2Mj", vtr='["P9.Cp.Ck","P9.Cm"]')
    response = await tokens(login, code)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 300, "openid profile")
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope", "id_token"}
    header = jwt.get_unverified_header(body["id_token"])
    assert (header["alg"], header["typ"]) == ("RS512", "JWT")
    assert header["kid"] == (await login.get("/.well-known/jwks.json")).json()["keys"][0]["kid"]
    claims = claims_of(body["id_token"])
    assert claims["iss"] == ROOT
    assert claims["aud"] == CLIENT_ID
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["vot"] == "P9.Cp.Ck"
    assert claims["vtm"] == f"{ROOT}/trustmark/localhost:9123"
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 5
    assert claims["auth_time"] <= claims["iat"]
    assert claims["nhs_number"] == "9686368973"  # the original's default patient
    assert claims["family_name"] == claims["surname"] == "MILLAR"
    assert claims["identity_proofing_level"] == "P9"
    assert (claims["id_status"], claims["token_use"]) == ("verified", "id")
    assert len(claims["jti"]) == 36
    access = claims_of(body["access_token"])
    assert access["token_use"] == "access"
    assert access["scope"] == "openid profile"
    assert access["exp"] - access["iat"] == 300
    assert access["client_id"] == CLIENT_ID
    assert access["sub"] == claims["sub"]


async def test_no_nonce_in_the_id_token_when_authorize_got_none(login: httpx.AsyncClient) -> None:
    claims = claims_of((await tokens(login, await sign_in(login))).json()["id_token"])
    assert "nonce" not in claims
    assert claims["vot"] == "P9.Cp.Cd"  # the default vtr's first vector


async def test_x_nhs_number_login_hint_and_cookie_pick_the_patient(login: httpx.AsyncClient) -> None:
    by_header = await sign_in(login, headers={"X-NHS-Number": "9658218873"})
    by_hint = await sign_in(login, login_hint="9657933617")
    by_cookie = await sign_in(login, headers={"Cookie": "simulator_nhs_number=9450114080"})
    numbers = [
        claims_of((await tokens(login, c)).json()["id_token"])["nhs_number"]
        for c in (by_header, by_hint, by_cookie)
    ]
    assert numbers == ["9658218873", "9657933617", "9450114080"]


async def test_a_code_is_single_use_bound_to_client_and_redirect_and_expires(
    login: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = await sign_in(login)
    assert (await tokens(login, code)).status_code == 200
    replay = await tokens(login, code)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    assert replay.json()["error_description"] == "code has already been used"

    other = await tokens(login, await sign_in(login), client_assertion=assertion(TOKEN_URL, "other-client"))
    assert other.json() == {
        "error": "invalid_grant",
        "error_description": "code was issued to another client",
    }
    moved = await tokens(login, await sign_in(login), redirect_uri="https://elsewhere.example/cb")
    assert moved.json()["error"] == "invalid_grant"
    tampered = await sign_in(login)
    assert (await tokens(login, tampered[:-3] + "AAA")).json()["error"] == "invalid_grant"
    assert (await tokens(login, "not-a-code")).json()["error"] == "invalid_grant"

    late = await sign_in(login)
    now = time.time()
    monkeypatch.setattr("plugins.nhs_login.grants.time.time", lambda: now + 601)
    expired = await tokens(login, late)
    assert expired.json() == {"error": "invalid_grant", "error_description": "code has expired"}


async def test_the_original_fakes_nhs_number_code_still_works(login: httpx.AsyncClient) -> None:
    response = await tokens(login, "9735548852", redirect_uri=None)
    assert response.status_code == 200
    assert claims_of(response.json()["id_token"])["nhs_number"] == "9735548852"
    errors = await tokens(login, "90000000404", redirect_uri=None)  # an eligibility error patient
    assert claims_of(errors.json()["id_token"])["nhs_number"] == "90000000404"


async def test_refresh_tokens_rotate_narrow_and_give_no_id_token(login: httpx.AsyncClient) -> None:
    first = (await tokens(login, await sign_in(login, scope="openid profile email"))).json()
    refreshed = await login.post(
        "/token", data=token_form(TOKEN_URL, grant_type="refresh_token", refresh_token=first["refresh_token"])
    )
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert "id_token" not in body
    assert body["refresh_token"] != first["refresh_token"]
    assert body["scope"] == "openid profile email"
    reused = await login.post(
        "/token", data=token_form(TOKEN_URL, grant_type="refresh_token", refresh_token=first["refresh_token"])
    )
    assert reused.json() == {
        "error": "invalid_grant",
        "error_description": "refresh_token has already been used",
    }
    narrowed = await login.post(
        "/token",
        data=token_form(
            TOKEN_URL, grant_type="refresh_token", refresh_token=body["refresh_token"], scope="openid"
        ),
    )
    assert narrowed.json()["scope"] == "openid"
    widened = await login.post(
        "/token",
        data=token_form(
            TOKEN_URL,
            grant_type="refresh_token",
            refresh_token=narrowed.json()["refresh_token"],
            scope="openid phone",
        ),
    )
    assert widened.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    ("fields", "error", "description"),
    [
        ({"grant_type": None}, "invalid_request", "grant_type is missing"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type", "is not supported"),
        (
            {"client_assertion_type": None, "client_assertion": None},
            "invalid_client",
            "client authentication is required",
        ),
        ({"client_assertion_type": "secret"}, "invalid_client", "client_assertion_type must be"),
        ({"client_assertion": "not.a.jwt"}, "invalid_client", "client_assertion is not a JWT"),
        ({"client_assertion": "__alg__"}, "invalid_client", "must be signed with RS512"),
        ({"client_assertion": "__sub__"}, "invalid_client", "iss and sub must both be the client_id"),
        ({"client_assertion": "__aud__"}, "invalid_client", "aud must be http://localhost:9123/token"),
        ({"client_assertion": "__expired__"}, "invalid_client", "client_assertion has expired"),
        ({"client_assertion": "__far__"}, "invalid_client", "more than an hour ahead"),
        ({"client_id": "someone-else"}, "invalid_client", "client_id does not match"),
        ({"code": None}, "invalid_request", "code is missing"),
    ],
)
async def test_token_errors_are_400_json_with_the_real_codes(
    login: httpx.AsyncClient, fields: dict[str, str | None], error: str, description: str
) -> None:
    special = {
        "__alg__": assertion(TOKEN_URL, algorithm="RS256"),
        "__sub__": assertion(TOKEN_URL, sub="somebody"),
        "__aud__": assertion(TOKEN_URL, aud="https://elsewhere/token"),
        "__expired__": assertion(TOKEN_URL, exp=int(time.time()) - 1),
        "__far__": assertion(TOKEN_URL, exp=int(time.time()) + 7200),
    }
    fields = {k: special.get(v, v) if isinstance(v, str) else v for k, v in fields.items()}
    form = token_form(
        TOKEN_URL, grant_type="authorization_code", code=await sign_in(login), redirect_uri=REDIRECT
    )
    form.update(fields)
    response = await login.post("/token", data={k: v for k, v in form.items() if v is not None})
    assert response.status_code == 400
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == error
    assert description in response.json()["error_description"]


async def test_authlib_and_apim_style_assertions_are_accepted(login: httpx.AsyncClient) -> None:
    """A string aud and an hour's lifetime (Authlib, APIM) pass structural validation."""
    hourly = assertion(TOKEN_URL, aud=TOKEN_URL, exp=int(time.time()) + 3600, headers={"kid": "k1"})
    response = await tokens(login, await sign_in(login), client_assertion=hourly)
    assert response.status_code == 200, response.text


async def test_token_needs_a_form_post(login: httpx.AsyncClient) -> None:
    assert (await login.get("/token")).status_code == 405
    wrong = await login.post("/token", json={"grant_type": "authorization_code"})
    assert wrong.json()["error"] == "invalid_request"


async def test_strict_checks_the_signature_with_the_registered_key(make_client: MakeClient) -> None:
    registered = json.dumps([{"client_id": CLIENT_ID, "public_key": public_pem("app")}])
    client = await make_client(LOGIN_VALIDATION="strict", LOGIN_CLIENTS=registered)
    assert (await tokens(client, await sign_in(client))).status_code == 200
    forged = assertion(TOKEN_URL, key="intruder")
    response = await tokens(client, await sign_in(client), client_assertion=forged)
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "client_assertion signature does not verify",
    }
    stranger = await tokens(client, await sign_in(client), client_assertion=assertion(TOKEN_URL, "stranger"))
    assert stranger.json()["error"] == "invalid_client"


async def test_validation_off_needs_no_client_authentication(make_client: MakeClient) -> None:
    client = await make_client(LOGIN_VALIDATION="off")
    code = await sign_in(client)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID,
    }
    assert (await client.post("/token", data=form)).status_code == 200


# -- /userinfo ------------------------------------------------------------------------------------------


async def access_for(client: httpx.AsyncClient, scope: str = "openid profile", **params: str) -> str:
    token: str = (await tokens(client, await sign_in(client, scope=scope, **params))).json()["access_token"]
    return token


async def test_userinfo_gives_claims_by_scope_with_the_id_tokens_sub(login: httpx.AsyncClient) -> None:
    body = (await tokens(login, await sign_in(login, scope="openid profile email profile_extended"))).json()
    info = await login.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200
    found = info.json()
    assert found["sub"] == claims_of(body["id_token"])["sub"]
    assert found["nhs_number"] == "9686368973"
    assert found["given_name"] == "Mona"
    assert found["email_verified"] is True
    assert "phone_number" not in found  # not asked for: omitted, never null
    posted = await login.post("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert posted.json() == found


async def test_userinfo_errors(login: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = await login.get("/userinfo")
    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "Bearer")
    bad = await login.get("/userinfo", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    first = (await tokens(login, await sign_in(login))).json()
    narrowed = await login.post(
        "/token",
        data=token_form(
            TOKEN_URL, grant_type="refresh_token", refresh_token=first["refresh_token"], scope="profile"
        ),
    )
    without_openid = {"Authorization": f"Bearer {narrowed.json()['access_token']}"}
    forbidden = await login.get("/userinfo", headers=without_openid)
    assert forbidden.status_code == 403
    assert forbidden.json()["error"] == "insufficient_scope"
    token = await access_for(login)
    later = time.time() + 301
    monkeypatch.setattr("plugins.nhs_login.routes.time.time", lambda: later)
    expired = await login.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401
    assert "expired" in expired.headers["www-authenticate"]


async def test_client_user_metadata_is_patched_and_then_released(login: httpx.AsyncClient) -> None:
    token = await access_for(login, scope="openid client_metadata")
    headers = {"Authorization": f"Bearer {token}"}
    patched = await login.patch("/userinfo", headers=headers, json={"client_user_metadata": "seen-banner"})
    assert patched.status_code == 204
    assert (await login.get("/userinfo", headers=headers)).json()["client_user_metadata"] == "seen-banner"
    too_long = await login.patch("/userinfo", headers=headers, json={"client_user_metadata": "x" * 1025})
    assert too_long.status_code == 400
    plain = {"Authorization": f"Bearer {await access_for(login)}"}
    forbidden = await login.patch("/userinfo", headers=plain, json={"client_user_metadata": "x"})
    assert forbidden.status_code == 403
    assert forbidden.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')


@pytest.mark.parametrize(
    ("number", "level"), [("9912003071", "P9"), ("9912003072", "P5"), ("9912003073", "P0")]
)
async def test_apims_test_users_release_what_their_level_allows(
    login: httpx.AsyncClient, number: str, level: str
) -> None:
    body = (await tokens(login, await sign_in(login, login_hint=number))).json()
    claims = claims_of(body["id_token"])
    assert claims["vot"].startswith(level)
    if level == "P0":
        assert not {"nhs_number", "birthdate", "family_name", "identity_proofing_level"} & set(claims)
    else:
        assert claims["identity_proofing_level"] == level
        assert claims["nhs_number"] == number
    info = (await login.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})).json()
    assert info["sub"] == claims["sub"]


async def test_any_valid_nhs_number_gets_the_same_synthetic_identity_everywhere(
    make_client: MakeClient,
) -> None:
    first, second = await make_client(), await make_client()
    found = []
    for client in (first, second):
        body = (await tokens(client, await sign_in(client, login_hint="9000000009"))).json()
        found.append(
            {k: v for k, v in claims_of(body["id_token"]).items() if k in ("sub", "birthdate", "family_name")}
        )
    assert found[0] == found[1]
    assert len(found[0]) == 3


# -- settings --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOGIN_ROOT_URL": "ftp://x"}, "invalid setting LOGIN_ROOT_URL='ftp://x'"),
        ({"LOGIN_ROOT_URL": "https://x.example/login"}, "without a path"),
        ({"APP_ROOT_URL": "localhost:3000"}, "invalid setting APP_ROOT_URL='localhost:3000'"),
        ({"LOGIN_VALIDATION": "lenient"}, "invalid setting LOGIN_VALIDATION='lenient'"),
        ({"LOGIN_CLIENTS": "[{"}, "invalid setting LOGIN_CLIENTS='[{': not valid JSON"),
        ({"LOGIN_CLIENTS": '[{"client_id": "a"}, {"client_id": "a"}]'}, "client_id registered twice: a"),
        (
            {"LOGIN_CLIENTS": '[{"client_id": "a", "redirect_uris": ["nope"]}]'},
            "must be an absolute http(s) URL",
        ),
        (
            {"LOGIN_CLIENTS": '[{"client_id": "a", "public_key": "/no/such.pem"}]'},
            "LOGIN_CLIENTS[0].public_key",
        ),
        ({"LOGIN_PRIVATE_KEY": "/no/such/key.pem"}, "invalid setting LOGIN_PRIVATE_KEY"),
        (
            {"LOGIN_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"},
            "LOGIN_PRIVATE_KEY",
        ),
        ({"LOGIN_DEFAULT_NHS_NUMBER": "12"}, "invalid setting LOGIN_DEFAULT_NHS_NUMBER='12'"),
    ],
)
def test_bad_settings_stop_start_up_in_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(StartupError) as error:
        PluginHost.from_plugins({"nhs_login": plugins_module()}, env=env)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


async def test_a_private_key_of_your_own_signs_and_is_published(
    make_client: MakeClient, tmp_path: Any
) -> None:
    from tests.plugins.nhs_login.login_support import private_pem

    path = tmp_path / "key.pem"
    path.write_text(private_pem("provider"))
    by_file, by_text = (
        await make_client(LOGIN_PRIVATE_KEY=str(path)),
        await make_client(LOGIN_PRIVATE_KEY=private_pem("provider")),
    )
    kids = [(await c.get("/.well-known/jwks.json")).json()["keys"][0]["kid"] for c in (by_file, by_text)]
    default = (await (await make_client()).get("/.well-known/jwks.json")).json()["keys"][0]["kid"]
    assert kids[0] == kids[1] != default


def test_client_metadata_is_bounded_oldest_first() -> None:
    from plugins.nhs_login.routes import Metadata

    store = Metadata(max_entries=3)
    for key in "abcd":
        store.set(key, key * 1024)
    assert len(store) == 3
    assert store.get("a") is None
    store.set("b", "again")  # updating makes it the newest
    store.set("e", "e")
    assert store.get("c") is None
    assert store.get("b") == "again"


def test_client_metadata_is_bounded_in_bytes() -> None:
    from plugins.nhs_login.routes import Metadata

    weight = 1 + 1024 + Metadata.ENTRY_OVERHEAD_BYTES
    store = Metadata(max_entries=1000, max_bytes=3 * weight)
    for key in "abcde":
        store.set(key, "é" * 512)  # 1,024 bytes in UTF-8
    assert len(store) == 3
    assert store.bytes == 3 * weight
    assert store.get("b") is None
    assert store.get("c") is not None
    store.set("c", "")  # a smaller value frees its bytes
    assert store.bytes == 2 * weight + 1 + Metadata.ENTRY_OVERHEAD_BYTES


async def test_simulator_plugins_can_leave_it_out(make_client: MakeClient) -> None:
    import plugins.health

    client = await make_client({"health": plugins.health})
    assert (await client.get("/.well-known/openid-configuration")).status_code == 404
    assert (await client.get("/authorize")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"k": "code"},
        {"k": "code", "i": 1, "c": "x", "u": "9686368973", "s": "openid", "v": "P9.Cp.Cd", "a": 0, "e": 9e99},
        {"k": "code", "i": "i", "c": "x", "u": "9686368973", "s": "openid", "v": "P9", "a": "soon", "e": 1},
        {"k": "code", "i": "i", "c": "x", "u": "9686368973", "s": "openid", "v": "P9", "a": 0, "e": 1e400},
        {
            "k": "code",
            "i": "i",
            "c": "x",
            "u": "9686368973",
            "s": "openid",
            "v": "P9",
            "a": 0,
            "e": 9,
            "r": [],
        },
    ],
)
async def test_an_odd_code_minted_with_the_public_default_key_is_refused_not_a_500(
    login: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    from plugins.nhs_login.keys import SigningKey, b64url

    key = SigningKey.from_settings(None)
    payload = b64url(json.dumps(body).encode())
    forged = f"{payload}.{b64url(key.mac(payload.encode()))}"
    response = await tokens(login, forged)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
