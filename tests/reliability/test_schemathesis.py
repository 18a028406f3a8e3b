"""The eligibility API against its published OpenAPI spec: schemathesis generates requests from the shipped
``plugins/eligibility/data/eligibility-signposting-api.yaml`` and sends them to a real ``simulator serve``
(``SIMULATOR_PLUGINS=health,eligibility``).

Every answer must be no 5xx, a status the spec documents, in the content type and schema the spec gives for
that status, with the response headers it declares. Two tests:

- whatever schemathesis makes of the spec: its examples, its coverage phase (boundaries, every enum value,
  missing and malformed parameters, unexpected methods) and positive and negative fuzzing. Since the spec
  types the NHS number as a bare string, nearly all of these are answered 400 (not a valid NHS number);
- the same generated query strings and headers for the NHS numbers that reach the answers with bodies:
  named patients (spec examples, integration test patients, error numbers) and synthetic ones;
- and, so that none is left to chance, every named patient and the synthetic ones with each kind of query
  that changes a body (actions dropped, conditions filtered, SCREENING).

Bounded by ``max-examples`` and a fixed seed: the file runs in well under a minute.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.errors import FailureGroup

from plugins.eligibility.data import extract

pytestmark = [pytest.mark.reliability, pytest.mark.server]

Serve = Callable[..., str]

DATA = Path(extract.__file__).resolve().parent
SPEC = DATA / "eligibility-signposting-api.yaml"
# The spec's paths are relative to its servers' base, .../eligibility-signposting-api.
API_BASE = "/eligibility-signposting-api"

CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Left out on purpose, each a departure README.md documents ("How {id} is answered", "Requests are checked
# in the real API's order", "Where it departs from the real API on purpose"):
# - positive_data_acceptance: the spec types `id` as any string, and says only in prose that it is a valid
#   NHS number; the fake answers 400 for anything that is not one (the real API would look it up and 404),
#   and 400 for `conditions` outside the real API's comma list of letters and digits.
# - negative_data_rejection: `category` and `includeActions` are accepted in any case with blanks around
#   them, as the real API's validators do, and unknown query parameters are ignored, so some requests that
#   break the spec's enums are answered 200.
# - ignored_auth and the other checks schemathesis runs by default: the fake checks no authentication.
CHECKS = [not_a_server_error, *CONFORMANCE]

MAX_EXAMPLES = 150
SEED = 20250212  # fixed: a failure here reproduces; change it to explore further


def _config(*, fuzzing_only: bool = False) -> SchemathesisConfig:
    config: dict[str, Any] = {
        "seed": SEED,
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
    }
    if fuzzing_only:
        # `given` strategies cannot be combined with the examples and coverage phases.
        config["phases"] = {"examples": {"enabled": False}, "coverage": {"enabled": False}}
    return SchemathesisConfig.from_dict(config)


def _named_patients() -> tuple[list[str], set[str]]:
    """(every NHS number with a bundled answer, those whose answer is the spec's 500 example)."""
    mapping: dict[str, dict[str, Any]] = json.loads((DATA / "patients.json").read_text(encoding="utf-8"))
    index: dict[str, dict[str, Any]] = json.loads(
        (DATA / "examples" / "index.json").read_text(encoding="utf-8")
    )
    scenario_of = {number: entry["scenario"] for number, entry in mapping.items()}
    for name, entry in index.items():
        for number in entry.get("ids", []):
            scenario_of.setdefault(number, name)
    errors_500 = {number for number, name in scenario_of.items() if name == "error_500"}
    return sorted(scenario_of), errors_500


NAMED, ERROR_500 = _named_patients()
# Valid NHS numbers without a scenario (Modulus 11; the check digit never 10): synthetic patients.
SYNTHETIC = ["9000000009", "9434765919", "9449304130", "9449305552", "4010232137"]

schema = schemathesis.openapi.from_path(SPEC, config=_config())
patients_schema = schemathesis.openapi.from_path(SPEC, config=_config(fuzzing_only=True))

# schemathesis' Hypothesis tests run many cases in one test call, so the one server per test that the
# function-scoped fixture gives is intended; there is no example database to write to the work tree.
hypothesis_settings = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
    database=None,
)


@pytest.fixture
def api(serve: Serve) -> str:
    """The base URL of the eligibility API on a real server, as the spec's servers name it."""
    return serve({"SIMULATOR_PLUGINS": "health,eligibility"}) + API_BASE


@schema.parametrize()
@hypothesis_settings
def test_generated_requests_get_no_server_error_and_spec_conformant_answers(
    case: schemathesis.Case, api: str
) -> None:
    case.call_and_validate(base_url=api, checks=CHECKS)


@patients_schema.parametrize()
@patients_schema.given(nhs_number=st.sampled_from(NAMED + SYNTHETIC))
@hypothesis_settings
def test_every_patient_answers_in_the_spec_shape_whatever_the_query(
    case: schemathesis.Case, nhs_number: str, api: str
) -> None:
    case.path_parameters = {**(case.path_parameters or {}), "id": nhs_number}
    # The 500 error numbers answer the spec's 500 example on purpose (README: "Error numbers"): for them
    # only not_a_server_error is left out; the body must still be the spec's 500 OperationOutcome.
    checks = CONFORMANCE if nhs_number in ERROR_500 else CHECKS
    case.call_and_validate(base_url=api, checks=checks)


# The queries that change a 200 body: the whole answer, actions dropped, filtered to conditions (one the
# examples have, one they mostly do not, both in any case with blanks), and SCREENING (nothing suggested).
BODY_QUERIES: list[dict[str, str]] = [
    {},
    {"includeActions": "N"},
    {"conditions": "RSV"},
    {"conditions": " flu , Covid ", "includeActions": "y"},
    {"category": "SCREENING"},
    {"category": "VACCINATIONS", "conditions": "ALL", "includeActions": "Y"},
]


def test_every_named_patient_answers_in_the_spec_shape_for_each_body_changing_query(api: str) -> None:
    operation = schema["/patient-check/{id}"]["GET"]
    failures = []
    for nhs_number in NAMED + SYNTHETIC:
        checks = CONFORMANCE if nhs_number in ERROR_500 else CHECKS
        for query in BODY_QUERIES:
            case = operation.Case(path_parameters={"id": nhs_number}, query=query)
            try:
                case.call_and_validate(base_url=api, checks=checks)
            except FailureGroup as failure:  # every failed check of the case, with its curl command
                failures.append(str(failure))
    assert not failures, f"{len(failures)} answers depart from the spec:\n\n" + "\n\n".join(failures)
