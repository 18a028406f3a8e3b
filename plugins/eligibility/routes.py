"""``/eligibility-signposting-api/patient-check/{id}``, its ``_status`` check, and the ``/nbs`` stand-in."""

from __future__ import annotations

import re

from plugins.eligibility import outcomes
from plugins.eligibility.scenarios import Catalog
from plugins.nhs_number import problem as nhs_number_problem
from simulator import Params, Request, Response, Router

BASE = "/eligibility-signposting-api/patient-check"

# The spec's pattern for X-Request-ID.
_REQUEST_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# The real API's validators: case-insensitive, surrounding blanks tolerated.
_CONDITION = re.compile(r"\s*([a-z0-9]+)\s*", re.IGNORECASE | re.ASCII)
_CATEGORY = re.compile(r"\s*(VACCINATIONS|SCREENING|ALL)\s*", re.IGNORECASE)
_INCLUDE_ACTIONS = re.compile(r"\s*([YN])\s*", re.IGNORECASE)

# Every condition the API knows is a vaccination: a SCREENING request has nothing to suggest.
_NOTHING: frozenset[str] = frozenset()

# The original fake's /nbs answer, standing in for the National Booking Service pages links lead to.
BOOKING = Response.build(b"booking", content_type="text/plain")


def parse_query(query: Params) -> tuple[frozenset[str] | None, bool] | Response:
    """``(conditions wanted or None for all, include actions)``, or the error response, checked in the
    real API's order: conditions, category, includeActions. Unknown parameters are ignored."""
    wanted: frozenset[str] | None = None
    if "conditions" in query:
        names = []
        for part in query["conditions"].split(","):
            match = _CONDITION.fullmatch(part)
            if match is None:
                return outcomes.invalid_conditions(part)
            names.append(match.group(1).upper())
        if "ALL" not in names:
            wanted = frozenset(names)
    if "category" in query:
        match = _CATEGORY.fullmatch(query["category"])
        if match is None:
            return outcomes.invalid_category(query["category"])
        if match.group(1).upper() == "SCREENING":
            wanted = _NOTHING
    actions = True
    if "includeActions" in query:
        match = _INCLUDE_ACTIONS.fullmatch(query["includeActions"])
        if match is None:
            return outcomes.invalid_include_actions(query["includeActions"])
        actions = match.group(1).upper() == "Y"
    return wanted, actions


def router(catalog: Catalog) -> Router:
    patients = catalog.patients
    synthetic = catalog.synthetic
    routes = Router()

    # No id at all: the same 400 as a malformed one rather than a bare 404 page.
    @routes.get(BASE, name="patient_check_no_id", summary="400: the NHS number is missing")
    @routes.get(f"{BASE}/{{id}}", name="patient_check", summary="eligibility of one patient")
    async def patient_check(request: Request) -> Response:
        """The patient's eligibility, or an OperationOutcome error; delayed by ELID_DELAY(_SECONDS)."""
        headers = request.headers
        request_id = headers.get("x-request-id")
        correlation_id = headers.get("x-correlation-id")
        mirrored: dict[str, str] = {}
        if request_id is not None:
            mirrored["x-request-id"] = request_id
        if correlation_id is not None:
            mirrored["x-correlation-id"] = correlation_id
        if request_id is not None and not _REQUEST_ID.fullmatch(request_id):
            return outcomes.invalid_request_id(request_id).with_headers(mirrored)

        wanted: frozenset[str] | None = None
        actions = True
        if request.query_string:
            parsed = parse_query(request.query)
            if isinstance(parsed, Response):
                return parsed.with_headers(mirrored)
            wanted, actions = parsed

        nhs_number = request.path_params.get("id", "")
        scenario = patients.get(nhs_number)
        if scenario is None:
            problem = nhs_number_problem(nhs_number)
            if problem is not None:
                return outcomes.invalid_nhs_number(nhs_number, problem).with_headers(mirrored)
            if synthetic is None:
                return outcomes.not_found(nhs_number).with_headers(mirrored)
            scenario = synthetic.pick(nhs_number)
        return scenario.variant(wanted, actions).render().with_headers(mirrored)

    # The NHS API platform's status check convention; the sandbox answers it too.
    status = Response.json(
        {
            "status": "pass",
            "ping": "pong",
            "service": "eligibility-signposting-api",
            "version": catalog.version,
        }
    )

    # Health checks are never delayed: a slow status would make a monitor drain a healthy fake.
    @routes.get(f"{BASE}/_status", name="status", summary="status check", delayed=False)
    async def status_check(request: Request) -> Response:
        return status

    @routes.get("/nbs/{rest:path}", name="nbs_pages", summary="booking page stand-in", delayed=False)
    @routes.get("/nbs", name="nbs", summary="booking page stand-in", delayed=False)
    async def booking(request: Request) -> Response:
        return BOOKING

    return routes
