"""Fault rules: what a request gets instead of its answer, with a probability, optionally on one route.

A rule is the JSON object of ``<PREFIX>_FAULTS`` (a list of them) and of ``PUT
/_simulator/plugins/{plugin}/faults``::

    {"kind": "status", "probability": 0.05, "status": 503}
    {"kind": "status", "probability": 0.01, "status": 429, "retry_after": 2, "route": "apim_oauth.token"}
    {"kind": "reset" | "close", "probability": p}
    {"kind": "hang", "probability": p, "seconds": 30}
    {"kind": "slow_body", "probability": p, "seconds": 5}
    {"kind": "truncate", "probability": p}

Kinds, from the client's side:

- ``status``: the fake API's own error answer for that status (each plugin supplies its shapes through the
  ``simulator_error_response`` hook), after the route's delay; ``429`` and ``503`` carry ``Retry-After``
  (``retry_after`` seconds, default 1).
- ``reset``: the connection is reset (TCP RST) when the answer was due.
- ``close``: the connection is closed (FIN) without an answer when the answer was due.
- ``hang``: no answer at all; the connection is closed after ``seconds`` (default 30, at most 600) unless
  the client gives up first.
- ``slow_body``: the status line and headers when the answer was due, then the body dribbled over
  ``seconds`` (default 5, at most 600) in up to 20 pieces.
- ``truncate``: the headers announce the whole body, half of it is sent, then the connection is closed.

The rules of one plugin apply to each request of a route in their order; their probabilities add up (so at
most 1 in total per route): one uniform draw per request picks at most one rule. The draw comes from the
plugin's own fault generator, seeded from ``SIMULATOR_SEED``, so a seeded run fires the same faults.
"""

from __future__ import annotations

import asyncio
import math
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final, Literal

from simulator.delays import shown
from simulator.http import Message, Receive, Response, Send

ErrorResponse = Callable[[int, str], Response]
"""A plugin's error answer for a status on a route (its full name): what a ``status`` fault sends."""

