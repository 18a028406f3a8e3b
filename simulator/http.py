"""The lean request/response types that plugin route handlers use.

Plugin routes run on the simulator's hot path, so they do not go through FastAPI's per-request machinery
(dependency solving, model validation, response encoding): a handler receives a :class:`Request` that parses
only what it is asked for, and returns a :class:`Response` whose bytes are usually built once at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

RawHeaders = tuple[tuple[bytes, bytes], ...]

JSON: Final = b"application/json"
TEXT: Final = b"text/plain; charset=utf-8"


class RequestBodyTooLarge(Exception):
    """Raised by :meth:`Request.body` when the body exceeds the limit; plugins turn it into their own 4xx."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class Request:
    """One HTTP request, parsed lazily from the ASGI scope.

    Attributes are cheap to read; ``query``, ``headers`` and ``body()`` parse on first use only.
    """

    __slots__ = ("_body", "_headers", "_query", "_receive", "max_body_bytes", "path_params", "scope")

    def __init__(
        self, scope: Scope, receive: Receive, path_params: dict[str, str], max_body_bytes: int = 1 << 20
    ) -> None:
        self.scope = scope
        self._receive = receive
        self.path_params = path_params
        self.max_body_bytes = max_body_bytes
        self._query: dict[str, list[str]] | None = None
        self._headers: dict[str, str] | None = None
        self._body: bytes | None = None

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    @property
    def query_string(self) -> bytes:
        return bytes(self.scope.get("query_string", b""))

    @property
    def query(self) -> dict[str, list[str]]:
        """Query parameters, each name mapped to every value given, in order; blank values are kept."""
        if self._query is None:
            self._query = parse_qs(self.query_string.decode("latin-1"), keep_blank_values=True)
        return self._query

    @property
    def headers(self) -> dict[str, str]:
        """Request headers with lower-case names; where a name repeats, the first value wins."""
        if self._headers is None:
            headers: dict[str, str] = {}
            for name, value in self.scope["headers"]:
                headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
            self._headers = headers
        return self._headers

    async def body(self) -> bytes:
        """The whole request body; raises :class:`RequestBodyTooLarge` past ``max_body_bytes``."""
        if self._body is None:
            chunks: list[bytes] = []
            size = 0
            more = True
            while more:
                message = await self._receive()
                if message["type"] == "http.disconnect":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise RequestBodyTooLarge(self.max_body_bytes)
                chunks.append(chunk)
                more = message.get("more_body", False)
            self._body = b"".join(chunks)
        return self._body


@dataclass(frozen=True, slots=True)
class Response:
    """A complete HTTP response: status, raw headers (content-type and content-length included) and body.

    Build canned responses once (at start-up) and return the same object on every request; use
    :meth:`with_headers` to add per-request headers without copying the body.
    """

    status: int
    body: bytes
    headers: RawHeaders

    @classmethod
    def build(
        cls,
        body: bytes,
        *,
        status: int = 200,
        content_type: bytes | str = JSON,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        ctype = content_type.encode("latin-1") if isinstance(content_type, str) else content_type
        raw: list[tuple[bytes, bytes]] = [
            (b"content-type", ctype),
            (b"content-length", str(len(body)).encode()),
        ]
        for name, value in (headers or {}).items():
            raw.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        return cls(status, body, tuple(raw))

    @classmethod
    def json(
        cls,
        content: Any,
        *,
        status: int = 200,
        content_type: bytes | str = JSON,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        return cls.build(orjson.dumps(content), status=status, content_type=content_type, headers=headers)

    @classmethod
    def text(cls, content: str, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        return cls.build(content.encode(), status=status, content_type=TEXT, headers=headers)

    def with_headers(self, extra: RawHeaders) -> Response:
        return Response(self.status, self.body, self.headers + extra) if extra else self


Handler = Callable[[Request], Awaitable[Response]]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")


@dataclass(frozen=True, slots=True)
class Route:
    """A route a plugin serves.

    Attributes:
        path: absolute path template; ``{name}`` matches one path segment, a final ``{name:path}`` the rest.
        handler: ``async def handler(request: Request) -> Response``.
        methods: the methods served; ``("*",)`` hands every method to the handler (it answers 405 itself).
            A route serving GET also answers HEAD, without the body.
        name: registered name, unique across plugins; the host prefixes it with ``<plugin>.``.
        summary: one line for ``simulator plugins`` and ``/_simulator/plugins``.
        delayed: False exempts the route from the plugin's delay policy (health checks).
    """

    path: str
    handler: Handler
    methods: tuple[str, ...] = ("GET",)
    name: str = ""
    summary: str = ""
    delayed: bool = True
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
        object.__setattr__(self, "segments", tuple(segments))
        object.__setattr__(self, "param_names", tuple(names))
        object.__setattr__(self, "tail_param", tail)
        object.__setattr__(self, "methods", tuple(m.upper() for m in self.methods))

    @property
    def shape(self) -> str:
        """The template with parameter names erased: two routes with one shape collide."""
        shape = "/" + "/".join("{}" if s is None else s for s in self.segments)
        return shape + ("/{path}" if self.tail_param else "")
