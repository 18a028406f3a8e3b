"""The app's own client stack (Auth.js 0.41 on oauth4webapi 3.8, npm) signs in against a real simulator.

``node/signin.mjs`` plays the vaccinations app: its provider configuration, its signIn callback, and Auth.js's
whole sign-in (discovery twice, the authorize redirect, the callback, the code exchange with an RS512 client
assertion, the ID token checks). Node 20 and the npm registry are needed; without them the tests skip, unless
``TEST_REQUIRE_NODE=1`` (CI), which makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import clean_env
from tests.plugins.nhs_login.login_support import CLIENT_ID, private_pem, public_pem

pytestmark = pytest.mark.server
NODE = Path(__file__).resolve().parent / "node"
APP_CALLBACK = "http://localhost:3000/api/auth/callback/nhs-login"


@pytest.fixture(scope="module")
def node_stack() -> Path:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("TEST_REQUIRE_NODE") == "1":
            pytest.fail(f"{' and '.join(missing)} not installed (TEST_REQUIRE_NODE=1)")
        pytest.skip(f"{' and '.join(missing)} not installed: the app's client stack is not exercised")
    if not (NODE / "node_modules" / "@auth" / "core").is_dir():
        installed = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=NODE,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert installed.returncode == 0, installed.stderr
    return NODE


def sign_in(stack: Path, base: str, mode: str, **env: str) -> dict[str, Any]:
    variables = {"BASE": base, "CLIENT_ID": CLIENT_ID, "PRIVATE_KEY": private_pem(), "MODE": mode, **env}
    done = subprocess.run(
        ["node", "signin.mjs"],
        cwd=stack,
        env=clean_env(variables),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def strict_env() -> dict[str, str]:
    clients = [{"client_id": CLIENT_ID, "redirect_uris": [APP_CALLBACK], "public_key": public_pem()}]
    return {
        "SIMULATOR_PLUGINS": "health,nhs_login",
        "LOGIN_VALIDATION": "strict",
        "LOGIN_CLIENTS": json.dumps(clients),
    }


def test_the_app_in_fake_mode_signs_in_without_a_nonce(node_stack: Path, serve: Any) -> None:
    base = serve(strict_env(), base_vars=("LOGIN_ROOT_URL",))
    result = sign_in(node_stack, base, "fake")
    params = result["authorizeParams"]
    assert params["scope"] == "openid profile"
    assert params["prompt"] == "none"
    assert params["redirect_uri"] == APP_CALLBACK
    assert params["asserted_login_identity"]
    assert "nonce" not in params
    assert result["discoveryRequests"] == 2  # once for the redirect, once for the callback
    assert set(result["callbackParams"]) == {"code", "state"}
    # The client assertion as the app sends it: RS512, no kid, aud [issuer, token_endpoint].
    assert result["assertionHeader"] == {"alg": "RS512"}
    assert result["assertionPayload"]["aud"] == [base, f"{base}/token"]
    assert result["assertionPayload"]["exp"] - result["assertionPayload"]["iat"] == 60
    # Auth.js accepted the token response and the ID token, the app's signIn callback the profile.
    assert result["finalLocation"] == "http://localhost:3000/"
    assert result["sessionCookie"] is True
    profile = result["profile"]
    assert profile["iss"] == base
    assert profile["nhs_number"] == "9686368973"
    assert "nonce" not in profile


def test_the_app_elsewhere_sends_a_nonce_and_gets_it_back(node_stack: Path, serve: Any) -> None:
    base = serve(strict_env(), base_vars=("LOGIN_ROOT_URL",))
    result = sign_in(node_stack, base, "real", NHS_NUMBER="9658218873")
    nonce = result["authorizeParams"]["nonce"]
    assert nonce
    assert result["profile"]["nonce"] == nonce
    assert result["profile"]["nhs_number"] == "9658218873"
    assert result["finalLocation"] == "http://localhost:3000/"
    assert result["sessionCookie"] is True


def test_an_error_redirect_lands_the_app_on_its_error_page(node_stack: Path, serve: Any) -> None:
    base = serve({"SIMULATOR_PLUGINS": "nhs_login"}, base_vars=("LOGIN_ROOT_URL",))
    result = sign_in(node_stack, base, "fake", TEST_ERROR="true")
    assert result["callbackParams"]["error"] == "access_denied"
    assert result["profile"] is None
    assert result["sessionCookie"] is False
    assert "error=" in result["finalLocation"]


def test_a_p5_user_is_turned_away_by_the_apps_own_check(node_stack: Path, serve: Any) -> None:
    base = serve({"SIMULATOR_PLUGINS": "nhs_login"}, base_vars=("LOGIN_ROOT_URL",))
    result = sign_in(node_stack, base, "fake", NHS_NUMBER="9912003072")
    assert result["profile"]["identity_proofing_level"] == "P5"
    assert result["sessionCookie"] is False
    assert "error=AccessDenied" in result["finalLocation"]
