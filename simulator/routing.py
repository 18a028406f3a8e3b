"""Matching a request's method and path to a plugin route, without a regex per route.

Static paths are one dict lookup; templated paths are compared segment by segment, static segments
first, so ``/patient-check/_status`` wins over ``/patient-check/{id}`` and a ``{rest:path}`` catch-all
comes last.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from simulator.delays import DelayPolicy
from simulator.http import Route


@dataclass(frozen=True, slots=True)
class Target:
    """A route ready to serve: the handler plus the delay that applies to it."""

    route: Route
    plugin: str
    delay: DelayPolicy | None
    rng: random.Random


Match = tuple[Target, dict[str, str]]

# A method table per path: method -> target, "*" for routes that take every method.
MethodTable = dict[str, Target]


class Router:
    def __init__(self, targets: Iterable[Target]) -> None:
        self._static: dict[str, MethodTable] = {}
        templated: dict[str, tuple[Route, MethodTable]] = {}
        for target in targets:
            route = target.route
            if not route.param_names and route.tail_param is None:
                table = self._static.setdefault(_normal(route.path), {})
            else:
                table = templated.setdefault(route.shape, (route, {}))[1]
            for method in route.methods:
                table[method] = target
        # Most specific first: more static segments, then no catch-all.
        self._templated = sorted(
            templated.values(),
            key=lambda item: (
                item[0].tail_param is not None,
                -sum(s is not None for s in item[0].segments),
                -len(item[0].segments),
            ),
        )

    def match(self, method: str, path: str) -> tuple[MethodTable, dict[str, str]] | None:
        """The method table of the route that owns ``path`` and its path parameters, or None."""
        path = _normal(path)
        table = self._static.get(path)
        if table is not None:
            return table, {}
        parts = path.strip("/").split("/") if path != "/" else []
        for route, table in self._templated:
            params = _match_segments(route, parts)
            if params is not None:
                return table, params
        return None


def pick(table: MethodTable, method: str) -> Target | None:
    """The target for ``method``: exact, then ``*``, then GET for HEAD."""
    target = table.get(method) or table.get("*")
    if target is None and method == "HEAD":
        target = table.get("GET")
    return target


def allowed(table: MethodTable) -> str:
    methods = set(table)
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def _normal(path: str) -> str:
    """A trailing slash does not make another path."""
    return path.rstrip("/") or "/"


def _match_segments(route: Route, parts: list[str]) -> dict[str, str] | None:
    segments = route.segments
    if route.tail_param is None:
        if len(parts) != len(segments):
            return None
    elif len(parts) < len(segments) + 1:
        return None
    params: dict[str, str] = {}
    names = iter(route.param_names)
    for segment, part in zip(segments, parts, strict=False):
        if segment is None:
            if not part:
                return None
            params[next(names)] = part
        elif segment != part:
            return None
    if route.tail_param is not None:
        params[route.tail_param] = "/".join(parts[len(segments) :])
    return params
