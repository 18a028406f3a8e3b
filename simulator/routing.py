"""Routes: the :class:`Route` record, the :class:`Router` that builds them from decorated handlers, and the
:class:`RouteTable` that matches a request to one without a regex per route.

A plugin writes handlers FastAPI-style and the router compiles each into a plain
``async def handler(request) -> Response`` at start-up: a handler that takes only the request is called as
it is; one that declares typed path or query parameters gets a small adapter that converts them. Nothing
of this runs per request beyond that adapter.

Matching: static paths are one dict lookup; templated paths are compared segment by segment, static
segments first, so ``/patient-check/_status`` wins over ``/patient-check/{id}`` and a ``{rest:path}``
catch-all comes last.
"""

from __future__ import annotations

import inspect
import math
import random
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from simulator.control import Live
from simulator.http import Handler, Request, Response
from simulator.metrics import RouteStats

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_TRUE: Final = frozenset({"true", "1", "yes", "on", "y", "t"})
_FALSE: Final = frozenset({"false", "0", "no", "off", "n", "f"})

Location = Literal["path", "query"]
ParamType = Literal["string", "integer", "number", "boolean", "array"]


@dataclass(frozen=True, slots=True)
class Parameter:
    """A path or query parameter of a route, as the OpenAPI page shows it.

    Attributes:
        name: the parameter's name in the path template or the query string.
        location: ``"path"`` or ``"query"``.
        type: the OpenAPI type: ``string``, ``integer``, ``number``, ``boolean`` or ``array`` (of strings).
        required: path parameters always are; a query parameter without a default is.
        default: the default of an optional query parameter (JSON-able).
    """

    name: str
    location: Location = "query"
    type: ParamType = "string"
    required: bool = False
    default: Any = None


@dataclass(frozen=True, slots=True)
class Route:
    """A route a plugin serves; :class:`Router` builds them from decorated handlers.

    Attributes:
        path: absolute path template; ``{name}`` matches one path segment, a final ``{name:path}`` the rest.
        handler: ``async def handler(request: Request) -> Response``.
        methods: the methods served; ``("*",)`` hands every method to the handler (it answers 405 itself).
            A route serving GET also answers HEAD, without the body.
        name: registered name, unique across plugins; the host prefixes it with ``<plugin>.``.
        summary: one line for ``simulator plugins``, ``/_simulator/plugins`` and the OpenAPI page.
        description: more text for the OpenAPI page.
        delayed: False exempts the route from the plugin's delay policy (health checks).
        parameters: path and query parameters, for the OpenAPI page; path parameters missing here are
            added from the template as strings.
    """

    path: str
    handler: Handler
    methods: tuple[str, ...] = ("GET",)
    name: str = ""
    summary: str = ""
    description: str = ""
    delayed: bool = True
    parameters: tuple[Parameter, ...] = ()
    segments: tuple[str | None, ...] = field(init=False, repr=False, compare=False)
    param_names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    tail_param: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"route path {self.path!r} must start with '/'")
        parts = self.path.strip("/").split("/") if self.path != "/" else []
        segments: list[str | None] = []
        names: list[str] = []
        tail: str | None = None
        for index, part in enumerate(parts):
            match = _PARAM.fullmatch(part)
            if match is None:
                if "{" in part or "}" in part:
                    raise ValueError(f"route path {self.path!r}: parameters must fill a whole segment")
                segments.append(part)
                continue
            if match.group(2):
                if index != len(parts) - 1:
                    raise ValueError(f"route path {self.path!r}: '{{name:path}}' must be the last segment")
                tail = match.group(1)
                continue
            segments.append(None)
            names.append(match.group(1))
        if isinstance(self.methods, str):
            raise ValueError(f"route {self.path!r}: methods must be a tuple such as ('GET',), not a string")
        object.__setattr__(self, "segments", tuple(segments))
        object.__setattr__(self, "param_names", tuple(names))
        object.__setattr__(self, "tail_param", tail)
        object.__setattr__(self, "methods", tuple(m.upper() for m in self.methods))
        declared = {p.name for p in self.parameters if p.location == "path"}
        implicit = tuple(
            Parameter(name, "path", "string", required=True)
            for name in (*names, *([tail] if tail else []))
            if name not in declared
        )
        object.__setattr__(self, "parameters", implicit + tuple(self.parameters))

    @property
    def shape(self) -> str:
        """The template with parameter names erased: two routes with one shape collide."""
        shape = "/" + "/".join("{}" if s is None else s for s in self.segments)
        return shape + ("/{path}" if self.tail_param else "")

    @property
    def path_names(self) -> tuple[str, ...]:
        """Every path parameter, the ``{name:path}`` tail included."""
        return (*self.param_names, *([self.tail_param] if self.tail_param else []))


# -- the decorator builder ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParameterProblem:
    """A path or query value a handler's annotation refused (``limit=abc`` for ``limit: int``)."""

    location: Location
    name: str
    value: str | None
    message: str


