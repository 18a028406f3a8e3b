"""``spiky``: an example third-party plugin, installed from its own distribution.

It serves ``GET /spiky/quote``, registers the generator ``spiky.quote`` and a delay policy
``spiky.every_nth`` (fast, but slow on every n-th request: the latency spikes of a real dependency).
"""

from collections.abc import Iterable
from itertools import count
from typing import Any

from pydantic_settings import SettingsConfigDict

from simulator import (
    DelayPolicyType,
    PluginSettings,
    Request,
    Response,
    ResponseGenerator,
    Route,
    hookimpl,
)
from simulator.records import PluginContext

__version__ = "0.2.0"

QUOTES = ("Simple is better than complex.", "Errors should never pass silently.", "Now is better than never.")


class SpikySettings(PluginSettings):
    """``SPIKY_DELAY_SECONDS`` / ``SPIKY_DELAY`` come from PluginSettings."""

    model_config = SettingsConfigDict(env_prefix="SPIKY_")


class EveryNth:
    """``fast`` seconds, except every ``n``-th draw which takes ``slow`` seconds."""

    def __init__(self, n: int, fast: float, slow: float) -> None:
        self.n, self.fast, self.slow = n, fast, slow
        self._count = count(1)

    def sample(self, rng: Any) -> float:
        return self.slow if next(self._count) % self.n == 0 else self.fast

    @classmethod
    def from_params(cls, params: Any) -> "EveryNth":
        n = params.get("n")
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"'n' must be a positive integer, not {n!r}")
        fast, slow = params.get("fast", 0.0), params.get("slow", 1.0)
        if not all(isinstance(v, int | float) and v >= 0 for v in (fast, slow)):
            raise ValueError("'fast' and 'slow' must be seconds >= 0")
        return cls(n, float(fast), float(slow))


@hookimpl
def simulator_settings_class() -> type[PluginSettings]:
    return SpikySettings


@hookimpl
def simulator_register_delay_policies() -> Iterable[DelayPolicyType]:
    yield DelayPolicyType("every_nth", EveryNth.from_params, 'fast, but "slow" on every "n"-th request')


@hookimpl
def simulator_register_generators(context: PluginContext) -> Iterable[ResponseGenerator]:
    yield ResponseGenerator("quote", lambda: context.rng.choice(QUOTES), "a random quote")


@hookimpl
def simulator_register_routes(context: PluginContext) -> Iterable[Route]:
    # Canned bodies built once; the handler only picks one.
    answers = {quote: Response.json({"quote": quote}) for quote in QUOTES}
    quote = context.generator("spiky.quote").generate

    async def get_quote(request: Request) -> Response:
        return answers[quote()]

    yield Route("/spiky/quote", get_quote, name="quote", summary="a random quote")
