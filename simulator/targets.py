"""Load-test targets: what plugins offer through ``simulator_register_targets``, and how they are printed.

A plugin says *what* to request (:class:`HttpTarget`: method, path, headers, body); the core writes it in a
load generator's format, so every plugin's targets work with every format::

    simulator targets --base-url $URL | vegeta attack -rate=10/s -duration=30s | vegeta report
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

import orjson

Format = Literal["auto", "vegeta-http", "vegeta-json"]
FORMATS: tuple[Format, ...] = ("auto", "vegeta-http", "vegeta-json")


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """One request of a load test.

    Attributes:
        method: ``GET``, ``POST``...
        path: path and query string, appended to the ``--base-url`` (``/health``).
        headers: request headers (a form POST needs its Content-Type).
        body: the request body.
    """

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class TargetOption:
    """A command-line option of ``simulator targets`` that a target set reads (``--api-key``).

    Attributes:
        flag: the option, starting with ``--``; its value reaches ``generate`` under the flag's name without
            the dashes, ``-`` turned into ``_`` (``api_key``).
        help: one line for ``simulator targets --help``.
        default: the value when the option is not given.
    """

    flag: str
    help: str
    default: str | None = None

    @property
    def key(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True, slots=True)
class TargetRequest:
    """What ``simulator targets`` was asked for, as a target set's ``generate`` receives it.

    Attributes:
        base_url: ``--base-url`` without a trailing slash; targets' paths are relative to it, but a target
            whose content depends on the full URL (a JWT's ``aud``) needs it.
        count: ``--count``: how many targets a generated set should make.
        rng: seeded from ``--seed`` when given, so generated targets are reproducible.
        options: the values of the set's own :class:`TargetOption` flags, by key.
    """

    base_url: str
    count: int
    rng: random.Random
    options: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class Targets:
    """A named set of load-test targets a plugin offers.

    Attributes:
        name: unique across plugins; the host prefixes it with ``<plugin>.`` (``eligibility.patients``).
            ``simulator targets --kind`` takes the full name or, when it is unambiguous, the short one.
        generate: makes the targets; called only when ``simulator targets`` prints this set.
        summary: one line for ``simulator targets --list``.
        options: command-line options the set reads.
        default: what ``simulator targets`` prints without ``--kind`` (the first such set of the enabled
            plugins, in their order); give it to a plugin's main load test.
    """

    name: str
    generate: Callable[[TargetRequest], Iterable[HttpTarget]]
    summary: str = ""
    options: tuple[TargetOption, ...] = ()
    default: bool = False


def render(targets: Iterable[HttpTarget], base_url: str, fmt: Format = "auto") -> Iterator[str]:
    """Lines for a load generator: vegeta's http format (``GET <url>``) or its JSON format (one object a
    line, body base64). ``auto`` is the http format unless a target has headers or a body, which only the JSON
    format carries line by line."""
    pending = iter(targets)
    if fmt == "auto":
        first = next(pending, None)
        if first is None:
            return
        fmt = "vegeta-json" if first.body or first.headers else "vegeta-http"
        pending = _chain(first, pending)
    for target in pending:
        url = base_url + target.path
        if fmt == "vegeta-http":
            if target.body or target.headers:
                raise ValueError("a target with headers or a body needs --format vegeta-json")
            yield f"{target.method} {url}"
        else:
            line: dict[str, object] = {"method": target.method, "url": url}
            if target.headers:
                line["header"] = {name: [value] for name, value in target.headers.items()}
            if target.body:
                line["body"] = base64.b64encode(target.body).decode()
            yield orjson.dumps(line).decode()


def _chain(first: HttpTarget, rest: Iterator[HttpTarget]) -> Iterator[HttpTarget]:
    yield first
    yield from rest
