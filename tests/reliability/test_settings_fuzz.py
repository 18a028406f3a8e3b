"""Every bad setting refused in one line: every documented variable, fed bad values by its type.

The rule: on a bad value of any variable, ``simulator serve`` exits with status 2 and exactly one line on
standard error that names the variable (and its value, shortened when huge, masked when secret) and says
what is wrong, with no traceback, before it listens; and a value that is accepted is safe to serve with.

The variables are read from the settings classes (the core's and every installed plugin's, aliases
included), so a new variable is fuzzed without touching this file; the README's variable tables must name
no variable those classes lack. Each variable gets the bad values of its type (wrong type, NaN, the
infinities, 1e306, 400 digits, negative, empty, garbage JSON and JSON of the wrong shape, special files).

Two ways of starting, to keep the run short:

- in process, for every case: the real ``simulator.cli.main(["serve"])`` in forked worker processes, with
  the environment set and only the final ``listen`` replaced by a sentinel; each case is bounded in time
  (an interval timer interrupts a read that blocks) and in memory (``RLIMIT_AS``);
- as a real ``simulator serve`` subprocess, end to end: one refused value of every variable, every
  special file of every variable naming a file, the audit's cases, a few scenario folders, and every
  accepted value: those servers must answer, and no request to a plugin's main routes may get a 5xx.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import re
import resource
import signal
import subprocess
import time
import traceback
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Literal, get_args, get_origin

import httpx
import pytest
from pydantic import AliasChoices, SecretStr
from pydantic_settings import BaseSettings

from plugins.nhs_number import problem
from simulator.host import discover
from simulator.settings import CoreSettings, env_name
from tests.conftest import clean_env, free_port, simulator_command

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).parents[2]
MAX_LINE = 1000  # characters of the one error line: a 100,000-character value must come out shortened
REFUSE_TIMEOUT = 20.0  # seconds a refused start may take (~1 s; more on a loaded machine): a hang fails
CASE_TIMEOUT = 10.0  # seconds an in-process case may take before it counts as a hang
SERVE_TIMEOUT = 30.0  # seconds an accepted start has to answer /_simulator/plugins
HUGE = "x" * 100_000


# -- the variables ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    name: str  # what the user sets
    settings: type[BaseSettings]
    field: str
    kind: str  # bool, int, float, choice, secret, folder, text, url, names, object, list

    @property
    def names_a_file(self) -> bool:
        """Settings whose value may be a path: every special file is tried on them end to end."""
        return self.kind in ("secret", "folder", "text") and bool(
            re.search(r"DIR|FILE|PATH|JWKS|KEY|SCENARIO", self.name)
        )


def _kind(settings: type[BaseSettings], name: str) -> str:
    info = settings.model_fields[name]
    annotation = info.annotation
    if get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    origin = get_origin(annotation)
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    if origin is Literal:
        return "choice"
    if annotation is SecretStr:
        return "secret"
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "folder"
    if origin is dict:
        return "object"
    if origin is frozenset or (origin is tuple and get_args(annotation)[0] is str):
        return "names"
    if origin in (list, tuple):
        return "list"
    assert annotation is str, f"{settings.__name__}.{name}: a type this test does not know: {annotation}"
    return "url" if name.endswith("url") else "text"


def settings_classes() -> dict[str, type[BaseSettings]]:
    """``core`` and every installed plugin that has settings -> its settings class."""
    found: dict[str, type[BaseSettings]] = {"core": CoreSettings}
    for name, installed in discover().items():
        hook = getattr(installed.load(), "simulator_settings_class", None)
        if hook is not None:
            found[name] = hook()
    return found


def variables() -> list[Variable]:
    found = []
    for settings in settings_classes().values():
        for name, info in settings.model_fields.items():
            alias = info.validation_alias
            names = [env_name(settings, name)]
            if isinstance(alias, AliasChoices):
                names += [c.upper() for c in alias.choices if isinstance(c, str) and c.upper() not in names]
            found += [Variable(var, settings, name, _kind(settings, name)) for var in names]
    return found


VARIABLES = variables()


def documented() -> set[str]:
    """Every variable named in the first column of a table of README.md or docs/*.md."""
    prefixes = {str(v.settings.model_config.get("env_prefix", "")) for v in VARIABLES}
    aliases = {v.name for v in VARIABLES}
    names: set[str] = set()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in path.read_text().splitlines():
            if line.startswith("| `"):
                for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]):
                    if name.startswith(tuple(prefixes)) or name in aliases:
                        names.add(name)
    return names


# -- the bad values --------------------------------------------------------------------------------------

GENERIC: dict[str, str] = {
    "wrong type": "abc",
    "NaN": "NaN",
    "nan": "nan",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "inf": "inf",
    "1e306": "1e306",
    "400 digits": "9" * 400,
    "negative": "-1",
    "empty": "",
    "blank": "   ",
    "huge text": HUGE,
    "control characters": "a\tb\nc",
    "garbage JSON": "{not json",
    "JSON list": "[1, 2]",
    "JSON object": '{"a": 1}',
    "JSON string": '"x"',
    "JSON null": "null",
    "JSON true": "true",
    "JSON NaN": '{"a": NaN}',
    "deep JSON": "[" * 5000 + "]" * 5000,
}
BY_KIND: dict[str, dict[str, str]] = {
    "bool": {"two": "2", "maybe": "maybe"},
    "int": {"fraction": "1.5", "hex": "0x10", "exponent": "1e3", "2**63": str(2**63), "2**64": str(2**64)},
    "float": {"1e309": "1e309", "-0 then junk": "-0x", "huge negative": "-1e306"},
    "choice": {"unknown": "nope"},
    "url": {
        "ftp": "ftp://x",
        "no host": "http://",
        "port out of range": "http://a:99999",
        "port not a number": "http://a:x",
        "space": "http://a b",
        "long": "http://a/" + "b" * 5000,
        "script": "javascript:alert(1)",
        "bad IPv6": "http://[::1",
    },
    "object": {
        "delay 1e306": '{"policy": "fixed", "seconds": 1e306}',
        "delay 400 digits": '{"policy": "fixed", "seconds": ' + "9" * 400 + "}",
        "delay overflow": '{"policy": "lognormal", "median": 1, "p99": 1e308}',
        "unknown policy": '{"policy": "nope"}',
        "weights overflow": '{"Actionable": 1e308, "NotEligible": 1e308}',
        "weight negative": '{"Actionable": -1}',
        "weights zero": '{"Actionable": 0}',
        "weight unknown": '{"Sometimes": 1}',
        "weight text": '{"Actionable": "x"}',
        "many keys": json.dumps({f"p{i % 99 + 0.5}{i}": 1 for i in range(5000)}),
    },
    "list": {
        "list of numbers": "[1]",
        "list of empty objects": "[{}]",
        "probability NaN": '[{"kind": "status", "status": 503, "probability": NaN}]',
        "probability 2": '[{"kind": "status", "status": 503, "probability": 2}]',
        "hang 1e306": '[{"kind": "hang", "probability": 1, "seconds": 1e306}]',
        "status 999": '[{"kind": "status", "status": 999, "probability": 0.5}]',
        "unhashable id": '[{"client_id": ["x"]}]',
        "many rules": json.dumps([{"kind": "reset", "probability": 0.001}] * 5000),
        "client key /dev/zero": '[{"client_id": "a", "public_key": "/dev/zero"}]',
        "client key missing": '[{"client_id": "a", "public_key": "/no/such/key.pem"}]',
        "client redirect huge": json.dumps(
            [{"client_id": "a", "redirect_uris": ["https://a/" + "b" * 5000]}]
        ),
    },
    "names": {"a name too long": "a" * 5000, "many names": ",".join(f"n{i}" for i in range(20_000))},
}


@dataclass(frozen=True)
class SpecialFiles:
    fifo: str
    folder: str
    missing: str
    big: str
    garbage: str
    zero_link: str

    def values(self) -> dict[str, str]:
        return {
            "/dev/zero": "/dev/zero",
            "/dev/null": "/dev/null",
            "a FIFO": self.fifo,
            "a folder": self.folder,
            "a missing file": self.missing,
            "a 20 MiB file": self.big,
            "a garbage file": self.garbage,
            "a link to /dev/zero": self.zero_link,
        }


def special_files(root: Path) -> SpecialFiles:
    root.mkdir(parents=True, exist_ok=True)
    fifo, folder, big, garbage, link = (root / n for n in ("fifo", "folder", "big", "garbage", "zero"))
    os.mkfifo(fifo)
    folder.mkdir()
    with big.open("wb") as file:
        file.truncate(20 << 20)  # sparse: costs no disk
    garbage.write_bytes(b"\x00\xffnot a key, not JSON, not YAML: [\n")
    link.symlink_to("/dev/zero")
    return SpecialFiles(str(fifo), str(folder), str(root / "missing.json"), str(big), str(garbage), str(link))


@dataclass(frozen=True)
class Case:
    label: str
    env: Mapping[str, str]
    variable: str  # the variable the refusal must name
    paths: tuple[str, ...] = ()  # extra paths to request when it is accepted (a scenario folder's patients)
    expect_in_line: str = ""  # a text the refusal must also show (the scenario file, the entry)
    serve: bool = False  # a good value, or an odd one that is fine: it must start and serve


def fuzz_cases(files: SpecialFiles) -> list[Case]:
    cases = []
    for var in VARIABLES:
        values = GENERIC | BY_KIND.get(var.kind, {})
        if var.kind in ("secret", "folder", "text", "url", "names"):
            values = values | files.values()
        cases += [Case(f"{var.name} {label}", {var.name: value}, var.name) for label, value in values.items()]
    return cases


# -- bad values that may be accepted: each then has to serve -------------------------------------------

EMPTY_IS_UNSET = {"empty", "blank"}  # plugin variables: empty counts as unset (the original's ${X:-0})
FREE_TEXT = {  # any printable text is a fine value: the server must start and serve with each
    "SIMULATOR_CLOUDWATCH_NAMESPACE",  # letters, digits, . - _ / # : and spaces
    "SIMULATOR_SERVICE_NAME",  # printable ASCII
    "SIMULATOR_ADMIN_TOKEN",  # 16-512 visible ASCII characters
    "APIM_API_KEYS",  # comma list of whatever the apps' keys are
    "APIM_ID_TOKEN_ISSUERS",
}


def may_be_accepted(case: Case) -> bool:
    """The explicit allow-list: bad-looking values a variable legitimately takes."""
    var = next(v for v in VARIABLES if v.name == case.variable)
    label = case.label.removeprefix(f"{var.name} ")
    if var.name in FREE_TEXT:
        return True
    if var.settings is not CoreSettings and label in EMPTY_IS_UNSET:
        return True
    if var.settings is not CoreSettings and var.kind in ("object", "list") and label == "JSON null":
        return True  # JSON's "no value": the default, as an empty variable
    if var.kind == "folder" and label == "a folder":
        return True  # an empty folder is a fine scenarios folder: no patients of your own
    allowed: dict[str, set[str]] = {
        # "" binds every interface, as 0.0.0.0 does; "abc", "nan", "inf"... are host names: refused when
        # they do not resolve (the listen error names SIMULATOR_HOST), served when they do.
        "SIMULATOR_HOST": {"empty"},
        # Documented: set but empty = no plugin, the core's routes only.
        "SIMULATOR_PLUGINS": {"empty", "blank"},
        # pydantic's booleans take 1/0, true/false, yes/no, on/off.
        "SIMULATOR_METRICS": {"JSON true"},
        "SIMULATOR_JOURNAL_BODIES": {"JSON true"},
    }
    if label in allowed.get(var.name, set()):
        return True
    # A plugin name that is not installed is refused by the host, naming SIMULATOR_PLUGINS; these are names.
    return var.name == "SIMULATOR_PLUGINS" and label in {"wrong type", "nan", "inf"}


# -- in process: the real cli.main in forked workers, listen replaced ------------------------------------


class Listening(Exception):
    """Raised instead of listening: every check before it passed."""


_BASE_ENV: dict[str, str] = {}


def _worker_init(base_env: dict[str, str]) -> None:
    from simulator import workers

    real_listen = workers.listen

    def listen(host: str, port: int, count: int) -> Any:
        # The real bind (a host name that does not resolve is refused here), on a port of the kernel's.
        for sock in real_listen(host, 0, count):
            sock.close()
        raise Listening

    workers.listen = listen  # type: ignore[assignment]
    _BASE_ENV.update(base_env)
    size = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmSize:")
    )
    limit = size + (1536 << 20)  # a case may use 1.5 GiB more: reading /dev/zero must not take the machine
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still starting after {CASE_TIMEOUT} s: it hangs")

    signal.signal(signal.SIGALRM, alarm)


def _start_in_process(env: Mapping[str, str]) -> tuple[str, str]:
    """("refused <code>" | "listening" | "crashed", what went to standard error)."""
    from simulator import cli

    os.environ.clear()
    os.environ.update(_BASE_ENV | dict(env))
    err = io.StringIO()
    outcome = "crashed"
    signal.setitimer(signal.ITIMER_REAL, CASE_TIMEOUT)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            outcome = f"refused {cli.main(['serve'])}"
    except Listening:
        outcome = "listening"
    except BaseException:  # a traceback at start-up: exactly what the rule forbids
        err.write(traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return outcome, err.getvalue()


def run_in_process(cases: list[Case], base_env: dict[str, str]) -> list[tuple[str, str]]:
    context = multiprocessing.get_context("fork")
    with context.Pool(max(2, os.cpu_count() or 2), _worker_init, (base_env,)) as pool:
        return pool.map(_start_in_process, [case.env for case in cases], chunksize=4)


# -- as a subprocess ---------------------------------------------------------------------------------------


def _limit_memory(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        resource.prlimit(pid, resource.RLIMIT_AS, (4 << 30, 4 << 30))


def serve_refused(env: Mapping[str, str]) -> tuple[str, str]:
    """A real ``simulator serve`` that should stop at once: ("refused <code>" | "hung" | "listening", err)."""
    port = free_port()
    full = clean_env() | {"SIMULATOR_HOST": "127.0.0.1", "SIMULATOR_PORT": str(port)} | dict(env)
    proc = subprocess.Popen(
        simulator_command(), env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _limit_memory(proc.pid)
    try:
        _, err = proc.communicate(timeout=REFUSE_TIMEOUT)
    except subprocess.TimeoutExpired:
        listening = _answers(f"http://127.0.0.1:{port}")
        proc.kill()
        _, err = proc.communicate()
        return ("listening" if listening else "hung"), err
    return f"refused {proc.returncode}", err


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/_simulator/plugins", timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def _valid_synthetic_number() -> str:
    return next(n for n in (f"94347659{i:02d}" for i in range(100)) if problem(n) is None)


def probe_requests() -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, httpx keyword arguments) of every enabled plugin's main routes and the core's."""
    from tests.plugins.apim_oauth.apim_support import cc_form

    patient = "/eligibility-signposting-api/patient-check/"
    return [
        ("GET", "/health", {}),
        ("GET", "/_simulator/plugins", {}),
        ("GET", "/_simulator/stats", {}),
        ("GET", "/_simulator/metrics", {}),
        ("GET", patient + "9686368973", {}),
        ("GET", patient + "9686368973?conditions=RSV&includeActions=N", {}),
        ("GET", patient + _valid_synthetic_number(), {}),
        ("GET", patient + "9000000009?category=VACCINATIONS", {}),
        ("POST", "/oauth2/token", {"data": cc_form()}),
        ("GET", "/.well-known/openid-configuration", {}),
        ("GET", "/.well-known/jwks.json", {}),
        ("GET", "/authorize?client_id=a&response_type=code&scope=openid", {}),
        ("GET", "/spiky/quote", {}),
    ]


def serve_accepted(env: Mapping[str, str], paths: tuple[str, ...]) -> list[str]:
    """A real server with ``env``: the problems found (it did not start, a request got a 5xx, its stop)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    full = clean_env() | {"SIMULATOR_HOST": "127.0.0.1", "SIMULATOR_PORT": str(port)} | dict(env)
    proc = subprocess.Popen(
        simulator_command(), env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _limit_memory(proc.pid)
    problems: list[str] = []
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT
        while not _answers(base):
            if proc.poll() is not None or time.monotonic() > deadline:
                problems.append("did not start and serve")
                break
            time.sleep(0.1)
        else:
            extra = [("GET", path, {}) for path in paths]
            with httpx.Client(base_url=base, timeout=10) as client:
                for method, path, kwargs in probe_requests() + extra:
                    try:
                        status = client.request(method, path, **kwargs).status_code
                    except httpx.HTTPError as exc:
                        problems.append(f"{method} {path}: {type(exc).__name__}")
                        continue
                    if status >= 500:
                        problems.append(f"{method} {path}: {status}")
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            problems.append("did not stop within 30 s of SIGTERM")
    if "Traceback" in err:
        problems.append("a traceback: " + err[err.index("Traceback") :][-600:])
    return problems


# -- the verdicts --------------------------------------------------------------------------------------


def refusal_problem(case: Case, outcome: str, err: str) -> str | None:
    """What is wrong with how ``case`` was refused, or None when it was refused by the rule."""
    lines = err.splitlines()
    if outcome != "refused 2":
        return f"{outcome} (want exit 2): {err.strip()[-600:]!r}"
    if "Traceback" in err:
        return f"a traceback: {err[-600:]!r}"
    if len(lines) != 1 or not lines[0].strip():
        return f"{len(lines)} lines on standard error (want one): {err[:600]!r}"
    line = lines[0]
    if case.variable not in line:
        return f"the line does not name {case.variable}: {line[:300]!r}"
    if len(line) > MAX_LINE:
        return f"a line of {len(line):,} characters (the value is not shortened): {line[:200]!r}..."
    value = case.env.get(case.variable, "")
    var = next(v for v in VARIABLES if v.name == case.variable)
    if f"{case.variable}=" not in line and value[:20] not in line and var.kind != "secret":
        return f"the line does not show the value: {line[:300]!r}"
    if var.kind == "secret" and len(value) >= 8 and not value.startswith("/") and value[:8] in line:
        return f"the line shows the secret: {line[:300]!r}"
    if case.expect_in_line and case.expect_in_line not in line:
        return f"the line does not name {case.expect_in_line!r}: {line[:300]!r}"
    return None


# -- end-to-end cases beyond the per-type values --------------------------------------------------------


def audit_cases(root: Path) -> list[Case]:
    """The audit's findings (each crashed, hung, or was accepted and then failed requests)."""
    bad_rsa = json.dumps({"keys": [{"kty": "RSA", "kid": "k", "n": "!!!", "e": "AQAB"}]})
    small_rsa = json.dumps({"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}]})
    three_primes = {"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB", "d": "AQ", "oth": [{}]}
    return [
        Case("mix NaN", {"ELID_SYNTHETIC_MIX": '{"Actionable": NaN}'}, "ELID_SYNTHETIC_MIX"),
        Case("mix Infinity", {"ELID_SYNTHETIC_MIX": '{"Actionable": Infinity}'}, "ELID_SYNTHETIC_MIX"),
        Case(
            "mix overflowing sum",
            {"ELID_SYNTHETIC_MIX": '{"Actionable": 1e308, "NotEligible": 1e308}'},
            "ELID_SYNTHETIC_MIX",
        ),
        Case("mix denormal", {"ELID_SYNTHETIC_MIX": '{"Actionable": 5e-324}'}, "ELID_SYNTHETIC_MIX"),
        Case(
            "delay 400 digits", {"ELID_DELAY": '{"policy":"fixed","seconds":' + "9" * 400 + "}"}, "ELID_DELAY"
        ),
        Case("delay seconds 1e306", {"ELID_DELAY_SECONDS": "1e306"}, "ELID_DELAY_SECONDS"),
        Case("jwks bad RSA", {"APIM_JWKS": bad_rsa}, "APIM_JWKS"),
        Case("jwks small RSA", {"APIM_JWKS": small_rsa}, "APIM_JWKS"),
        Case("jwks three primes", {"APIM_JWKS": json.dumps({"keys": [three_primes]})}, "APIM_JWKS"),
        Case("jwks /dev/zero", {"APIM_JWKS": "/dev/zero"}, "APIM_JWKS"),
        Case("seed 65 digits", {"SIMULATOR_SEED": "9" * 65}, "SIMULATOR_SEED"),
        Case("seed 2**63", {"SIMULATOR_SEED": str(2**63)}, "SIMULATOR_SEED"),
        Case("jti ttl huge", {"APIM_JTI_TTL_SECONDS": "9" * 30}, "APIM_JTI_TTL_SECONDS"),
        Case(
            "graceful timeout 2147483 with 2 workers",
            {"SIMULATOR_GRACEFUL_TIMEOUT": "2147483", "SIMULATOR_WORKERS": "2"},
            "SIMULATOR_GRACEFUL_TIMEOUT",
        ),
        Case("alias NBS_URL", {"NBS_URL": "ftp://x"}, "NBS_URL", expect_in_line="NBS_URL='ftp://x'"),
        Case("alias APP_ROOT_URL", {"APP_ROOT_URL": "x"}, "APP_ROOT_URL", expect_in_line="APP_ROOT_URL='x'"),
        Case("port out of range", {"SIMULATOR_PORT": "99999"}, "SIMULATOR_PORT"),
        Case("YAML scenario too deep", {"SIMULATOR_SCENARIO": _deep_yaml(root)}, "SIMULATOR_SCENARIO"),
        Case("YAML scenario with a set", {"SIMULATOR_SCENARIO": _set_yaml(root)}, "SIMULATOR_SCENARIO"),
    ]


def _deep_yaml(root: Path) -> str:
    path = root / "deep.yaml"
    path.write_text("phases: " + "[" * 5000 + "]" * 5000 + "\n")
    return str(path)


def _set_yaml(root: Path) -> str:
    path = root / "set.yaml"
    path.write_text("phases:\n  - at: 0\n    plugins: {eligibility: {faults: !!set {a: null}}}\n")
    return str(path)


BODY = {
    "responseId": "00000000-0000-4000-8000-000000000000",
    "meta": {"lastUpdated": "2025-01-01T00:00:00Z"},
    "processedSuggestions": [{"condition": "RSV", "status": "Actionable", "actions": []}],
}
OWN = "9434765919"  # a patient file of the folder


def folder_cases(root: Path) -> list[Case]:
    """ELID_SCENARIOS_DIR folders: malformed files refused naming the file (and entry); odd but valid ones
    served. ``(label, files, expected text or None when it must be accepted)``."""

    def deep(levels: int) -> str:
        return "[" * levels + "]" * levels

    bodies: list[tuple[str, dict[str, Any], str | None]] = [
        ("not JSON", {f"{OWN}.json": "{nope"}, f"{OWN}.json"),
        ("NaN", {f"{OWN}.json": '{"a": NaN}'}, f"{OWN}.json"),
        ("a list body", {f"{OWN}.json": "[]"}, f"{OWN}.json"),
        ("meta a string", {f"{OWN}.json": BODY | {"meta": "x"}}, f"{OWN}.json"),
        ("meta a list", {f"{OWN}.json": BODY | {"meta": [1]}}, f"{OWN}.json"),
        ("suggestions a string", {f"{OWN}.json": BODY | {"processedSuggestions": "x"}}, f"{OWN}.json"),
        ("suggestions of numbers", {f"{OWN}.json": BODY | {"processedSuggestions": [1]}}, f"{OWN}.json"),
        ("suggestions an object", {f"{OWN}.json": BODY | {"processedSuggestions": {"a": 1}}}, f"{OWN}.json"),
        ("nested 100 levels", {f"{OWN}.json": '{"x": ' + deep(100) + "}"}, f"{OWN}.json"),
        ("nested 5000 levels", {f"{OWN}.json": '{"x": ' + deep(5000) + "}"}, f"{OWN}.json"),
        ("a 70-bit integer", {f"{OWN}.json": BODY | {"x": 2**70}}, None),  # read as a float
        ("a 2 MiB file", {f"{OWN}.json": '{"x": "' + "a" * (2 << 20) + '"}'}, f"{OWN}.json"),
        ("mapping a list", {"mapping.json": "[]"}, "mapping.json"),
        ("mapping unhashable scenario", {"mapping.json": {"1": {"scenario": ["x"]}}}, "entry '1'"),
        ("mapping scenario a number", {"mapping.json": {"1": {"scenario": 5}}}, "entry '1'"),
        ("mapping unknown scenario", {"mapping.json": {"1": {"scenario": "nope"}}}, "entry '1'"),
        ("mapping file a number", {"mapping.json": {"1": {"file": 5}}}, "entry '1'"),
        ("mapping file outside", {"mapping.json": {"1": {"file": "../x.json"}}}, "entry '1'"),
        ("mapping file absolute", {"mapping.json": {"1": {"file": "/dev/zero"}}}, "entry '1'"),
        ("mapping file missing", {"mapping.json": {"1": {"file": "gone.json"}}}, "entry '1'"),
        ("mapping status a string", {"mapping.json": {"1": {"scenario": "error_404", "status": "4"}}}, "'1'"),
        ("mapping status true", {"mapping.json": {"1": {"scenario": "error_404", "status": True}}}, "'1'"),
        ("mapping status 204", {"mapping.json": {"1": {"scenario": "error_404", "status": 204}}}, "'1'"),
        ("mapping load_test yes", {"mapping.json": {"1": {"scenario": "error_404", "load_test": 1}}}, "'1'"),
        ("mapping id with a space", {"mapping.json": {"a b": {"scenario": "error_404"}}}, "entry 'a b'"),
        ("mapping deep", {"mapping.json": '{"1": ' + deep(3000) + "}"}, "mapping.json"),
        (
            "placeholders in a body",
            {f"{OWN}.json": BODY | {"note": "@@RESPONSE_ID@@ @@LAST_UPDATED@@"}},
            None,
        ),
        ("meta before responseId", {f"{OWN}.json": {"meta": {}, "processedSuggestions": []}}, None),
        ("a 200 for an error body", {"mapping.json": {"1": {"scenario": "error_404", "status": 200}}}, None),
        (
            "a 422 for a patient",
            {"mapping.json": {"1": {"scenario": "example_5000000001", "status": 422}}},
            None,
        ),
    ]
    root.mkdir(parents=True, exist_ok=True)
    cases = []
    for index, (label, files, expected) in enumerate(bodies):
        folder = root / f"folder-{index}"
        folder.mkdir()
        for name, content in files.items():
            (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))
        paths = tuple(f"/eligibility-signposting-api/patient-check/{i}" for i in (OWN, "1"))
        env = {"ELID_SCENARIOS_DIR": str(folder)}
        served = expected is None
        cases.append(Case(f"folder: {label}", env, "ELID_SCENARIOS_DIR", paths, expected or "", served))
    specials: list[tuple[str, Callable[[Path], object], str]] = [
        ("a FIFO patient file", lambda p: os.mkfifo(p / f"{OWN}.json"), f"{OWN}.json"),
        ("a patient file linked to /dev/zero", lambda p: (p / f"{OWN}.json").symlink_to("/dev/zero"), OWN),
        ("a folder named like a patient file", lambda p: (p / f"{OWN}.json").mkdir(), f"{OWN}.json"),
        ("a FIFO mapping", lambda p: os.mkfifo(p / "mapping.json"), "mapping.json"),
        ("a broken link as mapping", lambda p: (p / "mapping.json").symlink_to(p / "gone"), "mapping.json"),
    ]
    for label, make, named in specials:
        folder = root / f"folder-{len(cases)}"
        folder.mkdir()
        make(folder)
        env = {"ELID_SCENARIOS_DIR": str(folder)}
        cases.append(Case(f"folder: {label}", env, "ELID_SCENARIOS_DIR", expect_in_line=named))
    return cases


# -- the test ---------------------------------------------------------------------------------------------


def test_every_documented_variable_is_fuzzed() -> None:
    fuzzed = {v.name for v in VARIABLES}
    missing = documented() - fuzzed
    assert not missing, f"documented in a README/docs table but in no settings class: {sorted(missing)}"
    assert len(fuzzed) >= 50
    assert {"NBS_URL", "APP_ROOT_URL", "ELID_SCENARIOS_DIR", "APIM_JWKS"} <= fuzzed


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def check(self, case: Case, outcome: str, err: str, how: str) -> bool:
        """Records a refusal's problem; True when ``case`` was refused by the rule."""
        found = refusal_problem(case, outcome, err)
        if found is not None:
            self.failures.append(f"[{how}] {case.label}: {found}")
        return found is None


def _threads(work: list[Callable[[], None]]) -> None:
    with ThreadPoolExecutor(max(2, (os.cpu_count() or 2) + 1)) as pool:
        for future in [pool.submit(job) for job in work]:
            future.result()


@contextlib.contextmanager
def _timer(report: Report, what: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    report.count(f"{what} seconds", round(time.monotonic() - started))


def test_every_bad_setting_is_refused_in_one_line(tmp_path: Path) -> None:
    files = special_files(tmp_path / "special")
    report = Report()
    base_env = clean_env() | {"SIMULATOR_HOST": "127.0.0.1", "SIMULATOR_PORT": str(free_port())}
    fuzzed = fuzz_cases(files)
    bounds = boundary_cases()
    audited = audit_cases(tmp_path)
    folders = folder_cases(tmp_path / "folders")
    everything = fuzzed + bounds + audited + folders
    must_serve = {id(c) for c in everything if c.serve}
    in_fuzzed, in_audited, in_folders = ({id(c) for c in group} for group in (fuzzed, audited, folders))

    # 1. Every case in process: refused by the rule, or accepted and allowed (then served, below).
    with _timer(report, "in-process"):
        results = run_in_process(everything, base_env)
    report.count("in-process cases", len(results))
    accepted: list[Case] = []
    refused: list[Case] = []
    first_refusal: dict[str, Case] = {}
    for case, (outcome, err) in zip(everything, results, strict=True):
        if id(case) in must_serve:
            if outcome != "listening":
                report.failures.append(
                    f"[in process] {case.label}: {outcome}, want it served: {err[-300:]!r}"
                )
            else:
                accepted.append(case)
        elif outcome == "listening":
            if id(case) in in_fuzzed and may_be_accepted(case):
                accepted.append(case)
            else:
                report.failures.append(f"[in process] {case.label}: accepted, and not on the allow-list")
        elif report.check(case, outcome, err, "in process"):
            refused.append(case)
            if id(case) in in_fuzzed:
                first_refusal.setdefault(case.variable, case)
    for var in VARIABLES:
        if var.name not in first_refusal:
            report.failures.append(f"{var.name}: no bad value was refused")

    # 2. End to end: a refusal of every variable, every special file of every file setting, the audit's
    # cases and the folders (refused ones): exit 2, one line, the variable named, no traceback, no hang.
    end_to_end = list(first_refusal.values())
    chosen = {id(c) for c in end_to_end}
    end_to_end += [c for c in refused if _is_special(c, files) and id(c) not in chosen]
    end_to_end += [c for c in refused if id(c) in in_audited]
    # The folders' bulk is checked in process; end to end, the special files and the audit's findings.
    end_to_end += [c for c in refused if id(c) in in_folders and END_TO_END_FOLDERS.search(c.label)]

    def refuse(case: Case) -> Callable[[], None]:
        def job() -> None:
            outcome, err = serve_refused(case.env)
            report.check(case, outcome, err, "serve")

        return job

    # 3. Accepted values start and serve; values of different variables share a server.
    groups = _groups([c for c in accepted if "ELID_SCENARIOS_DIR" not in c.env]) + [
        [c] for c in accepted if "ELID_SCENARIOS_DIR" in c.env
    ]

    def serve(group: list[Case]) -> Callable[[], None]:
        def job() -> None:
            env: dict[str, str] = {}
            for case in group:
                env.update(case.env)
            paths = tuple(p for case in group for p in case.paths)
            for found in serve_accepted(env, paths):
                report.failures.append(f"[accepted] {', '.join(c.label for c in group)}: {found}")

        return job

    with _timer(report, "subprocess"):
        _threads([refuse(c) for c in end_to_end] + [serve(g) for g in groups] + [_graceful_stop(report)])
    report.count("refused end to end", len(end_to_end))
    report.count("accepted servers", len(groups))
    report.count("accepted values", len(accepted))
    print(f"settings fuzz: {report.counts}")
    summary = f"{len(report.failures)} bad settings broke the rule ({report.counts}):\n"
    assert not report.failures, summary + "\n".join(report.failures)


def _is_special(case: Case, files: SpecialFiles) -> bool:
    var = next((v for v in VARIABLES if v.name == case.variable), None)
    return var is not None and var.names_a_file and case.env.get(var.name) in files.values().values()


END_TO_END_FOLDERS = re.compile(r"FIFO|/dev/zero|a folder named|broken link|5000 levels|unhashable|meta a")
ALONE = ("SIMULATOR_PLUGINS", "SIMULATOR_HOST")  # they change what else is served: a server each


def _groups(cases: list[Case]) -> list[list[Case]]:
    """Accepted cases packed into servers, at most one value of a variable in each."""
    groups: list[list[Case]] = []
    for case in cases:
        home = next(
            (
                group
                for group in groups
                if case.variable not in ALONE
                and group[0].variable not in ALONE
                and all(other.variable != case.variable for other in group)
            ),
            None,
        )
        if home is None:
            groups.append([case])
        else:
            home.append(case)
    return groups


def upper_bound(settings: type[BaseSettings], name: str) -> float | None:
    """A numeric field's ``le`` bound, if it has one."""
    bounds = [getattr(m, "le", None) for m in settings.model_fields[name].metadata]
    return next((b for b in bounds if b is not None), None)


# At their largest value these make a test wait (a day's delay) or fork 64 workers: checked in process only.
NOT_SERVED_AT_MAXIMUM = ("SIMULATOR_WORKERS", "SIMULATOR_PORT")


def boundary_cases() -> list[Case]:
    """Every bounded number at its largest accepted value: it must start and serve (what is accepted is
    safe to serve with). Delays are left out of the served check: every answer would wait a day."""
    cases = []
    for var in VARIABLES:
        bound = upper_bound(var.settings, var.field) if var.kind in ("int", "float") else None
        if bound is None or var.name in NOT_SERVED_AT_MAXIMUM or var.name.endswith("DELAY_SECONDS"):
            continue
        value = str(int(bound)) if var.kind == "int" else repr(float(bound))
        cases.append(Case(f"{var.name} at its maximum {value}", {var.name: value}, var.name, serve=True))
    return cases


def _graceful_stop(report: Report) -> Callable[[], None]:
    """The longest graceful timeout with two workers: SIGTERM stops them cleanly (once a traceback)."""

    def job() -> None:
        port = free_port()
        env = clean_env() | {
            "SIMULATOR_HOST": "127.0.0.1",
            "SIMULATOR_PORT": str(port),
            "SIMULATOR_WORKERS": "2",
            "SIMULATOR_GRACEFUL_TIMEOUT": str(upper_bound(CoreSettings, "graceful_timeout")),
            "SIMULATOR_PLUGINS": "health",
        }
        proc = subprocess.Popen(
            simulator_command(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + SERVE_TIMEOUT
        while not _answers(f"http://127.0.0.1:{port}") and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            report.failures.append("[graceful stop] 2 workers did not stop within 30 s of SIGTERM")
            return
        if proc.returncode != 0 or "Traceback" in err:
            report.failures.append(f"[graceful stop] exit {proc.returncode}: {err[-600:]!r}")

    return job
