"""The bundled data is what the extraction script makes of the shipped spec, with its licence beside it."""

from __future__ import annotations

import json
import uuid

from plugins.eligibility.data import extract
from plugins.eligibility.scenarios import response_id
from tests.plugins.eligibility.support import DATA, ERROR_NUMBERS, LOAD_TEST_PATIENTS, patients_mapping


def test_committed_examples_are_exactly_what_extraction_produces() -> None:
    files = extract.extract(extract.load_spec())
    committed = {path.name for path in extract.OUT.glob("*.json")}
    assert committed == set(files)
    for name, value in files.items():
        assert (extract.OUT / name).read_text(encoding="utf-8") == extract.render(value), name


def test_there_are_37_examples_and_4_errors() -> None:
    index = json.loads((extract.OUT / "index.json").read_text())
    assert sum(entry["status"] == 200 for entry in index.values()) == 37
    assert sorted(entry["status"] for entry in index.values() if entry["status"] != 200) == [
        400,
        404,
        422,
        500,
    ]


def test_timestamps_stay_strings_and_nbs_links_are_templated() -> None:
    body = json.loads((extract.OUT / "example_5000000001.json").read_text())
    assert body["meta"]["lastUpdated"] == "2025-02-12T16:11:22Z"
    links = [a.get("urlLink") for a in body["processedSuggestions"][0]["actions"]]
    assert "@@NBS_URL@@/nhs-app/vita/rsv" in links


def test_the_licence_travels_with_the_spec_copy() -> None:
    assert (DATA / "eligibility-signposting-api.yaml").is_file()
    assert "MIT" in (DATA / "LICENCE-eligibility-signposting-api.md").read_text()


def test_every_load_test_patient_and_error_number_is_mapped() -> None:
    mapping = patients_mapping()
    assert set(LOAD_TEST_PATIENTS) | set(ERROR_NUMBERS) <= set(mapping)
    index = json.loads((extract.OUT / "index.json").read_text())
    assert {entry["scenario"] for entry in mapping.values()} <= set(index)


def test_response_ids_are_distinct_version_4_uuids() -> None:
    ids = [response_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for raw in ids[:2_000]:
        parsed = uuid.UUID(raw.decode())
        assert (parsed.version, parsed.variant, str(parsed).encode()) == (4, uuid.RFC_4122, raw)
