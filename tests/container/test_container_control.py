"""Steering the real image while it runs, through ``SimulatorContainer``'s control helpers, as a user's
test would: two workers, read-only root filesystem."""

from __future__ import annotations

import time

import httpx
import pytest

from simulator.testing import SimulatorContainer

pytestmark = pytest.mark.container
PATIENT = "/eligibility-signposting-api/patient-check/9686368973"


def test_delays_and_faults_change_in_every_worker_and_reset(simulator_image: str) -> None:
    container = SimulatorContainer(simulator_image, plugins=["health", "eligibility"], workers=2)
    with container.with_kwargs(read_only=True) as sim:
        base = sim.get_base_url()
        sim.set_faults("eligibility", [{"kind": "status", "status": 503, "probability": 1}])
        # A new connection each: the kernel spreads them over both workers, and each has the rule.
        answers = [httpx.get(f"{base}{PATIENT}") for _ in range(20)]
        assert {a.status_code for a in answers} == {503}
        assert answers[0].json()["resourceType"] == "OperationOutcome"
        assert answers[0].headers["retry-after"] == "1"
        assert len({e["worker"] for e in sim.requests(status=503)}) == 2
        sim.set_faults("eligibility", [])
        sim.set_delay("eligibility", 0.3, route="eligibility.patient_check")
        started = time.monotonic()
        assert httpx.get(f"{base}{PATIENT}").status_code == 200
        assert time.monotonic() - started >= 0.3
        sim.reset()
        assert httpx.get(f"{base}{PATIENT}").status_code == 200
        assert sim.requests(limit=1)[0]["delay_asked"] == 0


def test_without_an_admin_token_changes_are_refused(simulator_image: str) -> None:
    with SimulatorContainer(simulator_image, plugins=["eligibility"], admin_token=None) as sim:
        with pytest.raises(AssertionError, match=r"403.*SIMULATOR_ADMIN_TOKEN"):
            sim.set_delay("eligibility", 1)
        assert httpx.get(f"{sim.get_base_url()}{PATIENT}").status_code == 200
