"""The plugin host: the one place that owns the pluggy plugin manager and calls hooks.

It discovers plugins in the ``simulator`` entry-point group, applies ``SIMULATOR_PLUGINS``, loads each
plugin's settings, collects what the plugins register, and refuses conflicts, all before the server listens.
Every problem is a :class:`~simulator.errors.StartupError` with a one-line message that names the plugin
and, for a misbehaving hook, the hook.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from typing import Any, Final, TypeVar

import pluggy

from simulator import hookspecs
from simulator.delays import BUILTIN_KINDS, DelayKind, DelayPolicy, build_policy
from simulator.errors import StartupError
from simulator.faults import ErrorResponse, FaultRule, parse_rules
from simulator.metrics import Metrics
from simulator.records import PluginContext, Service, frozen
from simulator.routing import Route
from simulator.settings import CoreSettings, PluginSettings, env_name, load_settings
from simulator.shared import SharedState
from simulator.targets import HttpTarget, TargetRequest, Targets

R = TypeVar("R")
Named = TypeVar("Named", DelayKind, Service, Targets)

ENTRY_POINT_GROUP: Final = "simulator"
CORE: Final = "core"
RESERVED_PREFIX: Final = "/_simulator"

_ABSENT: Final = object()  # "this plugin does not implement the hook"


@dataclass(frozen=True)
class Plugin:
    """One loaded plugin and everything it registered, names prefixed ``<plugin>.``."""

    name: str
    version: str
    settings: PluginSettings | None
    delay: DelayPolicy | None
    rng: random.Random
    routes: tuple[Route, ...] = ()
    # The JSON of the delay at start-up, the fault rules armed then, and the plugin's error answers.
    delay_spec: Mapping[str, Any] = field(default_factory=lambda: {"policy": "fixed", "seconds": 0})
    faults: tuple[FaultRule, ...] = ()
    error_response: ErrorResponse | None = None
    services: tuple[Service, ...] = ()
    delay_kinds: tuple[DelayKind, ...] = ()
    targets: tuple[Targets, ...] = ()


@dataclass(frozen=True)
class Installed:
    """A plugin found in the entry-point group, loaded or not."""

    name: str
    version: str
    load: Callable[[], object] = field(repr=False)


@dataclass(frozen=True)
class Inventory:
    """One installed plugin as ``simulator plugins`` lists it."""

    name: str
    version: str
    enabled: bool
    plugin: Plugin | None  # None when it is broken
    problem: str | None = None


def discover() -> dict[str, Installed]:
    """Every plugin installed in the ``simulator`` entry-point group, by name, in name order."""
    found: dict[str, Installed] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        version = ep.dist.version if ep.dist is not None else "unknown"
        if ep.name in found:
            raise StartupError(f"two installed distributions declare the plugin {ep.name!r}")
        found[ep.name] = Installed(ep.name, version, ep.load)
    return dict(sorted(found.items()))


def select(installed: Mapping[str, Installed], wanted: tuple[str, ...] | None) -> list[Installed]:
    """Apply ``SIMULATOR_PLUGINS``: None = all, () = none, else exactly those, in that order."""
    if wanted is None:
        return list(installed.values())
    unknown = [name for name in wanted if name not in installed]
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise StartupError(
            f"SIMULATOR_PLUGINS names unknown plugin(s) {', '.join(unknown[:5])}{more}; "
            f"available: {', '.join(sorted(installed)) or '(none installed)'}"
        )
    return [installed[name] for name in dict.fromkeys(wanted)]


class PluginHost:
    """Typed facade over the plugin manager: one method per hook, and nothing else calls ``pm.hook``.

    Build it with :meth:`from_environment` (entry points, ``SIMULATOR_PLUGINS``, ``os.environ``) or, in
    tests, with :meth:`from_plugins` and explicit plugin objects, settings and variables.

    Args:
        core: the core settings.
        plugins: ``(name, version, plugin object)`` for each plugin to load, in order.
        settings: settings instances to use as they are, each for the plugin whose settings class it is;
            the other plugins' settings are loaded from ``environ``.
        environ: the variables settings are read from (``os.environ`` for a server).
    """

    def __init__(
        self,
        core: CoreSettings,
        plugins: Iterable[tuple[str, str, object]],
        *,
        settings: Iterable[PluginSettings] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.core = core
        # This process's recordings: plugins register their own counters and stores in it at start-up.
        self.metrics = Metrics()
        self._environ: Mapping[str, str] = {} if environ is None else environ
        self._given = list(settings)
        self._pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self._pm.add_hookspecs(hookspecs)
        versions: dict[str, str] = {}
        for name, version, obj in plugins:
            try:
                self._pm.register(obj, name=name)
            except (pluggy.PluginValidationError, ValueError) as exc:
                raise StartupError(
                    f"plugin {name!r} cannot be registered: {_one_line(exc)}", plugin=name
                ) from None
            versions[name] = version
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            plugin = self._pm.get_name(exc.plugin) or "?"
            what = _one_line(exc).split(" in plugin ")[0]  # pluggy appends the object's repr
            raise StartupError(
                f"plugin {plugin!r} implements a hook that does not exist: {what}", plugin=plugin
            ) from None
        self._impls = {
            hook: {impl.plugin_name: impl for impl in getattr(self._pm.hook, hook).get_hookimpls()}
            for hook in _HOOKS
        }
        self.plugins: dict[str, Plugin] = self._collect(versions)
        unused = [
            type(s).__name__ for s in self._given if not any(p.settings is s for p in self.plugins.values())
        ]
        if unused:
            raise StartupError(f"settings given for no loaded plugin: {', '.join(unused)}")

    @classmethod
    def from_environment(cls, core: CoreSettings | None = None) -> PluginHost:
        """The plugins ``SIMULATOR_PLUGINS`` selects, configured from ``os.environ``."""
        core = core or load_settings(CoreSettings)
        chosen = select(discover(), core.plugins)
        return cls(core, [(p.name, p.version, _load(p)) for p in chosen], environ=os.environ)

    @classmethod
    def from_plugins(
        cls,
        plugins: Mapping[str, object],
        *,
        core: CoreSettings | None = None,
        settings: Iterable[PluginSettings] = (),
        env: Mapping[str, str] | None = None,
    ) -> PluginHost:
        """A host of these plugin objects (name -> module or object), configured by ``settings`` instances
        and ``env`` (variables parsed exactly as a server parses the environment) only: the process's own
        environment is not read."""
        core = core or load_settings(CoreSettings, env or {})
        return cls(core, [(n, _version(o), o) for n, o in plugins.items()], settings=settings, environ=env)

    # -- one method per hook ------------------------------------------------------------------------------

    def settings_class(self, plugin: str) -> type[PluginSettings] | None:
        """The plugin's ``simulator_settings_class()``, checked; None when it has none."""
        hook = "simulator_settings_class"
        cls = self._call(plugin, hook)
        if cls is _ABSENT:
            return None
        if not (isinstance(cls, type) and issubclass(cls, PluginSettings)):
            raise StartupError(
                f"plugin {plugin!r}: {hook} returned {_shown(cls)}, not a PluginSettings subclass",
                plugin=plugin,
            )
        return cls

    def delay_kinds(self, plugin: str) -> tuple[DelayKind, ...]:
        return self._records(plugin, "simulator_register_delay_kinds", DelayKind)

    def services(
        self, plugin: str, settings: PluginSettings | None, context: PluginContext
    ) -> tuple[Service, ...]:
        return self._records(
            plugin, "simulator_register_services", Service, settings=settings, context=context
        )

    def routes(
        self, plugin: str, settings: PluginSettings | None, context: PluginContext
    ) -> tuple[Route, ...]:
        return self._records(plugin, "simulator_register_routes", Route, settings=settings, context=context)

    def targets(
        self, plugin: str, settings: PluginSettings | None, context: PluginContext
    ) -> tuple[Targets, ...]:
        return self._records(
            plugin, "simulator_register_targets", Targets, settings=settings, context=context
        )

    def error_response(
        self, plugin: str, settings: PluginSettings | None, context: PluginContext
    ) -> ErrorResponse | None:
        hook = "simulator_error_response"
        made = self._call(plugin, hook, settings=settings, context=context)
        if made is _ABSENT:
            return None
        if not callable(made):
            raise StartupError(
                f"plugin {plugin!r}: {hook} returned {_shown(made)}, "
                "not a function (status, route) -> Response",
                plugin=plugin,
            )
        return made  # type: ignore[no-any-return]

    # -- queries ----------------------------------------------------------------------------------------

    def services_by_name(self) -> dict[str, Service]:
        return {s.name: s for p in self.plugins.values() for s in p.services}

    def target_sets(self) -> dict[str, Targets]:
        """Every enabled plugin's target sets, by full name, in plugin order."""
        return {t.name: t for p in self.plugins.values() for t in p.targets}

    def generate(self, targets: Targets, request: TargetRequest) -> Iterator[HttpTarget]:
        """The targets of one set; a failure is a one-line StartupError naming the plugin."""
        plugin = targets.name.partition(".")[0]
        with _attributed(plugin, f"generating the targets {targets.name}"):
            for target in targets.generate(request):
                if not isinstance(target, HttpTarget):
                    raise StartupError(f"plugin {plugin!r}: target set {targets.name} made {_shown(target)}")
                yield target

    # -- plumbing ---------------------------------------------------------------------------------------

    def _call(self, plugin: str, hook: str, **kwargs: Any) -> Any:
        """One plugin's implementation of ``hook``, called with the arguments it asks for, or _ABSENT."""
        impl = self._impls[hook].get(plugin)
        if impl is None:
            return _ABSENT
        with _attributed(plugin, f"in {hook}"):
            return impl.function(*(kwargs[arg] for arg in impl.argnames))

    def _records(self, plugin: str, hook: str, kind: type[R], **kwargs: Any) -> tuple[R, ...]:
        result = self._call(plugin, hook, **kwargs)
        if result is _ABSENT:
            return ()
        if isinstance(result, kind | str | bytes | Mapping) or not isinstance(result, Iterable):
            raise StartupError(
                f"plugin {plugin!r}: {hook} returned {_shown(result)}, not an iterable of {kind.__name__} "
                "(yield them, or return a list)",
                plugin=plugin,
            )
        records: list[R] = []
        with _attributed(plugin, f"in {hook}"):
            for item in result:
                if not isinstance(item, kind):
                    raise StartupError(
                        f"plugin {plugin!r}: {hook} yielded {_shown(item)}, which is not a {kind.__name__}"
                    )
                records.append(item)
        return tuple(records)

    def _collect(self, versions: Mapping[str, str]) -> dict[str, Plugin]:
        names = list(versions)
        prefixes: dict[str, str] = {}
        settings = {name: self._settings(name, prefixes) for name in names}

        kinds: dict[str, DelayKind] = {k.name: k for k in BUILTIN_KINDS}
        owners: dict[str, str] = dict.fromkeys(kinds, CORE)
        own_kinds = {name: _prefixed(name, "delay kind", self.delay_kinds(name), owners) for name in names}
        for records in own_kinds.values():
            kinds.update((k.name, k) for k in records)

        rngs = {name: self._rng(name) for name in names}
        url = self.core.state_url
        states = {name: SharedState(url, self.core.service_name, name) if url else None for name in names}
        self.shared_states = [state for state in states.values() if state is not None]
        services: dict[str, Service] = {}
        service_owners: dict[str, str] = {}
        own_services: dict[str, tuple[Service, ...]] = {}
        for name in names:
            context = PluginContext(
                name, self.core, rngs[name], frozen(services), self.metrics.for_plugin(name), states[name]
            )
            own_services[name] = _prefixed(
                name, "service", self.services(name, settings[name], context), service_owners
            )
            services.update((s.name, s) for s in own_services[name])

        route_owners: dict[str, str] = {}
        route_names: dict[str, str] = {}
        target_owners: dict[str, str] = {}
        plugins: dict[str, Plugin] = {}
        for name in names:
            context = PluginContext(
                name, self.core, rngs[name], frozen(services), self.metrics.for_plugin(name), states[name]
            )
            routes = [
                self._claim_route(name, route, route_owners, route_names)
                for route in self.routes(name, settings[name], context)
            ]
            targets = _prefixed(
                name, "target set", self.targets(name, settings[name], context), target_owners
            )
            plugins[name] = Plugin(
                name=name,
                version=versions[name],
                settings=settings[name],
                delay=self._delay(name, settings[name], kinds),
                rng=rngs[name],
                routes=tuple(routes),
                delay_spec=_delay_spec(settings[name]),
                faults=self._faults(name, settings[name], routes),
                error_response=self.error_response(name, settings[name], context),
                services=own_services[name],
                delay_kinds=own_kinds[name],
                targets=targets,
            )
        return plugins

    def _claim_route(self, plugin: str, route: Route, owners: dict[str, str], names: dict[str, str]) -> Route:
        if route.path == RESERVED_PREFIX or route.path.startswith(RESERVED_PREFIX + "/"):
            raise StartupError(
                f"plugin {plugin!r} registered {route.path}: {RESERVED_PREFIX}/* is the core's", plugin=plugin
            )
        full_name = f"{plugin}.{route.name or route.path.strip('/').replace('/', '.')}"
        _claim(names, "route name", full_name, plugin)
        for method in route.methods:
            _claim(owners, "route", f"{method} {route.shape}", plugin)
        return replace(route, name=full_name)

    def _settings(self, plugin: str, prefixes: dict[str, str]) -> PluginSettings | None:
        cls = self.settings_class(plugin)
        if cls is None:
            return None
        prefix = str(cls.model_config.get("env_prefix", "")).upper()
        if not prefix:
            raise StartupError(f"plugin {plugin!r}: its settings class needs an env_prefix", plugin=plugin)
        if prefix == "SIMULATOR_":
            raise StartupError(
                f"plugin {plugin!r} uses the settings prefix SIMULATOR_, which is the core's", plugin=plugin
            )
        for other, other_prefix in prefixes.items():
            if other_prefix == prefix:
                raise StartupError(
                    f"settings prefix {prefix} is used by both plugins {other!r} and {plugin!r}",
                    plugin=plugin,
                )
        prefixes[plugin] = prefix
        given = next((s for s in self._given if isinstance(s, cls)), None)
        if given is not None:
            return given
        with _attributed(plugin, "loading its settings"):
            return load_settings(cls, self._environ)

    def _delay(
        self, plugin: str, settings: PluginSettings | None, kinds: Mapping[str, DelayKind]
    ) -> DelayPolicy | None:
        if settings is None:
            return None
        cls = type(settings)
        spec = _delay_spec(settings)
        try:
            return build_policy(spec, kinds)
        except ValueError as exc:
            field = "delay" if settings.delay is not None else "delay_seconds"
            var = env_name(cls, field)
            shown = _shown_json(getattr(settings, field))
            raise StartupError(f"invalid setting {var}={shown}: {_one_line(exc)}", plugin=plugin) from None

    def _faults(
        self, plugin: str, settings: PluginSettings | None, routes: Iterable[Route]
    ) -> tuple[FaultRule, ...]:
        if settings is None or settings.faults is None:
            return ()
        try:
            return parse_rules(settings.faults, (route.name for route in routes))
        except ValueError as exc:
            var = env_name(type(settings), "faults")
            raise StartupError(
                f"invalid setting {var}={_shown(settings.faults)}: {exc}", plugin=plugin
            ) from None

    def all_delay_kinds(self) -> dict[str, DelayKind]:
        """Every delay kind by name: the built-in ones and every enabled plugin's."""
        kinds = {k.name: k for k in BUILTIN_KINDS}
        for plugin in self.plugins.values():
            kinds.update((k.name, k) for k in plugin.delay_kinds)
        return kinds

    def fault_rng(self, name: str) -> random.Random:
        """A plugin's fault generator: its own, so that arming a fault does not change the delays drawn."""
        seed = self.core.seed
        return random.Random(f"{seed}:{name}:faults") if seed is not None else random.Random()

    def _rng(self, name: str) -> random.Random:
        seed = self.core.seed
        return random.Random(f"{seed}:{name}") if seed is not None else random.Random()


