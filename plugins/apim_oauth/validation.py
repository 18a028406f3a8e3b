"""The real endpoint's errors, word for word, and the checks that need no registered key.

Texts, statuses and order come from the real proxy, NHSDigital/identity-service-api (its Apigee policies,
JavaScript checks and e2e tests); the README section lists them. Everything here is pure (no clock or I/O
of its own) but for one cache of decoded JWT headers, bounded in bytes (see ``HEADER_CACHE_MAX_BYTES``).
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
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
    encoded = parts[0]
    # A client sends the same header on every request: decode each distinct one once. Only a header the
    # size of a real one is looked up and kept (a long one is decoded every time, and not even hashed).
    cacheable = len(encoded) <= HEADER_CACHE_MAX_CHARS
    header = _HEADERS.get(encoded) if cacheable else None
    if header is None:
        header = _segment(encoded)
        if header is not None and cacheable:
            _remember(encoded, header)
    claims = _segment(parts[1])
    if header is None or claims is None:
        return None
    return header, claims


# The decoded-header cache. It is filled by unauthenticated requests, so it is bounded by what it keeps, not
# only by how many: a header is kept only when its encoded form is at most HEADER_CACHE_MAX_CHARS (a real
# client's is ~100) and it is flat (every value a string, number, boolean or null, as in every real JOSE
# header this endpoint reads), and the cache is emptied before the counted bytes would pass
# HEADER_CACHE_MAX_BYTES (each entry counted as sys.getsizeof of its key, its dict and every name and value).
# The most one request can make it keep is one entry per JWT (a client assertion and an ID token: two): a
# key of at most 1,024 characters and a flat dict decoded from at most 768 bytes of JSON, at most ~15 KB
# counted (measured with 122 two-character names); the whole cache at most 1 MiB counted.
HEADER_CACHE_MAX_CHARS: Final = 1024
HEADER_CACHE_MAX_ENTRIES: Final = 1024
HEADER_CACHE_MAX_BYTES: Final = 1 << 20
_HEADERS: dict[str, Claims] = {}
_header_bytes = 0
_FLAT: Final = (str, int, float, bool, type(None))


def header_cache_bytes() -> int:
    """What the cached headers are counted as weighing (keys, dicts, names and values), at most
    :data:`HEADER_CACHE_MAX_BYTES`."""
    return _header_bytes


def _remember(encoded: str, header: Claims) -> None:
    global _header_bytes
    size = sys.getsizeof(encoded) + sys.getsizeof(header)
    for name, value in header.items():
        if not isinstance(value, _FLAT):
            return  # nested: not a header a real client sends, and its size is costly to count
        size += sys.getsizeof(name) + sys.getsizeof(value)
    if len(_HEADERS) >= HEADER_CACHE_MAX_ENTRIES or _header_bytes + size > HEADER_CACHE_MAX_BYTES:
        # Emptied, not evicted one by one: a real deployment's few headers are back after a request each.
        _HEADERS.clear()
        _header_bytes = 0
    _HEADERS[encoded] = header
    _header_bytes += size


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
    # What every real client sends (an integer exp still ahead, string iss = sub and jti, a string kid and
    # typ JWT) passes every check below: seen at a glance, the common case costs a third of the walk.
    iss = claims.get("iss")
    jti = claims.get("jti")
    kid = header.get("kid")
    typ = header.get("typ")
    if (
        type(exp) is int
        and now <= exp
        and type(kid) is str
        and kid
        and type(typ) is str
        and typ.lower() == "jwt"
        and type(iss) is str
        and iss
        and iss == claims.get("sub")
        and type(jti) is str
        and jti
    ):
        return None
    # The proxy tests expiry before the type, the way JavaScript would: a past numeric *string* is "expired".
    when = _js_number(exp)
    if when is not None and now > when:
        return EXPIRED
    if _falsy(kid):
        return KID_MISSING
    if not _is_jwt_typ(typ):
        return TYP
    if _falsy(exp):
        return EXP_MISSING
    if not _is_number(exp):
        return EXP_NOT_NUMBER
    if _falsy(iss) or not _js_strictly_equal(iss, claims.get("sub")):
        return ISS_SUB
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


def _js_strictly_equal(a: Any, b: Any) -> bool:
    """JavaScript's ``a === b`` for two values parsed from JSON.

    Arrays and objects parsed apart are never the same object, so they never match (comparing them by value
    would also recurse as deep as the JSON nests: a RecursionError, a 500, at a thousand levels). Primitives
    compare by type and value: ``1 === 1.0``, but ``true !== 1``.
    """
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return False  # null (which _falsy refused first), arrays and objects


def app_name(sub: Any) -> str:
    """The app (API key) a client assertion names, as a string: ``sub`` itself, or a JSON number/boolean.

    Only called once :func:`assertion_problem` has passed, so ``sub`` equals ``iss`` and is a primitive.
    """
    return sub if isinstance(sub, str) else orjson.dumps(sub).decode()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_jwt_typ(typ: Any) -> bool:
    return isinstance(typ, str) and typ.lower() == "jwt"


# ASCII digits only, as JavaScript's Number() reads them: \d would take "٣" (which float() then reads as 3).
_NUMERIC = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")


def _js_number(value: Any) -> float | None:
    """JavaScript's ``Number(value)`` for numbers and numeric strings; None where it would be NaN/absent."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str) and _NUMERIC.fullmatch(value):
        return float(value)
    return None


def shorter_lifetime_ms(value: str | None, default_ms: int) -> int:
    """The access token's lifetime given ``_access_token_expiry_ms``: the value when it is a whole number
    of milliseconds below ``default_ms`` (a client may shorten the lifetime, never lengthen it), else the
    default.

    Only ASCII digits count: ``str.isdigit`` also takes "²" (which ``int()`` refuses) and "٣" (which it reads
    as 3). Leading zeros are dropped before ``int()`` sees the digits, and anything left longer than the
    default's own digits is larger than it: ``int()`` never gets more than a few digits (past 4,300 it
    raises instead of answering).
    """
    if value is None or not value.isascii() or not value.isdigit():
        return default_ms
    digits = value.lstrip("0")
    if len(digits) > len(str(default_ms)):
        return default_ms
    return min(int(digits or "0"), default_ms)


KEY_DIGEST_BYTES: Final = 16


def key_digest(*parts: str) -> bytes:
    """A fixed-size key for client-chosen strings (``sub``, ``jti``): what the stores keep in their place.

    Each part is length-prefixed, so no two tuples of parts share an input. BLAKE2b at 128 bits: unkeyed, so
    every worker and every simulator sharing state derive the same key, and no client can make two of its
    strings collide (a collision would need ~2**64 attempts) to have one taken for another's.
    """
    encoded = [part.encode("utf-8", "surrogatepass") for part in parts]
    framed = b"".join(b"%d:%b" % (len(part), part) for part in encoded)
    return hashlib.blake2b(framed, digest_size=KEY_DIGEST_BYTES).digest()
