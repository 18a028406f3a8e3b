"""The real endpoint's errors, word for word, and the checks that need no registered key.

Texts, statuses and order come from the real proxy, NHSDigital/identity-service-api (its Apigee policies,
JavaScript checks and e2e tests); the README section lists them. Everything here is pure: no clock, cache
or I/O of its own.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Final

import orjson

from simulator import FORM_URLENCODED, Response

FORM: Final = FORM_URLENCODED
CLIENT_CREDENTIALS: Final = "client_credentials"
TOKEN_EXCHANGE: Final = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN: Final = "urn:ietf:params:oauth:token-type:id_token"
JWT_BEARER: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# "more than 5 minutes in future": the proxy allows 10 s on top of the documented 5 minutes.
MAX_EXP_AHEAD_SECONDS: Final = 310

Claims = dict[str, Any]

_JSON_HEADERS: Final = ((b"content-type", b"application/json"),)


class Problem:
    """One error the real endpoint returns; :meth:`response` adds the per-request ``message_id``."""

    __slots__ = ("_head", "description", "error", "status")

    def __init__(self, status: int, error: str, description: str) -> None:
        self.status = status
        self.error = error
        self.description = description
        # Everything up to the message id's value is fixed: built once, so a refusal costs one concatenation.
        whole = orjson.dumps({"error": error, "error_description": description, "message_id": ""})
        self._head = whole[:-2]

    def response(self, message_id: str) -> Response:
        body = self._head + message_id.encode() + b'"}'
        return Response(self.status, body, (*_JSON_HEADERS, (b"content-length", str(len(body)).encode())))

    def __repr__(self) -> str:
        return f"Problem({self.status}, {self.error!r}, {self.description!r})"


def _bad(description: str, status: int = 400) -> Problem:
    return Problem(status, "invalid_request", description)


CATCHALL_DESCRIPTION: Final = (
    "An unknown error occurred processing this request. Contact us for assistance diagnosing this issue: "
    "https://digital.nhs.uk/developer/help-and-support quoting Message ID"
)

# Flow selection and the form.
CONTENT_TYPE = Problem(
    415, "invalid_request", "Content-Type header must be application/x-www-form-urlencoded"
)
GRANT_MISSING = _bad("grant_type is missing")
GRANT_UNSUPPORTED = Problem(400, "unsupported_grant_type", "grant_type is invalid")
GRANT_NOT_EXCHANGE = _bad("grant_type is invalid")
SUBJECT_TOKEN_TYPE = _bad(f"missing or invalid subject_token_type - must be '{ID_TOKEN}'")
ASSERTION_TYPE = _bad(f"Missing or invalid client_assertion_type - must be '{JWT_BEARER}'")
ASSERTION_MISSING = _bad("Missing client_assertion")
ASSERTION_MALFORMED = _bad("Malformed JWT in client_assertion")
# The client assertion's header and claims, in the proxy's order.
ALG = _bad("Invalid 'alg' header in client_assertion JWT - unsupported JWT algorithm - must be 'RS512'")
EXPIRED = _bad("Invalid 'exp' claim in client_assertion JWT - JWT has expired")
KID_MISSING = _bad("Missing 'kid' header in client_assertion JWT")
TYP = _bad("Invalid 'typ' header in client_assertion JWT - must be 'JWT'")
EXP_MISSING = _bad("Missing 'exp' claim in client_assertion JWT")
EXP_NOT_NUMBER = _bad("Invalid 'exp' claim in client_assertion JWT - must be an integer")
ISS_SUB = _bad("Missing or non-matching 'iss'/'sub' claims in client_assertion JWT")
JTI_MISSING = _bad("Missing 'jti' claim in client_assertion JWT")
JTI_NOT_STRING = _bad(
    "Invalid 'jti' claim in client_assertion JWT - must be a unique string value such as a GUID"
)
JTI_REUSED = _bad("Non-unique 'jti' claim in client_assertion JWT")
EXP_TOO_FAR = _bad("Invalid 'exp' claim in client_assertion JWT - more than 5 minutes in future")
# Strict mode: the app, its keys and the signature.
UNKNOWN_API_KEY = _bad("Invalid 'iss'/'sub' claims in client_assertion JWT", 401)
NO_JWKS = Problem(
    403,
    "public_key error",
    "You need to register a public key to use this authentication method"
    " - please contact support to configure",
)
JWKS_UNREACHABLE = Problem(
    403, "public_key error", "The JWKS endpoint, for your client_assertion can't be reached"
)
KID_UNKNOWN = _bad("Invalid 'kid' header in client_assertion JWT - no matching public key", 401)
SIGNATURE = Problem(401, "public_key error", "JWT signature verification failed")
AUD = _bad("Missing or invalid 'aud' claim in client_assertion JWT", 401)
# Token exchange: the subject token (an NHS login / CIS2 ID token).
SUBJECT_MISSING = _bad("Missing subject_token")
SUBJECT_MALFORMED = _bad("Malformed JWT in subject_token")
SUBJECT_KID_MISSING = _bad("Missing 'kid' header in subject_token JWT")
SUBJECT_TYP = _bad("Invalid 'typ' header in subject_token JWT - must be 'JWT'")
SUBJECT_ALG_MISSING = _bad("Missing 'alg' header in subject_token JWT")
SUBJECT_EXP_MISSING = _bad("Missing 'exp' claim in subject_token JWT")
SUBJECT_EXP_NOT_NUMBER = _bad("Invalid 'exp' claim in subject_token JWT - must be an integer")
SUBJECT_EXPIRED = _bad("Invalid 'exp' claim in subject_token JWT - JWT has expired")
SUBJECT_ISS_MISSING = _bad("Missing 'iss' claim in subject_token JWT")
SUBJECT_AUD_MISSING = _bad("Missing 'aud' claim in subject_token JWT")
SUBJECT_KID_UNKNOWN = _bad("Invalid 'kid' header in subject_token JWT - no matching public key", 401)
# Elsewhere.
NOT_FOUND = _bad("Not Found", 404)
TOO_LARGE = Problem(413, "unknown_error", CATCHALL_DESCRIPTION)

METHOD_NOT_ALLOWED: Final = Response.build(
    b"", status=405, content_type="text/plain", headers={"Allow": "POST"}
)


def is_form(content_type: str | None) -> bool:
    """The media type is form-encoded; parameters such as ``charset`` are allowed.

    The proxy's condition reads like an exact comparison, but whether a charset fails there is unknown, and
    standard clients (Authlib, Spring, .NET) send ``;charset=UTF-8``: refusing them would fail clients the
    platform may well serve.
    """
    if content_type == FORM:
        return True
    return content_type is not None and content_type.partition(";")[0].strip().lower() == FORM


def decode(token: str) -> tuple[Claims, Claims] | None:
    """A compact JWS's header and claims, unverified (and shared: not to be mutated); None if not a JWS."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    # A client sends the same header on every request: decode each distinct one once.
    header = _HEADERS.get(parts[0])
    if header is None:
        header = _segment(parts[0])
        if header is not None:
            if len(_HEADERS) >= _MAX_HEADERS:
                _HEADERS.clear()
            _HEADERS[parts[0]] = header
    claims = _segment(parts[1])
    if header is None or claims is None:
        return None
    return header, claims


