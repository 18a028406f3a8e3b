"""``POST /oauth2/token`` in process, structural validation (the default): successes and the error matrix."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.plugins.apim_oauth.apim_support import (
    API_KEY,
    DROP,
    FORM,
    ID_TOKEN,
    JWT_BEARER,
    QUOTA_BODY,
    TOKEN_EXCHANGE,
    MakeClient,
    assertion,
    cc_form,
)

MALFORMED = "Malformed JWT in client_assertion"

# Status, `error` and `error_description`, word for word from the real proxy. A value that depends on the
# time is a function, called when the test runs: the matrix is built when the tests are collected, minutes
# before the last of them runs.
MATRIX: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("grant_type missing", {"grant_type": DROP}, 400, "invalid_request", "grant_type is missing"),
    ("grant_type empty", {"grant_type": ""}, 400, "invalid_request", "grant_type is missing"),
    (
        "grant_type unsupported",
        {"grant_type": "invalid"},
        400,
        "unsupported_grant_type",
        "grant_type is invalid",
    ),
    (
        "token exchange without subject_token_type",
        {"grant_type": TOKEN_EXCHANGE},
        400,
        "invalid_request",
        f"missing or invalid subject_token_type - must be '{ID_TOKEN}'",
    ),
    (
        "token exchange with a wrong subject_token_type",
        {"grant_type": TOKEN_EXCHANGE, "subject_token_type": "urn:x"},
        400,
        "invalid_request",
        f"missing or invalid subject_token_type - must be '{ID_TOKEN}'",
    ),
    (
        "id_token subject_token_type with a client_credentials grant",
        {"subject_token_type": ID_TOKEN},
        400,
        "invalid_request",
        "grant_type is invalid",
    ),
    *(
        (
            f"client_assertion_type {label}",
            {"client_assertion_type": value},
            400,
            "invalid_request",
            f"Missing or invalid client_assertion_type - must be '{JWT_BEARER}'",
        )
        for label, value in (("missing", DROP), ("wrong", "urn:x"), ("empty", ""))
    ),
    (
        "client_assertion missing",
        {"client_assertion": DROP},
        400,
        "invalid_request",
        "Missing client_assertion",
    ),
    ("client_assertion empty", {"client_assertion": ""}, 400, "invalid_request", "Missing client_assertion"),
    *(
        (f"client_assertion {value!r}", {"client_assertion": value}, 400, "invalid_request", MALFORMED)
        for value in ("invalid", "a.b.c", "e30.e30", "e30.W10.", "bnVsbA.e30.")
    ),
    *(
        (
            f"alg {alg}",
            {"client_assertion": lambda alg=alg: assertion({"alg": alg})},
            400,
            "invalid_request",
            "Invalid 'alg' header in client_assertion JWT - unsupported JWT algorithm - must be 'RS512'",
        )
        for alg in ("RS256", "RS384", "PS512", "HS512", "none", DROP)
    ),
    (
        "exp in the past",
        {"client_assertion": lambda: assertion(exp=int(time.time()) - 5)},
        400,
        "invalid_request",
        "Invalid 'exp' claim in client_assertion JWT - JWT has expired",
    ),
    (
        "exp a numeric string in the past",
        {"client_assertion": lambda: assertion(exp="1000")},
        400,
        "invalid_request",
        "Invalid 'exp' claim in client_assertion JWT - JWT has expired",
    ),
    (
        "kid missing",
        {"client_assertion": lambda: assertion({"kid": DROP})},
        400,
        "invalid_request",
        "Missing 'kid' header in client_assertion JWT",
    ),
    (
        "kid empty",
        {"client_assertion": lambda: assertion({"kid": ""})},
        400,
        "invalid_request",
        "Missing 'kid' header in client_assertion JWT",
    ),
    *(
        (
            f"typ {typ!r}",
            {"client_assertion": lambda typ=typ: assertion({"typ": typ})},
            400,
            "invalid_request",
            "Invalid 'typ' header in client_assertion JWT - must be 'JWT'",
        )
        for typ in (DROP, "JWS", "at+jwt", 1)
    ),
    (
        "exp missing",
        {"client_assertion": lambda: assertion(exp=DROP)},
        400,
        "invalid_request",
        "Missing 'exp' claim in client_assertion JWT",
    ),
    (
        "exp a string in the future",
        {"client_assertion": lambda: assertion(exp=str(int(time.time()) + 60))},
        400,
        "invalid_request",
        "Invalid 'exp' claim in client_assertion JWT - must be an integer",
    ),
    *(
        (
            f"iss/sub {label}",
            {"client_assertion": lambda claims=claims: assertion(**claims)},
            400,
            "invalid_request",
            "Missing or non-matching 'iss'/'sub' claims in client_assertion JWT",
        )
        for label, claims in (
            ("iss missing", {"iss": DROP}),
            ("sub missing", {"sub": DROP}),
            ("differ", {"iss": "other"}),
            ("both empty", {"iss": "", "sub": ""}),
        )
    ),
    (
        "jti missing",
        {"client_assertion": lambda: assertion(jti=DROP)},
        400,
        "invalid_request",
        "Missing 'jti' claim in client_assertion JWT",
    ),
    (
        "jti a number",
        {"client_assertion": lambda: assertion(jti=123)},
        400,
        "invalid_request",
        "Invalid 'jti' claim in client_assertion JWT - must be a unique string value such as a GUID",
    ),
    (
        "exp 6 minutes ahead",
        {"client_assertion": lambda: assertion(exp=int(time.time()) + 360)},
        400,
        "invalid_request",
        "Invalid 'exp' claim in client_assertion JWT - more than 5 minutes in future",
    ),
]


def error_body(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert response.headers["content-type"] == "application/json"
    assert set(body) == {"error", "error_description", "message_id"}
    assert body["message_id"].startswith("rrt-")
    return body


@pytest.mark.parametrize(
    ("changes", "status", "error", "description"), [case[1:] for case in MATRIX], ids=[c[0] for c in MATRIX]
)
async def test_error_matrix(
    client: httpx.AsyncClient, changes: dict[str, Any], status: int, error: str, description: str
) -> None:
    changes = {name: value() if callable(value) else value for name, value in changes.items()}
    response = await client.post("/oauth2/token", data=cc_form(**changes))
    assert response.status_code == status
    body = error_body(response)
    assert (body["error"], body["error_description"]) == (error, description)


async def test_client_credentials_success_has_the_real_fields_and_types(client: httpx.AsyncClient) -> None:
    before = int(time.time() * 1000)
    response = await client.post("/oauth2/token", data=cc_form(client_id="ignored"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["access_token", "expires_in", "token_type", "issued_at"]
    assert all(isinstance(value, str) for value in body.values())
    assert body["expires_in"] == "599"
    assert body["token_type"] == "Bearer"
    assert before <= int(body["issued_at"]) <= int(time.time() * 1000)
    assert len(body["access_token"]) == 28
    assert "." not in body["access_token"]  # opaque, not a JWT


@pytest.mark.parametrize(
    ("header", "claims"),
    [
        ({"typ": "jwt"}, {}),  # typ is compared without regard to case
        ({}, {"exp": lambda: int(time.time()) + 300}),
        ({}, {"exp": lambda: time.time() + 60.5}),  # a JSON number, not necessarily an integer
        ({}, {"aud": "https://anything.example/oauth2/token", "iat": 0, "nbf": 0}),  # no key: aud not checked
    ],
)
async def test_structural_accepts(
    client: httpx.AsyncClient, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    claims = {name: value() if callable(value) else value for name, value in claims.items()}
    response = await client.post("/oauth2/token", data=cc_form(client_assertion=assertion(header, **claims)))
    assert response.status_code == 200, response.text


async def test_a_reused_jti_is_refused_per_api_key(client: httpx.AsyncClient) -> None:
    jwt = assertion(jti="same")
    assert (await client.post("/oauth2/token", data=cc_form(client_assertion=jwt))).status_code == 200
    again = await client.post("/oauth2/token", data=cc_form(client_assertion=jwt))
    assert again.status_code == 400
    assert error_body(again)["error_description"] == "Non-unique 'jti' claim in client_assertion JWT"
    other_app = assertion(jti="same", iss="other-app", sub="other-app")
    assert (await client.post("/oauth2/token", data=cc_form(client_assertion=other_app))).status_code == 200


async def test_the_token_and_jti_stores_are_reported_in_the_metrics(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await client.post("/oauth2/token", data=cc_form())).status_code == 200
    text = (await client.get("/_simulator/metrics")).text
    samples = {
        (sample.name, sample.labels.get("store")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("plugin") == "apim_oauth"
    }
    assert samples[("simulator_store_entries", "tokens")] == 3
    assert samples[("simulator_store_entries", "jti")] == 3
    assert 3 * 28 < samples[("simulator_store_bytes", "tokens")] < 3 * 1000


async def test_exp_too_far_ahead_does_not_use_up_the_jti(client: httpx.AsyncClient) -> None:
    # The "too far ahead" check precedes recording: fixing exp and resending the same jti succeeds.
    far = assertion(jti="j1", exp=int(time.time()) + 400)
    assert (await client.post("/oauth2/token", data=cc_form(client_assertion=far))).status_code == 400
    near = assertion(jti="j1")
    assert (await client.post("/oauth2/token", data=cc_form(client_assertion=near))).status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
async def test_other_methods_get_405_with_allow(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/oauth2/token")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == "text/plain"
    assert response.content == b""


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "application/json"},
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded-not"},
        {"content-type": "multipart/form-data; boundary=x"},
    ],
)
async def test_a_non_form_content_type_gets_415(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post("/oauth2/token", content=b"grant_type=client_credentials", headers=headers)
    assert response.status_code == 415
    body = error_body(response)
    assert body["error"] == "invalid_request"
    assert body["error_description"] == "Content-Type header must be application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    "path", ["/oauth2", "/oauth2/", "/oauth2/authorize", "/oauth2/token/extra", "/oauth2/a/b"]
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_unknown_paths_under_oauth2_get_the_real_404(
    client: httpx.AsyncClient, path: str, method: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 404
    body = error_body(response)
    assert (body["error"], body["error_description"]) == ("invalid_request", "Not Found")


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00garbage" * 1000,
        b"&" * 1_000_000,
        b"x" * 1_000_000,
        bytes(range(256)) * 4000,
        b"grant_type=client_credentials&client_assertion_type="
        + JWT_BEARER.encode()
        + b"&client_assertion="
        + b"A" * 1_000_000,
        b"grant_type=%zz&client_assertion=%ff%fe",
    ],
    ids=["binary", "ampersands-1MB", "letters-1MB", "all-bytes-1MB", "huge-assertion", "bad-escapes"],
)
async def test_garbage_and_1mb_bodies_get_a_4xx_in_the_endpoint_shape(
    client: httpx.AsyncClient, content: bytes
) -> None:
    response = await client.post("/oauth2/token", content=content, headers=FORM)
    assert 400 <= response.status_code < 500
    error_body(response)


async def test_a_body_over_the_limit_gets_the_catch_all_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth2/token", content=b"a" * (2 << 20), headers=FORM)
    assert response.status_code == 413
    body = error_body(response)
    assert body["error"] == "unknown_error"
    assert body["error_description"].startswith("An unknown error occurred processing this request.")


@pytest.mark.parametrize(
    ("header", "claims"),
    [
        ({"kid": 5, "typ": "JWT"}, {"exp": [1]}),
        ({}, {"iss": ["a"], "sub": ["a"]}),
        ({}, {"iss": {"a": 1}, "sub": {"a": 1}}),
        ({}, {"exp": 1e308}),
        ({}, {"exp": True}),
        ({}, {"exp": None}),
        ({}, {"jti": ""}),
        ({"typ": None}, {}),
    ],
)
async def test_odd_json_values_never_yield_500(
    client: httpx.AsyncClient, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    response = await client.post("/oauth2/token", data=cc_form(client_assertion=assertion(header, **claims)))
    assert response.status_code < 500


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded;charset=UTF-8", "Application/X-WWW-Form-Urlencoded ; charset=utf-8"],
)
async def test_a_charset_parameter_is_accepted(client: httpx.AsyncClient, content_type: str) -> None:
    form = "&".join(f"{name}={value}" for name, value in cc_form().items())
    response = await client.post("/oauth2/token", content=form, headers={"content-type": content_type})
    assert response.status_code == 200, response.text


async def test_message_ids_differ(client: httpx.AsyncClient) -> None:
    first = await client.post("/oauth2/token", data=cc_form(grant_type=DROP))
    second = await client.post("/oauth2/token", data=cc_form(grant_type=DROP))
    assert first.json()["message_id"] != second.json()["message_id"]


async def test_a_shorter_lifetime_can_be_requested_but_not_a_longer_one(client: httpx.AsyncClient) -> None:
    short = await client.post("/oauth2/token", data=cc_form(_access_token_expiry_ms="500000"))
    assert short.json()["expires_in"] == "499"
    long = await client.post("/oauth2/token", data=cc_form(_access_token_expiry_ms="1000000"))
    assert long.json()["expires_in"] == "599"


async def test_off_accepts_any_post(make_client: MakeClient) -> None:
    client = await make_client(VALIDATION="off")
    for request in (
        client.post("/oauth2/token"),
        client.post("/oauth2/token", content=b"\x00garbage", headers={"content-type": "application/json"}),
        client.post("/oauth2/token", data={"grant_type": "nonsense"}),
        client.post("/oauth2/token", data=cc_form(client_assertion=assertion(exp=0))),
    ):
        response = await request
        assert response.status_code == 200
        assert response.json()["token_type"] == "Bearer"
    exchange = await client.post("/oauth2/token", data={"subject_token_type": ID_TOKEN})
    assert exchange.json()["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert (await client.get("/oauth2/token")).status_code == 405


async def test_rate_limit_answers_429_with_the_platform_quota_body(make_client: MakeClient) -> None:
    client = await make_client(RATE_LIMIT_PER_MINUTE="2")
    for _ in range(2):
        assert (await client.post("/oauth2/token", data=cc_form())).status_code == 200
    response = await client.post("/oauth2/token", data=cc_form())
    assert response.status_code == 429
    body = orjson.loads(response.content)
    assert set(body) == QUOTA_BODY
    assert body["message"] == (
        f"Your application, {API_KEY}, has exceeded its quota of 2 requests every 1 minute(s) "
        "and is being rate limited."
    )
    assert (body["scope"], body["policy"], body["limit"], body["interval"], body["timeunit"]) == (
        "application",
        "quota",
        2,
        1,
        "minute",
    )
    assert 0 < body["ratelimiting_expiry_time_ms"] - time.time() * 1000 <= 60_000
    other = assertion(iss="other-app", sub="other-app")
    assert (await client.post("/oauth2/token", data=cc_form(client_assertion=other))).status_code == 200
