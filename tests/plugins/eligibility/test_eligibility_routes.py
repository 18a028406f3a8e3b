"""Patient-check answered in-process, checked against the spec as a client would."""

from __future__ import annotations

import json
import random
import re
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from simulator.errors import StartupError
from tests.plugins.eligibility.conftest import Client, build_host
from tests.plugins.eligibility.support import (
    ERROR_NUMBERS,
    LOAD_TEST_PATIENTS,
    SPEC_NBS,
    assert_valid,
    examples,
    patients_mapping,
    valid_nhs_number,
    without_fresh_fields,
)

PATH = "/eligibility-signposting-api/patient-check/"
EXAMPLES_200 = {name: body for name, (status, body) in examples().items() if status == 200}
SANDBOX_IDS = [(name.removeprefix("example_"), name) for name in EXAMPLES_200] + [
    (name[8] + "0" + name[9:], name) for name in EXAMPLES_200
]
MAPPED = [(number, entry["scenario"]) for number, entry in patients_mapping().items()]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.mark.parametrize(("number", "example"), SANDBOX_IDS + [m for m in MAPPED if m[1] in EXAMPLES_200])
async def test_example_ids_and_mapped_patients_answer_the_spec_example(
    client: Client, number: str, example: str
) -> None:
    # With the spec's own NBS base the body is the example, apart from the per-response fields.
    async with client(ELID_NBS_URL=SPEC_NBS) as http:
        response = await http.get(PATH + number)
    assert response.status_code == 200
    body = assert_valid(response)
    assert without_fresh_fields(body) == without_fresh_fields(EXAMPLES_200[example])


def test_all_18_load_test_numbers_are_covered() -> None:
    assert set(LOAD_TEST_PATIENTS) <= {number for number, _ in MAPPED}


@pytest.mark.parametrize(("number", "status"), ERROR_NUMBERS.items())
async def test_error_numbers_answer_the_spec_error_with_its_status(
    client: Client, number: str, status: int
) -> None:
    async with client() as http:
        response = await http.get(PATH + number)
    assert response.status_code == status
    assert assert_valid(response) == examples()[f"error_{status}"][1]


async def test_response_id_and_last_updated_are_fresh(client: Client) -> None:
    async with client() as http:
        first, second = [(await http.get(PATH + "9686368973")).json() for _ in range(2)]
    assert first["responseId"] != second["responseId"]
    assert UUID.fullmatch(first["responseId"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["meta"]["lastUpdated"])


async def test_booking_links_point_at_the_nbs_stand_in_by_default(client: Client) -> None:
    async with client() as http:
        body = (await http.get(PATH + "9686368973")).json()
        booking = await http.get("/nbs/nhs-app/vita/rsv")
    links = [a.get("urlLink") for a in body["processedSuggestions"][0]["actions"]]
    assert "http://localhost:9123/nbs/nhs-app/vita/rsv" in links
    assert (booking.status_code, booking.text, booking.headers["content-type"]) == (
        200,
        "booking",
        "text/plain",
    )


async def test_the_original_nbs_url_variable_is_accepted(client: Client) -> None:
    async with client(NBS_URL="https://nbs.example/") as http:
        body = (await http.get(PATH + "9686368973")).json()
    assert "https://nbs.example/nhs-app/vita/rsv" in json.dumps(body)


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("123", "10 digits"),
        ("12345678901", "10 digits"),
        ("96863689\uff173", "10 digits"),  # a full-width digit: str.isdigit() would accept it
        ("abcdefghij", "10 digits"),
        ("9686368974", "Modulus 11"),
        ("1000000010", "Modulus 11"),  # check digit would be 10: never issued
    ],
)
async def test_invalid_nhs_numbers_get_a_400_saying_why(client: Client, number: str, reason: str) -> None:
    async with client() as http:
        response = await http.get(PATH + number)
    assert response.status_code == 400
    issue = assert_valid(response)["issue"][0]
    assert reason in issue["diagnostics"]
    assert issue["location"] == ["parameters/id"]


