"""NHS login's endpoints: discovery, JWKS, ``/authorize``, ``/token``, ``/userinfo``.

Behaviour follows the interface specification (EIS) and what the sandpit answers; where the original fake
behaved differently and teams rely on it (``X-NHS-Number``, ``X-Test-Oauth-Error``, ``APP_ROOT_URL``, a
``code`` that is an NHS number) that is kept as well. The README lists every deliberate departure.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from plugins.nhs_login import claims as c
from plugins.nhs_login.clients import ClientAuthError, Clients
from plugins.nhs_login.grants import Grant, Grants
from plugins.nhs_login.identities import Directory, Identity
from plugins.nhs_login.keys import SigningKey
from plugins.nhs_login.settings import LoginSettings
from simulator import FORM_URLENCODED, Params, Request, RequestBodyTooLarge, Response, Router, SharedState

_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Values a client sends that end up inside codes and tokens: bounded, so a code stays a few hundred bytes.
_MAX_VALUE: Final = 2048
_COMPAT_CODE: Final = re.compile(r"\d{10,11}", re.ASCII)
# X-Test-Oauth-Error values that are OAuth error codes; any other value (the original's "true") is
# access_denied with the original fake's description.
_TEST_ERRORS: Final = frozenset(
    {
        "access_denied", "invalid_request", "unauthorized_client", "unsupported_response_type",
        "invalid_scope", "server_error", "temporarily_unavailable", "sso_login_required",
        "interaction_required", "login_required", "consent_required", "account_selection_required",
    }
)  # fmt: skip
_CALLBACK_PATH: Final = "/api/auth/callback/nhs-login"
_METADATA_MAX_CHARS: Final = 1024


class Provider:
    """The service ``nhs_login.provider``: the issuer other fakes trust, and its public keys.

    ``apim_oauth``'s token exchange finds it by type (``issuer`` and ``jwks()``) and verifies ID tokens
    with it, so the sign-in chain runs in one simulator without copying a key.
    """

    def __init__(self, issuer: str, key: SigningKey) -> None:
        self.issuer = issuer
        self._jwks = {"keys": [dict(key.jwk)]}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(k) for k in self._jwks["keys"]]}


def discovery(root: str) -> dict[str, Any]:
    """The sandpit document's keys and lists, every URL on ``LOGIN_ROOT_URL``."""
    return {
        "issuer": root,
        "authorization_endpoint": f"{root}/authorize",
        "token_endpoint": f"{root}/token",
        "userinfo_endpoint": f"{root}/userinfo",
        "jwks_uri": f"{root}/.well-known/jwks.json",
        "scopes_supported": list(c.SCOPES),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS512"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS512"],
        "claims_supported": [
            "iss",
            "aud",
            "sub",
            "family_name",
            "given_name",
            "email",
            "email_verified",
            "phone_number",
            "phone_number_verified",
            "landline_number",
            "landline_number_verified",
            "birthdate",
            "nhs_number",
            "gp_integration_credentials",
            "delegations",
            "gp_registration_details",
            "im1_token",
            "auth_time",
            "jti",
            "nonce",
            "vot",
            "vtm",
            "exp",
            "ods_code",
            "user_id",
            "linkage_key",
            "surname",
            "iat",
            "gp_ods_code",
            "gp_user_id",
            "gp_linkage_key",
            "client_user_metadata",
            "identity_proofing_level",
        ],
        # As the original fake: on this host (the real provider has them on its uaf. host).
        "fido_uaf_authentication_request_endpoint": f"{root}/authRequest",
        "fido_uaf_registration_request_endpoint": f"{root}/regRequest",
        "fido_uaf_registration_response_endpoint": f"{root}/regResponse",
        "fido_uaf_deregistration_endpoint": f"{root}/dereg",
    }


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    return Response.json({"error": error, "error_description": description}, status=status, headers=_NO_STORE)


