"""FHIR OperationOutcome error bodies in the shape of the spec's 400/404/422 examples.

Built per request (they echo what was wrong), which is fine: errors are off the hot path.
"""

from __future__ import annotations

import time
import uuid

from simulator import Response

FHIR_JSON = "application/fhir+json"
CODING_SYSTEM = "https://fhir.nhs.uk/CodeSystem/Spine-ErrorOrWarningCode"
_ECHO = 64  # characters of a bad value echoed back; ids and headers can be long


def outcome(
    status: int, *, code: str, error_code: str, display: str, diagnostics: str, location: str
) -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "issue": [
            {
                "severity": "error",
                "code": code,
                "details": {"coding": [{"system": CODING_SYSTEM, "code": error_code, "display": display}]},
                "diagnostics": diagnostics,
                "location": [location],
            }
        ],
    }
    return Response.json(body, status=status, content_type=FHIR_JSON)


# Injected faults (the core's "status" rules): the Spine error code and FHIR issue code for each status.
# The spec's examples cover 400, 404 and 422 only; these follow the same shape with the codes the Spine
# error code system defines for them.
_INJECTED = {
    401: ("security", "ACCESS_DENIED", "Access has been denied to process this request."),
    403: ("forbidden", "ACCESS_DENIED", "Access has been denied to process this request."),
    404: ("processing", "RESOURCE_NOT_FOUND", "The given NHS number was not found in our datasets."),
    429: ("throttled", "TOO_MANY_REQUESTS", "Too many requests have been made: try again later."),
    500: ("exception", "INTERNAL_SERVER_ERROR", "An unexpected internal server error has occurred."),
    502: ("transient", "BAD_GATEWAY", "The service received an invalid response upstream."),
    503: ("transient", "SERVICE_UNAVAILABLE", "The service is currently unavailable."),
    504: ("timeout", "GATEWAY_TIMEOUT", "The service timed out waiting for an upstream answer."),
}


def injected(status: int, route: str) -> Response:
    """The error an injected fault answers with (``simulator_error_response``)."""
    code, error_code, display = _INJECTED.get(
        status,
        ("transient", "SERVICE_UNAVAILABLE", "The service is currently unavailable.")
        if status >= 500
        else ("processing", "VALIDATION_ERROR", "The request could not be processed."),
    )
    return outcome(
        status,
        code=code,
        error_code=error_code,
        display=display,
        diagnostics=f"injected by the simulator's fault rules (status {status})",
        location="request",
    )


def echo(value: str) -> str:
    return value if len(value) <= _ECHO else value[:_ECHO] + "..."


def invalid_nhs_number(value: str, reason: str) -> Response:
    return outcome(
        400,
        code="value",
        error_code="VALIDATION_ERROR",
        display="The given NHS number was not in the expected format.",
        diagnostics=f"{echo(value)!r} is not a valid NHS number: {reason}",
        location="parameters/id",
    )


def not_found(nhs_number: str) -> Response:
    return outcome(
        404,
        code="processing",
        error_code="RESOURCE_NOT_FOUND",
        display="The given NHS number was not found in our datasets.  This could be because the number is "
        "incorrect or some other reason we cannot process that number.",
        diagnostics=f"NHS Number {nhs_number} was not recognised by the Eligibility Signposting API",
        location="parameters/id",
    )


def invalid_conditions(condition: str) -> Response:
    # Wording of the spec's 400 example (and of the real API's validator).
    return outcome(
        400,
        code="value",
        error_code="VALIDATION_ERROR",
        display="The given conditions were not in the expected format.",
        diagnostics=f"{echo(condition)} should be a single or comma separated list of condition strings "
        "with no other punctuation or special characters",
        location="parameters/conditions",
    )


def invalid_category(category: str) -> Response:
    # The spec's 422 example is exactly this case: an unrecognised category is Unprocessable Content.
    return outcome(
        422,
        code="value",
        error_code="VALIDATION_ERROR",
        display="The supplied category was not recognised by the API.",
        diagnostics=f"{echo(category)} is not a category that is supported by the API",
        location="parameters/category",
    )


def invalid_include_actions(value: str) -> Response:
    # The real API answers a bad includeActions like a bad category (422), with its own display text.
    return outcome(
        422,
        code="value",
        error_code="VALIDATION_ERROR",
        display="The supplied value was not recognised by the API.",
        diagnostics=f"{echo(value)} is not a value that is supported by the API",
        location="parameters/includeActions",
    )


def invalid_request_id(value: str) -> Response:
    return outcome(
        400,
        code="value",
        error_code="VALIDATION_ERROR",
        display="The supplied X-Request-ID header was not in the expected format.",
        diagnostics=f"X-Request-ID {echo(value)!r} must be a UUID: 8-4-4-4-12 hexadecimal digits",
        location="headers/X-Request-ID",
    )