Kind = Literal["status", "reset", "close", "hang", "slow_body", "truncate"]
KINDS: Final[tuple[Kind, ...]] = ("status", "reset", "close", "hang", "slow_body", "truncate")
MAX_SECONDS: Final = 600.0
MAX_RULES: Final = 64
SLOW_PIECES: Final = 20
_NO_LINGER: Final = struct.pack("ii", 1, 0)
_DEFAULT_SECONDS: Final = {"hang": 30.0, "slow_body": 5.0}
_KEYS: Final[dict[str, frozenset[str]]] = {
    "status": frozenset({"kind", "probability", "route", "status", "retry_after"}),
    "reset": frozenset({"kind", "probability", "route"}),
    "close": frozenset({"kind", "probability", "route"}),
    "hang": frozenset({"kind", "probability", "route", "seconds"}),
    "slow_body": frozenset({"kind", "probability", "route", "seconds"}),
    "truncate": frozenset({"kind", "probability", "route"}),
}


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One rule, validated.

    Attributes:
        kind: what the client gets (see the module's documentation).
        probability: of firing on a request of a matching route, 0 to 1.
        route: a route's full name (``eligibility.patient_check``); ``None`` matches every route.
        status: for ``status``: the HTTP status, 400 to 599.
        seconds: for ``hang`` and ``slow_body``: how long.
        retry_after: for ``status`` 429 and 503: the ``Retry-After`` seconds.
    """

    kind: Kind
    probability: float
    route: str | None = None
    status: int = 0
    seconds: float = 0.0
    retry_after: int = 1

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "probability": self.probability}
        if self.route is not None:
            data["route"] = self.route
        if self.kind == "status":
            data["status"] = self.status
            if self.status in (429, 503):
                data["retry_after"] = self.retry_after
        if self.kind in _DEFAULT_SECONDS:
            data["seconds"] = self.seconds
        return data


def _number(rule: Mapping[str, Any], key: str, low: float, high: float, default: float | None) -> float:
    value = rule.get(key, default)
    if value is None:
        raise ValueError(f"{key!r} is required")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key!r} must be a number, not {shown(value, 60)}")
    if not low <= value <= high:
        raise ValueError(f"{key!r} must be from {low:g} to {high:g}, not {value!r}")
    return float(value)


def parse_rules(value: Any, routes: Iterable[str]) -> tuple[FaultRule, ...]:
    """Validate a JSON list of rules against a plugin's route names; ``ValueError`` says what is wrong,
    naming the rule by its position."""
    if not isinstance(value, list):
        raise ValueError(f"faults must be a JSON list of rules, not {shown(value, 60)}")
    if len(value) > MAX_RULES:
        raise ValueError(f"at most {MAX_RULES} fault rules, not {len(value)}")
    known = set(routes)
    rules = []
    for index, rule in enumerate(value):
        try:
            rules.append(_rule(rule, known))
        except ValueError as exc:
            raise ValueError(f"rule {index}: {exc}") from None
    for route in {r.route for r in rules}:
        total = sum(r.probability for r in rules if r.route is None or r.route == route)
        if total > 1 + 1e-9:
            where = f"route {route}" if route is not None else "every route"
            raise ValueError(
                f"the probabilities of the rules that apply to {where} add up to {total:g} (> 1)"
            )
    return tuple(rules)


def _rule(rule: Any, known: set[str]) -> FaultRule:
    if not isinstance(rule, dict):
        raise ValueError(f"a rule is a JSON object, not {shown(rule, 60)}")
    kind = rule.get("kind")
    if kind not in KINDS:
        raise ValueError(f"'kind' must be one of {', '.join(KINDS)}, not {shown(kind, 60)}")
    unknown = set(rule) - _KEYS[kind]
    if unknown:
        raise ValueError(f"unknown key(s) for kind {kind!r}: {', '.join(sorted(map(str, unknown)))}")
    probability = _number(rule, "probability", 0.0, 1.0, None)
    route = rule.get("route")
    if route is not None and (not isinstance(route, str) or route not in known):
        names = ", ".join(sorted(known)) or "(none)"
        raise ValueError(f"'route' {shown(route, 60)} is not one of this plugin's routes: {names}")
    if kind == "status":
        status = rule.get("status")
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"'status' must be an integer from 400 to 599, not {shown(status, 60)}")
        retry_after = _number(rule, "retry_after", 0, 86_400, 1)
        if retry_after != int(retry_after):
            raise ValueError(f"'retry_after' must be whole seconds, not {retry_after!r}")
        return FaultRule(kind, probability, route, status=status, retry_after=int(retry_after))
    seconds = _number(rule, "seconds", 0.0, MAX_SECONDS, _DEFAULT_SECONDS.get(kind, 0.0))
    return FaultRule(kind, probability, route, seconds=seconds)


def for_route(rules: Sequence[FaultRule], route: str) -> tuple[tuple[float, FaultRule], ...]:
    """The rules that apply to ``route``, each with the cumulative probability it fires under: a request
    draws ``u`` in [0, 1) and the first rule whose bound exceeds ``u`` fires."""
    bound = 0.0
    found = []
    for rule in rules:
        if (rule.route is None or rule.route == route) and rule.probability > 0:
            bound += rule.probability
            found.append((bound, rule))
    return tuple(found)


def default_error(status: int, route: str) -> Response:
    """The error answer of a plugin that has no ``simulator_error_response`` hook."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return Response.json({"error": phrase, "status": status, "fault": "injected"}, status=status)


# -- what a fired rule does to the connection (the dispatcher in simulator/app.py calls these) ---------------

Connection = Callable[[], Any]  # a weakref to the transport: calling it gives the transport or None


async def no_answer(
    rule: FaultRule,
    connection: Connection | None,
    receive: Receive,
    arrived: float,
    clock: Callable[[], float],
) -> None:
    """``reset``, ``close`` and ``hang``: the request gets no answer; returns once the connection is gone
    (or, in-process where there is no connection, at once)."""
    if rule.kind == "hang":
        try:
            async with asyncio.timeout(max(0.0, arrived + rule.seconds - clock())):
                await _disconnected(receive)
                return
        except TimeoutError:
            pass
    transport = connection() if connection is not None else None
    if transport is None or transport.is_closing():
        return
    if rule.kind == "reset":
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # No lingering: closing now sends a TCP RST instead of a FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
        transport.abort()
    else:
        transport.close()
    await _disconnected(receive)


async def partial_answer(
    rule: FaultRule,
    start: Message,
    body: Message,
    send: Send,
    connection: Connection | None,
    receive: Receive,
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    """``slow_body`` (the body in up to 20 pieces over ``seconds``) and ``truncate`` (half the body announced
    whole, then the connection closed)."""
    data: bytes = body["body"]
    await send(start)
    if rule.kind == "truncate":
        transport = connection() if connection is not None else None
        await send({"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True})
        if transport is not None and not transport.is_closing():
            transport.close()  # the coalescing transport sends the half first
            await _disconnected(receive)
        return
    pieces = max(1, min(SLOW_PIECES, len(data)))
    size = max(1, -(-len(data) // pieces))
    step = rule.seconds / pieces
    transport = connection() if connection is not None else None
    for offset in range(0, len(data), size):
        await sleep(step)
        if transport is not None and transport.is_closing():
            return  # the client gave up: stop dribbling (uvicorn's send would drop the bytes silently)
        await send({"type": "http.response.body", "body": data[offset : offset + size], "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
