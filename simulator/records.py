"""Small frozen records that hooks return, and the context the host hands to plugins."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from simulator.settings import CoreSettings


@dataclass(frozen=True, slots=True)
class ResponseGenerator:
    """A named producer of response content that routes (of any plugin) can look up.

    Attributes:
        name: unique across plugins; the host prefixes it with ``<plugin>.``.
        generate: the producer; its signature is part of the plugin's documented interface.
        description: one line for the plugin listing.
    """

    name: str
    generate: Callable[..., Any]
    description: str = ""


@dataclass(frozen=True, slots=True)
class PluginContext:
    """What the host gives a plugin besides its settings.

    Attributes:
        name: the plugin's name (its entry-point name).
        core: the core ``SIMULATOR_*`` settings.
        rng: the plugin's own random generator, seeded from ``SIMULATOR_SEED`` and the plugin name when the
            seed is set, so a plugin's draws do not depend on which other plugins are enabled.
        generators: every generator registered so far, by full name (``<plugin>.<name>``).
    """

    name: str
    core: CoreSettings
    rng: random.Random
    generators: Mapping[str, ResponseGenerator]

    def generator(self, name: str) -> ResponseGenerator:
        """The generator registered as ``name``; ``KeyError`` naming the known ones otherwise."""
        try:
            return self.generators[name]
        except KeyError:
            raise KeyError(f"no generator {name!r}; registered: {sorted(self.generators)}") from None
