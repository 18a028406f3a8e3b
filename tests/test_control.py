"""The control API in-process: credentials, validation, delays and status faults with each fake's own
errors, and how they show in metrics and the journal."""

from __future__ import annotations

import math
import random
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

import plugins.apim_oauth
import plugins.eligibility
import plugins.health
import plugins.nhs_login
from simulator.errors import StartupError
from simulator.faults import parse_rules
from simulator.testing import AsyncSimulatorClient

TOKEN = "a-test-admin-token-0123456789"
ADMIN = {"authorization": f"Bearer {TOKEN}"}
PATIENT = "/eligibility-signposting-api/patient-check/9686368973"
ELIGIBILITY = {"eligibility": plugins.eligibility}


def binomial_bounds(n: int, p: float, z: float = 3.29) -> tuple[float, float]:
    """The 99.9 % interval of a binomial count (normal approximation; n p is >= 100 here)."""
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    return mean - z * sd, mean + z * sd


async def test_writes_are_refused_without_the_admin_token_and_change_nothing() -> None:
    async with AsyncSimulatorClient(ELIGIBILITY) as client:
        refused = await client.put(
            "/_simulator/plugins/eligibility/delay", json={"policy": "fixed", "seconds": 1}
        )
        assert refused.status_code == 403
        assert "SIMULATOR_ADMIN_TOKEN" in refused.json()["detail"]
        assert (await client.post("/_simulator/reset")).status_code == 403
    async with AsyncSimulatorClient(ELIGIBILITY, env={"SIMULATOR_ADMIN_TOKEN": TOKEN}) as client:
        body = {"policy": "fixed", "seconds": 1}
        for headers in ({}, {"authorization": "Bearer wrong-token-wrong-token"}, {"authorization": TOKEN}):
            answer = await client.put("/_simulator/plugins/eligibility/delay", json=body, headers=headers)
            assert answer.status_code == 401, headers
            assert answer.headers["www-authenticate"].startswith("Bearer")
            faults = await client.put("/_simulator/plugins/eligibility/faults", json=[], headers=headers)
            assert faults.status_code == 401
        delay = (await client.get("/_simulator/plugins/eligibility/delay")).json()
        assert delay["version"] == 0
        assert delay["in_force"]["eligibility.patient_check"] == {"policy": "none"}


async def test_a_delay_change_is_in_force_for_the_next_request() -> None:
    async with AsyncSimulatorClient(ELIGIBILITY, env={"SIMULATOR_ADMIN_TOKEN": TOKEN}) as client:
        changed = await client.put(
            "/_simulator/plugins/eligibility/delay",
            json={"policy": "fixed", "seconds": 0.2, "route": "eligibility.patient_check"},
            headers=ADMIN,
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["workers"] == 1
        in_force = changed.json()["in_force"]
        assert in_force["eligibility.patient_check"] == {"policy": "fixed", "seconds": 0.2}
        assert in_force["eligibility.status"] == {"policy": "none", "undelayed": True}
        assert (await client.get(PATIENT)).status_code == 200
        (entry,) = (await client.get("/_simulator/requests")).json()["requests"]
        assert entry["delay_asked"] == 0.2
        assert entry["latency"] >= 0.2
        reset = await client.post("/_simulator/reset", headers=ADMIN)
        assert reset.status_code == 200
        delay = (await client.get("/_simulator/plugins/eligibility/delay")).json()
        assert delay["in_force"]["eligibility.patient_check"] == {"policy": "none"}
        assert delay["routes"] == {}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"policy": "nope"}', "unknown policy"),
        (b'{"policy": "fixed", "seconds": -1}', ">= 0"),
        (b'{"policy": "fixed", "seconds": 1e400}', "not JSON"),
        (
            b'{"policy": "fixed", "seconds": 1, "route": "eligibility.nope"}',
            "not one of this plugin's routes",
        ),
        (b'{"policy": "fixed", "seconds": 1, "route": 7}', "not one of this plugin's routes"),
    ],
)
async def test_bad_delays_get_422_with_the_reason(body: bytes, reason: str) -> None:
    async with AsyncSimulatorClient(ELIGIBILITY, env={"SIMULATOR_ADMIN_TOKEN": TOKEN}) as client:
        answer = await client.put("/_simulator/plugins/eligibility/delay", content=body, headers=ADMIN)
        assert answer.status_code == 422, answer.text
        assert reason in answer.json()["detail"]