def _delay_spec(settings: PluginSettings | None) -> dict[str, Any]:
    if settings is None:
        return {"policy": "fixed", "seconds": 0}
    if settings.delay is not None:
        return dict(settings.delay)
    return {"policy": "fixed", "seconds": settings.delay_seconds}


_HOOKS: Final = (
    "simulator_settings_class",
    "simulator_register_delay_kinds",
    "simulator_register_services",
    "simulator_register_routes",
    "simulator_register_targets",
    "simulator_error_response",
)


def inventory(core: CoreSettings, environ: Mapping[str, str]) -> list[Inventory]:
    """Every installed plugin, loaded together as far as possible: one that fails to import, to configure or
    to register is listed as broken with its one-line reason, and the others are loaded without it."""
    installed = discover()
    enabled = {p.name for p in select(installed, core.plugins)}
    problems: dict[str, str] = {}
    everything = core.model_copy(update={"plugins": None})
    while True:
        loaded = []
        for item in installed.values():
            if item.name in problems:
                continue
            try:
                loaded.append((item.name, item.version, _load(item)))
            except StartupError as exc:
                problems[item.name] = str(exc)
        try:
            host = PluginHost(everything, loaded, environ=environ)
            break
        except StartupError as exc:
            if exc.plugin is None or exc.plugin in problems or exc.plugin not in installed:
                raise
            problems[exc.plugin] = str(exc)
    return [
        Inventory(name, item.version, name in enabled, host.plugins.get(name), problems.get(name))
        for name, item in installed.items()
    ]