InvalidParameter = Callable[[Request, ParameterProblem], Response]
"""Builds the answer to a refused parameter, in the fake API's own error shape."""


def default_invalid(request: Request, problem: ParameterProblem) -> Response:
    """FastAPI's shape: 422 ``{"detail": [{"loc": ["query", "limit"], "msg": ..., "input": ...}]}``."""
    detail = {"loc": [problem.location, problem.name], "msg": problem.message, "input": problem.value}
    return Response.json({"detail": [detail]}, status=422)


AnyHandler = TypeVar("AnyHandler", bound=Callable[..., Any])


class Router:
    """Routes from decorated handlers, FastAPI-style, compiled to the lean path at start-up.

    Return it (or yield its routes) from ``simulator_register_routes``::

        router = Router(prefix="/weather")

        @router.get("/forecast/{city}", summary="tomorrow's forecast")
        async def forecast(request: Request, city: str, days: int = 1) -> Response:
            return Response.json({"city": city, "days": days})

    A handler's parameters are filled by name: one annotated :class:`~simulator.http.Request` (or named
    ``request``) gets the request; a name in the path template gets that segment; any other is a query
    parameter (required unless it has a default). Annotations convert: ``str``, ``int``, ``float``,
    ``bool`` (``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off``), ``list[str]`` (every
    value) and ``X | None``. A value that does not convert is answered by ``invalid`` (default: FastAPI's
    422 shape); give the fake API's own error there. Handlers may be ``def`` or ``async def``; both run on
    the event loop, so neither may block.

    Args:
        prefix: prepended to every path (``"/weather"``).
        delayed: the default for every route's ``delayed`` (the plugin's delay policy applies).
        invalid: answers a refused parameter.
    """

    def __init__(
        self, prefix: str = "", *, delayed: bool = True, invalid: InvalidParameter = default_invalid
    ) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"router prefix {prefix!r} must start with '/' and not end with one")
        self.prefix = prefix
        self.delayed = delayed
        self.invalid = invalid
        self._routes: list[Route] = []

    def route(
        self,
        path: str,
        *,
        methods: Sequence[str] = ("GET",),
        name: str | None = None,
        summary: str | None = None,
        delayed: bool | None = None,
    ) -> Callable[[AnyHandler], AnyHandler]:
        """Register the decorated function for ``methods`` on ``prefix + path``; it stays callable."""

        def register(function: AnyHandler) -> AnyHandler:
            full = self.prefix + path if path else self.prefix or "/"
            doc = inspect.getdoc(function) or ""
            first, _, rest = doc.partition("\n")
            path_names = tuple(match.group(1) for match in _PARAM.finditer(full))
            handler, parameters = _compile(function, path_names, self.invalid)
            self._routes.append(
                Route(
                    full,
                    handler,
                    methods=tuple(methods),
                    name=name or function.__name__,
                    # An explicit summary leaves the whole docstring as the description.
                    summary=first.strip() if summary is None else summary,
                    description=rest.strip() if summary is None else doc,
                    delayed=self.delayed if delayed is None else delayed,
                    parameters=parameters,
                )
            )
            return function

        return register

    def get(self, path: str, **options: Any) -> Callable[[AnyHandler], AnyHandler]:
        """``route(path, methods=("GET",))``; HEAD is answered too, without the body."""
        return self.route(path, methods=("GET",), **options)

    def post(self, path: str, **options: Any) -> Callable[[AnyHandler], AnyHandler]:
        return self.route(path, methods=("POST",), **options)

    def put(self, path: str, **options: Any) -> Callable[[AnyHandler], AnyHandler]:
        return self.route(path, methods=("PUT",), **options)

    def patch(self, path: str, **options: Any) -> Callable[[AnyHandler], AnyHandler]:
        return self.route(path, methods=("PATCH",), **options)

    def delete(self, path: str, **options: Any) -> Callable[[AnyHandler], AnyHandler]:
        return self.route(path, methods=("DELETE",), **options)

    def any(self, path: str, **options: Any) -> Callable[[AnyHandler], AnyHandler]:
        """Every method reaches the handler, which answers 405 itself where the real API does."""
        return self.route(path, methods=("*",), **options)

    def add(self, route: Route) -> None:
        """Add a hand-built :class:`Route` (its path is taken as given, without the prefix)."""
        self._routes.append(route)

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)

    def __len__(self) -> int:
        return len(self._routes)


Convert = Callable[[str], Any]


