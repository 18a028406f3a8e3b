"""Hostile input, in process: what the stores keep for huge client-chosen values, and odd values never a 500.

Every refusal is one of the README's errors (its "Errors" table), checked word for word.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from plugins.apim_oauth import validation as v
from plugins.apim_oauth.ratelimit import RateLimiter
from plugins.apim_oauth.routes import JTI_MAX_BYTES
from simulator.stores import ENTRY_OVERHEAD_BYTES
from tests.plugins.apim_oauth.apim_support import (
    API_KEY,
    NHS_LOGIN,
    TOKEN_URL,
    MakeClient,
    assertion,
    cc_form,
    exchange_form,
    id_token,
    jwks,
)

ISS_SUB = "Missing or non-matching 'iss'/'sub' claims in client_assertion JWT"
REUSED = "Non-unique 'jti' claim in client_assertion JWT"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_jwt(header: bytes, claims: bytes) -> str:
    """A JWT from JSON text as given (json.dumps cannot nest 1,000 deep); the signature is not checked."""
    return f"{b64(header)}.{b64(claims)}.c2ln"


def nested(depth: int) -> bytes:
    return b"[" * depth + b'"app"' + b"]" * depth


def problem(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"error", "error_description", "message_id"}, body
    return response.status_code, body["error"], body["error_description"]


async def post(client: httpx.AsyncClient, form: dict[str, str]) -> httpx.Response:
    response = await client.post("/oauth2/token", data=form)
    assert response.status_code < 500, response.text
    return response


def jti_store_bytes(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "simulator_store_bytes" and sample.labels.get("store") == "jti":
                return sample.value
    raise AssertionError("no jti store in the metrics")


# -- _access_token_expiry_ms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expires_in"),
    [
        ("²", "599"),  # str.isdigit() says yes, int() raises
        ("٣", "599"),  # an Arabic-Indic 3: int() reads it, JavaScript's parseInt does not
        ("1" * 4301, "599"),  # past int()'s 4,300 digits
        ("9" * 100_000, "599"),
        ("0" * 5000 + "5000", "4"),  # leading zeros: still 5,000 ms
        ("000", "0"),
        ("500000", "499"),
        ("599999", "598"),
        ("600000", "599"),  # not shorter: the default
        (" 500000", "599"),
        ("-5", "599"),
        ("5e5", "599"),
        ("", "599"),
    ],
)
async def test_odd_lifetimes_are_ignored_never_a_500(
    client: httpx.AsyncClient, value: str, expires_in: str
) -> None:
    response = await post(client, cc_form(_access_token_expiry_ms=value))
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == expires_in


@pytest.mark.parametrize("value", ["²", "1" * 4301])
async def test_odd_lifetimes_are_ignored_with_validation_off(make_client: MakeClient, value: str) -> None:
    client = await make_client(VALIDATION="off")
    response = await post(client, {"_access_token_expiry_ms": value})
    assert response.json()["expires_in"] == "599"


def test_shorter_lifetime_reads_ascii_digits_only() -> None:
    assert v.shorter_lifetime_ms("1234", 600_000) == 1234
    assert v.shorter_lifetime_ms("\uff11\uff12\uff13", 600_000) == 600_000  # fullwidth 123
    assert v.shorter_lifetime_ms(None, 600_000) == 600_000
    assert v.shorter_lifetime_ms("0" * 10_000, 600_000) == 0


# -- iss/sub of odd types ------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 300, 1000])
async def test_nested_iss_and_sub_never_match(client: httpx.AsyncClient, depth: int) -> None:
    # JavaScript compares arrays by identity: two parsed apart never match. Comparing them by value here
    # recursed (RecursionError at 1,000 levels) and naming the app failed (orjson stops at 255): both 500s.
    claims = b'{"iss":%s,"sub":%s,"jti":"%s","exp":%d}' % (
        nested(depth),
        nested(depth),
        str(uuid.uuid4()).encode(),
        int(time.time()) + 60,
    )
    form = cc_form(client_assertion=raw_jwt(b'{"alg":"RS512","typ":"JWT","kid":"k"}', claims))
    assert problem(await post(client, form)) == (400, "invalid_request", ISS_SUB)


@pytest.mark.parametrize(
    ("iss", "sub", "accepted"),
    [
        (["a"], ["a"], False),
        ({"a": 1}, {"a": 1}, False),
        ({}, {}, False),
        (5, 5, True),
        (5, 5.0, True),
        (5, "5", False),
        (True, True, True),
        (True, 1, False),
        (1, True, False),
        (None, None, False),
        (0, 0, False),
    ],
)
async def test_iss_and_sub_match_as_javascript_compares_them(
    client: httpx.AsyncClient, iss: Any, sub: Any, accepted: bool
) -> None:
    response = await post(client, cc_form(client_assertion=assertion(iss=iss, sub=sub)))
    if accepted:
        assert response.status_code == 200, response.text
    else:
        assert problem(response) == (400, "invalid_request", ISS_SUB)


# -- strict token exchange: every ID-token header and claim of every JSON type ---------------------------

ODD_VALUES: list[Any] = [["a"], [], {"a": 1}, {}, 5, 0, 1.5, True, False, None, "", "x" * 10_000]


def strict_exchange(**env: str) -> dict[str, str]:
    return {
        "VALIDATION": "strict",
        "API_KEYS": API_KEY,
        "JWKS": json.dumps(jwks("app")),
        "TOKEN_URL": TOKEN_URL,
        "ID_TOKEN_JWKS": json.dumps(jwks("nhs-login", kid="nhs-login-1")),
    } | env


# What an odd value in each place may be answered with: the README's rows for that header or claim, or (for
# a value that passes the structural check) the key lookup or signature check, or a token.
KID_UNKNOWN = (401, "invalid_request", "Invalid 'kid' header in subject_token JWT - no matching public key")
SIGNATURE = (401, "public_key error", "JWT signature verification failed")
SUBJECT = {
    "kid": {(400, "invalid_request", "Missing 'kid' header in subject_token JWT"), KID_UNKNOWN},
    "typ": {(400, "invalid_request", "Invalid 'typ' header in subject_token JWT - must be 'JWT'")},
    "alg": {(400, "invalid_request", "Missing 'alg' header in subject_token JWT"), SIGNATURE},
    "exp": {
        (400, "invalid_request", "Missing 'exp' claim in subject_token JWT"),
        (400, "invalid_request", "Invalid 'exp' claim in subject_token JWT - must be an integer"),
        (400, "invalid_request", "Invalid 'exp' claim in subject_token JWT - JWT has expired"),
    },
    "iss": {
        (400, "invalid_request", "Missing 'iss' claim in subject_token JWT"),
        (400, "invalid_request", ISS_SUB),
    },
    "aud": {(400, "invalid_request", "Missing 'aud' claim in subject_token JWT")},
}


@pytest.mark.parametrize("issuers", ["", NHS_LOGIN], ids=["any-issuer", "issuers-set"])
@pytest.mark.parametrize(
    "name", ["kid", "typ", "alg", "crit", "exp", "iss", "aud", "sub", "iat", "jti", "nbf"]
)
async def test_strict_exchange_id_token_fields_of_any_type_get_a_documented_answer(
    make_client: MakeClient, name: str, issuers: str
) -> None:
    client = await make_client(**strict_exchange(ID_TOKEN_ISSUERS=issuers))
    # Header fields fail on their own row or at the key/signature check; unchecked claims get a token.
    allowed = SUBJECT.get(name, set()) | ({SIGNATURE} if name == "crit" else set())
    for value in ODD_VALUES:
        in_header = name in ("kid", "typ", "alg", "crit")
        token = id_token({name: value}) if in_header else id_token(**{name: value})
        response = await post(client, exchange_form(subject_token=token))
        if response.status_code != 200:
            assert problem(response) in allowed, (value, response.text)


@pytest.mark.parametrize("value", ODD_VALUES, ids=[repr(x)[:12] for x in ODD_VALUES])
async def test_strict_exchange_without_id_token_keys_takes_odd_issuers(
    make_client: MakeClient, value: Any
) -> None:
    # No APIM_ID_TOKEN_JWKS and no provider: an ID token's signature is not checked, so any truthy iss passes.
    client = await make_client(**strict_exchange(ID_TOKEN_JWKS=""))
    response = await post(client, exchange_form(subject_token=id_token(iss=value)))
    if v._falsy(value):
        assert problem(response) == (400, "invalid_request", "Missing 'iss' claim in subject_token JWT")
    else:
        assert response.status_code == 200, response.text


# -- what the stores keep ------------------------------------------------------------------------------


def test_a_long_header_is_decoded_but_not_cached() -> None:
    claims = b'{"exp":1}'
    big = b'{"alg":"RS512","kid":"%s"}' % (b"k" * 700_000)
    before = v.header_cache_bytes()
    decoded = v.decode(raw_jwt(big, claims))
    assert decoded is not None
    assert decoded[0]["alg"] == "RS512"
    assert b64(big) not in v._HEADERS
    assert v.header_cache_bytes() == before


def test_a_nested_header_is_not_cached() -> None:
    header = b'{"alg":"RS512","x":[{},{},{}]}'
    assert v.decode(raw_jwt(header, b"{}")) is not None
    assert b64(header) not in v._HEADERS


def test_a_real_header_is_decoded_once() -> None:
    token = assertion()
    first = v.decode(token)
    again = v.decode(assertion())
    assert first is not None
    assert again is not None
    assert first[0] is again[0]  # the cached dict: the fast path kept for real clients


def flat_header(index: int) -> str:
    """The largest flat header the cache takes (1,024 characters encoded), of small distinct fields."""
    fields = ['"alg":"RS512"']
    while True:
        field = f'"{index:06d}{len(fields):03d}":{len(fields)}'
        if len("{" + ",".join([*fields, field]) + "}") > v.HEADER_CACHE_MAX_CHARS * 3 // 4:
            return b64(("{" + ",".join(fields) + "}").encode())
        fields.append(field)


def test_the_header_cache_stays_within_its_byte_budget() -> None:
    # The largest headers it takes, all distinct: it empties itself before it would pass its budget.
    largest = 0
    for index in range(3 * v.HEADER_CACHE_MAX_ENTRIES):
        header = flat_header(index)
        assert len(header) <= v.HEADER_CACHE_MAX_CHARS
        assert v.decode(f"{header}.e30.c2ln") is not None
        assert header in v._HEADERS
        assert v.header_cache_bytes() <= v.HEADER_CACHE_MAX_BYTES
        largest = max(largest, v.header_cache_bytes())
    assert largest > v.HEADER_CACHE_MAX_BYTES * 3 // 4  # they were kept, up to the budget
    assert len(v._HEADERS) <= v.HEADER_CACHE_MAX_ENTRIES


async def test_a_700kb_jti_is_kept_as_a_fixed_size_digest(client: httpx.AsyncClient) -> None:
    before = jti_store_bytes((await client.get("/_simulator/metrics")).text)
    jwt = assertion(jti="j" * 700_000)
    assert (await post(client, cc_form(client_assertion=jwt))).status_code == 200
    kept = jti_store_bytes((await client.get("/_simulator/metrics")).text) - before
    assert kept == 81 + ENTRY_OVERHEAD_BYTES  # a 32-character key, whatever the jti
    assert problem(await post(client, cc_form(client_assertion=jwt)))[2] == REUSED
    # Still per app, and the digest tells a jti from one a character longer.
    other = assertion(jti="j" * 700_000, iss="other-app", sub="other-app")
    assert (await post(client, cc_form(client_assertion=other))).status_code == 200
    longer = assertion(jti="j" * 700_001)
    assert (await post(client, cc_form(client_assertion=longer))).status_code == 200


def test_replay_keys_do_not_collide_across_the_app_jti_boundary() -> None:
    assert v.key_digest("ab", "c") != v.key_digest("a", "bc")
    assert v.key_digest("a", "") != v.key_digest("", "a")
    assert len(v.key_digest("x" * 1_000_000, "y")) == v.KEY_DIGEST_BYTES
    assert JTI_MAX_BYTES >= 100_000 * (81 + ENTRY_OVERHEAD_BYTES)  # the default entries fit the budget


def test_quota_windows_are_keyed_by_digest_and_bounded_in_count() -> None:
    now = [1000.0]
    limiter = RateLimiter(1, clock=lambda: now[0], max_apps=3)
    huge = "a" * 700_000
    assert limiter.hit(huge) is None
    assert limiter.hit(huge) == 1_060_000  # the same window, found by its digest
    assert all(len(key) == v.KEY_DIGEST_BYTES for key in limiter._windows)
    for app in ("b", "c", "d"):
        assert limiter.hit(app) is None
    assert len(limiter) == 3  # the oldest window (huge's) went: its count starts again
    assert limiter.hit(huge) is None
    now[0] += 61
    assert limiter.hit("e") is None
    assert len(limiter) == 1  # every ended window swept as the new one came


async def test_huge_subs_under_a_quota_keep_little(make_client: MakeClient) -> None:
    client = await make_client(RATE_LIMIT_PER_MINUTE="1")
    sub = "s" * 300_000
    jwt = assertion(iss=sub, sub=sub)
    assert (await post(client, cc_form(client_assertion=jwt))).status_code == 200
    refused = await post(client, cc_form(client_assertion=assertion(iss=sub, sub=sub)))
    assert refused.status_code == 429
    assert orjson.loads(refused.content)["policy"] == "quota"
    assert problem(await post(client, cc_form(client_assertion=jwt)))[2] == REUSED


@pytest.mark.parametrize("header", [{"kid": ["k"]}, {"kid": {"k": 1}}, {"kid": 5}, {"kid": True}])
async def test_strict_client_assertion_kid_of_another_type_has_no_key(
    make_client: MakeClient, header: dict[str, Any]
) -> None:
    env = {"VALIDATION": "strict", "API_KEYS": API_KEY, "JWKS": json.dumps(jwks("app"))}
    client = await make_client(**env)
    response = await post(client, cc_form(client_assertion=assertion(header)))
    assert problem(response) == (
        401,
        "invalid_request",
        "Invalid 'kid' header in client_assertion JWT - no matching public key",
    )


async def test_an_expired_arabic_indic_exp_string_is_not_a_number(client: httpx.AsyncClient) -> None:
    # 1000 in Arabic-Indic digits: JavaScript's Number() makes it NaN, so neither "expired" nor a number.
    response = await post(client, cc_form(client_assertion=assertion(exp="\u0661\u0660\u0660\u0660")))
    assert problem(response) == (
        400,
        "invalid_request",
        "Invalid 'exp' claim in client_assertion JWT - must be an integer",
    )