async def test_a_missing_id_is_a_400_not_a_bare_404(client: Client) -> None:
    async with client() as http:
        response = await http.get(PATH.rstrip("/"))
    assert response.status_code == 400
    assert_valid(response)


async def test_unknown_valid_numbers_can_be_not_found(client: Client) -> None:
    async with client(ELID_UNKNOWN_PATIENTS="not_found") as http:
        response = await http.get(PATH + "9434765919")
        known = await http.get(PATH + "9686368973")
    assert response.status_code == 404
    assert "9434765919" in assert_valid(response)["issue"][0]["diagnostics"]
    assert known.status_code == 200


@pytest.mark.parametrize(
    ("query", "conditions", "with_actions"),
    [
        ("conditions=RSV", ["RSV"], True),
        ("conditions=rsv,%20FLU", ["RSV"], True),
        ("conditions=FLU,COVID", [], True),
        ("conditions=ALL", ["RSV"], True),
        ("category=VACCINATIONS", ["RSV"], True),
        ("category=all", ["RSV"], True),
        ("category=SCREENING", [], True),
        ("includeActions=N", ["RSV"], False),
        ("includeActions=y", ["RSV"], True),
        ("conditions=RSV&includeActions=N&category=VACCINATIONS", ["RSV"], False),
        ("unknown=1", ["RSV"], True),
    ],
)
async def test_query_parameters_filter_as_the_spec_says(
    client: Client, query: str, conditions: list[str], with_actions: bool
) -> None:
    async with client() as http:
        response = await http.get(f"{PATH}9686368973?{query}")
    assert response.status_code == 200
    suggestions = assert_valid(response)["processedSuggestions"]
    assert [s["condition"] for s in suggestions] == conditions
    assert all(("actions" in s) is with_actions for s in suggestions)


@pytest.mark.parametrize(
    ("query", "status", "location"),
    [
        ("conditions=FLU%26COVID", 400, "parameters/conditions"),
        ("conditions=", 400, "parameters/conditions"),
        ("conditions=FLU,,RSV", 400, "parameters/conditions"),
        ("conditions=FLU;RSV", 400, "parameters/conditions"),
        ("category=HEALTHCHECKS", 422, "parameters/category"),
        ("category=", 422, "parameters/category"),
        ("includeActions=maybe", 422, "parameters/includeActions"),
        ("includeActions=", 422, "parameters/includeActions"),
    ],
)
async def test_bad_query_values_get_the_spec_error(
    client: Client, query: str, status: int, location: str
) -> None:
    async with client() as http:
        response = await http.get(f"{PATH}9686368973?{query}")
    assert response.status_code == status
    assert assert_valid(response)["issue"][0]["location"] == [location]


async def test_the_spec_400_example_is_reproduced_for_a_malformed_condition(client: Client) -> None:
    async with client() as http:
        response = await http.get(PATH + "9686368973", params={"conditions": "FLU&COVID"})
    issue = assert_valid(response)["issue"][0]
    expected = examples()["error_400"][1]["issue"][0]
    assert {k: issue[k] for k in ("severity", "code", "details", "diagnostics")} == {
        k: expected[k] for k in ("severity", "code", "details", "diagnostics")
    }


async def test_garbage_never_yields_a_500(client: Client) -> None:
    rng = random.Random(7)
    alphabet = "09AZaz%&=,;+ '\"<>\\/?#ALLYN"
    async with client() as http:
        for _ in range(300):
            query = "".join(rng.choice(alphabet + "%09%0A%FF") for _ in range(rng.randrange(30)))
            number = "".join(rng.choice("0123456789x%") for _ in range(rng.randrange(13)))
            response = await http.get(f"{PATH}{number or '9686368973'}?{query}")
            assert response.status_code in (200, 400, 404, 422), (number, query)
            if response.status_code != 404:  # a '%2F' in the id can leave the route: the core's 404
                assert_valid(response)


