"""The plugin contract: every hook a plugin can implement, typed and documented.

A plugin is a module (or object) declared in the ``simulator`` entry-point group; its hook implementations
are functions decorated with :data:`hookimpl`. Every hook is optional, and an implementation may take any
subset of the hook's arguments. The host calls each plugin's implementation separately, so it knows which
plugin registered what and refuses conflicts by name; names that plugins register (routes, delay kinds,
services, target sets) get the prefix ``<plugin>.``.

Order at start-up: settings class -> delay kinds -> services -> routes -> targets -> error response, each
hook for every plugin before the next hook, so every service exists before any plugin's routes are built.

A hook that raises, returns something that is not an iterable of its records, or yields anything else stops
start-up with one line naming the plugin and the hook.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from simulator.delays import DelayKind
from simulator.faults import ErrorResponse
from simulator.records import PluginContext, Service
from simulator.routing import Route
from simulator.settings import PluginSettings
from simulator.targets import Targets

hookspec = pluggy.HookspecMarker("simulator")
hookimpl = pluggy.HookimplMarker("simulator")


@hookspec
def simulator_settings_class() -> type[PluginSettings]:
    """Declare the plugin's settings class.

    The class extends :class:`~simulator.PluginSettings` and sets its own ``env_prefix``, which no other
    plugin may share. The host builds it once at start-up from the environment; a bad value stops start-up
    with the variable's name and value. The instance is what the other hooks receive as ``settings``;
    plugins without this hook get ``None`` and cannot be delayed.

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
def simulator_register_delay_kinds() -> Iterable[DelayKind]:
    """Add kinds of delay policy that any plugin's ``<PREFIX>_DELAY`` can select.

    Built-in kinds are ``fixed``, ``uniform``, ``lognormal`` and ``percentiles``. A registered kind is
    selected by its full name, e.g. ``{"policy": "spiky.every_nth", ...}``; each plugin that selects it gets
    its own policy, built by the kind's ``build`` from the JSON object's other keys.

    Returns:
        :class:`~simulator.DelayKind` records; ``build`` raises ``ValueError`` on bad parameters.

    Example:
        A kind that is slow on every n-th request::

            @hookimpl
            def simulator_register_delay_kinds() -> Iterable[DelayKind]:
                yield DelayKind("every_nth", EveryNth.from_params, "slow on every n-th request")
    """
    raise NotImplementedError


@hookspec
def simulator_register_services(settings: PluginSettings | None, context: PluginContext) -> Iterable[Service]:
    """Share named objects with other plugins: a token store, signing keys, a patient directory.

    Another plugin looks a service up by full name and type in its own hooks:
    ``context.service("apim_oauth.tokens", TokenValidator)`` (a missing service or a wrong type stops
    start-up in one line), ``context.optional_service(...)`` (``None`` when absent) or
    ``context.services_of(TokenValidator)`` (every service of that type, whoever registered it).

    Args:
        settings: this plugin's settings instance (``None`` without a settings class).
        context: the plugin's name, core settings, seeded random generator and the services so far.

    Returns:
        :class:`~simulator.Service` records.

    Example:
        A store that other fakes ask whether a bearer token was issued here, registered as ``auth.tokens``::

            @hookimpl
            def simulator_register_services(settings: AuthSettings) -> Iterable[Service]:
                yield Service("tokens", TokenStore(settings.max_tokens), "is_valid(token) -> bool")
    """
    raise NotImplementedError


@hookspec
def simulator_register_routes(settings: PluginSettings | None, context: PluginContext) -> Iterable[Route]:
    """Register the plugin's HTTP routes: return a :class:`~simulator.Router` (or yield ``Route`` records).

    Handlers run on the hot path, so they should look things up and return
    :class:`~simulator.Response` objects built at start-up where the answer is canned. The host applies the
    plugin's delay policy to every route with ``delayed=True``, measured from the request's arrival. Paths
    under ``/_simulator`` belong to the core; a method and path shape registered twice stops start-up naming
    both plugins. Routes appear in ``/_simulator/openapi.json`` with their summaries and parameters.

    Args:
        settings: this plugin's settings instance (``None`` without a settings class).
        context: the plugin's name, core settings, seeded random generator and every registered service.

    Returns:
        A :class:`~simulator.Router` or another iterable of :class:`~simulator.Route` records.

    Example:
        A route answering ``GET /greeting`` with precomputed bytes::

            @hookimpl
            def simulator_register_routes(settings: GreetingSettings) -> Router:
                router = Router()
                hello = Response.text(settings.text)

                @router.get("/greeting")
                async def greet(request: Request) -> Response:
                    \"\"\"Say hello.\"\"\"
                    return hello

                return router
    """
    raise NotImplementedError


@hookspec
def simulator_register_targets(settings: PluginSettings | None, context: PluginContext) -> Iterable[Targets]:
    """Offer load-test targets for ``simulator targets``: requests a load generator should send.

    The core prints them in the format asked for (vegeta's http or JSON format), so a plugin describes
    requests (:class:`~simulator.HttpTarget`), not a tool's syntax. ``generate`` runs only when its set is
    printed; it may read its own command-line options (:class:`~simulator.TargetOption`).

    Args:
        settings: this plugin's settings instance (``None`` without a settings class).
        context: the plugin's name, core settings, seeded random generator and every registered service.

    Returns:
        :class:`~simulator.Targets` records.

    Example:
        ``simulator targets --kind greeting.hello -n 3`` prints three ``GET <base>/greeting`` lines::

            @hookimpl
            def simulator_register_targets() -> Iterable[Targets]:
                def hello(request: TargetRequest) -> Iterable[HttpTarget]:
                    return [HttpTarget("GET", "/greeting")] * request.count

                yield Targets("hello", hello, "GET /greeting, --count times")
    """
    raise NotImplementedError


@hookspec
def simulator_error_response(settings: PluginSettings | None, context: PluginContext) -> ErrorResponse:
    """Say what this fake API's errors look like, for fault injection (``"kind": "status"`` rules).

    Called once at start-up. The function it returns is called for each error answer a fault injects (keep
    it cheap), with the status (400 to 599) and the route's full name; it returns the
    answer the real API gives for that status: the body shape, content type and headers of its documented
    errors. The core adds ``Retry-After`` to 429 and 503 answers when the function did not. Without this
    hook a plugin's injected errors are ``{"error": <reason phrase>, "status": n, "fault": "injected"}``.

    Args:
        settings: this plugin's settings instance (``None`` without a settings class).
        context: the plugin's name, core settings, seeded random generator and every registered service.

    Returns:
        ``(status, route) -> Response``.

    Example:
        A FHIR-style API's OperationOutcome::

            @hookimpl
            def simulator_error_response() -> ErrorResponse:
                def error(status: int, route: str) -> Response:
                    issue = {"severity": "error", "code": "transient" if status >= 500 else "processing"}
                    outcome = {"resourceType": "OperationOutcome", "issue": [issue]}
                    return Response.json(outcome, status=status)

                return error
    """
    raise NotImplementedError