_HEADERS: dict[str, Claims] = {}
_MAX_HEADERS: Final = 1024


def _segment(part: str) -> Claims | None:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except ValueError:  # binascii.Error, orjson.JSONDecodeError and non-ASCII input all derive from it
        return None
    return value if isinstance(value, dict) else None


def assertion_problem(header: Claims, claims: Claims, now: float) -> Problem | None:
    """The proxy's checks 1-9 of the client assertion (reuse and "too far ahead" need the caller's cache)."""
    if header.get("alg") != "RS512":
        return ALG
    exp = claims.get("exp")
    # The proxy tests expiry before the type, the way JavaScript would: a past numeric *string* is "expired".
    when = _js_number(exp)
    if when is not None and now > when:
        return EXPIRED
    if _falsy(header.get("kid")):
        return KID_MISSING
    if not _is_jwt_typ(header.get("typ")):
        return TYP
    if _falsy(exp):
        return EXP_MISSING
    if not _is_number(exp):
        return EXP_NOT_NUMBER
    iss = claims.get("iss")
    if _falsy(iss) or iss != claims.get("sub"):
        return ISS_SUB
    jti = claims.get("jti")
    if _falsy(jti):
        return JTI_MISSING
    if not isinstance(jti, str):
        return JTI_NOT_STRING
    return None


def subject_token_problem(header: Claims, claims: Claims, now: float) -> Problem | None:
    """The structural checks of a token-exchange ``subject_token``, in the proxy's order."""
    if _falsy(header.get("kid")):
        return SUBJECT_KID_MISSING
    if not _is_jwt_typ(header.get("typ")):
        return SUBJECT_TYP
    if _falsy(header.get("alg")):
        return SUBJECT_ALG_MISSING
    exp: Any = claims.get("exp")
    if _falsy(exp):
        return SUBJECT_EXP_MISSING
    if not _is_number(exp):
        return SUBJECT_EXP_NOT_NUMBER
    if now > exp:
        return SUBJECT_EXPIRED
    if _falsy(claims.get("iss")):
        return SUBJECT_ISS_MISSING
    if _falsy(claims.get("aud")):
        return SUBJECT_AUD_MISSING
    return None


def audience_matches(aud: Any, expected: str) -> bool:
    """``aud`` equals the token URL, or (as Apigee's VerifyJWT allows) is a list holding it."""
    if isinstance(aud, str):
        return aud == expected
    return isinstance(aud, list) and expected in aud


def _falsy(value: Any) -> bool:
    """JavaScript's ``!value`` for JSON values: missing, null, false, 0 and "" (not [] or {})."""
    if value is None or value is False or value == "":
        return True
    return _is_number(value) and value == 0


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_jwt_typ(typ: Any) -> bool:
    return isinstance(typ, str) and typ.lower() == "jwt"


_NUMERIC = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")


def _js_number(value: Any) -> float | None:
    """JavaScript's ``Number(value)`` for numbers and numeric strings; None where it would be NaN/absent."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str) and _NUMERIC.fullmatch(value):
        return float(value)
    return None
