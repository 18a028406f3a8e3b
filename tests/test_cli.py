"""The ``simulator`` command: plugin listing, the example plugin's discovery, and the scaffold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import Serve, clean_env, run_pytest_project
from tests.plugins.eligibility.support import LOAD_TEST_PATIENTS


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("simulator"))
    return subprocess.run(
        [exe, *args], env=clean_env(env), capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_plugins_lists_every_installed_plugin_and_marks_the_enabled_ones() -> None:
    result = run("plugins", env={"SIMULATOR_PLUGINS": "health"})
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows["health"][2] == "yes"
    assert rows["spiky"][2] == "no"
    assert "GET /health" in result.stdout
    assert "SPIKY_DELAY_SECONDS" in result.stdout


def test_plugins_lists_a_broken_disabled_plugin_as_broken_instead_of_failing() -> None:
    result = run("plugins", env={"SIMULATOR_PLUGINS": "health", "APIM_VALIDATION": "bogus"})
    assert result.returncode == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("apim_oauth ")]
    assert "broken" in row
    assert "BROKEN: invalid setting APIM_VALIDATION='bogus'" in row
    assert "eligibility" in result.stdout


def test_example_plugin_is_discovered_from_its_own_distribution() -> None:
    from importlib.metadata import entry_points

    (ep,) = [ep for ep in entry_points(group="simulator") if ep.name == "spiky"]
    assert ep.dist is not None
    assert ep.dist.name == "simulator-spiky"


@pytest.mark.server
def test_example_plugin_is_selectable_and_its_policy_works(serve: Serve) -> None:
    base = serve(
        {
            "SIMULATOR_PLUGINS": "health,spiky",
            "SPIKY_DELAY": '{"policy":"spiky.every_nth","n":3,"fast":0,"slow":0.4}',
        }
    )
    times = []
    for _ in range(3):
        response = httpx.get(f"{base}/spiky/quote")
        assert response.status_code == 200
        times.append(response.elapsed.total_seconds())
    assert max(times[:2]) < 0.2
    assert times[2] >= 0.4
    names = [p["name"] for p in httpx.get(f"{base}/_simulator/plugins").json()["plugins"]]
    assert names == ["health", "spiky"]


def test_new_plugin_output_passes_its_own_tests_ruff_and_mypy_strict(tmp_path: Path) -> None:
    result = run("new-plugin", "demo", str(tmp_path))
    assert result.returncode == 0, result.stderr
    root = tmp_path / "demo"
    assert (root / "pyproject.toml").read_text().count('demo = "simulator_demo"') == 1
    assert f"{sys.executable} -m pip install -e '.[test]'" in result.stdout
    env = clean_env({"PYTHONPATH": str(root)})
    test = run_pytest_project(root, str(root / "tests"), env)
    assert test.returncode == 0, test.stdout + test.stderr
    assert "3 passed" in test.stdout
    # mypy cannot follow the import hook of this repository's editable install: point it at the source.
    typing_env = env | {"MYPYPATH": str(Path(__file__).parents[1])}
    for tool in (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy", "."]):
        checked = subprocess.run(
            [sys.executable, "-m", *tool],
            cwd=root,
            env=typing_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert checked.returncode == 0, f"{tool}: {checked.stdout}{checked.stderr}"
    assert "strict = true" in (root / "pyproject.toml").read_text()


@pytest.mark.parametrize("name", ["Demo", "9lives", "has-dash"])
def test_new_plugin_refuses_bad_names(tmp_path: Path, name: str) -> None:
    result = run("new-plugin", name, str(tmp_path))
    assert result.returncode == 2
    assert "must be lower case letters" in result.stderr


def test_targets_lists_the_load_tests_patients_from_the_eligibility_plugin() -> None:
    result = run("targets", "--base-url", "http://sim:9123/")
    assert result.stdout.splitlines() == [
        f"GET http://sim:9123/eligibility-signposting-api/patient-check/{number}"
        for number in LOAD_TEST_PATIENTS
    ]


def test_targets_lists_the_sets_the_enabled_plugins_offer() -> None:
    listed = run("targets", "--list").stdout.splitlines()
    assert [line.split(":")[0] for line in listed] == [
        "apim_oauth.token",
        "eligibility.patients (default)",
        "eligibility.synthetic",
        "nhs_login.signin",
        "nhs_login.code_grant",
    ]
    only = run("targets", "--list", env={"SIMULATOR_PLUGINS": "health,apim_oauth"}).stdout.splitlines()
    assert [line.split(":")[0] for line in only] == ["apim_oauth.token"]
    result = run("targets", env={"SIMULATOR_PLUGINS": "health,apim_oauth"})
    assert result.returncode == 2
    assert "name a target set with --kind; available: apim_oauth.token" in result.stderr
    unknown = run("targets", "--kind", "nope")
    assert unknown.returncode == 2
    assert "no target set 'nope'; available: apim_oauth.token, eligibility.patients" in unknown.stderr


def test_targets_synthetic_numbers_are_valid_distinct_and_reproducible() -> None:
    from plugins.nhs_number import problem

    first = run("targets", "--kind", "synthetic", "-n", "200", "--seed", "7").stdout.splitlines()
    numbers = [line.rsplit("/", 1)[1] for line in first]
    assert len(set(numbers)) == 200
    assert all(problem(number) is None for number in numbers)
    assert run("targets", "--kind", "synthetic", "-n", "200", "--seed", "7").stdout.splitlines() == first


def test_targets_token_posts_carry_fresh_assertions() -> None:
    import base64
    import json
    from urllib.parse import parse_qs

    import jwt

    lines = run("targets", "--kind", "token", "-n", "2").stdout.splitlines()
    jtis = set()
    for line in lines:
        target = json.loads(line)
        assert target["method"] == "POST"
        assert target["header"] == {"Content-Type": ["application/x-www-form-urlencoded"]}
        form = parse_qs(base64.b64decode(target["body"]).decode())
        assert form["grant_type"] == ["client_credentials"]
        assertion = form["client_assertion"][0]
        assert jwt.get_unverified_header(assertion) == {"alg": "RS512", "kid": "load-test-1", "typ": "JWT"}
        jtis.add(jwt.decode(assertion, options={"verify_signature": False})["jti"])
    assert len(jtis) == 2


def test_targets_refuses_a_count_below_one() -> None:
    result = run("targets", "--kind", "synthetic", "-n", "0")
    assert result.returncode == 2
    assert "--count must be at least 1" in result.stderr


@pytest.mark.parametrize(
    ("base_url", "refused"),
    [
        # The API's own path is dropped (tests/test_targets.py); another path cannot be told from a mistake.
        ("http://sim:9123/api/", "carries the path /api, which is not the API path of eligibility.patients"),
        ("http://sim:9123/?x=1", "carries a query or a fragment"),
    ],
)
def test_targets_refuses_a_base_url_that_carries_a_path(base_url: str, refused: str) -> None:
    result = run("targets", "--base-url", base_url)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"simulator: error: --base-url {base_url!r} {refused}")
    assert line.endswith("give the origin, http://sim:9123")


@pytest.mark.parametrize("base_url", ["sim:9123", "ftp://sim", "http://"])
def test_targets_refuses_a_base_url_that_is_not_an_http_url(base_url: str) -> None:
    result = run("targets", "--base-url", base_url)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--base-url must be an http(s) URL" in result.stderr
