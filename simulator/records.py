"""The service record plugins share objects through, and the context the host hands to every hook."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from simulator.errors import StartupError
from simulator.metrics import PluginMetrics
from simulator.settings import CoreSettings
from simulator.shared import SharedState

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Service:
    """A named object a plugin shares with other plugins (a token store, a key set, a patient directory).

    Attributes:
        name: unique across plugins; the host prefixes it with ``<plugin>.`` (``apim_oauth.tokens``).
        instance: the object itself. Its type is part of the providing plugin's documented interface:
            consumers look it up by name *and* type, usually a ``runtime_checkable`` Protocol of their own,
            so they need not import the provider.
        description: one line for the plugin listing.
    """

    name: str
    instance: object
    description: str = ""


@dataclass(frozen=True, slots=True)
class PluginContext:
    """What the host gives a plugin's hooks besides its settings.

    Attributes:
        name: the plugin's name (its entry-point name).
        core: the core ``SIMULATOR_*`` settings.
        rng: the plugin's own random generator, seeded from ``SIMULATOR_SEED`` and the plugin name when the
            seed is set, so a plugin's draws do not depend on which other plugins are enabled.
        services: every service registered so far, by full name. Every plugin's services are registered
            before any plugin's routes, so route and target hooks see them all.
        metrics: the plugin's own counters, gauges and store sizes, summed over the workers and shown at
            ``/_simulator/metrics`` (``context.metrics.store("jti", replay_cache)``).
        state: with ``SIMULATOR_STATE_URL``, what the plugin shares with every other simulator (atomic
            claims and windowed counts in Redis: :class:`~simulator.shared.SharedState`); ``None`` without.
    """

    name: str
    core: CoreSettings
    rng: random.Random
    services: Mapping[str, Service]
    metrics: PluginMetrics
    state: SharedState | None = None

    def service(self, name: str, kind: Callable[..., T]) -> T:
        """The service registered as ``name``, checked to be a ``kind``.

        ``kind`` is a class or a ``runtime_checkable`` Protocol (typed as a callable so that mypy accepts a
        Protocol here). A missing service or one of another type stops start-up with one line naming the
        registered services.
        """
        found = self.optional_service(name, kind)
        if found is None:
            raise StartupError(
                f"plugin {self.name!r} needs the service {name!r}, which no enabled plugin registers; "
                f"registered: {', '.join(sorted(self.services)) or '(none)'}",
                plugin=self.name,
            )
        return found

    def optional_service(self, name: str, kind: Callable[..., T]) -> T | None:
        """Like :meth:`service`, but ``None`` when no enabled plugin registers ``name``."""
        service = self.services.get(name)
        if service is None:
            return None
        if not _is_instance(service.instance, kind):
            raise StartupError(
                f"plugin {self.name!r} expects the service {name!r} to be a {_label(kind)}, "
                f"but it is a {type(service.instance).__name__}",
                plugin=self.name,
            )
        found: T = service.instance  # type: ignore[assignment]
        return found

    def services_of(self, kind: Callable[..., T]) -> list[T]:
        """Every registered service that is a ``kind``, in registration order (e.g. every ID-token issuer)."""
        return [s.instance for s in self.services.values() if _is_instance(s.instance, kind)]  # type: ignore[misc]


def _is_instance(obj: object, kind: Any) -> bool:
    try:
        return isinstance(obj, kind)
    except TypeError:
        raise StartupError(
            f"{_label(kind)} cannot be checked at run time: pass a class or a @runtime_checkable Protocol"
        ) from None


def _label(kind: Any) -> str:
    return getattr(kind, "__name__", repr(kind))


def frozen(mapping: Mapping[str, Service]) -> Mapping[str, Service]:
    """A read-only view, so a plugin cannot register services behind the host's back."""
    return MappingProxyType(dict(mapping))