def _compile(
    function: Callable[..., Any], path_names: tuple[str, ...], invalid: InvalidParameter
) -> tuple[Handler, tuple[Parameter, ...]]:
    """The lean handler for ``function`` and the parameters it declares."""
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # annotations naming what is not importable here: take them as written
        hints = {name: p.annotation for name, p in signature.parameters.items()}
    where = f"handler {function.__qualname__}"
    request_arg: str | None = None
    plan: list[
        tuple[str, Location, Convert, bool, bool, Any]
    ] = []  # name, where, convert, many, required, default
    parameters: list[Parameter] = []
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ValueError(f"{where}: parameter {name!r} must be a plain or keyword parameter")
        annotation = hints.get(name, param.annotation)
        if annotation is Request or (name == "request" and annotation is inspect.Parameter.empty):
            request_arg = name
            continue
        location: Location = "path" if name in path_names else "query"
        many, convert, type_name, optional = _converter(annotation, where, name)
        if location == "path" and (many or optional):
            raise ValueError(f"{where}: path parameter {name!r} must be one value, not a list or optional")
        required = location == "path" or (param.default is inspect.Parameter.empty and not optional)
        default = None if param.default is inspect.Parameter.empty else param.default
        plan.append((name, location, convert, many, required, default))
        parameters.append(Parameter(name, location, "array" if many else type_name, required, default))
    missing = [name for name in path_names if name not in {p.name for p in parameters}]
    if missing and plan:
        raise ValueError(f"{where}: path parameter(s) {', '.join(missing)} have no function parameter")

    if not plan and request_arg is not None and inspect.iscoroutinefunction(function):
        handler: Handler = function  # the common case costs nothing: the function is the handler
        return handler, tuple(parameters)
    is_async = inspect.iscoroutinefunction(function)

    async def adapter(request: Request) -> Response:
        kwargs: dict[str, Any] = {}
        if request_arg is not None:
            kwargs[request_arg] = request
        for name, location, convert, many, required, default in plan:
            if location == "path":
                raw: str | None = request.path_params[name]
            elif many:
                kwargs[name] = request.query.getlist(name) or default or []
                continue
            else:
                raw = request.query.get(name)
            if raw is None:
                if required:
                    return invalid(request, ParameterProblem(location, name, None, "field required"))
                kwargs[name] = default
                continue
            try:
                kwargs[name] = convert(raw)
            except ValueError as exc:
                return invalid(request, ParameterProblem(location, name, raw, str(exc)))
        result = function(**kwargs)
        if is_async:
            result = await result
        response: Response = result
        return response

    return adapter, tuple(parameters)


def _converter(annotation: Any, where: str, name: str) -> tuple[bool, Convert, ParamType, bool]:
    """(takes every value, converter, OpenAPI type, optional) for one annotation."""
    optional = False
    if _is_union(annotation):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        if len(members) != 1:
            raise ValueError(f"{where}: parameter {name!r} may be one type or that type | None")
        annotation = members[0]
    if typing.get_origin(annotation) in (list, Sequence, tuple) and typing.get_args(annotation)[:1] == (str,):
        return True, str, "array", optional
    table: Mapping[Any, tuple[Convert, ParamType]] = {
        inspect.Parameter.empty: (str, "string"),
        str: (str, "string"),
        int: (_to_int, "integer"),
        float: (_to_float, "number"),
        bool: (_to_bool, "boolean"),
    }
    if annotation not in table:
        raise ValueError(
            f"{where}: parameter {name!r} is annotated {annotation!r}; use str, int, float, bool, list[str], "
            "X | None, or Request"
        )
    convert, type_name = table[annotation]
    return False, convert, type_name, optional


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _to_int(raw: str) -> int:
    if not _INTEGER.fullmatch(raw):
        raise ValueError("should be a whole number")
    return int(raw)


def _to_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("should be a number") from None
    if not math.isfinite(value):
        raise ValueError("should be a finite number")
    return value


def _to_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("should be true or false")


# -- matching -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A route ready to serve: the handler, its plugin, the delay and faults in force (``live``, changed by
    the control API), the generator delays draw from, what is recorded."""

    route: Route
    plugin: str
    live: Live
    rng: random.Random
    stats: RouteStats
    immediate: bool = False  # its handler never suspends: answerable from the server protocol (app.py)


# A method table per path: method -> endpoint, "*" for routes that take every method.
MethodTable = dict[str, Endpoint]


class RouteTable:
    """Every plugin route, ready for :meth:`match`."""

    def __init__(self, endpoints: Iterable[Endpoint]) -> None:
        self._static: dict[str, MethodTable] = {}
        templated: dict[str, tuple[Route, MethodTable]] = {}
        for endpoint in endpoints:
            route = endpoint.route
            if not route.param_names and route.tail_param is None:
                table = self._static.setdefault(_normal(route.path), {})
            else:
                table = templated.setdefault(route.shape, (route, {}))[1]
            for method in route.methods:
                table[method] = endpoint
        # Most specific first: more static segments, then no catch-all.
        self._templated = sorted(
            templated.values(),
            key=lambda item: (
                item[0].tail_param is not None,
                -sum(s is not None for s in item[0].segments),
                -len(item[0].segments),
            ),
        )

    def match(self, path: str) -> tuple[MethodTable, dict[str, str]] | None:
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


def pick(table: MethodTable, method: str) -> Endpoint | None:
    """The endpoint for ``method``: exact, then ``*``, then GET for HEAD."""
    endpoint = table.get(method) or table.get("*")
    if endpoint is None and method == "HEAD":
        endpoint = table.get("GET")
    return endpoint


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
