"""The plugin host: the one place that owns the pluggy plugin manager and calls hooks.

It discovers plugins in the ``simulator`` entry-point group, applies ``SIMULATOR_PLUGINS``, loads each
plugin's settings, collects what the plugins register, and refuses conflicts, all before the server listens.
Every problem is a :class:`~simulator.errors.StartupError` with a one-line message.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from typing import Any, TypeVar

import pluggy

from simulator import hookspecs
from simulator.delays import BUILTIN_POLICIES, DelayPolicy, DelayPolicyType, build_policy
from simulator.errors import StartupError
from simulator.http import Route
from simulator.records import PluginContext, ResponseGenerator
from simulator.settings import CoreSettings, PluginSettings, env_name, load_settings

Named = TypeVar("Named", DelayPolicyType, ResponseGenerator)

ENTRY_POINT_GROUP = "simulator"
CORE = "core"
RESERVED_PREFIX = "/_simulator"


@dataclass(frozen=True)
class Plugin:
    """One enabled plugin and everything it registered."""

    name: str
    version: str
    settings: PluginSettings | None
    delay: DelayPolicy | None
    rng: random.Random
    routes: tuple[Route, ...] = ()
    generators: tuple[ResponseGenerator, ...] = ()
    delay_policies: tuple[DelayPolicyType, ...] = ()


@dataclass(frozen=True)
class Available:
    """A discovered plugin, enabled or not (for ``simulator plugins``)."""

    name: str
    version: str
    load: Callable[[], object] = field(repr=False)


def discover() -> dict[str, Available]:
    """Every plugin installed in the ``simulator`` entry-point group, by name."""
    found: dict[str, Available] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        version = ep.dist.version if ep.dist is not None else "unknown"
        if ep.name in found:
            raise StartupError(f"two installed distributions declare the plugin {ep.name!r}")
        found[ep.name] = Available(ep.name, version, ep.load)
    return found


def select(available: Mapping[str, Available], wanted: tuple[str, ...] | None) -> list[Available]:
    """Apply ``SIMULATOR_PLUGINS``: None = all, () = none, else exactly those (unknown names refused)."""
    if wanted is None:
        return list(available.values())
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise StartupError(
            f"SIMULATOR_PLUGINS names unknown plugin(s) {', '.join(unknown)}; "
            f"available: {', '.join(sorted(available)) or '(none installed)'}"
        )
    return [available[name] for name in dict.fromkeys(wanted)]


class PluginHost:
    """Typed facade over the plugin manager; nothing else calls ``pm.hook``.

    Build it with :meth:`from_environment` (entry points + ``SIMULATOR_PLUGINS``) or, in tests and
    scaffolded plugins, with :meth:`from_plugins` and explicit plugin objects.
    """

    def __init__(self, core: CoreSettings, plugins: Iterable[tuple[str, str, object]]) -> None:
        self.core = core
        self._prefixes: dict[str, str] = {}
        self._pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self._pm.add_hookspecs(hookspecs)
        versions: dict[str, str] = {}
        for name, version, obj in plugins:
            try:
                self._pm.register(obj, name=name)
            except (pluggy.PluginValidationError, ValueError) as exc:
                raise StartupError(f"plugin {name!r} cannot be registered: {_one_line(exc)}") from None
            versions[name] = version
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            plugin = self._pm.get_name(exc.plugin) or "?"
            what = _one_line(exc).split(" in plugin ")[0]  # pluggy appends the object's repr
            raise StartupError(f"plugin {plugin!r} implements a hook that does not exist: {what}") from None
        self.plugins: dict[str, Plugin] = self._collect(versions)

    @classmethod
    def from_environment(cls, core: CoreSettings | None = None) -> PluginHost:
        core = core or load_settings(CoreSettings)
        chosen = select(discover(), core.plugins)
        return cls(core, [(p.name, p.version, _load(p)) for p in chosen])

    @classmethod
    def from_plugins(cls, plugins: Mapping[str, object], core: CoreSettings | None = None) -> PluginHost:
        core = core or load_settings(CoreSettings)
        return cls(core, [(name, _version(obj), obj) for name, obj in plugins.items()])

    # -- hook calls -----------------------------------------------------------------------------------

    def _call(self, hook_name: str, plugin: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation of a hook (None when it has none)."""
        hook = getattr(self._pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            if impl.plugin_name == plugin:
                return impl.function(*(kwargs[arg] for arg in impl.argnames))
        return None

    def _collect(self, versions: Mapping[str, str]) -> dict[str, Plugin]:
        names = list(versions)
        settings = {name: self._settings(name) for name in names}

        policy_types: dict[str, DelayPolicyType] = {t.name: t for t in BUILTIN_POLICIES}
        owners: dict[str, str] = dict.fromkeys(policy_types, CORE)
        registered_policies: dict[str, tuple[DelayPolicyType, ...]] = {}
        for name in names:
            records = self._call("simulator_register_delay_policies", name) or ()
            full = _prefixed(name, "delay policy", records, owners)
            policy_types.update((t.name, t) for t in full)
            registered_policies[name] = full

        rngs = {name: self._rng(name) for name in names}
        generators: dict[str, ResponseGenerator] = {}
        gen_owner: dict[str, str] = {}
        gens_by_plugin: dict[str, tuple[ResponseGenerator, ...]] = {}
        for name in names:
            ctx = PluginContext(name, self.core, rngs[name], generators)
            records = self._call("simulator_register_generators", name, settings=settings[name], context=ctx)
            full_gens = _prefixed(name, "generator", records or (), gen_owner)
            generators.update((g.name, g) for g in full_gens)
            gens_by_plugin[name] = full_gens

        route_owner: dict[str, str] = {}
        route_names: dict[str, str] = {}
        plugins: dict[str, Plugin] = {}
        for name in names:
            ctx = PluginContext(name, self.core, rngs[name], generators)
            routes = []
            for route in (
                self._call("simulator_register_routes", name, settings=settings[name], context=ctx) or ()
            ):
                if not isinstance(route, Route):
                    raise StartupError(
                        f"plugin {name!r} registered {route!r}, which is not a simulator Route"
                    )
                if route.path == RESERVED_PREFIX or route.path.startswith(RESERVED_PREFIX + "/"):
                    raise StartupError(
                        f"plugin {name!r} registered {route.path}: {RESERVED_PREFIX}/* is the core's"
                    )
                full_name = f"{name}.{route.name or route.path.strip('/').replace('/', '.')}"
                _claim(route_names, "route name", full_name, name)
                for method in route.methods:
                    _claim(route_owner, "route", f"{method} {route.shape}", name)
                routes.append(replace(route, name=full_name))
            plugin_settings = settings[name]
            plugins[name] = Plugin(
                name=name,
                version=versions[name],
                settings=plugin_settings,
                delay=self._delay(plugin_settings, policy_types),
                rng=rngs[name],
                routes=tuple(routes),
                generators=gens_by_plugin[name],
                delay_policies=registered_policies[name],
            )
        return plugins

    def _settings(self, name: str) -> PluginSettings | None:
        cls = self._call("simulator_settings_class", name)
        if cls is None:
            return None
        if not (isinstance(cls, type) and issubclass(cls, PluginSettings)):
            raise StartupError(
                f"plugin {name!r}: simulator_settings_class must return a PluginSettings subclass"
            )
        prefix = str(cls.model_config.get("env_prefix", "")).upper()
        if not prefix:
            raise StartupError(f"plugin {name!r}: its settings class needs an env_prefix")
        if prefix == "SIMULATOR_":
            raise StartupError(f"plugin {name!r} uses the settings prefix SIMULATOR_, which is the core's")
        for other, other_prefix in self._prefixes.items():
            if other_prefix == prefix:
                raise StartupError(f"settings prefix {prefix} is used by both plugins {other!r} and {name!r}")
        self._prefixes[name] = prefix
        return load_settings(cls)

    def _delay(
        self, settings: PluginSettings | None, types: Mapping[str, DelayPolicyType]
    ) -> DelayPolicy | None:
        if settings is None:
            return None
        cls = type(settings)
        if settings.delay is not None:
            if "delay_seconds" in settings.model_fields_set:
                raise StartupError(
                    f"set either {env_name(cls, 'delay_seconds')} or {env_name(cls, 'delay')}, not both"
                )
            try:
                return build_policy(settings.delay, types)
            except ValueError as exc:
                raise StartupError(
                    f"invalid setting {env_name(cls, 'delay')}={settings.delay!r}: {exc}"
                ) from None
        return build_policy({"policy": "fixed", "seconds": settings.delay_seconds}, types)

    def _rng(self, name: str) -> random.Random:
        seed = self.core.seed
        return random.Random(f"{seed}:{name}") if seed is not None else random.Random()

    # -- queries ----------------------------------------------------------------------------------------

    def generators(self) -> dict[str, ResponseGenerator]:
        return {g.name: g for p in self.plugins.values() for g in p.generators}


def _claim(owners: dict[str, str], kind: str, key: str, plugin: str) -> None:
    owner = owners.get(key)
    if owner is None:
        owners[key] = plugin
    elif owner == plugin:
        raise StartupError(f"{kind} {key} is registered twice by {plugin!r}")
    else:
        raise StartupError(f"{kind} {key} is registered by both {owner!r} and {plugin!r}")


def _prefixed(plugin: str, kind: str, records: Iterable[Named], owners: dict[str, str]) -> tuple[Named, ...]:
    """Records renamed ``<plugin>.<name>``, each name claimed once."""
    renamed = []
    for record in records:
        full = replace(record, name=f"{plugin}.{record.name}")
        _claim(owners, kind, full.name, plugin)
        renamed.append(full)
    return tuple(renamed)


def _load(available: Available) -> object:
    try:
        return available.load()
    except Exception as exc:
        raise StartupError(f"plugin {available.name!r} failed to import: {_one_line(exc)}") from None


def _version(obj: object) -> str:
    return str(getattr(obj, "__version__", "unknown"))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
