"""Load-test targets: the patients ``patients.json`` marks ``load_test`` (the original load test's 18), and
any number of synthetic patients."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from plugins.eligibility.routes import BASE
from plugins.eligibility.scenarios import Catalog
from plugins.nhs_number import check_digit
from simulator import HttpTarget, TargetRequest, Targets

# What groups the targets in a load generator's report (locust's names, k6's name tag): one route.
ROUTE = f"{BASE}/{{nhs_number}}"


def targets(catalog: Callable[[], Catalog]) -> Iterator[Targets]:
    """The target sets; ``catalog`` loads the scenario data when a set is printed, not at start-up."""

    def patients(request: TargetRequest) -> Iterable[HttpTarget]:
        return [HttpTarget("GET", f"{BASE}/{number}", name=ROUTE) for number in catalog().load_test]

    def synthetic(request: TargetRequest) -> Iterable[HttpTarget]:
        named = set(catalog().patients)
        return (HttpTarget("GET", f"{BASE}/{n}", name=ROUTE) for n in synthetic_numbers(request, named))

    yield Targets(
        "patients",
        patients,
        "GET patient-check of every load_test patient (the original load test's 18, and your folder's)",
        default=True,
    )
    yield Targets(
        "synthetic", synthetic, "GET patient-check of --count distinct valid NHS numbers, none named"
    )


def synthetic_numbers(request: TargetRequest, named: set[str]) -> Iterator[str]:
    """``request.count`` distinct valid NHS numbers (Modulus 11), none of them a named patient."""
    seen: set[str] = set()
    rng = request.rng
    while len(seen) < request.count:
        first = f"{rng.randrange(100_000_000, 1_000_000_000)}"
        digit = check_digit(first)
        number = f"{first}{digit}"
        if digit is not None and number not in seen and number not in named:
            seen.add(number)
            yield number
