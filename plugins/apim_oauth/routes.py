"""``POST /oauth2/token`` (signed-JWT client credentials and token exchange) and the ``/oauth2/*`` 404."""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple, Protocol, runtime_checkable

import jwt
import orjson

from plugins.apim_oauth import validation as v
from plugins.apim_oauth.jwks import JwksUnavailable, KeySource
from plugins.apim_oauth.ratelimit import WINDOW_SECONDS, RateLimiter
from plugins.apim_oauth.settings import ApimSettings
from plugins.apim_oauth.tokens import TokenStore, new_token
from simulator import ExpiringSet, Params, Request, RequestBodyTooLarge, Response, Router, SharedState

# The platform's default lifetime (KVM cis2.access_token_expiry_ms); Apigee reports whole seconds left.
ACCESS_TOKEN_MS: Final = 600_000
# NHS login refresh tokens: 12 hours, reported the same way (not asserted by any public test).
REFRESH_TOKEN_EXPIRES_IN: Final = b"43199"
ISSUED_TOKEN_TYPE: Final = b"urn:ietf:params:oauth:token-type:access_token"
# Used jti's are kept as a fixed-size digest of (app, jti), never as what the client sent: each entry is a
# 32-character key, counted as 201 bytes (sys.getsizeof 81 + the store's 120 per entry), so one request keeps
# at most 201 bytes here, whatever the size of its sub and jti, and the default 100,000 entries ~20 MB. The
# byte budget is then a backstop that binds only when APIM_JTI_MAX_ENTRIES is raised past ~330,000.
JTI_MAX_BYTES: Final = 64 << 20

_VERIFIER = jwt.PyJWS()


class Assertion(NamedTuple):
    """A client assertion that passed the structural checks, with what the later checks need."""

    exchange: bool  # a token exchange (else client credentials)
    token: str
    header: v.Claims
    claims: v.Claims
    app: str
    seen_key: str  # the digest of (app, jti) the replay stores keep
    too_far: bool  # exp is more than five minutes ahead


@runtime_checkable
class IdTokenIssuer(Protocol):
    """An identity provider of this simulator whose ID tokens the token exchange trusts (``nhs_login``)."""

    issuer: str

    def jwks(self) -> Mapping[str, Any]:
        """The provider's public keys, as a JWKS document."""
        ...


