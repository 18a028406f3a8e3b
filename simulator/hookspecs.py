"""The plugin contract: every hook a plugin can implement, typed and documented.

A plugin is a module (or object) declared in the ``simulator`` entry-point group; its hook implementations
are functions decorated with :data:`hookimpl`. Every hook is optional. The host calls each plugin's
implementation separately, so it knows which plugin registered what and can refuse conflicts by name.
Names that plugins register (routes, delay policies, generators) get the prefix ``<plugin>.``.

Order at start-up: settings class -> delay policies -> generators -> routes.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from simulator.delays import DelayPolicyType
from simulator.http import Route
from simulator.records import PluginContext, ResponseGenerator
from simulator.settings import PluginSettings

hookspec = pluggy.HookspecMarker("simulator")
hookimpl = pluggy.HookimplMarker("simulator")


@hookspec
def simulator_settings_class() -> type[PluginSettings]:
    """Declare the plugin's settings class.

    The class extends :class:`~simulator.settings.PluginSettings` and sets its own ``env_prefix``, which no
    other plugin may share. The host instantiates it once at start-up; a bad value stops start-up with the
    variable's name and value. The instance is what the other hooks receive as ``settings``; plugins
    without this hook get ``None`` and cannot be delayed.

    Returns:
        The settings class (not an instance).

    Example:
        A plugin with prefix ``GREETING_`` and one field, so ``GREETING_TEXT=hi`` configures it::

            class GreetingSettings(PluginSettings):
                model_config = SettingsConfigDict(env_prefix="GREETING_")
                text: str = "hello"

            @hookimpl
            def simulator_settings_class() -> type[PluginSettings]:
                return GreetingSettings
    """
    raise NotImplementedError


@hookspec
def simulator_register_delay_policies() -> Iterable[DelayPolicyType]:
    """Add kinds of delay policy that any plugin's ``<PREFIX>_DELAY`` can select.

    Built-in kinds are ``fixed``, ``uniform``, ``lognormal`` and ``percentiles``. A registered kind is
    selected by its full name, e.g. ``{"policy": "spiky.every_nth", ...}``.

    Returns:
        :class:`~simulator.delays.DelayPolicyType` records; ``build`` raises ``ValueError`` on bad params.

    Example:
        A policy that is slow on every 10th request::

            @hookimpl
            def simulator_register_delay_policies():
                yield DelayPolicyType("every_nth", EveryNth.from_params, "slow on every n-th request")
    """
    raise NotImplementedError


@hookspec
def simulator_register_generators(
    settings: PluginSettings | None, context: PluginContext
) -> Iterable[ResponseGenerator]:
    """Register named response generators that routes of this and other plugins can look up.

    A generator produces response content (a synthetic patient, an access token) behind a small,
    documented callable, so another fake API can reuse it through ``context.generator(name)``.

    Args:
        settings: this plugin's settings instance (``None`` without a settings class).
        context: the plugin's name, core settings, seeded random generator and the generators so far.

    Returns:
        :class:`~simulator.records.ResponseGenerator` records.

    Example:
        ``yield ResponseGenerator("token", lambda: secrets.token_urlsafe(24), "an opaque token")``
        registers ``<plugin>.token``.
    """
    raise NotImplementedError


@hookspec
def simulator_register_routes(settings: PluginSettings | None, context: PluginContext) -> Iterable[Route]:
    """Register the plugin's HTTP routes.

    Handlers are ``async def handler(request: Request) -> Response``; they run on the hot path, so they
    should look things up and return :class:`~simulator.http.Response` objects built at start-up where the
    answer is canned. The host applies the plugin's delay policy to every route with ``delayed=True``,
    measured from the request's arrival. Paths under ``/_simulator`` belong to the core; a method and path
    shape registered twice stops start-up naming both plugins.

    Args:
        settings: this plugin's settings instance (``None`` without a settings class).
        context: the plugin's name, core settings, seeded random generator and every registered generator.

    Returns:
        :class:`~simulator.http.Route` records.

    Example:
        A route answering ``GET /greeting`` with precomputed bytes::

            @hookimpl
            def simulator_register_routes(settings):
                hello = Response.text(settings.text)

                async def greet(request: Request) -> Response:
                    return hello

                yield Route("/greeting", greet, name="greet", summary="say hello")
    """
    raise NotImplementedError