async def test_request_and_correlation_ids_are_mirrored(client: Client) -> None:
    request_id = "60E0B220-8136-4CA5-AE46-1D97EF59D068"
    headers = {"X-Request-ID": request_id, "X-Correlation-ID": "11C46F5F.anything"}
    async with client() as http:
        ok = await http.get(PATH + "9686368973", headers=headers)
        error = await http.get(PATH + "9800878378", headers=headers)
    for response in (ok, error):
        assert response.headers["x-request-id"] == request_id
        assert response.headers["x-correlation-id"] == "11C46F5F.anything"


@pytest.mark.parametrize(
    "request_id", ["nope", "60E0B220-8136-4CA5-AE46-1D97EF59D06", str(uuid.uuid4()) + "0", ""]
)
async def test_a_request_id_breaking_the_uuid_pattern_is_a_400_naming_the_header(
    client: Client, request_id: str
) -> None:
    async with client() as http:
        response = await http.get(PATH + "9686368973", headers={"X-Request-ID": request_id})
    assert response.status_code == 400
    issue = assert_valid(response)["issue"][0]
    assert "X-Request-ID" in issue["diagnostics"]
    assert issue["location"] == ["headers/X-Request-ID"]


async def test_status_check(client: Client) -> None:
    async with client() as http:
        response = await http.get(PATH + "_status")
    assert response.status_code == 200
    assert response.json() == {
        "status": "pass",
        "ping": "pong",
        "service": "eligibility-signposting-api",
        "version": "1.0.28-alpha",
    }


async def test_head_answers_without_a_body(client: Client) -> None:
    async with client() as http:
        response = await http.head(PATH + "9686368973")
    assert response.status_code == 200
    assert response.content == b""


async def test_10000_random_patients_are_valid_deterministic_and_follow_the_mix(client: Client) -> None:
    rng = random.Random(2024)
    numbers = [valid_nhs_number(rng) for _ in range(10_000)]
    named = {number for number, _ in MAPPED}
    numbers = [n for n in numbers if n not in named]
    groups = _groups()
    seen: Counter[str] = Counter()
    answers: dict[str, Any] = {}
    async with client() as http:
        for number in numbers:
            response = await http.get(PATH + number)
            assert response.status_code == 200
            body = without_fresh_fields(response.json())
            key = json.dumps(body, sort_keys=True)
            if key not in answers:
                answers[key] = assert_valid(response)
            seen[groups[key]] += 1
        for number in numbers[:500]:  # the same number, the same answer
            first = without_fresh_fields((await http.get(PATH + number)).json())
            assert first == without_fresh_fields((await http.get(PATH + number)).json())
    shares = {group: count / len(numbers) for group, count in seen.items()}
    assert shares == pytest.approx({"Actionable": 0.5, "NotActionable": 0.3, "NotEligible": 0.2}, abs=0.03)
    assert len(answers) > 10  # spread over many examples, not one per group


async def test_every_worker_agrees_on_a_synthetic_patient(client: Client) -> None:
    # A second, independent host (another worker process) picks the same scenario for each number.
    rng = random.Random(5)
    numbers = [valid_nhs_number(rng) for _ in range(200)]
    async with client() as http:
        first = [without_fresh_fields((await http.get(PATH + n)).json()) for n in numbers]
    async with client() as http:
        second = [without_fresh_fields((await http.get(PATH + n)).json()) for n in numbers]
    assert first == second


async def test_the_seed_reshuffles_synthetic_patients(client: Client) -> None:
    numbers = [valid_nhs_number(random.Random(i)) for i in range(100)]
    async with client(SIMULATOR_SEED="1") as http:
        one = [without_fresh_fields((await http.get(PATH + n)).json()) for n in numbers]
    async with client(SIMULATOR_SEED="2") as http:
        two = [without_fresh_fields((await http.get(PATH + n)).json()) for n in numbers]
    assert one != two


async def test_a_custom_mix_can_name_scenarios(client: Client) -> None:
    mix = json.dumps({"example_5000000014": 3, "error_404": 1})
    rng = random.Random(9)
    async with client(ELID_SYNTHETIC_MIX=mix) as http:
        statuses = Counter([(await http.get(PATH + valid_nhs_number(rng))).status_code for _ in range(2000)])
    assert statuses[200] / 2000 == pytest.approx(0.75, abs=0.04)
    assert statuses[404] / 2000 == pytest.approx(0.25, abs=0.04)


