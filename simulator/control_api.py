"""The control API: each plugin's delay, faults and capacity, read and changed while it runs.

Reads are open, like the rest of ``/_simulator``. Writes need
``Authorization: Bearer <SIMULATOR_ADMIN_TOKEN>`` (compared in constant time); without that variable they
are refused with a 403 that says how to enable them, because the ALB in front of a deployed simulator
faces the internet. A write is in force in every worker of the simulator when its answer arrives
(``simulator/control.py``); a worker that did not take it in time makes it a 503 with ``Retry-After``,
and asking again is harmless.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request

from simulator import scenario
from simulator.control import Control, PluginState
from simulator.introspection import get_host
from simulator.scenario import Conductor

router = APIRouter(prefix="/_simulator", tags=["control"])

# A delay policy, a list of at most 64 fault rules or a capacity model: far below this (a scenario may be
# as large as a SIMULATOR_SCENARIO file: scenario.MAX_FILE_BYTES).
MAX_BODY_BYTES = 64 * 1024
_DISABLED = (
    "control writes are disabled: start the simulator with SIMULATOR_ADMIN_TOKEN=<a secret of 16 or more "
    "characters> and send 'Authorization: Bearer <the secret>'"
)


def get_control(request: Request) -> Control:
    control: Control = request.app.state.control
    return control


Steering = Annotated[Control, Depends(get_control)]


def require_admin(request: Request) -> None:
    """A write's credentials: 403 when writes are disabled, 401 when the token is missing or wrong."""
    host = get_host(request)
    token = host.core.admin_token
    if token is None:
        raise HTTPException(403, _DISABLED)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise HTTPException(
            401,
            "control writes need 'Authorization: Bearer <SIMULATOR_ADMIN_TOKEN>'",
            headers={"WWW-Authenticate": 'Bearer realm="api-simulator"'},
        )
    if not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
        raise HTTPException(
            401,
            "the bearer token is not SIMULATOR_ADMIN_TOKEN",
            headers={"WWW-Authenticate": 'Bearer realm="api-simulator", error="invalid_token"'},
        )


Admin = Depends(require_admin)


def _plugin(control: Control, plugin: str) -> str:
    if plugin not in control.plugins:
        raise HTTPException(404, f"no enabled plugin {plugin[:60]!r}; enabled: {', '.join(control.plugins)}")
    return plugin