def injected_error(status: int, route: str) -> Response:
    """The error an injected fault answers with (``simulator_error_response``): OAuth 2.0's error codes
    (``temporarily_unavailable`` for 503, ``server_error`` for other 5xx, RFC 6749 section 4.1.2.1)."""
    if status == 503:
        return oauth_error("temporarily_unavailable", "injected fault", status)
    if status >= 500:
        return oauth_error("server_error", "injected fault", status)
    if status in (401, 403):
        return oauth_error("invalid_client" if status == 401 else "access_denied", "injected fault", status)
    return oauth_error("invalid_request", "injected fault", status)


class Metadata:
    """``client_user_metadata`` by client and user; the oldest go past ``max_entries`` or ``max_bytes``.

    A value is at most 1,024 characters and a key a client id (at most 255) and a ``sub``; the bytes counted
    are the UTF-8 lengths of both plus a fixed overhead per entry.
    """

    ENTRY_OVERHEAD_BYTES: Final = 200

    def __init__(self, max_entries: int = 10_000, max_bytes: int = 16 << 20) -> None:
        self._values: OrderedDict[str, str] = OrderedDict()
        self._max = max_entries
        self._max_bytes = max_bytes
        self.bytes = 0

    @classmethod
    def _weight(cls, key: str, value: str) -> int:
        return len(key.encode()) + len(value.encode()) + cls.ENTRY_OVERHEAD_BYTES

    def set(self, key: str, value: str) -> None:
        old = self._values.pop(key, None)
        if old is not None:
            self.bytes -= self._weight(key, old)
        self._values[key] = value
        self.bytes += self._weight(key, value)
        while len(self._values) > self._max or self.bytes > self._max_bytes:
            gone, dropped = self._values.popitem(last=False)
            self.bytes -= self._weight(gone, dropped)

    def get(self, key: str) -> str | None:
        return self._values.get(key)

    def __len__(self) -> int:
        return len(self._values)


