"""Delay policies draw what they promise: checked statistically with a fixed seed."""

from __future__ import annotations

import math
import random
import re
import statistics

import pytest

from simulator.delays import BUILTIN_KINDS, Fixed, LogNormal, Percentiles, Uniform, build_policy

TYPES = {t.name: t for t in BUILTIN_KINDS}
N = 40_000


def draws(spec: dict[str, object], n: int = N) -> list[float]:
    policy = build_policy(spec, TYPES)
    assert policy is not None
    rng = random.Random(1234)
    return sorted(policy.sample(rng) for _ in range(n))


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def test_fixed_always_draws_its_value() -> None:
    assert set(draws({"policy": "fixed", "seconds": 0.25}, 100)) == {0.25}


def test_fixed_zero_means_no_delay_at_all() -> None:
    assert build_policy({"policy": "fixed", "seconds": 0}, TYPES) is None


def test_uniform_stays_in_range_and_is_flat() -> None:
    values = draws({"policy": "uniform", "min": 0.1, "max": 0.5})
    assert min(values) >= 0.1
    assert max(values) <= 0.5
    assert statistics.fmean(values) == pytest.approx(0.3, abs=0.005)
    assert quantile(values, 0.25) == pytest.approx(0.2, abs=0.01)


def test_lognormal_hits_its_median_and_p99() -> None:
    values = draws({"policy": "lognormal", "median": 0.2, "p99": 1.5})
    assert quantile(values, 0.5) == pytest.approx(0.2, rel=0.03)
    assert quantile(values, 0.99) == pytest.approx(1.5, rel=0.08)


def test_percentiles_reproduce_the_table_and_stay_within_min_max() -> None:
    table = {"p50": 0.12, "p90": 0.3, "p99": 1.2, "max": 3.0}
    values = draws({"policy": "percentiles", **table})
    assert quantile(values, 0.5) == pytest.approx(0.12, rel=0.03)
    assert quantile(values, 0.9) == pytest.approx(0.3, rel=0.03)
    assert quantile(values, 0.99) == pytest.approx(1.2, rel=0.05)
    assert min(values) >= 0
    assert max(values) <= 3.0
    # Linear between points: the median of the p50..p90 band is their midpoint.
    assert quantile(values, 0.7) == pytest.approx(0.21, rel=0.03)


def test_percentiles_without_max_cap_at_the_highest_percentile() -> None:
    values = draws({"policy": "percentiles", "min": 0.05, "p50": 0.1, "p99": 0.4})
    assert min(values) >= 0.05
    assert max(values) == pytest.approx(0.4)


def test_same_seed_same_draws() -> None:
    spec = {"policy": "lognormal", "median": 0.1, "p99": 1.0}
    assert draws(spec, 50) == draws(spec, 50)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"seconds": 1}, 'needs a "policy"'),
        (
            {"policy": "gaussian"},
            "unknown policy 'gaussian'; available: fixed, lognormal, percentiles, uniform",
        ),
        ({"policy": "fixed", "seconds": -1}, "'seconds' must be >= 0"),
        ({"policy": "fixed", "seconds": "2"}, "must be a number"),
        ({"policy": "fixed", "seconds": 1, "jitter": 2}, "unknown key(s) 'jitter'"),
        ({"policy": "uniform", "min": 2, "max": 1}, "must not be below"),
        ({"policy": "lognormal", "median": 1, "p99": 0.5}, "must be above 'median'"),
        ({"policy": "lognormal", "median": 0, "p99": 0.5}, "'median' must be > 0"),
        ({"policy": "percentiles"}, "at least one percentile"),
        ({"policy": "percentiles", "p50": 1, "p90": 0.5}, "must not decrease"),
        ({"policy": "percentiles", "p100": 1}, "unknown key 'p100'"),
        ({"policy": "percentiles", "median": 1}, "unknown key 'median'"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build_policy(spec, TYPES)


def test_lognormal_sigma_comes_from_the_p99_ratio() -> None:
    policy = LogNormal(median=1.0, p99=math.e)
    assert policy.sigma == pytest.approx(1 / 2.3263, rel=1e-3)
    assert isinstance(Fixed.from_params({"seconds": 1}), Fixed)
    assert isinstance(Uniform.from_params({"min": 0, "max": 1}), Uniform)
    assert isinstance(Percentiles.from_params({"p50": 1}), Percentiles)


@pytest.mark.parametrize("seconds", [86_400.5, 1e306, 10**400])
def test_a_delay_is_at_most_a_day(seconds: float) -> None:
    # A timer cannot wait for ever (1e306 s overflowed every request); a 400-digit number is not a float.
    with pytest.raises(ValueError, match="at most 86,400 seconds"):
        build_policy({"policy": "fixed", "seconds": seconds}, {k.name: k for k in BUILTIN_KINDS})