async def _body(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The request's JSON body, at most ``limit`` bytes; 413 or 422 otherwise."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise HTTPException(413, f"this control body is at most {limit} bytes")
    try:
        return orjson.loads(bytes(data))
    except orjson.JSONDecodeError as exc:
        raise HTTPException(422, f"the body is not JSON: {exc}") from None


async def _change(control: Control, plugin: str, what: str, make: Callable[[], PluginState]) -> int:
    """Make a plugin's new state (422 with the reason when the body is not valid) and put it in force in
    every worker; how many have it."""
    try:
        state = make()
    except ValueError as exc:
        raise HTTPException(422, f"invalid {what}: {exc}") from None
    return await control.change(plugin, state)


def _faults(control: Control, plugin: str) -> dict[str, Any]:
    state = control.state(plugin)
    return {
        "plugin": plugin,
        "faults": [rule.as_json() for rule in state.faults],
        "armed": [
            {"route": route, "kind": kind, "probability": probability}
            for p, route, kind, probability in control.armed()
            if p == plugin
        ],
        "version": state.version,
    }


def _documented(description: str, example: Any) -> dict[str, Any]:
    """The OpenAPI request body of a write: bodies are read by hand (size-capped, with our messages)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": {}, "example": example}},
        }
    }


_DELAY_BODY = _documented(
    'The same JSON as <PREFIX>_DELAY, plus an optional "route" naming one route',
    {"policy": "fixed", "seconds": 2, "route": "eligibility.patient_check"},
)
_FAULTS_BODY = _documented(
    "A JSON list of fault rules; an empty list disarms",
    [{"kind": "status", "status": 503, "probability": 0.05}, {"kind": "reset", "probability": 0.01}],
)


@router.get(
    "/plugins/{plugin}/delay", summary="A plugin's delay policy, per-route policies and what is in force"
)
async def get_delay(plugin: str, control: Steering) -> dict[str, Any]:
    return {"plugin": _plugin(control, plugin), **control.describe_delay(plugin)}


@router.put(
    "/plugins/{plugin}/delay",
    summary="Change a plugin's delay (or one route's), in every worker",
    openapi_extra=_DELAY_BODY,
)
async def put_delay(plugin: str, request: Request, control: Steering, _: None = Admin) -> dict[str, Any]:
    _plugin(control, plugin)
    given = await _body(request)
    if not isinstance(given, dict):
        raise HTTPException(422, 'the body is a JSON object such as {"policy": "fixed", "seconds": 2}')
    workers = await _change(control, plugin, "delay", lambda: control.with_delay(plugin, given))
    return {"plugin": plugin, **control.describe_delay(plugin), "workers": workers}


@router.get(
    "/plugins/{plugin}/faults", summary="A plugin's fault rules and the probabilities armed per route"
)
async def get_faults(plugin: str, control: Steering) -> dict[str, Any]:
    return _faults(control, _plugin(control, plugin))


@router.put(
    "/plugins/{plugin}/faults",
    summary="Arm a plugin's fault rules (an empty list disarms), in every worker",
    openapi_extra=_FAULTS_BODY,
)
async def put_faults(plugin: str, request: Request, control: Steering, _: None = Admin) -> dict[str, Any]:
    _plugin(control, plugin)
    given = await _body(request)
    workers = await _change(control, plugin, "faults", lambda: control.with_faults(plugin, given))
    return {**_faults(control, plugin), "workers": workers}


_CAPACITY_BODY = _documented(
    'A capacity model for the whole simulator: {"concurrency": C, "queue": Q, "status": 503 or 429, '
    '"retry_after": s, "route"?: name}; "concurrency": null removes it',
    {"concurrency": 50, "queue": 200, "status": 503},
)


@router.get("/plugins/{plugin}/capacity", summary="A plugin's capacity models, and each route's share here")
async def get_capacity(plugin: str, control: Steering) -> dict[str, Any]:
    return {"plugin": _plugin(control, plugin), **control.describe_capacity(plugin)}


@router.put(
    "/plugins/{plugin}/capacity",
    summary="Set (or remove) a plugin's or a route's capacity model, in every worker",
    openapi_extra=_CAPACITY_BODY,
)
async def put_capacity(plugin: str, request: Request, control: Steering, _: None = Admin) -> dict[str, Any]:
    _plugin(control, plugin)
    given = await _body(request)
    workers = await _change(control, plugin, "capacity", lambda: control.with_capacity(plugin, given))
    return {"plugin": plugin, **control.describe_capacity(plugin), "workers": workers}


def get_conductor(request: Request) -> Conductor:
    conductor: Conductor = request.app.state.conductor
    return conductor


Conducting = Annotated[Conductor, Depends(get_conductor)]
_SCENARIO_BODY = _documented(
    "A timeline of phases, each changing plugins' delay, faults or capacity at its time (seconds from now); "
    '{"phases": []} stops the scenario in force',
    {
        "name": "brownout",
        "phases": [
            {"at": 0, "name": "normal"},
            {
                "at": 60,
                "name": "slow and failing",
                "plugins": {
                    "eligibility": {
                        "delay": {"policy": "lognormal", "median": 0.5, "p99": 3},
                        "faults": [{"kind": "status", "status": 503, "probability": 0.05}],
                    }
                },
            },
            {"at": 120, "name": "recovered", "reset": True},
        ],
    },
)


@router.get("/scenario", summary="The scenario in force: its phases, the phase now, when it started")
async def get_scenario(conductor: Conducting) -> dict[str, Any]:
    return conductor.describe()


@router.put(
    "/scenario",
    summary="Start a scenario now (replacing any); no phases stops it",
    openapi_extra=_SCENARIO_BODY,
)
async def put_scenario(
    request: Request, control: Steering, conductor: Conducting, _: None = Admin
) -> dict[str, Any]:
    given = await _body(request, scenario.MAX_FILE_BYTES)
    if isinstance(given, dict) and given.get("phases") == []:
        await conductor.clear()
        return conductor.describe()
    try:
        await conductor.start(given)
    except ValueError as exc:
        raise HTTPException(422, f"invalid scenario: {exc}") from None
    return conductor.describe()


@router.post(
    "/reset",
    summary="Every plugin's delay, faults and capacity back to start-up; the scenario stopped",
)
async def reset(control: Steering, conductor: Conducting, _: None = Admin) -> dict[str, Any]:
    await conductor.clear()
    workers = 0
    for plugin in control.plugins:
        workers = await control.change(plugin, control.startup(plugin))
    return {"reset": control.plugins, "workers": workers}
