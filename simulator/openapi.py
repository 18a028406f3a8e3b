"""Plugin routes in the OpenAPI document (``/_simulator/openapi.json``, shown at ``/_simulator/docs``).

Plugin routes bypass FastAPI, so FastAPI does not know them; this module describes them from what each
:class:`~simulator.Route` carries (path, methods, summary, description, parameters), one tag per plugin,
and merges them into FastAPI's document of the core routes.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from simulator.host import PluginHost
from simulator.routing import Parameter, Route

# What "*" (every method) is shown as: the methods a client would try.
_ANY_METHOD = ("get", "post", "put", "patch", "delete")
_TAIL = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):path\}")


def plugin_paths(host: PluginHost) -> dict[str, dict[str, Any]]:
    """OpenAPI path items for every enabled plugin's routes."""
    paths: dict[str, dict[str, Any]] = {}
    for plugin in host.plugins.values():
        for route in plugin.routes:
            item = paths.setdefault(_TAIL.sub(r"{\1}", route.path), {})
            methods = _ANY_METHOD if "*" in route.methods else [m.lower() for m in route.methods]
            for method in methods:
                item[method] = _operation(plugin.name, route, method, len(methods) > 1)
    return paths


def _operation(plugin: str, route: Route, method: str, several: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": [plugin],
        "summary": route.summary or route.name,
        "operationId": f"{route.name}.{method}" if several else route.name,
        "responses": {"default": {"description": "the fake API's answer"}},
    }
    if route.description:
        operation["description"] = route.description
    if route.parameters:
        operation["parameters"] = [_parameter(p) for p in route.parameters]
    if route.delayed:
        operation["x-simulator-delayed"] = True
    return operation


def _parameter(parameter: Parameter) -> dict[str, Any]:
    schema: dict[str, Any] = (
        {"type": "array", "items": {"type": "string"}}
        if parameter.type == "array"
        else {"type": parameter.type}
    )
    if parameter.default is not None:
        schema["default"] = parameter.default
    return {
        "name": parameter.name,
        "in": parameter.location,
        "required": parameter.required,
        "schema": schema,
    }


def include_plugin_routes(app: FastAPI, host: PluginHost) -> None:
    """Make ``app.openapi()`` describe the plugin routes beside FastAPI's own, built once on first use."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
                tags=[{"name": "simulator", "description": "the simulator's own routes, never delayed"}]
                + [
                    {"name": name, "description": f"plugin {name} {p.version}"}
                    for name, p in host.plugins.items()
                ],
            )
            schema["paths"] = plugin_paths(host) | schema.get("paths", {})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
