"""``/_simulator/*``: what the running simulator is made of. Never delayed, always on."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

import simulator
from simulator.delays import describe
from simulator.host import PluginHost
from simulator.settings import public_values

router = APIRouter(prefix="/_simulator", tags=["simulator"])


def get_host(request: Request) -> PluginHost:
    host: PluginHost = request.app.state.host
    return host


def plugin_report(host: PluginHost) -> list[dict[str, Any]]:
    """Each enabled plugin: name, version, routes, delay, and the variables it reads (secrets masked)."""
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
                }
                for route in plugin.routes
            ],
            "delay": describe(plugin.delay),
            "settings": public_values(plugin.settings) if plugin.settings is not None else [],
            "services": [{"name": s.name, "description": s.description} for s in plugin.services],
            "delay_kinds": [k.name for k in plugin.delay_kinds],
            "targets": [{"name": t.name, "summary": t.summary} for t in plugin.targets],
        }
        for plugin in host.plugins.values()
    ]


@router.get("/plugins", summary="Enabled plugins with their routes, delays and settings")
def plugins(host: Annotated[PluginHost, Depends(get_host)]) -> dict[str, Any]:
    return {
        "simulator": {"version": simulator.__version__, "seed": host.core.seed, "workers": host.core.workers},
        "plugins": plugin_report(host),
    }