class _attributed:
    """Turns any exception raised inside into a one-line StartupError naming the plugin (and where)."""

    def __init__(self, plugin: str, where: str) -> None:
        self.plugin = plugin
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or not isinstance(exc, Exception):
            return
        if isinstance(exc, StartupError):
            if exc.plugin is None:
                exc.plugin = self.plugin
            return
        raise StartupError(
            f"plugin {self.plugin!r} failed {self.where}: {type(exc).__name__}: {_one_line(exc)}",
            plugin=self.plugin,
        ) from None


def _claim(owners: dict[str, str], kind: str, key: str, plugin: str) -> None:
    owner = owners.get(key)
    if owner is None:
        owners[key] = plugin
    elif owner == plugin:
        raise StartupError(f"{kind} {key} is registered twice by {plugin!r}", plugin=plugin)
    else:
        raise StartupError(f"{kind} {key} is registered by both {owner!r} and {plugin!r}", plugin=plugin)


def _prefixed(plugin: str, kind: str, records: Iterable[Named], owners: dict[str, str]) -> tuple[Named, ...]:
    """Records renamed ``<plugin>.<name>``, each name claimed once."""
    renamed = []
    for record in records:
        full = replace(record, name=f"{plugin}.{record.name}")
        _claim(owners, kind, full.name, plugin)
        renamed.append(full)
    return tuple(renamed)


def _load(installed: Installed) -> object:
    try:
        return installed.load()
    except Exception as exc:
        raise StartupError(
            f"plugin {installed.name!r} failed to import: {type(exc).__name__}: {_one_line(exc)}",
            plugin=installed.name,
        ) from None


def _version(obj: object) -> str:
    return str(getattr(obj, "__version__", "unknown"))


def _shown(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _shown_json(value: object, limit: int = 100) -> str:
    """A setting's value in an error message, as the JSON it was given in, cut to ``limit`` characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
