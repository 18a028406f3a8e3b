"""Load-test targets: ``POST /oauth2/token`` requests, each with its own signed client assertion.

Each assertion has a fresh ``jti`` (the endpoint refuses a reused one) and expires 5 minutes after it is
made: generate the targets just before the attack.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from plugins.apim_oauth import validation as v
from simulator import FORM_URLENCODED, HttpTarget, StartupError, TargetOption, TargetRequest, Targets

TOKEN_PATH = "/oauth2/token"


def token_targets() -> Targets:
    return Targets(
        "token",
        _generate,
        "--count form POSTs to /oauth2/token, each with a fresh RS512 client assertion (5 minutes)",
        options=(
            TargetOption("--api-key", "iss/sub of the assertions (an API key)", "load-test-app"),
            TargetOption("--kid", "kid header of the assertions", "load-test-1"),
            TargetOption("--private-key", "PEM key to sign with, for strict validation", None),
        ),
    )


def _generate(request: TargetRequest) -> Iterator[HttpTarget]:
    pem = request.options.get("private_key")
    api_key = request.options.get("api_key") or "load-test-app"
    kid = request.options.get("kid") or "load-test-1"
    key = _signing_key(pem)
    url = request.base_url + TOKEN_PATH
    now = int(time.time())
    headers = {"Content-Type": FORM_URLENCODED}
    for _ in range(request.count):
        claims = {"iss": api_key, "sub": api_key, "aud": url, "jti": str(uuid.uuid4()), "exp": now + 300}
        assertion = jwt.encode(claims, key, algorithm="RS512", headers={"kid": kid, "typ": "JWT"})
        form = urlencode(
            {
                "grant_type": v.CLIENT_CREDENTIALS,
                "client_assertion_type": v.JWT_BEARER,
                "client_assertion": assertion,
            }
        )
        yield HttpTarget("POST", TOKEN_PATH, headers, form.encode())


def _signing_key(pem: str | None) -> Any:
    if pem is None:
        # Structural validation checks the assertion's shape, not its signature: any RSA key will do.
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    try:
        return serialization.load_pem_private_key(Path(pem).read_bytes(), password=None)
    except OSError as exc:
        raise StartupError(f"--private-key {pem}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise StartupError(f"--private-key {pem}: not an unencrypted PEM private key ({exc})") from None