def test_fault_rules_are_validated_with_the_rule_named() -> None:
    routes = ["p.a", "p.b"]
    assert parse_rules([], routes) == ()
    (rule,) = parse_rules([{"kind": "status", "status": 503, "probability": 0.5}], routes)
    assert rule.as_json() == {"kind": "status", "probability": 0.5, "status": 503, "retry_after": 1}
    for bad, reason in (
        ({"kind": "boom", "probability": 0.1}, "'kind' must be one of"),
        ({"kind": "status", "probability": 0.1}, "'status' must be an integer from 400 to 599"),
        ({"kind": "status", "status": 200, "probability": 0.1}, "from 400 to 599"),
        ({"kind": "reset", "probability": 1.5}, "from 0 to 1"),
        ({"kind": "reset", "probability": float("nan")}, "must be a number"),
        ({"kind": "reset"}, "'probability' is required"),
        ({"kind": "hang", "probability": 0.1, "seconds": 601}, "from 0 to 600"),
        ({"kind": "reset", "probability": 0.1, "seconds": 1}, "unknown key(s) for kind 'reset': seconds"),
        ({"kind": "close", "probability": 0.1, "route": "p.c"}, "not one of this plugin's routes"),
        ("reset", "a rule is a JSON object"),
    ):
        with pytest.raises(ValueError, match="rule 1: ") as raised:
            parse_rules([{"kind": "close", "probability": 0}, bad], routes)
        assert reason in str(raised.value), raised.value
    with pytest.raises(ValueError, match=r"add up to 1\.2"):
        parse_rules([{"kind": "reset", "probability": 0.6}, {"kind": "close", "probability": 0.6}], routes)
    with pytest.raises(ValueError, match="JSON list"):
        parse_rules({"kind": "reset"}, routes)
    with pytest.raises(ValueError, match="at most 64"):
        parse_rules([{"kind": "reset", "probability": 0}] * 65, routes)


async def test_start_up_faults_are_validated_in_one_line() -> None:
    env = {"ELID_FAULTS": '[{"kind": "status", "status": 700, "probability": 0.1}]'}
    with pytest.raises(StartupError) as raised:
        async with AsyncSimulatorClient(ELIGIBILITY, env=env):
            pass
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("invalid setting ELID_FAULTS=")
    assert "rule 0: 'status' must be an integer from 400 to 599" in message


async def test_status_faults_fire_at_their_rate_with_the_fakes_own_errors() -> None:
    env = {
        "SIMULATOR_SEED": "7",
        "ELID_FAULTS": '[{"kind": "status", "status": 503, "probability": 0.1, "retry_after": 3}]',
    }
    async with AsyncSimulatorClient(ELIGIBILITY, env=env) as client:
        statuses = []
        for _ in range(2000):
            answer = await client.get(PATIENT)
            statuses.append(answer.status_code)
            if answer.status_code == 503:
                error = answer
        low, high = binomial_bounds(2000, 0.1)
        assert low <= statuses.count(503) <= high, statuses.count(503)
        assert statuses.count(200) == 2000 - statuses.count(503)
        assert error.headers["retry-after"] == "3"
        assert error.headers["content-type"] == "application/fhir+json"
        outcome = error.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["details"]["coding"][0]["code"] == "SERVICE_UNAVAILABLE"
        text = (await client.get("/_simulator/metrics")).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        (fired,) = families["simulator_faults"].samples
        assert fired.labels == {
            "plugin": "eligibility",
            "route": "eligibility.patient_check",
            "kind": "status",
        }
        assert fired.value == statuses.count(503)
        armed = {s.labels["route"]: s.value for s in families["simulator_fault_probability"].samples}
        assert armed["eligibility.patient_check"] == pytest.approx(0.1)
        # Requests a fault fired on are not latency samples: the histograms count the 200s only.
        (delivered,) = [
            s
            for s in families["simulator_response_seconds"].samples
            if s.name.endswith("_count") and s.labels["route"] == "eligibility.patient_check"
        ]
        assert delivered.value == statuses.count(200)
        journal = (await client.get("/_simulator/requests", params={"status": "503", "limit": 1})).json()
        assert journal["requests"][0]["fault"] == "status"


