"""Scenario data: the bundled spec examples, the mapped test patients, a user's folder, synthetic patients.

Everything is read and serialised at start-up. A request then costs a dict lookup (or one keyed hash for
a synthetic patient) and, for 200 answers, splicing a fresh ``responseId`` and ``meta.lastUpdated`` into
precomputed bytes.
"""

from __future__ import annotations

import os
import random
import re
import time
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from hashlib import blake2b
from pathlib import Path
from typing import Any

import orjson

from plugins.eligibility.outcomes import FHIR_JSON
from plugins.eligibility.settings import EligibilitySettings
from plugins.eligibility.templating import check_document, replace_strings
from simulator import APPLICATION_JSON, Response, StartupError, read_setting_file, shown_setting

DATA = Path(__file__).resolve().parent / "data"
EXAMPLES = DATA / "examples"
NBS_PLACEHOLDER = "@@NBS_URL@@"
MAPPING_FILE = "mapping.json"
GROUPS = ("Actionable", "NotActionable", "NotEligible")

_RESPONSE_ID = "@@RESPONSE_ID{}@@"
_LAST_UPDATED = "@@LAST_UPDATED{}@@"
_NUMBER_FILE = re.compile(r"\d+\.json")
# What a user's folder may hold: a body file is a few kB; a mapping names up to ~100,000 patients.
MAX_BODY_BYTES = 1 << 20
MAX_MAPPING_BYTES = 16 << 20
MAX_FILES = 10_000
_ID = re.compile(r"[0-9A-Za-z._-]{1,64}", re.ASCII)
_NO_BODY = frozenset({204, 205, 304})  # statuses whose answers carry no body
VARIABLE = "ELID_SCENARIOS_DIR"
MIX = "ELID_SYNTHETIC_MIX"

# (conditions kept, or None for all; actions included)
VariantKey = tuple[frozenset[str] | None, bool]


class Stamps:
    """``meta.lastUpdated`` as bytes, formatted at most once a second."""

    __slots__ = ("_bytes", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._bytes = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._bytes = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)).encode()
            self._second = second
        return self._bytes


# responseId: a version 4 UUID from a generator seeded once per process (os.urandom): uuid.uuid4() reads
# os.urandom on every call, a system call per response, for ids that only need to be unique.
_ids = random.Random()
_V4_KEEP = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)  # clear the version and variant bits...
_V4_SET = (0x4 << 76) | (0x2 << 62)  # ...and set version 4, variant RFC 4122


def response_id() -> bytes:
    """A random version 4 UUID, e.g. ``b"e3966d49-0358-4acf-af84-c4aa067343ec"``."""
    h = b"%032x" % ((_ids.getrandbits(128) & _V4_KEEP) | _V4_SET)
    return b"-".join((h[:8], h[8:12], h[12:16], h[16:20], h[20:]))


class Canned:
    """A response that is the same on every request (error bodies)."""

    __slots__ = ("response",)

    def __init__(self, response: Response) -> None:
        self.response = response

    def render(self) -> Response:
        return self.response


def _markers(plain: bytes) -> tuple[str, str]:
    """Placeholders for ``responseId`` and ``meta.lastUpdated`` that the document does not contain (a body
    may well hold the text ``@@RESPONSE_ID@@``: it then stays as it is)."""
    for n in range(len(plain) + 1):
        suffix = str(n) if n else ""
        marks = (_RESPONSE_ID.format(suffix), _LAST_UPDATED.format(suffix))
        if not any(mark.encode() in plain for mark in marks):
            return marks
    raise AssertionError("unreachable: a document cannot contain every marker")


