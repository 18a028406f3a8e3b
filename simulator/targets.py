"""Load-test targets: what plugins offer through ``simulator_register_targets``, and how they are printed.

A plugin says *what* to request (:class:`HttpTarget`: method, path, headers, body); the core writes it in a
load generator's format, so every plugin's targets work with every format::

    simulator targets --base-url $URL | vegeta attack -rate=10/s -duration=30s | vegeta report
    simulator targets --base-url $URL --format wrk > targets.lua && wrk -d30s -s targets.lua $URL
    simulator targets --base-url $URL --format k6 > targets.js && k6 run --vus 10 --duration 30s targets.js
    simulator targets --base-url $URL --format locust > locustfile.py && locust --headless -u 10 -t 30s
    simulator targets --base-url $URL --format hey | sh -s -- -n 200 -c 10

The wrk, k6 and locust formats are the scripts of :mod:`simulator.loadtest` with the targets written in.
"""

from __future__ import annotations

import base64
import random
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal, get_args
from urllib.parse import urlsplit

import orjson

Format = Literal["auto", "vegeta-http", "vegeta-json", "hey", "wrk", "k6", "locust"]
FORMATS: tuple[Format, ...] = get_args(Format)

# What each format is, for ``simulator targets --help``.
FORMAT_HELP: dict[Format, str] = {
    "auto": "vegeta's http lines, or its JSON lines where targets have headers or bodies (the default)",
    "vegeta-http": "vegeta's http format: METHOD URL lines (no headers or bodies)",
    "vegeta-json": "vegeta's JSON format: one target a line (vegeta attack -format=json)",
    "hey": "a sh script, one hey run per target: ... | sh -s -- -n 200 -c 10",
    "wrk": "a wrk Lua script with the targets in it: wrk -s targets.lua URL",
    "k6": "a k6 script with the targets in it: k6 run targets.js",
    "locust": "a locustfile with the targets in it: locust -f locustfile.py",
}

