"""The named users' ages agree with their eligibility answers, today and on any other day."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from plugins.nhs_login.identities import Directory, age_on
from tests.plugins.eligibility.support import LOAD_TEST_PATIENTS, patients_mapping

EXAMPLES = Path(__file__).parents[3] / "plugins" / "eligibility" / "data" / "examples"
CATCH_UP = (
    date(1944, 9, 2),
    date(1945, 8, 31),
)  # "turned 80 between 2nd September 2024 and 31st August 2025"
COVID_AGE_BORN_BY = date(1951, 1, 31)  # "aged 75 or over (including those who will be 75 by 31 January 2026)"


def cohorts(scenario: str) -> list[tuple[str, str]]:
    """(cohortCode, cohortStatus) of every cohort group in the scenario's body."""
    body = json.loads((EXAMPLES / f"{scenario}.json").read_text())
    found = []
    for suggestion in body.get("processedSuggestions") or []:
        for group in suggestion.get("eligibilityCohorts") or []:
            found.append(
                (group.get("cohortCode", ""), group.get("cohortStatus", suggestion.get("status", "")))
            )
    return found


def consistent(born: date, today: date, cohort: tuple[str, str]) -> bool:
    code, status = cohort
    eligible = status != "NotEligible"
    age = age_on(born, today)
    if code == "rsv_age_rolling":
        return (75 <= age <= 79) == eligible
    if code == "rsv_age_catchup":
        return (CATCH_UP[0] <= born <= CATCH_UP[1]) == eligible
    if code == "covid_age":
        return (born <= COVID_AGE_BORN_BY) == eligible
    return True  # care homes, clinical risk: not a matter of age


@pytest.mark.parametrize("today", [date.today(), date(2026, 2, 28), date(2027, 6, 30), date(2028, 2, 29)])
def test_every_named_patient_is_as_old_as_their_eligibility_answer_says(today: date) -> None:
    directory = Directory()
    mapping = patients_mapping()
    checked = 0
    for number, entry in mapping.items():
        identity = directory.find(number, today)
        assert identity is not None, f"{number} has no NHS login user"
        born = date.fromisoformat(identity.birthdate)
        for cohort in cohorts(entry["scenario"]) if not entry["scenario"].startswith("error") else []:
            assert consistent(born, today, cohort), (number, identity.birthdate, cohort, today)
            checked += 1
    assert checked >= 20


def test_the_load_test_users_are_the_load_test_patients() -> None:
    assert Directory().load_test == LOAD_TEST_PATIENTS


def test_a_catch_up_patient_has_a_birthdate_in_the_window() -> None:
    identity = Directory().find("9658218873")
    assert identity is not None
    assert CATCH_UP[0] <= date.fromisoformat(identity.birthdate) <= CATCH_UP[1]


def test_synthetic_users_only_for_valid_numbers() -> None:
    directory = Directory()
    assert directory.find("9000000009") is not None
    assert directory.find("9000000008") is None  # fails Modulus 11
    assert directory.find("abc") is None