class Fresh:
    """A 200 body with a new ``responseId`` and ``meta.lastUpdated`` per response, as the real API sends.

    Both values have a fixed width, so content-length is computed once.
    """

    __slots__ = ("_headers", "_id_first", "_pieces", "_stamps")

    def __init__(self, document: dict[str, Any], stamps: Stamps) -> None:
        rid, stamp = _markers(orjson.dumps(document))
        meta = dict(document.get("meta") or {})
        meta["lastUpdated"] = stamp
        body = orjson.dumps({**document, "responseId": rid, "meta": meta})
        at_id, at_stamp = body.index(rid.encode()), body.index(stamp.encode())
        # The document's own key order is kept: "meta" may come before "responseId".
        self._id_first = at_id < at_stamp
        first, second = (rid, stamp) if self._id_first else (stamp, rid)
        head, rest = body.split(first.encode())
        middle, tail = rest.split(second.encode())
        self._pieces = (head, middle, tail)
        length = len(body) - len(rid) - len(stamp) + 36 + len(stamps.now())
        self._headers = (
            (b"content-type", APPLICATION_JSON.encode()),
            (b"content-length", str(length).encode()),
        )
        self._stamps = stamps

    def render(self) -> Response:
        head, middle, tail = self._pieces
        first, second = response_id(), self._stamps.now()
        if not self._id_first:
            first, second = second, first
        return Response(200, b"".join((head, first, middle, second, tail)), self._headers)


Variant = Canned | Fresh


@dataclass(eq=False)  # identity hash: scenarios key the synthetic weights
class Scenario:
    """One answer the fake can give, and its filtered variants (built on first use, a finite set)."""

    name: str
    status: int
    document: Any
    stamps: Stamps
    conditions: frozenset[str] = field(init=False)
    default: Variant = field(init=False)
    _variants: dict[VariantKey, Variant] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.status == 200:
            where = f"eligibility scenario {self.name}"
            if not isinstance(self.document, dict):
                raise StartupError(f"{where}: a 200 body must be a JSON object")
            if not isinstance(self.document.get("meta") or {}, dict):
                raise StartupError(f'{where}: "meta" must be a JSON object')
            suggestions = self.document.get("processedSuggestions") or []
            if not (isinstance(suggestions, list) and all(isinstance(s, dict) for s in suggestions)):
                raise StartupError(f'{where}: "processedSuggestions" must be a list of JSON objects')
            self.conditions = frozenset(str(s.get("condition", "")).upper() for s in suggestions)
        else:
            self.conditions = frozenset()
        self.default = self._build(None, True)
        self._variants[(None, True)] = self.default

    def variant(self, wanted: frozenset[str] | None, actions: bool) -> Variant:
        """The answer for a ``conditions`` set (None = all) and ``includeActions``; errors ignore both."""
        if self.status != 200:
            return self.default
        if wanted is not None:
            kept = self.conditions & wanted
            wanted = None if kept == self.conditions else kept
        key = (wanted, actions)
        found = self._variants.get(key)
        if found is None:
            found = self._variants[key] = self._build(wanted, actions)
        return found

    def _build(self, wanted: frozenset[str] | None, actions: bool) -> Variant:
        if self.status != 200:
            ctype = APPLICATION_JSON if self.status < 400 else FHIR_JSON
            return Canned(Response.build(orjson.dumps(self.document), status=self.status, content_type=ctype))
        document = dict(self.document)
        suggestions = document.get("processedSuggestions")
        if isinstance(suggestions, list):
            kept = [s for s in suggestions if wanted is None or str(s.get("condition", "")).upper() in wanted]
            if not actions:
                kept = [{k: v for k, v in s.items() if k != "actions"} for s in kept]
            document["processedSuggestions"] = kept
        return Fresh(document, self.stamps)


class SyntheticPicker:
    """A deterministic, weighted choice of scenario for any NHS number.

    The choice comes from a keyed BLAKE2b hash of the number, not a random generator, so every worker
    process (and every task behind a load balancer) gives a patient the same answer; ``SIMULATOR_SEED``
    is the key, so a different seed reshuffles which patients get which scenario.
    """

    def __init__(self, weights: Mapping[Scenario, float], seed: int | None) -> None:
        chosen = [(scenario, weight) for scenario, weight in weights.items() if weight > 0]
        total = sum(weight for _, weight in chosen)
        self._scenarios = [scenario for scenario, _ in chosen]
        bounds: list[int] = []
        running = 0.0
        for _, weight in chosen:
            running += weight
            bounds.append(int(running / total * 2**64))
        bounds[-1] = 2**64
        self._bounds = bounds
        self._key = b"" if seed is None else str(seed).encode()

    def pick(self, nhs_number: str) -> Scenario:
        digest = blake2b(nhs_number.encode(), digest_size=8, key=self._key).digest()
        return self._scenarios[bisect_right(self._bounds, int.from_bytes(digest, "big"))]