# In the shipped scripts, the targets replace the line that holds the mark, and --base-url's origin the
# default URL wherever it is.
_TARGETS_MARK = "simulator targets: the targets go here"
_DEFAULT_BASE = "http://localhost:9123"
_SCRIPTS: dict[Format, str] = {"wrk": "wrk.lua", "k6": "k6.js", "locust": "locustfile.py"}
# LuaJIT refuses a function with more than 65,536 constants: the wrk script's targets come in chunks, each
# its own function.
_LUA_CHUNK = 1000
# A host, port and userinfo, without quotes or backslashes: the scripts hold the origin in a string literal.
_NETLOC = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=:@\[\]-]+")


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """One request of a load test.

    Attributes:
        method: ``GET``, ``POST``...
        path: the full path (the API's own prefix included) and query string, appended to the origin of
            ``--base-url`` (``/health``).
        headers: request headers (a form POST needs its Content-Type).
        body: the request body.
        name: what groups the target in a load generator's report (locust's request name, k6's ``name``
            tag), e.g. its route: ``/patient-check/{nhs_number}``; default: the path without its query.
    """

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.path.partition("?")[0]


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
        base_url: the origin of ``--base-url`` (``http://host:9123``, no path, no trailing slash); targets'
            paths are relative to it, but a target whose content depends on the full URL (a JWT's ``aud``)
            needs it.
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


def split_base_url(base_url: str) -> tuple[str, str]:
    """``--base-url`` as its origin (``scheme://host[:port]``) and its path without a trailing slash
    (``""`` for none). Raises ValueError, in one line, for anything but an http(s) URL without a query."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not _NETLOC.fullmatch(parts.netloc):
        raise ValueError(f"--base-url must be an http(s) URL such as http://localhost:9123: {base_url!r}")
    origin = f"{parts.scheme}://{parts.netloc}"
    if parts.query or parts.fragment:
        raise ValueError(f"--base-url {base_url!r} carries a query or a fragment: give the origin, {origin}")
    return origin, parts.path.rstrip("/")


def check_api_path(base_url: str, api_path: str, first: HttpTarget, set_name: str) -> None:
    """A ``--base-url`` path is accepted when it is the API's own path, i.e. when the targets' paths start
    with it (``/eligibility-signposting-api``, or ``.../patient-check``): targets carry the full path, so
    it is dropped rather than doubled. Any other path (a proxy's prefix?) cannot be told from a mistake:
    refused, in one line."""
    path = first.path.partition("?")[0]
    if not api_path or path == api_path or path.startswith(api_path + "/"):
        return
    origin = split_base_url(base_url)[0]
    raise ValueError(
        f"--base-url {base_url!r} carries the path {api_path}, which is not the API path of {set_name} "
        f"(its targets are {path}...): give the origin, {origin}"
    )


def render(targets: Iterable[HttpTarget], base_url: str, fmt: Format = "auto") -> Iterator[str]:
    """The lines of ``fmt`` for ``targets`` on ``base_url`` (an origin).

    vegeta's http format (``GET <url>``), its JSON format (one object a line, body base64), or ``auto``: the
    http format unless the first target has headers or a body, which only the JSON format carries line by
    line. ``hey``: a sh script of one hey run per target. ``wrk``, ``k6``, ``locust``: the shipped script
    with the targets written in. Raises ValueError for a target the format cannot carry.
    """
    pending = iter(targets)
    if fmt == "auto":
        first = next(pending, None)
        if first is None:
            return
        fmt = "vegeta-json" if first.body or first.headers else "vegeta-http"
        pending = _chain(first, pending)
    if fmt in _SCRIPTS:
        yield from _script(fmt, pending, base_url)
    elif fmt == "hey":
        yield from _hey(pending, base_url)
    else:
        for target in pending:
            yield _vegeta(target, base_url, fmt)


def script_text(fmt: Format) -> str:
    """A shipped script (``wrk``, ``k6``, ``locust``), without targets."""
    return resources.files("simulator.loadtest").joinpath(_SCRIPTS[fmt]).read_text(encoding="utf-8")


def _vegeta(target: HttpTarget, base_url: str, fmt: Format) -> str:
    url = base_url + target.path
    if fmt == "vegeta-http":
        if target.body or target.headers:
            raise ValueError("a target with headers or a body needs --format vegeta-json")
        return f"{target.method} {url}"
    line: dict[str, object] = {"method": target.method, "url": url}
    if target.headers:
        line["header"] = {name: [value] for name, value in target.headers.items()}
    if target.body:
        line["body"] = base64.b64encode(target.body).decode()
    return orjson.dumps(line).decode()


def _hey(targets: Iterator[HttpTarget], base_url: str) -> Iterator[str]:
    yield "#!/bin/sh"
    yield "# hey sends one request a run: one run per target, each given this script's arguments, e.g."
    yield "#   simulator targets --format hey | sh -s -- -n 200 -c 10"
    yield "set -e"
    for target in targets:
        words = ["hey", '"$@"', "-disable-redirects", "-m", target.method]
        for name, value in target.headers.items():
            if name.lower() == "content-type":
                words += ["-T", shlex.quote(value)]
            else:
                words += ["-H", shlex.quote(f"{name}: {value}")]
        if target.body:
            words += ["-d", shlex.quote(_text(target.body, "hey"))]
        words.append(shlex.quote(base_url + target.path))
        yield " ".join(words)


def _script(fmt: Format, targets: Iterator[HttpTarget], base_url: str) -> Iterator[str]:
    entry = {"wrk": _lua_entry, "k6": _js_entry, "locust": _python_entry}[fmt]
    for line in script_text(fmt).splitlines():
        if _TARGETS_MARK in line:
            indent = line[: len(line) - len(line.lstrip())]
            count = 0
            for count, target in enumerate(targets, 1):
                if fmt == "wrk" and count % _LUA_CHUNK == 1:
                    if count > 1:
                        yield "} end)"
                    yield "add(function() return {"
                yield indent + ("  " if fmt == "wrk" else "") + entry(target)
            if fmt == "wrk" and count:
                yield "} end)"
        else:
            yield base_url.join(line.split(_DEFAULT_BASE))  # split_base_url lets no quote or backslash in


def _text(body: bytes, fmt: str) -> str:
    try:
        return body.decode()
    except UnicodeDecodeError:
        raise ValueError(f"--format {fmt} carries text bodies only; use --format vegeta-json") from None


def _lua_entry(target: HttpTarget) -> str:
    headers = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in target.headers.items())
    fields = [_lua_string(target.method), _lua_string(target.path)]
    if target.headers or target.body:
        fields.append("{" + headers + "}")
    if target.body:
        fields.append(_lua_string(target.body))
    return "{" + ", ".join(fields) + "},"


def _lua_string(value: str | bytes) -> str:
    """A Lua string literal of any bytes: printable ASCII as it is, the rest as decimal escapes."""
    data = value.encode() if isinstance(value, str) else value
    out = []
    for byte in data:
        char = chr(byte)
        if char in '"\\' or not 32 <= byte < 127:
            out.append(f"\\{byte:03d}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _js_entry(target: HttpTarget) -> str:
    entry: list[object] = [target.method, target.path, target.label]
    if target.headers or target.body:
        entry.append(dict(target.headers))
    if target.body:
        entry.append(_text(target.body, "k6"))
    return orjson.dumps(entry).decode() + ","


def _python_entry(target: HttpTarget) -> str:
    entry = (target.method, target.path, target.label, dict(target.headers), _text(target.body, "locust"))
    return repr(entry) + ","


def _chain(first: HttpTarget, rest: Iterator[HttpTarget]) -> Iterator[HttpTarget]:
    yield first
    yield from rest
