"""``/_simulator/*``: what the running simulator is made of, and what it delivered. Never delayed, always on.

Every answer covers all the workers of the simulator: the worker asked gathers the others' figures
(``simulator/peers.py``). Where a partial answer would mislead (a Prometheus counter that goes down, a journal
count or a clear that misses a worker), a worker that does not answer in time makes it a 503 with
``Retry-After``; the dashboard's routes show what answered and say how many did.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

import simulator
from simulator import prometheus
from simulator.control import Control
from simulator.delays import describe
from simulator.host import PluginHost
from simulator.journal import Query as JournalQuery
from simulator.metrics import merge
from simulator.observer import Observer
from simulator.settings import public_values
from simulator.stats import route_stats

router = APIRouter(prefix="/_simulator", tags=["simulator"])
_STATUS = re.compile(r"([1-5])(?:xx|\d\d)", re.IGNORECASE)


async def incomplete(request: Request, exc: Exception) -> JSONResponse:
    """A question some worker did not answer in time: 503, to be asked again (FastAPI exception handler)."""
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})


def get_host(request: Request) -> PluginHost:
    host: PluginHost = request.app.state.host
    return host


def get_observer(request: Request) -> Observer:
    observer: Observer = request.app.state.observer
    return observer


Host = Annotated[PluginHost, Depends(get_host)]
Watching = Annotated[Observer, Depends(get_observer)]


def plugin_report(
    host: PluginHost, stats: dict[str, Any] | None = None, control: Control | None = None
) -> list[dict[str, Any]]:
    """Each enabled plugin: name, version, routes (with what they delivered), delay, the variables it reads
    (secrets masked), services, delay kinds and target sets; with ``control``, the delays and faults in
    force now."""
    delivered = {row["route"]: row for row in (stats or {}).get("routes", [])}
    return [
        {
            "name": plugin.name,
            "version": plugin.version,
            "routes": [
                {
                    "name": route.name,
                    "methods": list(route.methods),
                    "path": route.path,
                    "summary": route.summary,
                    "delayed": route.delayed and plugin.delay is not None,
                    "delay": (
                        control.in_force(plugin.name)[route.name]
                        if control is not None
                        else describe(plugin.delay if route.delayed else None)
                    ),
                    **(
                        {"faults": control.armed_by_route(plugin.name).get(route.name, {})}
                        if control is not None
                        else {}
                    ),
                    **(
                        {
                            "delivered": {
                                window: {
                                    "requests": delivered[route.name][window]["requests"],
                                    "delivered": delivered[route.name][window]["delivered"],
                                    "overshoot_p99": delivered[route.name][window]["overshoot"]["p99"],
                                }
                                for window in ("minute", "total")
                            }
                        }
                        if route.name in delivered
                        else {}
                    ),
                }
                for route in plugin.routes
            ],
            "delay": control.plugin_delay(plugin.name) if control is not None else describe(plugin.delay),
            "settings": public_values(plugin.settings) if plugin.settings is not None else [],
            "services": [{"name": s.name, "description": s.description} for s in plugin.services],
            "delay_kinds": [k.name for k in plugin.delay_kinds],
            "targets": [{"name": t.name, "summary": t.summary} for t in plugin.targets],
        }
        for plugin in host.plugins.values()
    ]


@router.get("/plugins", summary="Enabled plugins: routes with their delay and what they delivered, settings")
async def plugins(request: Request, host: Host, observer: Watching) -> dict[str, Any]:
    control = request.app.state.control
    stats = route_stats(host, await observer.snapshots(history=True), control)
    return {
        "simulator": {"version": simulator.__version__, "seed": host.core.seed, "workers": host.core.workers},
        "plugins": plugin_report(host, stats, control),
    }


@router.get(
    "/metrics",
    summary="Prometheus metrics, summed over every worker",
    response_class=Response,
    responses={200: {"content": {prometheus.CONTENT_TYPE: {}}}},
)
async def metrics(request: Request, host: Host, observer: Watching) -> Response:
    merged = merge(await observer.snapshots(complete=True))
    # Control state and the scenario's phase are the same in every worker: this one's.
    armed = request.app.state.control.armed()
    conductor = request.app.state.conductor
    phase = (conductor.status["name"], conductor.phase) if conductor.phase is not None else None
    text = prometheus.render(merged, host.core.seed, armed, phase)
    return Response(text, media_type=prometheus.CONTENT_TYPE)


@router.get("/stats", summary="Per route: the delay configured, and what was delivered (10 s, 1 min, total)")
async def stats(request: Request, host: Host, observer: Watching) -> dict[str, Any]:
    report = route_stats(host, await observer.snapshots(history=True), request.app.state.control)
    recent = await observer.requests(JournalQuery(limit=20), complete=False)
    report["journal"] = [entry.as_json() for entry in recent.entries]
    report["scenario"] = request.app.state.conductor.describe()
    return report


def _since(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return seconds
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise HTTPException(422, f"since={value[:40]!r}: give epoch seconds or an ISO 8601 time") from None


@router.get("/requests", summary="The request journal, newest first, merged over every worker")
async def requests(
    host: Host,
    observer: Watching,
    plugin: str | None = None,
    route: str | None = None,
    status: Annotated[str | None, Query(description="a status (404) or a class (5xx)")] = None,
    since: Annotated[str | None, Query(description="epoch seconds or an ISO 8601 time")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
) -> dict[str, Any]:
    code = status_class = None
    if status is not None:
        match = _STATUS.fullmatch(status)
        if match is None:
            raise HTTPException(
                422, f"status={status[:20]!r}: give a status such as 404 or a class such as 5xx"
            )
        if status[1:].lower() == "xx":
            status_class = int(match.group(1))
        else:
            code = int(status)
    query = JournalQuery(plugin, route, code, status_class, _since(since), limit)
    found = await observer.requests(query)
    return {
        "requests": [entry.as_json() for entry in found.entries],
        "truncated": found.truncated,
        "journal_size": host.core.journal_size,
        "workers": host.core.workers,
    }


@router.delete("/requests", summary="Empty the journal of every worker")
async def clear_requests(observer: Watching) -> dict[str, int]:
    return {"cleared": await observer.clear_requests()}


@router.get("/", summary="The live dashboard", response_class=HTMLResponse)
async def dashboard() -> HTMLResponse:
    page = resources.files("simulator").joinpath("dashboard.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})
