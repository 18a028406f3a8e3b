"""``simulator targets``: a --base-url with the API's path, and the hey, wrk, k6 and locust formats as text
(tests/server/test_loadtest.py runs each tool against a real server)."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from simulator.targets import FORMATS, Format, HttpTarget, render, script_text
from tests.plugins.eligibility.support import LOAD_TEST_PATIENTS
from tests.test_cli import run

PATIENT_URLS = [
    f"GET http://sim:9123/eligibility-signposting-api/patient-check/{number}" for number in LOAD_TEST_PATIENTS
]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    return line


@pytest.mark.parametrize(
    "base_url",
    [
        "http://sim:9123",
        "http://sim:9123/",
        "http://sim:9123/eligibility-signposting-api",
        "http://sim:9123/eligibility-signposting-api/",
        "http://sim:9123/eligibility-signposting-api/patient-check",
    ],
)
def test_a_base_url_with_the_api_path_gives_the_same_targets_as_the_origin(base_url: str) -> None:
    result = run("targets", "--base-url", base_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == PATIENT_URLS


@pytest.mark.parametrize(
    ("args", "path", "targets"),
    [
        ((), "/other", "/eligibility-signposting-api/patient-check/"),
        ((), "/eligibility-signposting", "/eligibility-signposting-api/patient-check/"),
        (("--kind", "token", "-n", "1"), "/eligibility-signposting-api", "/oauth2/token"),
        (("--kind", "signin", "-n", "1"), "/eligibility-signposting-api", "/authorize"),
    ],
)
def test_a_base_url_with_another_path_is_refused_in_one_line(
    args: tuple[str, ...], path: str, targets: str
) -> None:
    base_url = f"http://sim:9123{path}/"
    line = one_line_error(run("targets", *args, "--base-url", base_url))
    assert line.startswith(
        f"simulator: error: --base-url {base_url!r} carries the path {path}, which is not "
    )
    assert f"(its targets are {targets}" in line
    assert line.endswith(": give the origin, http://sim:9123")


@pytest.mark.parametrize("base_url", ['http://sim"x:9123', "http://sim\\x:9123"])
def test_a_base_url_that_a_script_could_not_quote_is_refused(base_url: str) -> None:
    assert "--base-url must be an http(s) URL" in one_line_error(run("targets", "--base-url", base_url))


def test_help_names_every_format_and_the_image() -> None:
    shown = run("targets", "--help").stdout
    for fmt in FORMATS:
        assert re.search(rf"^  {fmt} +\S", shown, re.MULTILINE), fmt
    assert "docker run --rm fake-api targets" in shown


def test_every_shipped_script_has_the_mark_and_the_default_url() -> None:
    for fmt in ("wrk", "k6", "locust"):
        text = script_text(fmt)
        assert text.count("simulator targets: the targets go here") == 1, fmt
        assert "http://localhost:9123" in text, fmt


def test_the_hey_script_runs_hey_once_per_target_with_its_arguments() -> None:
    lines = run("targets", "--base-url", "http://sim:9123", "--format", "hey").stdout.splitlines()
    assert lines[0] == "#!/bin/sh"
    runs = [shlex.split(line) for line in lines if line.startswith("hey ")]
    assert runs == [
        ["hey", "$@", "-disable-redirects", "-m", "GET", url.split(" ")[1]] for url in PATIENT_URLS
    ]
    token = run("targets", "--kind", "token", "-n", "2", "--format", "hey").stdout.splitlines()
    (first, second) = (shlex.split(line) for line in token if line.startswith("hey "))
    assert first[:7] == [
        "hey",
        "$@",
        "-disable-redirects",
        "-m",
        "POST",
        "-T",
        "application/x-www-form-urlencoded",
    ]
    assert first[7] == "-d"
    assert first[8].startswith("grant_type=client_credentials&")
    assert first[9] == "http://localhost:9123/oauth2/token"
    assert first[8] != second[8]  # each its own assertion


def wrk_entries(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("  {")]


def test_the_wrk_script_holds_the_targets_in_chunks_lua_can_load() -> None:
    text = run("targets", "--base-url", "http://sim:9123/", "--format", "wrk").stdout
    assert wrk_entries(text) == [
        f'{{"GET", "/eligibility-signposting-api/patient-check/{number}"}},' for number in LOAD_TEST_PATIENTS
    ]
    assert "wrk -t2 -c8 -d30s --latency -s targets.lua http://sim:9123\n" in text
    many = run("targets", "--kind", "synthetic", "-n", "2500", "--format", "wrk").stdout
    assert len(wrk_entries(many)) == 2500
    # LuaJIT loads at most 65,536 constants a function: the targets come 1000 to a function.
    assert many.count("add(function() return {") == many.count("} end)") == 3
    token = run("targets", "--kind", "token", "-n", "1", "--format", "wrk").stdout
    (entry,) = wrk_entries(token)
    assert entry.startswith(
        '{"POST", "/oauth2/token", {["Content-Type"] = "application/x-www-form-urlencoded"}, '
        '"grant_type=client_credentials&'
    )


def test_lua_strings_escape_every_byte_that_is_not_printable_ascii() -> None:
    target = HttpTarget("POST", "/x", {"A": 'q"b\\'}, "é\n\x00".encode())
    (entry,) = wrk_entries("\n".join(render([target], "http://sim", "wrk")))
    assert entry == r'{"POST", "/x", {["A"] = "q\034b\092"}, "\195\169\010\000"},'


def test_the_locustfile_is_python_holding_the_targets() -> None:
    text = run("targets", "--base-url", "http://sim:9123", "--kind", "token", "-n", "3", "--format", "locust")
    values = {
        ast.unparse(node.targets[0] if isinstance(node, ast.Assign) else node.target): node.value
        for node in ast.parse(text.stdout).body
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
    }
    assert ast.literal_eval(values["BASE_URL"]) == "http://sim:9123"
    targets = ast.literal_eval(values["TARGETS"])
    assert len(targets) == 3
    for method, path, name, headers, body in targets:
        assert (method, path, name, headers) == (
            "POST",
            "/oauth2/token",
            "/oauth2/token",
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert body.startswith("grant_type=client_credentials&")
    patients = run("targets", "--format", "locust").stdout
    assert patients.count("'/eligibility-signposting-api/patient-check/{nhs_number}', {}, ''),") == 18


def k6_entries(text: str) -> list[list[object]]:
    return [json.loads(line.strip().rstrip(",")) for line in text.splitlines() if line.startswith("  [")]


def test_the_k6_script_holds_the_targets_and_is_javascript(tmp_path: Path) -> None:
    text = run(
        "targets", "--base-url", "http://sim:9123", "--kind", "signin", "-n", "2", "--format", "k6"
    ).stdout
    assert 'const BASE_URL = __ENV.BASE_URL || "http://sim:9123";' in text
    entries = k6_entries(text)
    assert [entry[:1] + entry[2:] for entry in entries] == [["GET", "/authorize"]] * 2
    assert all(str(entry[1]).startswith("/authorize?response_type=code&") for entry in entries)
    node = shutil.which("node")
    if node is None:
        if os.environ.get("TEST_REQUIRE_NODE") == "1":
            pytest.fail("node not installed (TEST_REQUIRE_NODE=1)")
        pytest.skip("node is not installed: the k6 script's syntax is not checked")
    for name, script in (("template", script_text("k6")), ("targets", text)):
        module = tmp_path / f"{name}.mjs"  # an ES module, as k6 reads it; --check does not load the imports
        module.write_text(script)
        checked = subprocess.run([node, "--check", str(module)], capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("fmt", ["hey", "k6", "locust"])
def test_a_binary_body_is_refused_by_the_text_formats(fmt: Format) -> None:
    with pytest.raises(ValueError, match=f"--format {fmt} carries text bodies only"):
        list(render([HttpTarget("POST", "/x", {}, b"\xff")], "http://sim", fmt))
