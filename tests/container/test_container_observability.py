"""Metrics and the request journal of the real image: two workers under a read-only root filesystem with
nothing mounted (the workers meet over abstract Unix sockets), verified through ``SimulatorContainer``'s
helpers as a user's test would."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from simulator.testing import SimulatorContainer

pytestmark = pytest.mark.container
PATIENT = "/eligibility-signposting-api/patient-check/9686368973"


def test_journal_helpers_and_metrics_cover_both_workers_read_only(simulator_image: str) -> None:
    container = SimulatorContainer(
        simulator_image, plugins=["health", "eligibility", "apim_oauth"], workers=2
    ).with_kwargs(read_only=True)
    with container as sim:
        base = sim.get_base_url()
        assert sim.exec(["sh", "-c", "touch /tmp/probe"]).exit_code != 0  # nothing writable
        started = time.time()
        # A new connection each: the kernel spreads them over both workers.
        for i in range(30):
            answer = httpx.get(
                f"{base}{PATIENT}", headers={"X-Request-ID": f"123e4567-e89b-12d3-a456-4266141740{i:02d}"}
            )
            assert answer.status_code == 200
        for _ in range(5):
            assert httpx.get(f"{base}/eligibility-signposting-api/patient-check/123").status_code == 400
        assert httpx.post(f"{base}/oauth2/token", data={"grant_type": "x"}).status_code == 400

        assert sim.count() == 36
        assert sim.count(route="eligibility.patient_check", status=200) == 30
        assert sim.count(status="4xx") == 6
        assert sim.count(plugin="apim_oauth") == 1
        assert sim.count(since=time.time() + 60) == 0
        newest = sim.requests(route="eligibility.patient_check", status=200, limit=3)
        assert [entry["request_id"] for entry in newest] == [
            f"123e4567-e89b-12d3-a456-4266141740{i}" for i in (29, 28, 27)
        ]
        assert len({entry["worker"] for entry in sim.requests()}) == 2
        assert all(entry["time"] >= _iso(started) for entry in sim.requests())

        families = {
            f.name: f for f in text_string_to_metric_families(httpx.get(f"{base}/_simulator/metrics").text)
        }
        requests = {
            (s.labels["route"], s.labels["status"]): s.value for s in families["simulator_requests"].samples
        }
        assert requests[("eligibility.patient_check", "200")] == 30
        assert requests[("eligibility.patient_check", "400")] == 5
        assert families["simulator_workers"].samples[0].value == 2
        in_flight = {s.labels["route"]: s.value for s in families["simulator_in_flight"].samples}
        assert in_flight["eligibility.patient_check"] == 0

        assert sim.reset_journal() == 36
        assert sim.count() == 0
        assert sim.requests() == []


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(epoch)))