async def test_the_same_seed_fires_the_same_faults() -> None:
    async def fired(seed: str) -> list[int]:
        env = {
            "SIMULATOR_SEED": seed,
            "ELID_FAULTS": '[{"kind": "status", "status": 500, "probability": 0.3}]',
        }
        async with AsyncSimulatorClient(ELIGIBILITY, env=env) as client:
            return [(await client.get(PATIENT)).status_code for _ in range(200)]

    assert await fired("11") == await fired("11")
    assert await fired("11") != await fired("12")


@pytest.mark.parametrize(
    ("plugin", "module", "path", "method", "status", "check"),
    [
        ("apim_oauth", plugins.apim_oauth, "/oauth2/token", "POST", 429, "policy"),
        ("apim_oauth", plugins.apim_oauth, "/oauth2/token", "POST", 500, "error"),
        ("nhs_login", plugins.nhs_login, "/token", "POST", 503, "error"),
        ("health", plugins.health, "/health", "GET", 502, "error"),
    ],
)
async def test_each_fake_answers_an_injected_status_in_its_own_shape(
    plugin: str, module: Any, path: str, method: str, status: int, check: str
) -> None:
    async with AsyncSimulatorClient({plugin: module}, env={"SIMULATOR_ADMIN_TOKEN": TOKEN}) as client:
        rules = [{"kind": "status", "status": status, "probability": 1}]
        armed = await client.put(f"/_simulator/plugins/{plugin}/faults", json=rules, headers=ADMIN)
        assert armed.status_code == 200, armed.text
        assert armed.json()["armed"][0]["probability"] == 1
        answer = await client.request(method, path)
        assert answer.status_code == status
        body = answer.json()
        assert check in body
        if plugin == "apim_oauth" and status == 429:
            assert body["policy"] == "quota"
            assert body["message_id"]
        elif plugin == "apim_oauth":
            assert body["error"] == "unknown_error"
        elif plugin == "nhs_login":
            assert body["error"] == "temporarily_unavailable"
            assert answer.headers["retry-after"] == "1"
        else:
            assert body == {"error": "Bad Gateway", "status": 502, "fault": "injected"}
        disarmed = await client.put(f"/_simulator/plugins/{plugin}/faults", json=[], headers=ADMIN)
        assert disarmed.json()["armed"] == []
        assert (await client.request(method, path)).status_code != status


async def test_fuzzed_control_bodies_never_get_a_500() -> None:
    rng = random.Random(5)
    atoms: list[Any] = [None, True, 0, -1, 1.5, 1e308, "x" * 300, "", "status", "fixed", [], {}]
    keys = ["kind", "probability", "status", "seconds", "route", "policy", "retry_after", "min", "max", "p99"]

    def value(depth: int) -> Any:
        if depth > 3 or rng.random() < 0.5:
            return rng.choice(atoms)
        if rng.random() < 0.5:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return {rng.choice(keys): value(depth + 1) for _ in range(rng.randrange(5))}

    async with AsyncSimulatorClient(ELIGIBILITY, env={"SIMULATOR_ADMIN_TOKEN": TOKEN}) as client:
        bodies = [orjson.dumps(value(0)) for _ in range(300)]
        bodies += [
            b"\xff\xfe",
            b"[" * 5000,
            b'{"policy": "fixed", "seconds": ' + b"9" * 5000 + b"}",
            b"x" * 70_000,
        ]
        for index, body in enumerate(bodies):
            for what in ("delay", "faults", "capacity"):
                answer = await client.put(
                    f"/_simulator/plugins/eligibility/{what}", content=body, headers=ADMIN
                )
                assert answer.status_code < 500, (index, body[:200], answer.text)
        assert (await client.put("/_simulator/plugins/nope/delay", json={}, headers=ADMIN)).status_code == 404
        assert (await client.get(PATIENT)).status_code in (200, *range(400, 600))


