"""The eligibility fake in a real ``simulator serve`` process: delays and a user's scenario folder."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import Serve

pytestmark = pytest.mark.server

PATH = "/eligibility-signposting-api/patient-check/"


def timed(url: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = httpx.get(url, timeout=10)
    return response, time.perf_counter() - started


def test_elid_delay_seconds_delays_patient_check_but_not_health_checks(serve: Serve) -> None:
    base = serve({"SIMULATOR_PLUGINS": "health,eligibility", "ELID_DELAY_SECONDS": "1"})
    response, took = timed(f"{base}{PATH}9686368973")
    assert response.status_code == 200
    assert 1.0 <= took < 1.5
    for path in ("/health", f"{PATH}_status", "/nbs"):
        response, took = timed(base + path)
        assert response.status_code == 200
        assert took < 0.2, path


def test_delays_are_awaited_so_concurrent_requests_overlap(serve: Serve) -> None:
    base = serve({"SIMULATOR_PLUGINS": "eligibility", "ELID_DELAY_SECONDS": "1"})

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            responses = await asyncio.gather(*(http.get(f"{PATH}{n}") for n in ["9686368973"] * 50))
        return [r.status_code for r in responses]

    started = time.perf_counter()
    statuses = asyncio.run(burst())
    took = time.perf_counter() - started
    assert statuses == [200] * 50
    assert took < 2.0


def test_a_scenarios_folder_adds_a_patient_without_a_rebuild(serve: Serve, tmp_path: Path) -> None:
    # The original fake's file format: the 200 body with @@NBS_URL@@ where booking links go.
    body = {
        "responseId": "00000000-0000-4000-8000-000000000000",
        "meta": {"lastUpdated": "2025-01-01T00:00:00Z"},
        "processedSuggestions": [
            {
                "condition": "FLU",
                "status": "Actionable",
                "statusText": "You should have the flu vaccine",
                "eligibilityCohorts": [],
                "suitabilityRules": [],
                "actions": [{"actionType": "ButtonWithAuthLink", "urlLink": "@@NBS_URL@@/flu"}],
            }
        ],
    }
    (tmp_path / "9434765919.json").write_text(json.dumps(body))
    base = serve({"ELID_SCENARIOS_DIR": str(tmp_path), "NBS_URL": "http://nbs.local:9123/nbs"})
    response = httpx.get(f"{base}{PATH}9434765919", headers={"X-Correlation-ID": "load-1"})
    assert response.status_code == 200
    assert response.headers["x-correlation-id"] == "load-1"
    got = response.json()
    assert got["processedSuggestions"][0]["condition"] == "FLU"
    assert got["processedSuggestions"][0]["actions"][0]["urlLink"] == "http://nbs.local:9123/nbs/flu"


def test_two_workers_agree_on_synthetic_patients(serve: Serve) -> None:
    base = serve({"SIMULATOR_PLUGINS": "eligibility", "SIMULATOR_WORKERS": "2"})
    numbers = ["9434765919", "9434765870", "9449304130", "9449305552", "9912003888"]
    # A new connection per request, so the kernel spreads them over both workers.
    with httpx.Client(base_url=base, timeout=10, headers={"Connection": "close"}) as http:
        rounds = [
            [json.dumps(http.get(PATH + n).json()["processedSuggestions"]) for n in numbers]
            for _ in range(10)
        ]
    assert all(answers == rounds[0] for answers in rounds)
