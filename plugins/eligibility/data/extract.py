"""Regenerate ``examples/`` from the official specification beside this script.

Run after replacing ``eligibility-signposting-api.yaml`` with a newer release::

    .venv/bin/python plugins/eligibility/data/extract.py

Writes one JSON body per named example (``example_<sandbox id>.json``, ``error_<status>.json``) and
``examples/index.json`` (status, summary, the ids the sandbox answers it by, and the status group that
synthetic patients draw from). Booking links into the National Booking Service get the original fake's
``@@NBS_URL@@`` placeholder, so ``ELID_NBS_URL`` can point them at a stand-in. Bodies are otherwise the
spec's values, byte for byte once parsed. ``tests/plugins/eligibility`` fails when the files drift.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from plugins.eligibility.templating import replace_strings

HERE = Path(__file__).resolve().parent
SPEC = HERE / "eligibility-signposting-api.yaml"
OUT = HERE / "examples"
OPERATION = ("paths", "/patient-check/{id}", "get")
# The booking links of the spec's integration environment; the original fake templated exactly this base.
NBS_BASE = "https://f.nhswebsite-integration.nhs.uk/nbs"
NBS_PLACEHOLDER = "@@NBS_URL@@"
SANDBOX_ID = re.compile(r"example_(50000\d{5})")
# Examples written to exercise client rendering (placeholder text) are not plausible synthetic patients.
TEST_FIXTURE = re.compile(r"lorem ipsum|\(test", re.IGNORECASE)


class _StringTimestamps(yaml.SafeLoader):
    """A loader that leaves ``2025-02-12T16:11:22Z`` a string: the API sends strings, not datetimes."""


_StringTimestamps.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_spec(path: Path = SPEC) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=_StringTimestamps)  # a SafeLoader subclass
    return spec


def operation(spec: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = spec
    for key in OPERATION:
        node = node[key]
    return node


def eleven_digit(sandbox_id: str) -> str:
    """The sandbox's older 11-digit form of an example id: ``5000000001`` -> ``50000000001``."""
    return sandbox_id[0] + "0" + sandbox_id[1:]


def group(body: dict[str, Any]) -> str | None:
    suggestions = body.get("processedSuggestions") or []
    if len(suggestions) != 1 or TEST_FIXTURE.search(json.dumps(body)):
        return None
    status: str = suggestions[0]["status"]
    return status


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    """Every file to write, by name, as JSON-ready values."""
    files: dict[str, Any] = {}
    index: dict[str, Any] = {}
    for status, response in operation(spec)["responses"].items():
        for content in response["content"].values():
            for name, example in content.get("examples", {}).items():
                body = example["value"]
                if status == "200":
                    match = SANDBOX_ID.fullmatch(name)
                    if match is None:
                        raise ValueError(f"200 example {name!r} is not named example_<sandbox id>")
                    key = name
                    ids = [match.group(1), eleven_digit(match.group(1))]
                else:
                    key = f"error_{status}"
                    ids = []
                if key in index:
                    raise ValueError(f"two examples would be written to {key}.json")
                files[f"{key}.json"] = replace_strings(body, NBS_BASE, NBS_PLACEHOLDER)
                index[key] = {
                    "status": int(status),
                    "summary": example.get("summary", ""),
                    "ids": ids,
                    "group": group(body) if status == "200" else None,
                }
    files["index.json"] = index
    return files


def render(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    files = extract(load_spec())
    OUT.mkdir(exist_ok=True)
    for stale in OUT.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    for name, value in files.items():
        (OUT / name).write_text(render(value), encoding="utf-8")
    print(f"wrote {len(files)} files to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
