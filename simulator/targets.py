"""``simulator targets``: load-test targets for the built-in fakes, in vegeta's formats.

    simulator targets --base-url $URL | vegeta attack -rate=10/s -duration=30s | vegeta report

Patient-check targets are the known test patients (the original load test's 18 numbers) or N synthetic
valid NHS numbers; token targets are ``POST /oauth2/token`` requests, each with its own signed client
assertion (a fresh ``jti``: the endpoint refuses a reused one), in vegeta's JSON format.
"""

from __future__ import annotations

import base64
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import orjson

from plugins.eligibility.nhs_number import check_digit

PATIENT_CHECK = "/eligibility-signposting-api/patient-check/"
TOKEN = "/oauth2/token"

# The integration-environment test patients of the original fake's load test.
KNOWN_PATIENTS = (
    "9657933617", "9658218989", "9658220142", "9686368906", "9735548852", "9450114080",
    "9658218873", "9658218997", "9658220150", "9686368973", "9658218881", "9658219004",
    "9686369120", "9466447939", "9658218903", "9658219012", "9661033498", "9735548844",
)  # fmt: skip


def synthetic_nhs_numbers(count: int, rng: random.Random) -> Iterator[str]:
    """``count`` distinct valid NHS numbers, none of them a known test patient."""
    seen = set(KNOWN_PATIENTS)
    while len(seen) - len(KNOWN_PATIENTS) < count:
        first = f"{rng.randrange(100_000_000, 1_000_000_000)}"
        digit = check_digit(first)
        number = f"{first}{digit}"
        if digit is not None and number not in seen:
            seen.add(number)
            yield number


def patient_targets(base_url: str, numbers: list[str]) -> Iterator[str]:
    for number in numbers:
        yield f"GET {base_url}{PATIENT_CHECK}{number}"


def token_targets(
    base_url: str, count: int, api_key: str, kid: str, private_key_pem: bytes | None
) -> Iterator[str]:
    """vegeta JSON lines, each a form POST with a fresh RS512 client assertion valid for 5 minutes."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if private_key_pem is None:
        # Structural validation checks the assertion's shape, not its signature: any RSA key will do.
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    url = f"{base_url}{TOKEN}"
    now = int(time.time())
    for _ in range(count):
        claims = {"iss": api_key, "sub": api_key, "aud": url, "jti": str(uuid.uuid4()), "exp": now + 300}
        assertion = jwt.encode(claims, key, algorithm="RS512", headers={"kid": kid, "typ": "JWT"})
        form = urlencode(
            {
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            }
        )
        target = {
            "method": "POST",
            "url": url,
            "header": {"Content-Type": ["application/x-www-form-urlencoded"]},
            "body": base64.b64encode(form.encode()).decode(),
        }
        yield orjson.dumps(target).decode()
