"""``POST /oauth2/token`` fuzzed in process: form fields, JWT segments, headers and claims, in every mode.

The oracle is the fake's docs page, docs/apim-oauth.md: every answer is a 200 token of the grant's documented
shape, the documented quota body (429), or one of the rows of that page's "Errors" table (status, ``error``
and ``error_description`` word for word, ``message_id`` as documented), parsed from the page itself so the two
cannot drift apart. Never a 5xx. Bounded: 200 examples per test and mode, no example database.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plugins.apim_oauth
from simulator.testing import SimulatorClient
from tests.plugins.apim_oauth.apim_support import (
    API_KEY,
    CLIENT_CREDENTIALS_BODY,
    DROP,
    EXCHANGE_BODY,
    ID_TOKEN,
    JWT_BEARER,
    KID,
    NHS_LOGIN,
    QUOTA_BODY,
    TOKEN_EXCHANGE,
    TOKEN_URL,
    assertion,
    cc_form,
    exchange_form,
    id_token,
    jwks,
    sign,
)

pytestmark = pytest.mark.reliability

PAGE = Path(__file__).resolve().parents[2] / "docs" / "apim-oauth.md"
FORM_TYPE = "application/x-www-form-urlencoded"
FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Documented = tuple[int, str, str]


def documented_errors() -> tuple[frozenset[Documented], frozenset[Documented]]:
    """docs/apim-oauth.md's error table: (exact rows, rows whose text is a prefix ("...")).

    A row may list several texts ("A / B", or "A, B, C"): with as many errors as texts they pair up in
    order, else each text goes with the row's one error.
    """
    text = PAGE.read_text(encoding="utf-8")
    section = text.index("\n## Errors")
    table = text[section : text.index("\n## ", section + 1)]
    exact: set[Documented] = set()
    prefixes: set[Documented] = set()
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) != 4 or not cells[1].isdigit():
            continue
        errors = re.findall(r"`([^`]+)`", cells[2])
        texts = re.findall(r"`([^`]+)`", cells[3])
        if not errors:
            continue  # the 429 row: the quota body has a shape of its own, checked apart
        pairs = (
            zip(errors, texts, strict=True)
            if len(errors) == len(texts) > 1
            else ((error, description) for error in errors for description in texts)
        )
        for error, description in pairs:
            if description.endswith("..."):
                prefixes.add((int(cells[1]), error, description.removesuffix("...").rstrip()))
            else:
                exact.add((int(cells[1]), error, description))
    return frozenset(exact), frozenset(prefixes)


EXACT, PREFIXES = documented_errors()


def test_the_readme_table_was_read() -> None:
    # 30-odd rows, some with several texts: a table that stopped parsing must not pass every answer by.
    assert len(EXACT) >= 34, sorted(EXACT)
    assert (400, "invalid_request", "Malformed JWT in client_assertion") in EXACT
    assert (401, "public_key error", "JWT signature verification failed") in EXACT
    assert (400, "invalid_request", "Missing 'aud' claim in subject_token JWT") in EXACT
    assert {status for status, _, _ in PREFIXES} == {413}


def documented(response: httpx.Response, *, exchange: bool | None) -> tuple[int, str, str] | None:
    """Assert the answer is documented; the error's (status, error, description), or None for 200/429.

    ``exchange``: which token body a 200 must have (None: either).
    """
    status = response.status_code
    assert status < 500, response.text
    body = response.json()
    if status == 200:
        expected = {
            False: [CLIENT_CREDENTIALS_BODY],
            True: [EXCHANGE_BODY],
            None: [CLIENT_CREDENTIALS_BODY, EXCHANGE_BODY],
        }
        assert list(body) in expected[exchange], body
        assert all(isinstance(value, str) for value in body.values()), body
        assert body["token_type"] == "Bearer"
        assert len(body["access_token"]) == 28
        assert body["expires_in"].isdigit(), body
        assert int(body["expires_in"]) <= 599, body
        return None
    if status == 429:
        assert set(body) == QUOTA_BODY, body
        assert (body["scope"], body["policy"], body["timeunit"]) == ("application", "quota", "minute")
        assert body["message_id"].startswith("rrt-")
        return None
    assert response.headers["content-type"] == "application/json"
    assert set(body) == {"error", "error_description", "message_id"}, body
    assert isinstance(body["message_id"], str), body
    assert body["message_id"].startswith("rrt-"), body
    answer = (status, body["error"], body["error_description"])
    assert answer in EXACT or any(
        answer[:2] == (s, e) and answer[2].startswith(text) for s, e, text in PREFIXES
    ), answer
    return answer


# -- the simulators under test, one per mode, shared by every example ------------------------------------

STRICT = {
    "APIM_VALIDATION": "strict",
    "APIM_API_KEYS": f"other-app, {API_KEY}",
    "APIM_JWKS": json.dumps(jwks("app")),
    "APIM_TOKEN_URL": TOKEN_URL,
}
MODES: dict[str, dict[str, str]] = {
    "structural": {},
    "quota": {"APIM_RATE_LIMIT_PER_MINUTE": "3"},
    "off": {"APIM_VALIDATION": "off"},
    # Strict, every check armed: API keys, the app's key set, aud, ID-token issuers and their keys.
    "strict": STRICT
    | {
        "APIM_ID_TOKEN_ISSUERS": NHS_LOGIN,
        "APIM_ID_TOKEN_JWKS": json.dumps(jwks("nhs-login", kid="nhs-login-1")),
    },
    # Strict without a key set (every app "has no public key") nor ID-token checks (any issuer, unsigned).
    "strict_bare": {"APIM_VALIDATION": "strict", "APIM_API_KEYS": API_KEY},
    # Strict, ID tokens from any issuer, their signatures unchecked.
    "strict_open": STRICT,
}


@pytest.fixture(scope="module")
def simulators() -> Iterator[dict[str, SimulatorClient]]:
    made: dict[str, SimulatorClient] = {}
    for mode, env in MODES.items():
        made[mode] = SimulatorClient({"apim_oauth": plugins.apim_oauth}, env=env, base_url="http://t")
    yield made
    for simulator in made.values():
        simulator.close()


def post(simulator: SimulatorClient, form: dict[str, str]) -> httpx.Response:
    return simulator.post("/oauth2/token", data=form)


# -- strategies ---------------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def now_plus(low: int, high: int) -> st.SearchStrategy[int]:
    # Drawn just before the request is sent: "in the past" and "too far ahead" mean what they say.
    return st.integers(low, high).map(lambda delta: int(time.time()) + delta)


NUMERIC_STRINGS = st.sampled_from(
    ["1000", "\u0661\u0660\u0660\u0660", "1e3", " 12 ", "-0", ".5", "0x10", "²", "9" * 400]
)
APP = "iss=sub"
EXP = now_plus(-400, 400) | now_plus(-400, 400).map(str) | NUMERIC_STRINGS | st.floats(0, 4e9)


def field(*interesting: Any, extra: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Any]:
    """A header or claim value: one a real client or the checks care about, or any JSON value."""
    options = JSON
    if interesting:
        options = st.sampled_from(interesting) | options
    return options | extra if extra is not None else options


def changes(
    fields: dict[str, st.SearchStrategy[Any]], max_size: int = 3
) -> st.SearchStrategy[dict[str, Any]]:
    """A few of these fields changed (or dropped), the rest left valid, so most examples reach the later
    checks (the key, quota, replay, signature and aud) rather than all failing the first."""
    pair = st.one_of([st.tuples(st.just(name), values | st.just(DROP)) for name, values in fields.items()])
    return st.lists(pair, max_size=max_size).map(dict)


ASSERTION_HEADER = changes(
    {
        "alg": field("RS512", "RS256", "rs512", "none", "HS512", ""),
        "typ": field("JWT", "jwt", "JWS", "at+jwt", ""),
        "kid": field(KID, "unknown-kid", "", "nhs-login-1"),
        "crit": field(["b64"], [], ["exp"]),
        "b64": field(False, True),
        "jku": field("https://evil.example/jwks.json"),
    }
)
ASSERTION_CLAIMS = changes(
    {
        "iss": field(API_KEY, "other-app", "unknown-app", ""),
        "sub": field(API_KEY, "other-app", "unknown-app", ""),
        "aud": field(TOKEN_URL, [TOKEN_URL], "http://elsewhere/oauth2/token", ""),
        "jti": field("same", "", extra=st.uuids().map(str)),
        "exp": field(extra=EXP),
        "iat": field(extra=now_plus(-400, 400)),
        "nbf": field(extra=now_plus(-400, 400)),
        # Not a claim: the same value in iss and sub (arrays and objects too), the one way past their check.
        APP: field(API_KEY, "other-app", "unknown-app", 5, True, 0, ["a"], {"a": 1}),
    }
)
EXTRA = st.dictionaries(st.text(min_size=1, max_size=6), JSON, max_size=2)
LIFETIME = (
    st.none()
    | st.text(max_size=8)
    | st.from_regex(r"\A[0-9]{1,8}\Z")
    | st.sampled_from(
        [
            "\u00b2",
            "\u0663",
            "\uff11\uff12\uff13",
            "1" * 4301,
            "0" * 5000 + "5000",
            "600000",
            "599999",
            " 5",
            "-5",
        ]
    )
)


def merged(base: dict[str, Any], changes: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (extra | base | changes).items() if v is not DROP}


def client_assertion(header: dict[str, Any], claims: dict[str, Any], extra: dict[str, Any]) -> str:
    base_header = {"alg": "RS512", "typ": "JWT", "kid": KID}
    base_claims: dict[str, Any] = {"iss": API_KEY, "sub": API_KEY, "aud": TOKEN_URL, "jti": str(uuid.uuid4())}
    base_claims["exp"] = int(time.time()) + 60
    if APP in claims:
        app = claims[APP]
        claims = {k: v for k, v in claims.items() if k != APP} | {"iss": app, "sub": app}
    # Always signed with the app's registered key: in strict mode a changed header or claim is what fails.
    return sign(merged(base_header, header, {}), merged(base_claims, claims, extra), "app")


# -- the tests ----------------------------------------------------------------------------------------

ALG = (
    400,
    "invalid_request",
    "Invalid 'alg' header in client_assertion JWT - unsupported JWT algorithm - must be 'RS512'",
)


@pytest.mark.parametrize("mode", ["structural", "quota", "strict", "strict_bare"])
@FUZZ
@given(header=ASSERTION_HEADER, claims=ASSERTION_CLAIMS, extra=EXTRA, lifetime=LIFETIME)
def test_client_assertion_headers_and_claims(
    simulators: dict[str, SimulatorClient],
    mode: str,
    header: dict[str, Any],
    claims: dict[str, Any],
    extra: dict[str, Any],
    lifetime: str | None,
) -> None:
    jwt = client_assertion(header, claims, extra)
    changes = {} if lifetime is None else {"_access_token_expiry_ms": lifetime}
    answer = documented(post(simulators[mode], cc_form(client_assertion=jwt, **changes)), exchange=False)
    if header.get("alg", "RS512") != "RS512":
        assert answer == ALG  # the first of the assertion's checks, in every mode


ID_HEADER = changes(
    {
        "alg": field("RS512", "RS256", "none", ""),
        "typ": field("JWT", "jwt", "JWS", ""),
        "kid": field("nhs-login-1", "unknown-kid", ""),
        "crit": field(["b64"], []),
        "b64": field(False),
    }
)
ID_CLAIMS = changes(
    {
        "iss": field(NHS_LOGIN, "https://evil.example", ""),
        "sub": field("49f470a1-cc52-49b7-beba-0f9cec937c46", ""),
        "aud": field("vaccinations-app", ["vaccinations-app"], ""),
        "exp": field(extra=EXP),
        "iat": field(extra=now_plus(-400, 400)),
        "jti": field("same", ""),
        "nhs_number": field("9686368973"),
    }
)
ISS_SUB = (400, "invalid_request", "Missing or non-matching 'iss'/'sub' claims in client_assertion JWT")
SIGNATURE = (401, "public_key error", "JWT signature verification failed")


@pytest.mark.parametrize("mode", ["structural", "strict", "strict_open"])
@FUZZ
@given(header=ID_HEADER, claims=ID_CLAIMS, extra=EXTRA)
def test_token_exchange_id_token_headers_and_claims(
    simulators: dict[str, SimulatorClient],
    mode: str,
    header: dict[str, Any],
    claims: dict[str, Any],
    extra: dict[str, Any],
) -> None:
    now = int(time.time())
    base_header = {"alg": "RS512", "typ": "JWT", "kid": "nhs-login-1"}
    base_claims = {"iss": NHS_LOGIN, "sub": "s", "aud": "vaccinations-app", "iat": now, "exp": now + 3600}
    token = sign(merged(base_header, header, {}), merged(base_claims, claims, extra), "nhs-login")
    answer = documented(post(simulators[mode], exchange_form(subject_token=token)), exchange=True)
    # The client assertion is valid: whatever fails is the ID token's (or, strict, its issuer or signature).
    assert answer is None or "subject_token" in answer[2] or answer in (ISS_SUB, SIGNATURE), answer


TEXT = st.text(max_size=40)
FORM_FIELDS = changes(
    {
        "grant_type": st.sampled_from(["client_credentials", TOKEN_EXCHANGE, "authorization_code", ""])
        | TEXT,
        "client_assertion_type": st.sampled_from([JWT_BEARER, JWT_BEARER.upper(), ""]) | TEXT,
        "client_assertion": st.builds(assertion)
        | st.sampled_from(["a.b.c", "e30.e30.", "e30.W10.", "bnVsbA.e30.", "..", ""])
        | TEXT,
        "subject_token_type": st.sampled_from([ID_TOKEN, "urn:x", ""]) | TEXT,
        "subject_token": st.builds(id_token) | st.sampled_from(["a.b.c", "e30.e30.", ""]) | TEXT,
        "_access_token_expiry_ms": LIFETIME.filter(lambda value: value is not None),
        "client_id": TEXT,
        "scope": TEXT,
    }
)


@pytest.mark.parametrize("mode", ["structural", "strict", "off"])
@FUZZ
@given(
    exchange=st.booleans(),
    form=FORM_FIELDS,
    extra=st.dictionaries(st.text(min_size=1, max_size=8), TEXT, max_size=3),
)
def test_any_form(
    simulators: dict[str, SimulatorClient],
    mode: str,
    exchange: bool,
    form: dict[str, Any],
    extra: dict[str, str],
) -> None:
    fields = merged(exchange_form() if exchange else cc_form(), form, extra)
    # Which body a token has: the flow is chosen by subject_token_type (with validation off too).
    documented(post(simulators[mode], fields), exchange=fields.get("subject_token_type") == ID_TOKEN)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


SEGMENT = (
    st.binary(max_size=64).map(_b64)
    | JSON.map(lambda value: _b64(json.dumps(value).encode()))
    | st.text(max_size=24)
    | st.sampled_from(["e30", "W10", "bnVsbA", "eyJhbGciOiJSUzUxMiJ9", "", "=", "e30="])
)


@pytest.mark.parametrize("mode", ["structural", "strict"])
@FUZZ
@given(segments=st.lists(SEGMENT, min_size=1, max_size=4), subject=st.booleans())
def test_any_jwt_segments(
    simulators: dict[str, SimulatorClient], mode: str, segments: list[str], subject: bool
) -> None:
    token = ".".join(segments)
    form = exchange_form(subject_token=token) if subject else cc_form(client_assertion=token)
    documented(post(simulators[mode], form), exchange=subject)


CONTENT_TYPES = st.sampled_from(
    [FORM_TYPE, f"{FORM_TYPE}; charset=UTF-8", "application/json", "text/plain", ""]
)


@FUZZ
@given(
    content=st.binary(max_size=512) | TEXT.map(str.encode),
    content_type=st.none() | CONTENT_TYPES,
)
def test_any_body(simulators: dict[str, SimulatorClient], content: bytes, content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    documented(
        simulators["structural"].post("/oauth2/token", content=content, headers=headers), exchange=None
    )


def expected_expires_in(value: str | None) -> str:
    """docs/apim-oauth.md: "An optional ``_access_token_expiry_ms`` below 600000 shortens the lifetime
    (``expires_in`` = its whole seconds minus one); larger values are ignored" (and values that are not
    numbers)."""
    if value is None or not re.fullmatch(r"[0-9]+", value):
        return "599"
    significant = value.lstrip("0") or "0"
    if len(significant) > 6 or int(significant) >= 600_000:
        return "599"
    return str(max(int(significant) // 1000 - 1, 0))


@pytest.mark.parametrize("mode", ["structural", "off"])
@FUZZ
@given(lifetime=LIFETIME)
def test_any_lifetime(simulators: dict[str, SimulatorClient], mode: str, lifetime: str | None) -> None:
    changes = {} if lifetime is None else {"_access_token_expiry_ms": lifetime}
    response = post(simulators[mode], cc_form(**changes))
    documented(response, exchange=False)
    assert response.json()["expires_in"] == expected_expires_in(lifetime)
