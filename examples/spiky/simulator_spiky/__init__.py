"""``spiky``: an example third-party plugin, installed from its own distribution.

It serves ``GET /spiky/quote`` (and ``GET /spiky/quotes/{index}``), shares its quote book as the service
``spiky.quotes`` and registers a delay kind ``spiky.every_nth`` (fast, but slow on every n-th request: the
latency spikes of a real dependency). It uses nothing but the simulator's public surface.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from itertools import count
from typing import Any

from simulator import (
    DelayKind,
    PluginContext,
    PluginSettings,
    Request,
    Response,
    Router,
    Service,
    SettingsConfigDict,
    hookimpl,
)

__version__ = "0.3.0"

QUOTES = ("Simple is better than complex.", "Errors should never pass silently.", "Now is better than never.")


class SpikySettings(PluginSettings):
    """``SPIKY_DELAY_SECONDS`` / ``SPIKY_DELAY`` come from PluginSettings."""

    model_config = SettingsConfigDict(env_prefix="SPIKY_")


class QuoteBook:
    """The shared service: quotes, and a random pick from the plugin's seeded generator."""

    def __init__(self, quotes: Iterable[str], rng: random.Random) -> None:
        self.quotes = tuple(quotes)
        self._rng = rng

    def pick(self) -> str:
        return self._rng.choice(self.quotes)


class EveryNth:
    """``fast`` seconds, except every ``n``-th draw which takes ``slow`` seconds."""

    def __init__(self, n: int, fast: float, slow: float) -> None:
        self.n, self.fast, self.slow = n, fast, slow
        self._count = count(1)

    def sample(self, rng: random.Random) -> float:
        return self.slow if next(self._count) % self.n == 0 else self.fast

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> EveryNth:
        n = params.get("n")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"'n' must be a positive integer, not {n!r}")
        fast, slow = params.get("fast", 0.0), params.get("slow", 1.0)
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 3600 for v in (fast, slow)
        ):
            raise ValueError("'fast' and 'slow' must be seconds, 0 to 3600")
        return cls(n, float(fast), float(slow))


@hookimpl
def simulator_settings_class() -> type[PluginSettings]:
    return SpikySettings


@hookimpl
def simulator_register_delay_kinds() -> Iterable[DelayKind]:
    yield DelayKind("every_nth", EveryNth.from_params, 'fast, but "slow" on every "n"-th request')


@hookimpl
def simulator_register_services(context: PluginContext) -> Iterable[Service]:
    yield Service("quotes", QuoteBook(QUOTES, context.rng), "a QuoteBook: .quotes, .pick()")


@hookimpl
def simulator_register_routes(context: PluginContext) -> Router:
    book = context.service("spiky.quotes", QuoteBook)
    # Canned bodies built once; the handlers only pick one.
    answers = {quote: Response.json({"quote": quote}) for quote in book.quotes}
    missing = Response.json({"error": "no such quote"}, status=404)
    router = Router(prefix="/spiky")

    @router.get("/quote")
    async def quote(request: Request) -> Response:
        """A random quote."""
        return answers[book.pick()]

    @router.get("/quotes/{index}")
    async def quote_by_index(request: Request, index: int) -> Response:
        """The quote at ``index`` (0-based); 404 past the end, 422 when it is not a number."""
        return answers[book.quotes[index]] if 0 <= index < len(book.quotes) else missing

    return router