async def test_a_scenarios_folder_adds_and_overrides_patients(client: Client, tmp_path: Path) -> None:
    own = {
        "processedSuggestions": [
            {
                "condition": "FLU",
                "status": "Actionable",
                "actions": [{"actionType": "ButtonWithAuthLink", "urlLink": "@@NBS_URL@@/flu"}],
            }
        ]
    }
    (tmp_path / "9434765919.json").write_text(json.dumps(own))
    (tmp_path / "gone.json").write_text(json.dumps(examples()["error_404"][1]))
    (tmp_path / "mapping.json").write_text(
        json.dumps(
            {
                "9686368973": {"scenario": "example_5000000014"},
                "9434765870": {"file": "gone.json", "status": 404},
                "1234": {"scenario": "error_500"},
            }
        )
    )
    async with client(ELID_SCENARIOS_DIR=str(tmp_path), ELID_NBS_URL="https://nbs.test") as http:
        added = await http.get(PATH + "9434765919")
        overridden = await http.get(PATH + "9686368973")
        gone = await http.get(PATH + "9434765870")
        named = await http.get(PATH + "1234")
    assert added.status_code == 200
    body = assert_valid(added)
    assert body["processedSuggestions"][0]["actions"][0]["urlLink"] == "https://nbs.test/flu"
    assert UUID.fullmatch(body["responseId"])
    assert without_fresh_fields(overridden.json()) == without_fresh_fields(EXAMPLES_200["example_5000000014"])
    assert gone.status_code == 404
    assert assert_valid(gone) == examples()["error_404"][1]
    assert named.status_code == 500


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ELID_SYNTHETIC_MIX": '{"Sometimes": 1}'}, "ELID_SYNTHETIC_MIX"),
        ({"ELID_SYNTHETIC_MIX": '{"Actionable": -1}'}, "ELID_SYNTHETIC_MIX"),
        ({"ELID_SYNTHETIC_MIX": "Actionable=1"}, "ELID_SYNTHETIC_MIX"),
        ({"ELID_UNKNOWN_PATIENTS": "maybe"}, "ELID_UNKNOWN_PATIENTS='maybe'"),
        ({"ELID_SCENARIOS_DIR": "/no/such/folder"}, "ELID_SCENARIOS_DIR='/no/such/folder'"),
        ({"ELID_NBS_URL": "nbs.example"}, "ELID_NBS_URL='nbs.example'"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(StartupError, match=re.escape(message)):
        build_host(env)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"1": {"scenario": "example_9"}}, "unknown scenario 'example_9'"),
        ({"1": {"file": "missing.json"}}, "cannot read eligibility scenario"),
        ({"1": {"scenario": "error_404", "file": "x.json"}}, 'exactly one of "scenario" or "file"'),
        ({"1": {"scenario": "error_404", "status": "404"}}, "status must be an HTTP status code"),
        ([], "expected a JSON object"),
    ],
)
def test_a_bad_mapping_file_stops_start_up_naming_it(tmp_path: Path, mapping: Any, message: str) -> None:
    (tmp_path / "mapping.json").write_text(json.dumps(mapping))
    with pytest.raises(StartupError, match=re.escape(message)):
        build_host({"ELID_SCENARIOS_DIR": str(tmp_path)})


def _groups() -> dict[str, str]:
    """Each bundled 200 body (canonical JSON, fresh fields removed) -> its status group."""
    index = json.loads(
        (Path(__file__).parents[3] / "plugins/eligibility/data/examples/index.json").read_text()
    )
    groups = {}
    for name, entry in index.items():
        if entry["group"]:
            document = json.loads(
                json.dumps(EXAMPLES_200[name]).replace(SPEC_NBS, "http://localhost:9123/nbs")
            )
            groups[json.dumps(without_fresh_fields(document), sort_keys=True)] = entry["group"]
    return groups
