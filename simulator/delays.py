"""Delay policies: how long a plugin's responses take, measured from the request's arrival.

A policy only draws a number of seconds; the host turns it into a deadline (arrival + draw) and awaits the
time left after the handler ran, so processing time is absorbed instead of added, and thousands of delayed
requests wait on the event loop without holding a thread.
"""

from __future__ import annotations

import bisect
import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from statistics import NormalDist
from typing import Any, Protocol

MAX_SECONDS = 86_400  # the longest delay any policy may draw or take as a parameter
_Z99 = NormalDist().inv_cdf(0.99)  # 2.326...: turns a p99/median ratio into a log-normal sigma


class DelayPolicy(Protocol):
    """Draws one delay, in seconds, per request."""

    def sample(self, rng: random.Random) -> float:
        """Return the target total response time in seconds (>= 0), using only ``rng`` for randomness."""
        ...


@dataclass(frozen=True, slots=True)
class DelayKind:
    """A kind of delay policy (``fixed``, ``lognormal``...), built from the JSON object in ``<PREFIX>_DELAY``.

    A *kind* is registered once; each plugin's ``<PREFIX>_DELAY`` builds its own *policy* of that kind.

    Attributes:
        name: the value of ``"policy"`` that selects it (plugins' kinds are ``<plugin>.<name>``).
        build: turns the JSON object's other keys into a policy; raises ``ValueError`` with a readable
            message on bad parameters (start-up then stops naming the variable).
        description: one line for the plugin listing.
    """

    name: str
    build: Callable[[Mapping[str, Any]], DelayPolicy]
    description: str = ""


def _number(params: Mapping[str, Any], key: str, *, positive: bool = False) -> float:
    if key not in params:
        raise ValueError(f"missing {key!r}")
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key!r} must be a number of seconds, not {shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{key!r} must be a number of seconds, not {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{key!r} must be {'> 0' if positive else '>= 0'}, not {shown(value)}")
    if value > MAX_SECONDS:
        # A timer cannot wait for ever, and no test needs an answer after a day.
        raise ValueError(f"{key!r} must be at most {MAX_SECONDS:,} seconds (a day), not {shown(value)}")
    return float(value)


def shown(value: Any, limit: int = 40) -> str:
    """A value for an error message: its repr, cut to ``limit`` characters (a client may send megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _only(params: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}; expected {sorted(allowed)}")


@dataclass(frozen=True, slots=True)
class Fixed:
    seconds: float

    def sample(self, rng: random.Random) -> float:
        return self.seconds

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Fixed:
        _only(params, {"seconds"})
        return cls(_number(params, "seconds"))


@dataclass(frozen=True, slots=True)
class Uniform:
    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Uniform:
        _only(params, {"min", "max"})
        low, high = _number(params, "min"), _number(params, "max")
        if high < low:
            raise ValueError(f"'max' ({high}) must not be below 'min' ({low})")
        return cls(low, high)


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Log-normal set by its median and 99th percentile, the two numbers latency dashboards show."""

    median: float
    p99: float

    @property
    def sigma(self) -> float:
        return math.log(self.p99 / self.median) / _Z99

    def sample(self, rng: random.Random) -> float:
        # Its tail is unbounded: a draw past a day (possible with an extreme p99) waits a day.
        return min(rng.lognormvariate(math.log(self.median), self.sigma), MAX_SECONDS)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> LogNormal:
        _only(params, {"median", "p99"})
        median, p99 = _number(params, "median", positive=True), _number(params, "p99", positive=True)
        if p99 <= median:
            raise ValueError(f"'p99' ({p99}) must be above 'median' ({median})")
        return cls(median, p99)


_QUANTILE_KEY = re.compile(r"p(\d{1,2}(?:\.\d+)?)")


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Inverse-CDF sampling from a percentile table, linear between the given points.

    ``min`` (default 0) anchors quantile 0 and ``max`` (default: the highest percentile given) anchors
    quantile 1, so a draw never leaves [min, max].
    """

    quantiles: tuple[float, ...]
    values: tuple[float, ...]

    def sample(self, rng: random.Random) -> float:
        u = rng.random()
        i = bisect.bisect_right(self.quantiles, u)
        if i >= len(self.quantiles):
            return self.values[-1]
        q0, q1 = self.quantiles[i - 1], self.quantiles[i]
        v0, v1 = self.values[i - 1], self.values[i]
        return v0 + (v1 - v0) * (u - q0) / (q1 - q0)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Percentiles:
        points: dict[float, float] = {}
        for key in params:
            match = _QUANTILE_KEY.fullmatch(key)
            if key in ("min", "max"):
                continue
            if match is None or not 0 < float(match.group(1)) < 100:
                raise ValueError(
                    f"unknown key {key!r}; expected p<percentile> (e.g. 'p50', 'p99.9'), 'min', 'max'"
                )
            points[float(match.group(1)) / 100] = _number(params, key)
        if not points:
            raise ValueError("give at least one percentile, e.g. {'p50': 0.1, 'p99': 1.0}")
        low = _number(params, "min") if "min" in params else 0.0
        ordered = sorted(points.items())
        high = _number(params, "max") if "max" in params else ordered[-1][1]
        table = [(0.0, low), *ordered, (1.0, high)]
        for (q0, v0), (q1, v1) in pairwise(table):
            if v1 < v0:
                raise ValueError(
                    f"values must not decrease with the percentile: {_label(q0)}={v0} > {_label(q1)}={v1}"
                )
        return cls(tuple(q for q, _ in table), tuple(v for _, v in table))


def _label(q: float) -> str:
    return "min" if q == 0 else "max" if q == 1 else f"p{q * 100:g}"


BUILTIN_KINDS: tuple[DelayKind, ...] = (
    DelayKind("fixed", Fixed.from_params, 'always "seconds"'),
    DelayKind("uniform", Uniform.from_params, 'uniform between "min" and "max"'),
    DelayKind("lognormal", LogNormal.from_params, 'log-normal with "median" and "p99"'),
    DelayKind("percentiles", Percentiles.from_params, 'a table: "p50", "p90", "p99", ... "min", "max"'),
)


def build_policy(spec: Mapping[str, Any], kinds: Mapping[str, DelayKind]) -> DelayPolicy | None:
    """Build a policy from a ``<PREFIX>_DELAY`` object; None when it can never delay (fixed 0)."""
    params = dict(spec)
    name = params.pop("policy", None)
    if not isinstance(name, str):
        raise ValueError(f'needs a "policy" key, one of {sorted(kinds)}')
    if name not in kinds:
        raise ValueError(f"unknown policy {name!r}; available: {', '.join(sorted(kinds))}")
    policy = kinds[name].build(params)
    if isinstance(policy, Fixed) and policy.seconds == 0:
        return None
    return policy


def describe(policy: DelayPolicy | None) -> dict[str, Any]:
    """A JSON-able description for introspection."""
    if policy is None:
        return {"policy": "none"}
    if isinstance(policy, Fixed | Uniform | LogNormal):
        kind = type(policy).__name__.lower()
        fields = (
            {"min": policy.low, "max": policy.high}
            if isinstance(policy, Uniform)
            else {k: getattr(policy, k) for k in policy.__dataclass_fields__}
        )
        return {"policy": kind, **fields}
    if isinstance(policy, Percentiles):
        return {
            "policy": "percentiles",
            **{_label(q): v for q, v in zip(policy.quantiles, policy.values, strict=True)},
        }
    return {"policy": type(policy).__name__}