async def test_capacity_models_are_validated_and_shown() -> None:
    async with AsyncSimulatorClient(ELIGIBILITY, env={"SIMULATOR_ADMIN_TOKEN": TOKEN}) as client:
        url = "/_simulator/plugins/eligibility/capacity"
        for body, reason in (
            ({"queue": 5, "concurrency": 0}, "'concurrency' must be an integer from 1"),
            ({"concurrency": 2, "queue": -1}, "'queue' must be an integer from 0"),
            ({"concurrency": 2, "status": 500}, "'status' must be 429 or 503"),
            ({"concurrency": 2, "route": "eligibility.nope"}, "not one of this plugin's routes"),
            ({"concurrency": 2, "speed": 1}, "unknown key(s): speed"),
            ([], "JSON object"),
        ):
            answer = await client.put(url, json=body, headers=ADMIN)
            assert answer.status_code == 422, body
            assert reason in answer.json()["detail"]
        armed = await client.put(url, json={"concurrency": 3, "queue": 7, "status": 429}, headers=ADMIN)
        shown = armed.json()
        assert shown["capacity"] == {"*": {"concurrency": 3, "queue": 7, "status": 429, "retry_after": 1}}
        # The plugin's model is shared by its delayed routes; /status is undelayed: not under it.
        assert set(shown["in_force"]) == {
            r for r in (await client.get(url)).json()["in_force"] if r != "eligibility.status"
        }
        assert "eligibility.status" not in shown["in_force"]
        assert shown["in_force"]["eligibility.patient_check"]["concurrency"] == 3
        removed = await client.put(url, json={"concurrency": None}, headers=ADMIN)
        assert removed.json()["capacity"] == {}
        assert removed.json()["in_force"] == {}


async def test_changes_of_different_parts_made_at_once_both_stand() -> None:
    # Two workers take a faults PUT and a delay PUT at the same moment: each hands the other its whole
    # state, built on the old one; the parts are versioned apart, so neither undoes the other.
    async with AsyncSimulatorClient(ELIGIBILITY) as client:
        control = client.app.control
        base = control.state("eligibility")
        faults = control.with_faults("eligibility", [{"kind": "reset", "probability": 0.1}], base).as_json()
        delay = control.with_delay("eligibility", {"policy": "fixed", "seconds": 0.5}, base).as_json()
        assert control.apply("eligibility", faults)
        assert control.apply("eligibility", delay)
        state = control.state("eligibility")
        assert state.delay == {"policy": "fixed", "seconds": 0.5}
        assert [rule.kind for rule in state.faults] == ["reset"]
        assert not control.apply("eligibility", faults)  # the same again: nothing newer
        # A stale change of one part (older than the one in force) is ignored.
        stale = {**delay, "delay": {"policy": "fixed", "seconds": 9}, "versions": base.versions}
        assert not control.apply("eligibility", stale)
        assert control.state("eligibility").delay == {"policy": "fixed", "seconds": 0.5}
        # Versions only grow, even if the clock were to step back.
        assert control.startup("eligibility").version > control.state("eligibility").version


async def test_a_capacity_pool_survives_changes_of_other_parts() -> None:
    async with AsyncSimulatorClient(ELIGIBILITY, env={"SIMULATOR_ADMIN_TOKEN": TOKEN}) as client:
        url = "/_simulator/plugins/eligibility"
        await client.put(f"{url}/capacity", json={"concurrency": 2, "queue": 3}, headers=ADMIN)
        (endpoint, _) = client.app.routes.match(PATIENT)  # type: ignore[misc]
        pool = next(iter(endpoint.values())).live.pool
        assert pool is not None
        await client.put(f"{url}/faults", json=[{"kind": "close", "probability": 0.1}], headers=ADMIN)
        await client.put(f"{url}/delay", json={"policy": "fixed", "seconds": 0.01}, headers=ADMIN)
        assert next(iter(endpoint.values())).live.pool is pool  # the same pool, with its queue
        await client.put(f"{url}/capacity", json={"concurrency": 4, "queue": 3}, headers=ADMIN)
        assert next(iter(endpoint.values())).live.pool is not pool