class _Redirect(Exception):
    """An error /authorize answers by sending the browser back to the client."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class Login:
    """The endpoints' handlers and what they share."""

    def __init__(
        self,
        settings: LoginSettings,
        key: SigningKey,
        directory: Directory,
        shared: SharedState | None = None,
    ) -> None:
        self.issuer = settings.root_url
        self.key = key
        self.directory = directory
        self.clients = Clients(settings)
        self.grants = Grants(key, shared)
        self.default_nhs_number = settings.default_nhs_number
        self.fallback_redirect = f"{settings.app_root_url}{_CALLBACK_PATH}"
        # client_user_metadata set with PATCH /userinfo, per user and client (per process).
        self.metadata = Metadata()

    # -- /authorize -------------------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        """Sign the user in: redirect to the client with a code (or an error)."""
        if request.method == "POST":
            try:
                params = await request.form()
            except RequestBodyTooLarge:
                return oauth_error("invalid_request", "the request is too large")
        else:
            params = request.query
        client_id = params.get("client_id")
        if not client_id:
            return oauth_error("invalid_request", "client_id is missing")
        if len(client_id) > 255:
            return oauth_error("invalid_request", "client_id is too long")
        client = self.clients.get(client_id)
        if self.clients.registered and client is None:
            return oauth_error("unauthorized_client", f"client_id {client_id!r} is not registered")
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None:
            target = self.fallback_redirect
        else:
            problem = _redirect_problem(redirect_uri)
            if (
                problem is None
                and client is not None
                and client.redirect_uris
                and redirect_uri not in client.redirect_uris
            ):
                problem = "redirect_uri is not registered for this client"
            if problem is not None:  # never redirect to an address that is not the client's
                return oauth_error("invalid_request", problem)
            target = redirect_uri
        state = params.get("state")
        if state is not None and len(state) > _MAX_VALUE:
            return _redirect(target, {"error": "invalid_request", "error_description": "state is too long"})
        try:
            code = self._code(request, params, client_id, redirect_uri)
        except _Redirect as failure:
            answer = {"error": failure.error, "error_description": failure.description}
            return _redirect(target, answer | ({"state": state} if state is not None else {}))
        return _redirect(target, {"code": code} | ({"state": state} if state is not None else {}))

    def _code(
        self, request: Request, params: Mapping[str, str], client_id: str, redirect_uri: str | None
    ) -> str:
        response_type = params.get("response_type")
        if not response_type:
            raise _Redirect("invalid_request", "response_type is missing")
        if response_type != "code":
            raise _Redirect("unsupported_response_type", "Unsupported response_type value")
        scopes = (params.get("scope") or "").split()
        if "openid" not in scopes:
            raise _Redirect("invalid_scope", "scope must contain openid")
        if "profile" in scopes and "basic_demographics" in scopes:
            raise _Redirect("invalid_scope", "profile and basic_demographics cannot be requested together")
        prompt = params.get("prompt")
        if prompt not in (None, "", "none", "login"):
            raise _Redirect("invalid_request", "prompt must be none or login")
        vtr = c.parse_vtr(params.get("vtr"))
        if isinstance(vtr, str):
            raise _Redirect("invalid_request", vtr)
        nonce = params.get("nonce")
        if nonce is not None and len(nonce) > _MAX_VALUE:
            raise _Redirect("invalid_request", "nonce is too long")
        chosen = _selection(request, params, "x-nhs-number", "login_hint", "simulator_nhs_number")
        nhs_number = chosen or self.default_nhs_number
        identity = self.directory.find(nhs_number)
        if identity is None:
            raise _Redirect(
                "invalid_request", f"{nhs_number[:20]!r} is not a valid NHS number nor a named test user"
            )
        error = _selection(request, params, "x-test-oauth-error", "test_oauth_error", "simulator_oauth_error")
        if error:
            if error == "ConsentNotGiven":
                raise _Redirect("access_denied", "ConsentNotGiven")
            if error in _TEST_ERRORS:
                raise _Redirect(error, "Simulated NHS Login error")
            raise _Redirect("access_denied", "Simulated NHS Login error")
        granted = " ".join(s for s in dict.fromkeys(scopes) if s in c.SCOPES)
        return self.grants.issue(
            "code",
            client_id=client_id,
            nhs_number=identity.nhs_number,
            scope=granted,
            vot=c.vector_of_trust(vtr, identity.level),
            auth_time=int(time.time()),
            redirect_uri=redirect_uri,
            nonce=nonce,
        )

    # -- /token -----------------------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        """Exchange a code (or a refresh token) for tokens."""
        if request.method != "POST":
            return Response.build(b"", status=405, content_type="text/plain", headers={"Allow": "POST"})
        content_type = request.headers.get("content-type", "")
        if content_type.partition(";")[0].strip().lower() != FORM_URLENCODED:
            return oauth_error("invalid_request", f"Content-Type must be {FORM_URLENCODED}")
        try:
            form = await request.form()
        except RequestBodyTooLarge:
            return oauth_error("invalid_request", "the request body is too large")
        grant_type = form.get("grant_type")
        if not grant_type:
            return oauth_error("invalid_request", "grant_type is missing")
        if grant_type not in ("authorization_code", "refresh_token"):
            return oauth_error("unsupported_grant_type", f"grant_type {grant_type[:60]!r} is not supported")
        try:
            client_id = self.clients.authenticate(form)
        except ClientAuthError as exc:
            return oauth_error("invalid_client", str(exc))
        if grant_type == "refresh_token":
            return await self._refresh(form, client_id)
        return await self._exchange(form, client_id)

    async def _exchange(self, form: Params, client_id: str) -> Response:
        code = form.get("code")
        if not code:
            return oauth_error("invalid_request", "code is missing")
        if _COMPAT_CODE.fullmatch(code):
            # The original fake's token request: the code is the NHS number. Kept for its load tests.
            identity = self.directory.find(code)
            if identity is None:
                return oauth_error("invalid_grant", "code is not valid")
            now = int(time.time())
            compat = Grant("code", "", client_id, code, "openid profile", c.DEFAULT_VTR[0], now, now + 1)
            return self._tokens(identity, compat, client_id, with_id_token=True)
        grant = self.grants.read(code, "code")
        if grant is None:
            return oauth_error("invalid_grant", "code is not valid")
        if grant.expired:
            return oauth_error("invalid_grant", "code has expired")
        if grant.client_id != client_id:
            return oauth_error("invalid_grant", "code was issued to another client")
        if grant.redirect_uri is not None and form.get("redirect_uri") != grant.redirect_uri:
            return oauth_error("invalid_grant", "redirect_uri does not match the one the code was issued for")
        if not await self.grants.redeem(grant):
            return oauth_error("invalid_grant", "code has already been used")
        identity = self.directory.find(grant.nhs_number)
        if identity is None:  # a code names a user the fake knew when it issued it
            return oauth_error("invalid_grant", "code is not valid")
        return self._tokens(identity, grant, client_id, with_id_token=True)

    async def _refresh(self, form: Params, client_id: str) -> Response:
        token = form.get("refresh_token")
        if not token:
            return oauth_error("invalid_request", "refresh_token is missing")
        grant = self.grants.read(token, "refresh")
        if grant is None or grant.expired:
            return oauth_error("invalid_grant", "refresh_token is not valid or has expired")
        if grant.client_id != client_id:
            return oauth_error("invalid_grant", "refresh_token was issued to another client")
        scope = grant.scope
        if form.get("scope"):
            asked = form["scope"].split()
            if not set(asked) <= set(grant.scope.split()):
                return oauth_error("invalid_scope", "scope may only narrow what was granted")
            scope = " ".join(dict.fromkeys(asked))
        # Rotation: only the latest refresh token works; this one is spent.
        if not await self.grants.redeem(grant):
            return oauth_error("invalid_grant", "refresh_token has already been used")
        identity = self.directory.find(grant.nhs_number)
        if identity is None:
            return oauth_error("invalid_grant", "refresh_token is not valid or has expired")
        narrowed = Grant("refresh", "", client_id, grant.nhs_number, scope, grant.vot, grant.auth_time, 0)
        return self._tokens(identity, narrowed, client_id, with_id_token=False)

    def _tokens(self, identity: Identity, grant: Grant, client_id: str, *, with_id_token: bool) -> Response:
        now = int(time.time())
        scopes = frozenset(grant.scope.split())
        access = self.key.sign(
            c.access_token(
                self.issuer, identity, client_id=client_id, scope=grant.scope, vot=grant.vot,
                auth_time=grant.auth_time, now=now,
            )
        )  # fmt: skip
        refresh = self.grants.issue(
            "refresh",
            client_id=client_id,
            nhs_number=identity.nhs_number,
            scope=grant.scope,
            vot=grant.vot,
            auth_time=grant.auth_time,
        )
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": c.ACCESS_TOKEN_SECONDS,
            "refresh_token": refresh,
            "scope": grant.scope,
        }
        if with_id_token:
            body["id_token"] = self.key.sign(
                c.id_token(
                    self.issuer, identity, client_id=client_id, scopes=scopes, vot=grant.vot,
                    auth_time=grant.auth_time, nonce=grant.nonce, now=now,
                )
            )  # fmt: skip
        return Response.json(body, headers=_NO_STORE)

    # -- /userinfo --------------------------------------------------------------------------------------

    async def userinfo(self, request: Request) -> Response:
        """The user's claims, by the access token's scopes; PATCH sets client_user_metadata."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _unauthorised(None, "an access token is required (Authorization: Bearer)")
        found = self.key.verify(token.strip())
        if found is None or found.get("token_use") != "access" or found.get("iss") != self.issuer:
            return _unauthorised("invalid_token", "the access token is not valid")
        exp = found.get("exp")
        if not isinstance(exp, int) or exp <= time.time():
            return _unauthorised("invalid_token", "the access token has expired")
        scopes = frozenset(str(found.get("scope", "")).split())
        if "openid" not in scopes:
            return _forbidden("the access token's scope does not include openid")
        nhs_number = found.get("nhs_number")
        identity = (
            self.directory.find(nhs_number)
            if isinstance(nhs_number, str)
            else self.directory.find_by_sub(str(found.get("sub")))
        )
        if identity is None or identity.sub != found.get("sub"):
            return _unauthorised("invalid_token", "the access token names no user")
        slot = f"{found.get('client_id')}\x00{identity.sub}"
        if request.method == "PATCH":
            if "client_metadata" not in scopes:
                return _forbidden("updating client_user_metadata needs the client_metadata scope")
            return await self._patch_metadata(request, slot)
        answer: dict[str, Any] = {"sub": identity.sub, "iss": self.issuer, "aud": found.get("client_id")}
        answer.update(c.released(identity, scopes))
        metadata = self.metadata.get(slot) if "client_metadata" in scopes else None
        if metadata is not None:
            answer["client_user_metadata"] = metadata
        return Response.json(answer)

    async def _patch_metadata(self, request: Request, slot: str) -> Response:
        try:
            body = orjson.loads(await request.body())
        except (orjson.JSONDecodeError, RequestBodyTooLarge):
            return oauth_error("invalid_request", 'the body must be JSON: {"client_user_metadata": "..."}')
        value = body.get("client_user_metadata") if isinstance(body, dict) else None
        if not isinstance(value, str) or len(value) > _METADATA_MAX_CHARS:
            return oauth_error(
                "invalid_request", "client_user_metadata must be a string of at most 1024 characters"
            )
        self.metadata.set(slot, value)
        return Response.build(b"", status=204, content_type="text/plain")


def _selection(
    request: Request, params: Mapping[str, str], header: str, param: str, cookie: str
) -> str | None:
    """A test's choice, from a header, else a parameter, else a cookie (for browser-driven tests)."""
    value = request.headers.get(header) or params.get(param)
    if value:
        return value.strip()
    for pair in request.headers.get("cookie", "").split(";"):
        name, _, found = pair.strip().partition("=")
        if name == cookie and found:
            return found.strip()
    return None


