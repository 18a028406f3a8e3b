"""The lean request and response types that plugin route handlers use.

Plugin routes run on the simulator's hot path, so they do not go through FastAPI's per-request machinery
(dependency solving, model validation, response encoding): a handler receives a :class:`Request` that parses
only what it is asked for, and returns a :class:`Response` whose bytes are usually built once at start-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl, unquote_plus

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

RawHeaders = tuple[tuple[bytes, bytes], ...]

#: Media types the built-in fakes answer with; use them instead of spelling the strings again.
APPLICATION_JSON: Final = "application/json"
TEXT_PLAIN: Final = "text/plain; charset=utf-8"
FORM_URLENCODED: Final = "application/x-www-form-urlencoded"


class RequestBodyTooLarge(Exception):
    """Raised by :meth:`Request.body` past ``SIMULATOR_MAX_BODY_BYTES``; plugins answer their own 4xx.

    A handler that does not catch it gets the core's 413 ``{"detail": "Request body too large"}``.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class InvalidBody(ValueError):
    """Raised by :meth:`Request.json` when the body is not JSON; the message says where it fails."""


class Params(dict[str, str]):
    """Query parameters or form fields: ``params["x"]`` is the first value, ``getlist("x")`` all of them.

    A ``dict`` (so lookups cost what a dict's do) that also keeps every value in order.
    """

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs = pairs if isinstance(pairs, list) else list(pairs)
        # Filled from the last pair to the first, so that the first value of a repeated name stays.
        dict.__init__(self, reversed(self._pairs))

    def getlist(self, name: str) -> list[str]:
        """Every value given for ``name``, in order; ``[]`` when there is none."""
        return [value for key, value in self._pairs if key == name]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` in the order received, repeats included."""
        return list(self._pairs)


# Percent-escaped values repeat from request to request (URNs in OAuth forms): unquoting them is slow next to
# the rest of a form's parsing, so short ones are remembered, in a table bounded in entries and bytes.
_UNQUOTED: dict[str, str] = {}
_UNQUOTED_MAX_ENTRIES: Final = 256
_UNQUOTED_MAX_LENGTH: Final = 256


def _unquote(value: str) -> str:
    known = _UNQUOTED.get(value)
    if known is not None:
        return known
    plain = unquote_plus(value)
    if len(value) <= _UNQUOTED_MAX_LENGTH:
        if len(_UNQUOTED) >= _UNQUOTED_MAX_ENTRIES:
            _UNQUOTED.clear()
        _UNQUOTED[value] = plain
    return plain


def parse_form(body: bytes) -> Params:
    """``application/x-www-form-urlencoded`` fields, as :meth:`Request.form` returns them.

    Bytes that are not UTF-8 become U+FFFD instead of failing, so a garbage body is still a (useless) form.
    """
    pairs = []
    for pair in body.decode("utf-8", "replace").split("&"):
        if pair:
            name, _, value = pair.partition("=")
            # Most names and values need no unquoting: test before paying for a call (the token path).
            if "%" in name or "+" in name:
                name = _unquote(name)
            if "%" in value or "+" in value:
                value = _unquote(value)
            pairs.append((name, value))
    return Params(pairs)


class Request:
    """One HTTP request, parsed lazily from the ASGI scope.

    ``method``, ``path`` and ``path_params`` are ready; ``query``, ``headers`` and the body are parsed on
    first use only, so a handler pays for what it reads.
    """

    __slots__ = ("_body", "_headers", "_query", "_receive", "max_body_bytes", "path_params", "scope")

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        path_params: dict[str, str],
        max_body_bytes: int = 1 << 20,
        *,
        body: bytes | None = None,
    ) -> None:
        self.scope = scope
        self._receive = receive
        self.path_params = path_params
        self.max_body_bytes = max_body_bytes
        self._query: Params | None = None
        self._headers: dict[str, str] | None = None
        self._body = body  # given when the server protocol has read the whole body already

    @property
    def receive(self) -> Receive:
        """The ASGI ``receive`` of the request (the core's fault injection waits on it for a disconnect)."""
        return self._receive

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
    def query(self) -> Params:
        """Query parameters: ``request.query["x"]`` is the first ``x``, ``getlist("x")`` every one.

        Blank values are kept (``?x=`` gives ``""``).
        """
        if self._query is None:
            self._query = Params(parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True))
        return self._query

    @property
    def headers(self) -> dict[str, str]:
        """Request headers with lower-case names; where a name repeats, the first value is here.

        A plain dict: it is built on the hot path (a dict subclass costs twice as much, measured), and
        :meth:`header_values` gives every value of a repeated header.
        """
        if self._headers is None:
            headers: dict[str, str] = {}
            for name, value in self.scope["headers"]:
                headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
            self._headers = headers
        return self._headers

    def header_values(self, name: str) -> list[str]:
        """Every value of the header ``name`` (any case), in order; ``[]`` when it is absent."""
        wanted = name.lower()
        raw = self.scope["headers"]
        return [value.decode("latin-1") for key, value in raw if key.decode("latin-1").lower() == wanted]

    @property
    def parsed_headers(self) -> dict[str, str] | None:
        """:attr:`headers` if a handler has read them already, else None (without parsing them)."""
        return self._headers

    @property
    def body_read(self) -> bytes | None:
        """The body, if a handler has read it (the journal keeps it, where asked to); else None."""
        return self._body

    @property
    def received(self) -> bytes:
        """The body as read before the handler was called; ``b""`` when none was.

        For a handler that never awaits, which is then answered from the server protocol's parser callback
        (the fastest path): the core reads the body of any request but a GET or HEAD before calling it. Any
        other handler awaits :meth:`body` instead.
        """
        return self._body or b""

    def received_form(self) -> Params:
        """:attr:`received` parsed as a form, as :meth:`form` parses a body."""
        return parse_form(self._body or b"")

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

    async def json(self) -> Any:
        """The body parsed as JSON; raises :class:`InvalidBody` when it is not JSON."""
        try:
            return orjson.loads(await self.body())
        except orjson.JSONDecodeError as exc:
            raise InvalidBody(f"the body is not JSON: {exc}") from None

    async def form(self) -> Params:
        """The body parsed as an HTML form (``application/x-www-form-urlencoded``), whatever its Content-Type.

        ``form["grant_type"]`` is the first value of a repeated field, as OAuth servers take it.
        """
        return parse_form(await self.body())


def _encode_headers(headers: Mapping[str, str]) -> RawHeaders:
    return tuple((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items())


@dataclass(frozen=True, slots=True)
class Response:
    """A complete HTTP response: status, headers (content-type and content-length included) and body.

    Build canned responses once, at start-up, and return the same object on every request; add per-request
    headers with :meth:`with_headers`, which does not copy the body. ``raw_headers`` are ``(name, value)``
    byte pairs, lower-case names, as ASGI sends them: a handler that builds bodies per request at full speed
    may construct ``Response(status, body, raw_headers)`` directly.
    """

    status: int
    body: bytes
    raw_headers: RawHeaders

    @classmethod
    def build(
        cls,
        body: bytes,
        *,
        status: int = 200,
        content_type: str = APPLICATION_JSON,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """A response with these bytes as its body."""
        raw = (
            (b"content-type", content_type.encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
        )
        return cls(status, body, raw + _encode_headers(headers or {}))

    @classmethod
    def json(
        cls,
        content: Any,
        *,
        status: int = 200,
        content_type: str = APPLICATION_JSON,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """``content`` serialised as JSON (orjson: dataclasses, UUIDs and datetimes included)."""
        return cls.build(orjson.dumps(content), status=status, content_type=content_type, headers=headers)

    @classmethod
    def text(
        cls,
        content: str,
        *,
        status: int = 200,
        content_type: str = TEXT_PLAIN,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """``content`` encoded as UTF-8."""
        return cls.build(content.encode(), status=status, content_type=content_type, headers=headers)

    @property
    def headers(self) -> dict[str, str]:
        """The headers as strings (the first of a repeated name); for reading, not on the hot path."""
        headers: dict[str, str] = {}
        for name, value in self.raw_headers:
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        return headers

    def with_headers(self, headers: Mapping[str, str]) -> Response:
        """This response with ``headers`` added (names are lower-cased); itself when there are none."""
        if not headers:
            return self
        return Response(self.status, self.body, self.raw_headers + _encode_headers(headers))


Handler = Callable[[Request], Awaitable[Response]]
"""What the dispatcher calls: ``async def handler(request: Request) -> Response``."""


# -- what the simulator's server protocol adds to each request's scope, under scope["extensions"] ------------

#: ``time.monotonic()`` when the request's first bytes were parsed; delays are measured from it.
ARRIVED: Final = "simulator.arrived"

#: A :data:`RespondLater` for this request; absent under other servers (and in-process tests).
RESPOND_LATER: Final = "simulator.respond_later"

#: A ``weakref`` to the request's transport, for connection faults (reset, close, truncate); absent under
#: other servers (and in-process tests). A weak one: the scope must not keep the connection alive.
CONNECTION: Final = "simulator.connection"

#: Present (True) when the request's ``Content-Length`` is over ``SIMULATOR_MAX_BODY_BYTES``: the dispatcher
#: answers the route's plugin's own 413 without calling the handler, and closes the connection.
BODY_TOO_LARGE: Final = "simulator.body_too_large"

#: The route the server protocol's claim (:class:`Immediate`) matched, ``(method table, path params)`` or None
#: for no plugin route, when the app did not claim the request: its dispatcher need not match it again.
MATCHED: Final = "simulator.matched"

RespondLater = Callable[[Send, float, Message, Message], Awaitable[float | None]]
"""``respond_later(send, seconds, start, body)``: send the ASGI ``http.response.start`` and
``http.response.body`` messages through the server's ``send`` from a timer callback ``seconds`` from now.
The awaitable's result is the ``time.monotonic()`` at which they were handed to the socket; None means the
time has come but they could not be sent from there (writes paused for a slow reader, or ``send`` wrapped by
a middleware): the caller sends them itself."""


WriteNow = Callable[[int, RawHeaders, bytes], None]
"""``write(status, raw_headers, body)``: a whole answer, handed to the server protocol's transport at once."""


class Immediate(Protocol):
    """What an ASGI application may offer the server protocol (``simulator/protocol.py``) so that a request
    it can answer without waiting is answered from the parser's callback: no ASGI task, cycle or messages.

    ``claim_immediate(scope)`` runs when the headers of a request without a body, or with a Content-Length
    one within the size limit (never a GET or HEAD with a body), are parsed (its scope is complete): a token
    for :meth:`answer_immediate`, or None for the usual ASGI path.
    ``answer_immediate(token, scope, body, write)`` runs once the request is complete, with its whole body,
    and calls ``write`` exactly once, synchronously.
    """

    def claim_immediate(self, scope: Scope) -> object | None: ...

    def answer_immediate(self, claim: Any, scope: Scope, body: bytes, write: WriteNow) -> None: ...
