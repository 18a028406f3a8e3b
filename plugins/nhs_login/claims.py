"""What NHS login says about a user: ID token, access token and userinfo claims, by scope and proofing level.

Sources: the interface specification's claim tables, the sandpit tokens (``id_status``, ``token_use``,
``surname``), and the scope table: ``profile`` releases ``nhs_number``, ``family_name``, ``birthdate`` and
``identity_proofing_level`` to P5 and P9 users only; ``email`` and ``phone`` at every level.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Final
from urllib.parse import urlsplit

from plugins.nhs_login.identities import Identity

ID_TOKEN_SECONDS: Final = 3600
ACCESS_TOKEN_SECONDS: Final = 300
DEFAULT_VTR: Final = ("P9.Cp.Cd", "P9.Cp.Ck", "P9.Cm")
# The sandpit discovery document's scopes, in its order.
SCOPES: Final = (
    "basic_demographics", "client_metadata", "email", "gp_integration_credentials", "gp_registration_details",
    "landline", "nhs_app_credentials", "openid", "phone", "profile", "profile_extended",
)  # fmt: skip
_VECTOR: Final = re.compile(r"(P[0-9]\.)?C[pdkm](\.C[pdkm]){0,3}")
_PROOFED: Final = ("P5", "P9")


def parse_vtr(raw: str | None) -> tuple[str, ...] | str:
    """The requested vectors of trust, or why ``vtr`` is not a JSON array of them."""
    if raw is None or raw == "":
        return DEFAULT_VTR
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, list) or not value or len(value) > 16:
        return 'vtr must be a JSON array of vectors of trust, e.g. ["P9.Cp.Cd","P9.Cm"]'
    for vector in value:
        if not isinstance(vector, str) or not _VECTOR.fullmatch(vector):
            return f"vtr holds {str(vector)[:40]!r}, which is not a vector of trust such as P9.Cp.Cd"
    return tuple(value)


def vector_of_trust(requested: tuple[str, ...], level: str) -> str:
    """The first requested vector the user's proofing level meets, or their own level's ``Px.Cp.Cd``.

    A real session that meets none would have to step up first; a fake user signs in at their level.
    """
    for vector in requested:
        if vector.startswith("P"):
            if int(vector[1]) <= int(level[1]):
                return vector
        else:
            return f"{level}.{vector}"
    return f"{level}.Cp.Cd"


def released(identity: Identity, scopes: frozenset[str]) -> dict[str, Any]:
    """The claims the granted scopes release for this user's proofing level."""
    proofed = identity.level in _PROOFED
    claims: dict[str, Any] = {}
    if proofed and ("profile" in scopes or "basic_demographics" in scopes):
        if "profile" in scopes:
            claims["nhs_number"] = identity.nhs_number
        claims["family_name"] = identity.family_name
        claims["birthdate"] = identity.birthdate
        claims["identity_proofing_level"] = identity.level
    if proofed and "profile_extended" in scopes:
        claims["given_name"] = identity.given_name
    if "email" in scopes:
        claims["email"] = identity.email
        claims["email_verified"] = True
    if "phone" in scopes:
        claims["phone_number"] = identity.phone_number
        claims["phone_number_verified"] = True
    if proofed and "gp_registration_details" in scopes:
        claims["gp_registration_details"] = {"gp_ods_code": identity.gp_ods_code}
    return claims


def trustmark(issuer: str) -> str:
    """``vtm``: ``https://auth.<env>/trustmark/auth.<env>``, from the issuer."""
    return f"{issuer}/trustmark/{urlsplit(issuer).netloc}"


def id_token(
    issuer: str,
    identity: Identity,
    *,
    client_id: str,
    scopes: frozenset[str],
    vot: str,
    auth_time: int,
    nonce: str | None,
    now: int,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": identity.sub,
        "aud": client_id,
        "exp": now + ID_TOKEN_SECONDS,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "auth_time": auth_time,
        "vot": vot,
        "vtm": trustmark(issuer),
    }
    # Only when /authorize got one: a client that sent none rejects a token that has one.
    if nonce is not None:
        claims["nonce"] = nonce
    found = released(identity, scopes)
    claims.update(found)
    if "family_name" in found:
        claims["surname"] = found["family_name"]
    claims["id_status"] = "verified"
    claims["token_use"] = "id"
    return claims


def access_token(
    issuer: str, identity: Identity, *, client_id: str, scope: str, vot: str, auth_time: int, now: int
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": identity.sub,
        "aud": client_id,
        "exp": now + ACCESS_TOKEN_SECONDS,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "auth_time": auth_time,
        "vot": vot,
        "vtm": trustmark(issuer),
        "scope": scope,
        "client_id": client_id,
        "token_use": "access",
        "version": 0,
    }
    if identity.level in _PROOFED:
        claims["nhs_number"] = identity.nhs_number
        claims["reason_for_request"] = "patientaccess"
        claims["requesting_patient"] = identity.nhs_number
    return claims