def _redirect_problem(uri: str) -> str | None:
    if len(uri) > _MAX_VALUE:
        return "redirect_uri is too long"
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        return "redirect_uri must be an absolute http(s) URL without a fragment"
    return None


def _redirect(target: str, answer: dict[str, str]) -> Response:
    """302 to ``target`` with ``answer`` in its query: a name already there is replaced, never repeated."""
    parts = urlsplit(target)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _ANSWER_NAMES]
    location = urlunsplit(parts._replace(query=urlencode([*kept, *answer.items()])))
    return Response.build(
        b"", status=302, content_type="text/plain", headers={"Location": location} | _NO_STORE
    )


_ANSWER_NAMES: Final = frozenset({"code", "state", "error", "error_description", "error_uri", "iss"})


def _unauthorised(error: str | None, description: str) -> Response:
    challenge = "Bearer" if error is None else f'Bearer error="{error}", error_description="{description}"'
    return Response.json(
        {"error": error or "invalid_token", "error_description": description},
        status=401,
        headers={"WWW-Authenticate": challenge},
    )


def _forbidden(description: str) -> Response:
    return Response.json(
        {"error": "insufficient_scope", "error_description": description},
        status=403,
        headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", error_description="{description}"'},
    )


def router(settings: LoginSettings, login: Login) -> Router:
    routes = Router()
    document = Response.json(discovery(login.issuer))
    jwks = Response.json({"keys": [login.key.jwk]})

    @routes.get("/.well-known/openid-configuration", name="discovery", summary="OpenID provider metadata")
    async def configuration(request: Request) -> Response:
        return document

    @routes.get(
        "/.well-known/jwks.json", name="jwks", summary="the keys ID and access tokens are signed with"
    )
    async def keys(request: Request) -> Response:
        return jwks

    routes.route("/authorize", methods=("GET", "POST"), name="authorize", summary="sign in: 302 with a code")(
        login.authorize
    )
    routes.any("/token", name="token", summary="POST: authorization_code and refresh_token grants")(
        login.token
    )
    routes.route("/userinfo", methods=("GET", "POST", "PATCH"), name="userinfo", summary="the user's claims")(
        login.userinfo
    )
    return routes