@dataclass
class Catalog:
    """Every named patient (by id), the synthetic picker (None when unknown patients get a 404), the
    patients a load test requests (``"load_test": true`` entries, in file order) and the spec's version."""

    patients: dict[str, Scenario]
    synthetic: SyntheticPicker | None
    load_test: tuple[str, ...]
    version: str


def load(settings: EligibilitySettings, seed: int | None) -> Catalog:
    """Read the bundled data and the user's folder; any problem is a one-line :class:`StartupError`."""
    stamps = Stamps()
    index: dict[str, Any] = _read(EXAMPLES / "index.json")
    scenarios: dict[str, Scenario] = {}
    patients: dict[str, Scenario] = {}
    groups: dict[str, list[Scenario]] = {group: [] for group in GROUPS}
    load_test: list[str] = []
    for name, entry in index.items():
        document = _nbs(_read(EXAMPLES / f"{name}.json"), settings.nbs_url)
        scenario = scenarios[name] = Scenario(name, int(entry["status"]), document, stamps)
        for sandbox_id in entry["ids"]:
            patients[sandbox_id] = scenario
        if entry.get("group") in groups:
            groups[entry["group"]].append(scenario)
    patients.update(_mapping(DATA / "patients.json", scenarios, settings.nbs_url, stamps, load_test))
    if settings.scenarios_dir is not None:
        folder = settings.scenarios_dir
        try:
            patients.update(_folder(folder, scenarios, settings.nbs_url, stamps, load_test))
        except StartupError as exc:
            raise StartupError(f"invalid setting {VARIABLE}={shown_setting(str(folder))}: {exc}") from None
    synthetic = None
    if settings.unknown_patients == "synthetic":
        synthetic = SyntheticPicker(_weights(settings.synthetic_mix, scenarios, groups), seed)
    return Catalog(patients, synthetic, tuple(dict.fromkeys(load_test)), _spec_version())


def _weights(
    mix: Mapping[str, float], scenarios: Mapping[str, Scenario], groups: Mapping[str, list[Scenario]]
) -> dict[Scenario, float]:
    weights: dict[Scenario, float] = {}
    for key, weight in mix.items():
        if key in groups:
            members = groups[key]
            for scenario in members:
                weights[scenario] = weights.get(scenario, 0.0) + weight / len(members)
        elif key in scenarios:
            weights[scenarios[key]] = weights.get(scenarios[key], 0.0) + weight
        else:
            raise StartupError(
                f"invalid setting {MIX}={_shown_mix(mix)}: {shown_setting(key, 40)} is neither a status "
                f"group ({', '.join(GROUPS)}) nor a scenario name (example_5000000001, error_404, ...)"
            )
    if not any(weight > 0 for weight in weights.values()):
        raise StartupError(f"invalid setting {MIX}={_shown_mix(mix)}: no scenario has a positive weight")
    return weights


def _shown_mix(mix: Mapping[str, float]) -> str:
    return shown_setting(orjson.dumps(dict(mix)).decode())


def _folder(
    folder: Path, scenarios: Mapping[str, Scenario], nbs_url: str, stamps: Stamps, load_test: list[str]
) -> dict[str, Scenario]:
    patients: dict[str, Scenario] = {}
    try:
        names = sorted(name for name in os.listdir(folder) if _NUMBER_FILE.fullmatch(name))
    except OSError as exc:
        raise StartupError(f"cannot list the folder: {exc.strerror or exc}") from None
    if len(names) > MAX_FILES:
        raise StartupError(f"more than {MAX_FILES:,} patient files ({len(names):,})")
    for name in names:
        path = folder / name
        patients[path.stem] = Scenario(name, 200, _nbs(_read(path, MAX_BODY_BYTES), nbs_url), stamps)
    if os.path.lexists(folder / MAPPING_FILE):  # a broken link or a FIFO is refused, not skipped
        patients.update(_mapping(folder / MAPPING_FILE, scenarios, nbs_url, stamps, load_test))
    return patients


