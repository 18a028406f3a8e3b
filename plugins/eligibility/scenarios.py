"""Scenario data: the bundled spec examples, the mapped test patients, a user's folder, synthetic patients.

Everything is read and serialised at start-up. A request then costs a dict lookup (or one keyed hash for
a synthetic patient) and, for 200 answers, splicing a fresh ``responseId`` and ``meta.lastUpdated`` into
precomputed bytes.
"""

from __future__ import annotations

import json
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
from plugins.eligibility.templating import replace_strings
from simulator import APPLICATION_JSON, Response, StartupError

DATA = Path(__file__).resolve().parent / "data"
EXAMPLES = DATA / "examples"
NBS_PLACEHOLDER = "@@NBS_URL@@"
MAPPING_FILE = "mapping.json"
GROUPS = ("Actionable", "NotActionable", "NotEligible")

_RESPONSE_ID = b"@@RESPONSE_ID@@"
_LAST_UPDATED = b"@@LAST_UPDATED@@"
_NUMBER_FILE = re.compile(r"\d+\.json")

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


class Fresh:
    """A 200 body with a new ``responseId`` and ``meta.lastUpdated`` per response, as the real API sends.

    Both values have a fixed width, so content-length is computed once.
    """

    __slots__ = ("_after_id", "_after_stamp", "_before_id", "_headers", "_stamps")

    def __init__(self, document: dict[str, Any], stamps: Stamps) -> None:
        meta = dict(document.get("meta") or {})
        meta["lastUpdated"] = _LAST_UPDATED.decode()
        body = orjson.dumps({**document, "responseId": _RESPONSE_ID.decode(), "meta": meta})
        self._before_id, rest = body.split(_RESPONSE_ID)
        self._after_id, self._after_stamp = rest.split(_LAST_UPDATED)
        length = len(body) - len(_RESPONSE_ID) - len(_LAST_UPDATED) + 36 + len(stamps.now())
        self._headers = (
            (b"content-type", APPLICATION_JSON.encode()),
            (b"content-length", str(length).encode()),
        )
        self._stamps = stamps

    def render(self) -> Response:
        body = b"".join(
            (
                self._before_id,
                response_id(),
                self._after_id,
                self._stamps.now(),
                self._after_stamp,
            )
        )
        return Response(200, body, self._headers)


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
            if not isinstance(self.document, dict):
                raise StartupError(f"eligibility scenario {self.name}: a 200 body must be a JSON object")
            suggestions = self.document.get("processedSuggestions") or []
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
        patients.update(_folder(settings.scenarios_dir, scenarios, settings.nbs_url, stamps, load_test))
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
                f"invalid setting ELID_SYNTHETIC_MIX: {key!r} is neither a status group "
                f"({', '.join(GROUPS)}) nor a scenario name (example_5000000001, error_404, ...)"
            )
    return weights


def _folder(
    folder: Path, scenarios: Mapping[str, Scenario], nbs_url: str, stamps: Stamps, load_test: list[str]
) -> dict[str, Scenario]:
    patients: dict[str, Scenario] = {}
    for path in sorted(folder.glob("*.json")):
        if _NUMBER_FILE.fullmatch(path.name):
            patients[path.stem] = Scenario(path.name, 200, _nbs(_read(path), nbs_url), stamps)
    if (folder / MAPPING_FILE).is_file():
        patients.update(_mapping(folder / MAPPING_FILE, scenarios, nbs_url, stamps, load_test))
    return patients


def _mapping(
    path: Path, scenarios: Mapping[str, Scenario], nbs_url: str, stamps: Stamps, load_test: list[str]
) -> dict[str, Scenario]:
    """``{"<id>": {"scenario": "<name>"} | {"file": "<file.json>", "status": 404}}``, files relative to it;
    ``"load_test": true`` adds the number to the ``eligibility.patients`` load-test targets."""
    raw = _read(path)
    if not isinstance(raw, dict):
        raise StartupError(f"{path}: expected a JSON object of id -> entry")
    patients: dict[str, Scenario] = {}
    for number, entry in raw.items():
        where = f"{path}: entry {number!r}"
        if not isinstance(entry, dict) or len({"scenario", "file"} & entry.keys()) != 1:
            raise StartupError(f'{where} needs exactly one of "scenario" or "file"')
        unknown = entry.keys() - {"scenario", "file", "status", "load_test"}
        if unknown:
            raise StartupError(f"{where} has unknown key(s) {', '.join(sorted(unknown))}")
        status = entry.get("status")
        if status is not None and not (isinstance(status, int) and 200 <= status <= 599):
            raise StartupError(f"{where}: status must be an HTTP status code, not {status!r}")
        if not isinstance(entry.get("load_test", False), bool):
            raise StartupError(f"{where}: load_test must be true or false")
        if entry.get("load_test"):
            load_test.append(number)
        if "scenario" in entry:
            base = scenarios.get(entry["scenario"])
            if base is None:
                raise StartupError(f"{where} names unknown scenario {entry['scenario']!r}")
            if status is None or status == base.status:
                patients[number] = base
            else:
                patients[number] = Scenario(base.name, status, base.document, stamps)
        else:
            file = path.parent / str(entry["file"])
            patients[number] = Scenario(file.name, status or 200, _nbs(_read(file), nbs_url), stamps)
    return patients


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StartupError(f"cannot read eligibility scenario {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise StartupError(f"eligibility scenario {path} is not valid JSON: {exc}") from None


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
