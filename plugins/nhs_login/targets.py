"""Load-test targets: sign-ins (``GET /authorize``) and token requests (``POST /token``).

A whole sign-in is two requests, the second using the code of the first, which vegeta's target files
cannot express: ``bench/signin.lua`` drives the pair with wrk. The token targets use the original fake's
shortcut (the ``code`` is an NHS number), so each is a complete ``/token`` answer with real signed tokens.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from itertools import cycle, islice
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from plugins.nhs_login.clients import JWT_BEARER
from plugins.nhs_login.identities import Directory
from simulator import FORM_URLENCODED, HttpTarget, TargetOption, TargetRequest, Targets

_CLIENT = TargetOption("--client-id", "client_id of the NHS login targets", "load-test-client")
_REDIRECT = TargetOption(
    "--redirect-uri",
    "redirect_uri of the sign-in targets",
    "https://localhost:3000/api/auth/callback/nhs-login",
)


def targets(root_url: str, directory: Directory) -> Iterator[Targets]:
    def signins(request: TargetRequest) -> Iterator[HttpTarget]:
        client_id = request.options.get("client_id") or _CLIENT.default or ""
        redirect = request.options.get("redirect_uri") or _REDIRECT.default or ""
        for i, number in enumerate(islice(cycle(directory.load_test), request.count)):
            query = {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect,
                "scope": "openid profile",
                "state": f"load-{i}",
                "prompt": "none",
                "login_hint": number,
            }
            yield HttpTarget("GET", f"/authorize?{urlencode(query)}", name="/authorize")

    def tokens(request: TargetRequest) -> Iterator[HttpTarget]:
        client_id = request.options.get("client_id") or _CLIENT.default or ""
        # Structural validation checks the assertion's form, not its signature: any RSA key will do.
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = int(time.time())
        headers = {"Content-Type": FORM_URLENCODED}
        audience = f"{request.base_url}/token"
        for number in islice(cycle(directory.load_test), request.count):
            claims = {
                "iss": client_id,
                "sub": client_id,
                "aud": audience,
                "jti": str(uuid.uuid4()),
                "exp": now + 3000,
            }
            assertion = jwt.encode(claims, key, algorithm="RS512")
            form = {
                "grant_type": "authorization_code",
                "code": number,
                "client_assertion_type": JWT_BEARER,
                "client_assertion": assertion,
            }
            yield HttpTarget("POST", "/token", headers, urlencode(form).encode())

    yield Targets(
        "signin",
        signins,
        "--count GET /authorize for the load_test users (302 with a code to --redirect-uri)",
        options=(_CLIENT, _REDIRECT),
    )
    yield Targets(
        "code_grant",
        tokens,
        "--count POST /token, code = a load_test NHS number (the original's shortcut); assertions: 50 min",
        options=(_CLIENT,),
    )