def _mapping(
    path: Path, scenarios: Mapping[str, Scenario], nbs_url: str, stamps: Stamps, load_test: list[str]
) -> dict[str, Scenario]:
    """``{"<id>": {"scenario": "<name>"} | {"file": "<file.json>", "status": 404}}``, files relative to it;
    ``"load_test": true`` adds the number to the ``eligibility.patients`` load-test targets."""
    raw = _read(path, MAX_MAPPING_BYTES)
    if not isinstance(raw, dict):
        raise StartupError(f"{path}: expected a JSON object of id -> entry")
    patients: dict[str, Scenario] = {}
    for number, entry in raw.items():
        where = f"{path}: entry {shown_setting(number, 40)}"
        if not _ID.fullmatch(number):
            raise StartupError(f"{where}: an id is 1 to 64 letters, digits, '.', '_' or '-'")
        if not isinstance(entry, dict) or len({"scenario", "file"} & entry.keys()) != 1:
            raise StartupError(f'{where} needs exactly one of "scenario" or "file"')
        unknown = entry.keys() - {"scenario", "file", "status", "load_test"}
        if unknown:
            raise StartupError(f"{where} has unknown key(s) {shown_setting(', '.join(sorted(unknown)), 60)}")
        status = entry.get("status")
        if status is not None and not (
            isinstance(status, int) and not isinstance(status, bool) and 200 <= status <= 599
        ):
            shown = shown_setting(status, 40)
            raise StartupError(f"{where}: status must be an HTTP status code, not {shown}")
        if status in _NO_BODY:
            raise StartupError(f"{where}: status {status} cannot carry a body")
        if not isinstance(entry.get("load_test", False), bool):
            raise StartupError(f"{where}: load_test must be true or false")
        if entry.get("load_test"):
            load_test.append(number)
        try:
            patients[number] = _entry(path, entry, status, scenarios, nbs_url, stamps, where)
        except StartupError as exc:
            message = str(exc)
            raise StartupError(message if message.startswith(where) else f"{where}: {message}") from None
    return patients


def _entry(
    path: Path,
    entry: dict[str, Any],
    status: int | None,
    scenarios: Mapping[str, Scenario],
    nbs_url: str,
    stamps: Stamps,
    where: str,
) -> Scenario:
    if "scenario" in entry:
        name = entry["scenario"]
        base = scenarios.get(name) if isinstance(name, str) else None
        if base is None:
            raise StartupError(f"{where} names unknown scenario {shown_setting(name, 60)}")
        if status is None or status == base.status:
            return base
        return Scenario(base.name, status, base.document, stamps)
    name = entry["file"]
    relative = Path(name) if isinstance(name, str) and name else None
    if relative is None or relative.is_absolute() or ".." in relative.parts:
        raise StartupError(f'{where}: "file" must name a file in the folder, not {shown_setting(name, 60)}')
    file = path.parent / relative
    return Scenario(file.name, status or 200, _nbs(_read(file, MAX_BODY_BYTES), nbs_url), stamps)


def _read(path: Path, max_bytes: int = MAX_MAPPING_BYTES) -> Any:
    """A scenario file's JSON: strict (no NaN), at most ``max_bytes``, a regular file (never a FIFO or a
    device: they are refused without blocking), nested at most a few dozen levels."""
    try:
        raw = read_setting_file(path, max_bytes)
    except ValueError as exc:
        raise StartupError(f"cannot read eligibility scenario {path}: {exc}") from None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StartupError(f"eligibility scenario {path} is not valid JSON: {exc}") from None
    problem = check_document(document)
    if problem is not None:
        raise StartupError(f"eligibility scenario {path}: {problem}")
    return document


def _nbs(value: Any, nbs_url: str) -> Any:
    """The original fake's ``@@NBS_URL@@`` placeholder, replaced wherever it appears."""
    return replace_strings(value, NBS_PLACEHOLDER, nbs_url)


def _spec_version() -> str:
    # The one line of the 100 kB spec the status check needs; no YAML parser at run time.
    with (DATA / "eligibility-signposting-api.yaml").open(encoding="utf-8") as spec:
        for line in spec:
            if line.startswith("  version:"):
                return line.split(":", 1)[1].strip()
    return "unknown"