class TokenEndpoint:
    """The handlers, with the state they share: issued tokens, seen ``jti``s, quotas and key sets."""

    def __init__(
        self,
        settings: ApimSettings,
        store: TokenStore,
        *,
        providers: Sequence[IdTokenIssuer] = (),
        clock: Callable[[], float] = time.time,
        shared: SharedState | None = None,
    ) -> None:
        self._mode = settings.validation
        self._strict = settings.validation == "strict"
        self._api_keys = settings.api_keys
        self._token_url = settings.token_url
        self._store = store
        self._clock = clock
        # Client assertions' jti seen within their lifetime (a replay is refused); its size is a metric.
        self.replays = ExpiringSet(
            ttl=settings.jti_ttl_seconds, max_entries=settings.jti_max_entries, max_bytes=JTI_MAX_BYTES
        )
        limit = settings.rate_limit_per_minute
        self._limiter = RateLimiter(limit) if limit else None
        # With SIMULATOR_STATE_URL: jtis and quota windows shared by every worker of every simulator.
        self._shared = shared
        # Whether a check may wait (on shared state, a quota or a key set): the route's handler is then
        # token, else token_now, which never awaits, so that the core answers it from the server's parser
        # callback (a quarter fewer instructions a token: bench/instructions.py --token).
        self.awaits = shared is not None or self._limiter is not None or self._strict
        self._jti_ttl = settings.jti_ttl_seconds
        self._keys = self._key_source(settings, settings.jwks)
        self._id_token_keys = self._key_source(settings, settings.id_token_jwks)
        # Identity providers of this simulator (NHS login): their ID tokens verify with their own keys, and
        # without APIM_ID_TOKEN_ISSUERS they are the issuers trusted, as the platform trusts its NHS login.
        self._providers = {p.issuer: KeySource(orjson.dumps(p.jwks()).decode()) for p in providers}
        self._id_token_issuers = settings.id_token_issuers or frozenset(self._providers)
        # Shaped like Apigee's message ids (rrt-<n>-b-<region>-<n>-<n>-<n>): unique per response, cheap. Not
        # from the seeded generator, which repeats in every worker process.
        self._message_prefix = f"rrt-{secrets.randbits(62)}-b-geu2-{os.getpid()}-"
        self._message_seq = itertools.count(secrets.randbelow(10**8))

    @staticmethod
    def _key_source(settings: ApimSettings, source: str | None) -> KeySource | None:
        if source is None:
            return None
        return KeySource(
            source, timeout=settings.jwks_timeout_seconds, cache_seconds=settings.jwks_cache_seconds
        )

    # -- handlers -------------------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        if request.method != "POST":
            return v.METHOD_NOT_ALLOWED
        if self._mode == "off":
            return await self._any_post(request)
        if not v.is_form(request.headers.get("content-type")):
            return self._fail(v.CONTENT_TYPE)
        try:
            form = await request.form()
        except RequestBodyTooLarge:
            return self._fail(v.TOO_LARGE)
        outcome = await self._check(request, form)
        return outcome if isinstance(outcome, Response) else self._fail(outcome)

    async def token_now(self, request: Request) -> Response:
        """:meth:`token` when no check waits (see ``awaits``): the same answers, from the body the core read
        before calling it, without an await."""
        if request.method != "POST":
            return v.METHOD_NOT_ALLOWED
        form = request.received_form()
        if self._mode == "off":
            return self._issue_here(form, form.get("subject_token_type") == v.ID_TOKEN)
        if not v.is_form(request.headers.get("content-type")):
            return self._fail(v.CONTENT_TYPE)
        now = self._clock()
        checked = self._assertion(form, now)
        if isinstance(checked, v.Problem):
            return self._fail(checked)
        problem = self._replayed_here(checked)
        if problem is None and checked.exchange:
            subject = self._subject_token(form.get("subject_token"), now)
            problem = subject if isinstance(subject, v.Problem) else None
        return self._fail(problem) if problem is not None else self._issue_here(form, checked.exchange)

    async def not_found(self, request: Request) -> Response:
        return self._fail(v.NOT_FOUND)

    # -- the checks, in the proxy's order ---------------------------------------------------------------

    async def _check(self, request: Request, form: Params) -> Response | v.Problem:
        now = self._clock()
        checked = self._assertion(form, now)
        if isinstance(checked, v.Problem):
            return checked
        shared = self._shared
        if shared is not None:
            # One atomic claim answers "seen anywhere?" and records it; a jti whose exp is too far ahead is
            # refused without being recorded, as below.
            if checked.too_far:
                seen = await shared.contains("jti", checked.seen_key)
            else:
                fresh = await shared.claim("jti", checked.seen_key, self._jti_ttl)
                seen = None if fresh is None else not fresh
            if seen is None:  # Redis did not answer: this worker's own cache decides
                shared = None
            elif seen:
                return v.JTI_REUSED
            elif checked.too_far:
                return v.EXP_TOO_FAR
        if shared is None:
            problem = self._replayed_here(checked)
            if problem is not None:
                return problem

        app = checked.app
        if self._strict and app not in self._api_keys:
            return v.UNKNOWN_API_KEY
        if self._limiter is not None:
            resets_at = await self._quota(app)
            if resets_at is not None:
                return self._quota_exceeded(app, resets_at)
        if self._strict:
            problem = await self._verify_assertion(request, checked.token, checked.header, checked.claims)
            if problem is not None:
                return problem

        if checked.exchange:
            problem = await self._check_subject_token(form.get("subject_token"), now)
            if problem is not None:
                return problem
        return await self._issue(form, checked.exchange)

    def _assertion(self, form: Params, now: float) -> Assertion | v.Problem:
        """The flow the form asks for and its client assertion's structure, checked in the proxy's order."""
        grant = form.get("grant_type", "")
        subject_type = form.get("subject_token_type")
        if grant == v.CLIENT_CREDENTIALS and subject_type != v.ID_TOKEN:
            exchange = False
        elif subject_type == v.ID_TOKEN:
            exchange = True
        elif grant == v.TOKEN_EXCHANGE:
            return v.SUBJECT_TOKEN_TYPE
        elif grant:
            # authorization_code and refresh_token have flows of their own on the platform; not faked here.
            return v.GRANT_UNSUPPORTED
        else:
            return v.GRANT_MISSING

        if form.get("client_assertion_type") != v.JWT_BEARER:
            return v.ASSERTION_TYPE
        if exchange and grant != v.TOKEN_EXCHANGE:
            return v.GRANT_NOT_EXCHANGE
        assertion = form.get("client_assertion")
        if not assertion:
            return v.ASSERTION_MISSING
        decoded = v.decode(assertion)
        if decoded is None:
            return v.ASSERTION_MALFORMED
        header, claims = decoded
        problem = v.assertion_problem(header, claims, now)
        if problem is not None:
            return problem
        app = v.app_name(claims["sub"])
        # A digest, not the jti itself: a client must not make the replay store keep 700 KB a request (Redis
        # keys are hashed by the shared state already; it gets this digest too).
        seen_key = v.key_digest(app, claims["jti"]).hex()
        too_far = claims["exp"] - now > v.MAX_EXP_AHEAD_SECONDS
        return Assertion(exchange, assertion, header, claims, app, seen_key, too_far)

    def _replayed_here(self, checked: Assertion) -> v.Problem | None:
        """The replay check against this worker's own jtis (without shared state, or when Redis is away)."""
        if checked.seen_key in self.replays:
            return v.JTI_REUSED
        if checked.too_far:
            return v.EXP_TOO_FAR
        # Recorded before the key, quota and signature checks, as on the platform: a later failure uses it up.
        self.replays.add(checked.seen_key)
        return None

    async def _verify_assertion(
        self, request: Request, assertion: str, header: v.Claims, claims: v.Claims
    ) -> v.Problem | None:
        if self._keys is None:
            return v.NO_JWKS
        problem = await _verify(self._keys, assertion, header, ["RS512"], v.KID_UNKNOWN)
        if problem is not None:
            return problem
        if not v.audience_matches(claims.get("aud"), self._audience(request)):
            return v.AUD
        return None

    async def _check_subject_token(self, token: str | None, now: float) -> v.Problem | None:
        subject = self._subject_token(token, now)
        if isinstance(subject, v.Problem):
            return subject
        if not self._strict:
            return None
        assert token is not None  # _subject_token refused a missing one
        header, claims = subject
        iss = claims["iss"]
        if self._id_token_issuers and (not isinstance(iss, str) or iss not in self._id_token_issuers):
            # The platform raises the same fault (and text) as for the client assertion's iss/sub.
            return v.ISS_SUB
        keys = self._id_token_keys or (self._providers.get(iss) if isinstance(iss, str) else None)
        if keys is None:
            return None
        return await _verify(keys, token, header, ["RS256", "RS512"], v.SUBJECT_KID_UNKNOWN)

    @staticmethod
    def _subject_token(token: str | None, now: float) -> tuple[v.Claims, v.Claims] | v.Problem:
        """A token exchange's ``subject_token``, decoded, once its structure passes; else the problem."""
        if not token:
            return v.SUBJECT_MISSING
        decoded = v.decode(token)
        if decoded is None:
            return v.SUBJECT_MALFORMED
        problem = v.subject_token_problem(*decoded, now)
        return decoded if problem is None else problem

    def _audience(self, request: Request) -> str:
        if self._token_url is not None:
            return self._token_url
        headers = request.headers
        # Behind an ALB the simulator sees http and the ALB's address; clients sign the public URL.
        scheme = headers.get("x-forwarded-proto") or str(request.scope.get("scheme", "http"))
        host = headers.get("x-forwarded-host") or headers.get("host", "")
        return f"{scheme.split(',')[0].strip()}://{host.split(',')[0].strip()}{request.path}"

    # -- responses --------------------------------------------------------------------------------------

    async def _any_post(self, request: Request) -> Response:
        try:
            form = await request.form()
        except RequestBodyTooLarge:
            form = Params()
        return await self._issue(form, form.get("subject_token_type") == v.ID_TOKEN)

    async def _issue(self, form: Params, exchange: bool) -> Response:
        response, token, lifetime_seconds = self._answer(form, exchange)
        await self._store.add(token, lifetime_seconds)
        return response

    def _issue_here(self, form: Params, exchange: bool) -> Response:
        """:meth:`_issue` without shared state: the token is known to this worker only."""
        response, token, lifetime_seconds = self._answer(form, exchange)
        self._store.add_here(token, lifetime_seconds)
        return response

    def _answer(self, form: Params, exchange: bool) -> tuple[Response, str, float]:
        """The token answer, with the new access token and its lifetime in seconds (to be stored)."""
        # The platform lets a client shorten (never lengthen) the lifetime; tests use it to watch expiry.
        lifetime_ms = v.shorter_lifetime_ms(form.get("_access_token_expiry_ms"), ACCESS_TOKEN_MS)
        token = new_token()
        expires_in = str(max(lifetime_ms // 1000 - 1, 0)).encode()
        if exchange:
            body = b"".join((
                b'{"access_token":"', token.encode(),
                b'","expires_in":"', expires_in,
                b'","token_type":"Bearer","issued_token_type":"', ISSUED_TOKEN_TYPE,
                b'","refresh_token":"', new_token().encode(),
                b'","refresh_token_expires_in":"', REFRESH_TOKEN_EXPIRES_IN,
                b'","refresh_count":"0"}',
            ))  # fmt: skip
        else:
            body = b"".join((
                b'{"access_token":"', token.encode(),
                b'","expires_in":"', expires_in,
                b'","token_type":"Bearer","issued_at":"', str(int(self._clock() * 1000)).encode(),
                b'"}',
            ))  # fmt: skip
        response = Response(
            200, body, ((b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()))
        )
        return response, token, lifetime_ms / 1000

    async def _quota(self, app: str) -> int | None:
        """Count a request against the app's quota: None while under it, else the window's end (epoch ms);
        shared by every simulator with SIMULATOR_STATE_URL, else this worker's own count."""
        assert self._limiter is not None
        if self._shared is not None:
            counted = await self._shared.count("quota", app, WINDOW_SECONDS)
            if counted is not None:
                events, ends = counted
                return int(ends * 1000) if events > self._limiter.limit else None
        return self._limiter.hit(app)

    def _quota_exceeded(self, app: str, resets_at_ms: int) -> Response:
        limit = self._limiter.limit if self._limiter is not None else 0
        content = {
            # The platform names the app; the simulator knows only its API key.
            "message": (
                f"Your application, {app}, has exceeded its quota of {limit} requests every 1 minute(s) "
                "and is being rate limited."
            ),
            "scope": "application",
            "policy": "quota",
            "limit": limit,
            "interval": 1,
            "timeunit": "minute",
            "ratelimiting_expiry_time_ms": resets_at_ms,
            "message_id": self._message_id(),
        }
        return Response.json(content, status=429)

    def _fail(self, problem: v.Problem) -> Response:
        return problem.response(self._message_id())

    def _message_id(self) -> str:
        return f"{self._message_prefix}{next(self._message_seq)}-1"


def injected_errors(settings: ApimSettings) -> Callable[[int, str], Response]:
    """The errors an injected fault answers with (``simulator_error_response``): the platform's quota body
    for 429 (the app is unknown: no request is read), its catch-all ``unknown_error`` for 5xx, and the
    ``error``/``error_description`` shape for other statuses."""
    prefix = f"rrt-{secrets.randbits(62)}-b-geu2-{os.getpid()}-"
    sequence = itertools.count(secrets.randbelow(10**8))

    def error(status: int, route: str) -> Response:
        message_id = f"{prefix}{next(sequence)}-1"
        if status == 429:
            limit = settings.rate_limit_per_minute or 0
            content = {
                "message": f"Your application, unknown, has exceeded its quota of {limit} requests every "
                "1 minute(s) and is being rate limited.",
                "scope": "application",
                "policy": "quota",
                "limit": limit,
                "interval": 1,
                "timeunit": "minute",
                "ratelimiting_expiry_time_ms": int(time.time() * 1000) + 60_000,
                "message_id": message_id,
            }
            return Response.json(content, status=429)
        if status == 413:  # a body past SIMULATOR_MAX_BODY_BYTES: the platform's catch-all, as the handler's
            return v.TOO_LARGE.response(message_id)
        if status >= 500:
            return v.Problem(status, "unknown_error", v.CATCHALL_DESCRIPTION).response(message_id)
        return v.Problem(status, "invalid_request", "injected fault").response(message_id)

    return error


def router(settings: ApimSettings, endpoint: TokenEndpoint) -> Router:
    routes = Router(prefix="/oauth2")
    # Every method reaches the handlers: the real proxy answers 405 (token) and 404 (elsewhere) itself.
    routes.any(
        "/token",
        name="token",
        summary=f"POST: signed-JWT client credentials and token exchange ({settings.validation} validation)",
    )(endpoint.token if endpoint.awaits else endpoint.token_now)
    routes.any("", name="root", summary="404, as on the platform")(endpoint.not_found)
    routes.any("/{rest:path}", name="unknown", summary="404 Not Found")(endpoint.not_found)
    return routes


async def _verify(
    source: KeySource, token: str, header: v.Claims, algorithms: list[str], kid_unknown: v.Problem
) -> v.Problem | None:
    """Check a JWT's signature with the key its ``kid`` names in ``source``; the problem, or None."""
    try:
        keys = await source.keys()
    except JwksUnavailable:
        return v.JWKS_UNREACHABLE
    kid = header["kid"]
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        return kid_unknown
    try:
        _VERIFIER.decode_complete(token, key.key, algorithms=algorithms)
    except jwt.PyJWTError:
        return v.SIGNATURE
    return None
