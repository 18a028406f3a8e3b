"""``apim_oauth``: the NHS API platform's token endpoint, ``POST /oauth2/token``, with its real error matrix.

Registers the ``APIM_*`` settings, the routes, the service ``apim_oauth.tokens`` (a
:class:`~plugins.apim_oauth.tokens.TokenStore`: ``await verify(token)`` tells other fakes whether a bearer
token was issued here, by any simulator sharing ``SIMULATOR_STATE_URL``) and the load-test target set
``apim_oauth.token``.
"""

from __future__ import annotations

from collections.abc import Iterable

from plugins.apim_oauth.routes import IdTokenIssuer, TokenEndpoint, injected_errors, router
from plugins.apim_oauth.settings import ApimSettings
from plugins.apim_oauth.targets import token_targets
from plugins.apim_oauth.tokens import TokenStore
from simulator import ErrorResponse, PluginContext, PluginSettings, Router, Service, Targets, hookimpl


@hookimpl
def simulator_settings_class() -> type[PluginSettings]:
    return ApimSettings


@hookimpl
def simulator_register_services(settings: ApimSettings) -> Iterable[Service]:
    yield Service(
        "tokens",
        TokenStore(settings.token_max_entries),
        "verify(token) -> awaitable bool: a simulator sharing this one's state (or this worker) issued the "
        "access token and it has not expired; is_valid(token) -> bool: this worker did",
    )


@hookimpl
def simulator_register_routes(settings: ApimSettings, context: PluginContext) -> Router:
    store = context.service(f"{context.name}.tokens", TokenStore)
    store.share(context.state)
    endpoint = TokenEndpoint(
        settings, store, providers=context.services_of(IdTokenIssuer), shared=context.state
    )
    context.metrics.store("tokens", store)
    context.metrics.store("jti", endpoint.replays)
    return router(settings, endpoint)


@hookimpl
def simulator_register_targets() -> Iterable[Targets]:
    yield token_targets()


@hookimpl
def simulator_error_response(settings: ApimSettings) -> ErrorResponse:
    return injected_errors(settings)
