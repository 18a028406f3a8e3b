"""``apim_oauth``: the NHS API platform's token endpoint, ``POST /oauth2/token``, with its real error matrix.

Registers the routes, the ``APIM_*`` settings and the generator ``apim_oauth.token_store``, whose
``generate()`` returns the :class:`~plugins.apim_oauth.tokens.TokenValidator` of the issued tokens.
"""

from __future__ import annotations

from collections.abc import Iterable

from plugins.apim_oauth.routes import routes
from plugins.apim_oauth.settings import ApimSettings
from plugins.apim_oauth.tokens import TokenStore, TokenValidator
from simulator import PluginSettings, ResponseGenerator, Route, hookimpl
from simulator.records import PluginContext


@hookimpl
def simulator_settings_class() -> type[PluginSettings]:
    return ApimSettings


@hookimpl
def simulator_register_generators(settings: ApimSettings) -> Iterable[ResponseGenerator]:
    store = TokenStore(settings.token_max_entries)

    def token_store() -> TokenValidator:
        return store

    yield ResponseGenerator(
        "token_store", token_store, "generate() -> the issued access tokens; .is_valid(token) -> bool"
    )


@hookimpl
def simulator_register_routes(settings: ApimSettings, context: PluginContext) -> Iterable[Route]:
    store = context.generator(f"{context.name}.token_store").generate()
    assert isinstance(store, TokenStore)
    return routes(settings, store)
