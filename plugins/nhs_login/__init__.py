"""``nhs_login``: NHS login's OpenID Connect provider: discovery, JWKS, /authorize, /token, /userinfo.

Routes are in ``routes.py``; signing keys in ``keys.py``; codes and refresh tokens in ``grants.py``; users in
``identities.py`` and ``data/users.json``; claims in ``claims.py``; client authentication in ``clients.py``;
settings (``LOGIN_*``) in ``settings.py``; load-test targets in ``targets.py``. It shares the service
``nhs_login.provider`` (issuer and public keys), which ``apim_oauth``'s token exchange trusts.
"""

from __future__ import annotations

from collections.abc import Iterable

from plugins.nhs_login.identities import Directory
from plugins.nhs_login.keys import SigningKey
from plugins.nhs_login.routes import Login, Provider, injected_error, router
from plugins.nhs_login.settings import LoginSettings
from plugins.nhs_login.targets import targets
from simulator import ErrorResponse, PluginContext, PluginSettings, Router, Service, Targets, hookimpl


def _key(settings: LoginSettings) -> SigningKey:
    # Loaded by each hook that needs it: the same settings always give the same key.
    return SigningKey.from_settings(settings.private_key.get_secret_value() if settings.private_key else None)


@hookimpl
def simulator_settings_class() -> type[PluginSettings]:
    return LoginSettings


@hookimpl
def simulator_register_services(settings: LoginSettings) -> Iterable[Service]:
    provider = Provider(settings.root_url, _key(settings))
    yield Service("provider", provider, "issuer and jwks(): the ID tokens this simulator signs as NHS login")


@hookimpl
def simulator_register_routes(settings: LoginSettings, context: PluginContext) -> Router:
    login = Login(settings, _key(settings), Directory(), context.state)
    context.metrics.store("redeemed_grants", login.grants.redeemed)
    context.metrics.store("user_metadata", login.metadata)
    return router(settings, login)


@hookimpl
def simulator_register_targets(settings: LoginSettings) -> Iterable[Targets]:
    return targets(settings.root_url, Directory())


@hookimpl
def simulator_error_response() -> ErrorResponse:
    return injected_error
