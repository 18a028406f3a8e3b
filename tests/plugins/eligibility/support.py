"""Helpers shared by the eligibility tests: the spec's schemas and examples, NHS numbers."""

from __future__ import annotations

import copy
import json
import random
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft7Validator

from plugins.eligibility.data import extract

DATA = Path(extract.__file__).resolve().parent
SPEC_NBS = extract.NBS_BASE
LOAD_TEST_PATIENTS = (
    "9657933617",
    "9658218989",
    "9658220142",
    "9686368906",
    "9735548852",
    "9450114080",
    "9658218873",
    "9658218997",
    "9658220150",
    "9686368973",
    "9658218881",
    "9658219004",
    "9686369120",
    "9466447939",
    "9658218903",
    "9658219012",
    "9661033498",
    "9735548844",
)
ERROR_NUMBERS = {
    "9800878378": 400,
    "90000000400": 400,
    "9661033404": 404,
    "90000000404": 404,
    "9451019030": 422,
    "90000000422": 422,
    "9436793375": 500,
    "90000000500": 500,
}
CONTENT_TYPES = {200: "application/json"}


@cache
def spec() -> dict[str, Any]:
    return extract.load_spec()


@cache
def validator(status: int) -> Draft7Validator:
    """The spec's schema for a status; OpenAPI 3.0 schemas here use only JSON Schema draft 7 keywords."""
    content = extract.operation(spec())["responses"][str(status)]["content"]
    (media_type,) = content
    return Draft7Validator(content[media_type]["schema"])


def media_type(status: int) -> str:
    content = extract.operation(spec())["responses"][str(status)]["content"]
    (name,) = content
    return str(name)


def examples() -> dict[str, tuple[int, Any]]:
    """Every named example of the spec: ``example_<id>`` and ``error_<status>`` -> (status, body)."""
    found: dict[str, tuple[int, Any]] = {}
    for status, response in extract.operation(spec())["responses"].items():
        for content in response["content"].values():
            for name, example in content["examples"].items():
                key = name if status == "200" else f"error_{status}"
                found[key] = (int(status), example["value"])
    return found


def assert_valid(response: httpx.Response) -> Any:
    """The response's status is in the spec, its content type is the spec's, its body fits the schema."""
    assert str(response.status_code) in extract.operation(spec())["responses"], response.status_code
    assert response.headers["content-type"] == media_type(response.status_code)
    body = response.json()
    errors = [e.message for e in validator(response.status_code).iter_errors(body)]
    assert not errors, errors
    return body


def without_fresh_fields(body: Any) -> Any:
    """A 200 body minus what the fake (like the real API) makes new for each response."""
    body = copy.deepcopy(body)
    body.pop("responseId", None)
    if isinstance(body.get("meta"), dict):
        body["meta"].pop("lastUpdated", None)
    return body


def valid_nhs_number(rng: random.Random) -> str:
    while True:
        digits = [rng.randrange(10) for _ in range(9)]
        check = (11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11) % 11
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def patients_mapping() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((DATA / "patients.json").read_text())
    return result
