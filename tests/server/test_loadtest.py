"""Each load-test format of ``simulator targets``, run briefly by its own tool against a real server on
loopback: hey, wrk, locust (the shipped locustfile) and, where it is installed, k6. The server's route
statistics (``/_simulator/stats``) show what arrived and what it answered. Bounded: at most a few seconds
or a few hundred requests a run; no timing is asserted.

wrk and hey are required where ``TEST_REQUIRE_BENCH=1`` (CI) and skipped elsewhere when missing; locust is a
dev dependency; k6 has no Debian or npm package and is skipped when absent (tests/test_targets.py checks
its script's syntax with node)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from tests.conftest import Serve, clean_env
from tests.plugins.eligibility.support import LOAD_TEST_PATIENTS

pytestmark = pytest.mark.server

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(BIN))
    if found is None:
        if os.environ.get("TEST_REQUIRE_BENCH") == "1" and name in ("wrk", "hey"):
            pytest.fail(f"{name} is not installed (TEST_REQUIRE_BENCH=1)")
        pytest.skip(f"{name} is not installed")
    return found


def targets(base: str, *args: str) -> str:
    """``simulator targets`` against ``base`` (an origin)."""
    done = subprocess.run(
        [str(BIN / "simulator"), "targets", "--base-url", base, *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def drive(command: Sequence[str], cwd: Path, *, stdin: str | None = None, exit_code: int = 0) -> str:
    """Runs a load generator to its end (each run here is bounded by requests or seconds); what it printed."""
    done = subprocess.run(
        command, cwd=cwd, input=stdin, env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == exit_code, (
        f"{command[0]} exited {done.returncode}: {done.stdout}\n{done.stderr}"
    )
    return done.stdout + done.stderr


def statuses(base: str) -> dict[str, dict[str, int]]:
    """What each route answered since the server started, by status (routes that had requests)."""
    routes = httpx.get(f"{base}/_simulator/stats", timeout=10).json()["routes"]
    return {r["route"]: r["total"]["statuses"] for r in routes if r["total"]["requests"]}


# Every token target carries its own client assertion, accepted once (a replayed jti is refused with 400):
# with more requests than targets, each accepted exactly once shows that every target went out and that
# no two threads, VUs or users sent the same one.
TOKENS = 40


def test_hey_runs_each_patient_then_each_code_grant(serve: Serve, tmp_path: Path) -> None:
    tool("hey")  # the script runs it from the PATH
    # LOGIN_ROOT_URL: the NHS login targets' assertions name this server's token URL.
    base = serve(base_vars=("LOGIN_ROOT_URL",))
    script = targets(base, "--format", "hey")
    drive(["sh", "-s", "--", "-n", "20", "-c", "2"], tmp_path, stdin=script)
    assert statuses(base) == {"eligibility.patient_check": {"200": 20 * len(LOAD_TEST_PATIENTS)}}
    (tmp_path / "hey.sh").write_text(targets(base, "--kind", "code_grant", "-n", "2", "--format", "hey"))
    out = drive(["sh", "hey.sh", "-n", "10", "-c", "2"], tmp_path)
    assert out.count("[200]\t10 responses") == 2, out
    assert statuses(base)["nhs_login.token"] == {"200": 20}


def test_wrk_sends_the_patients_and_every_token_once_a_round(serve: Serve, tmp_path: Path) -> None:
    wrk = tool("wrk")
    base = serve()
    (tmp_path / "patients.lua").write_text(targets(base, "--format", "wrk"))
    out = drive([wrk, "-t2", "-c2", "-d1s", "-s", "patients.lua", base], tmp_path)
    assert "Non-2xx or 3xx responses" not in out, out
    answered = statuses(base)["eligibility.patient_check"]
    assert list(answered) == ["200"]
    assert answered["200"] >= len(LOAD_TEST_PATIENTS)
    (tmp_path / "token.lua").write_text(
        targets(base, "--kind", "token", "-n", str(TOKENS), "--format", "wrk")
    )
    drive([wrk, "-t2", "-c4", "-d1s", "-s", "token.lua", base], tmp_path)
    token = statuses(base)["apim_oauth.token"]
    assert token["200"] == TOKENS, token
    assert set(token) <= {"200", "400"}


def locust(cwd: Path, exit_code: int = 0) -> str:
    """The locustfile of ``cwd``, 2 users for 2 seconds; exit code 1 when any request failed."""
    command = [tool("locust"), "-f", "locustfile.py", "--headless", "-u", "2", "-r", "2", "-t", "2s"]
    return drive([*command, "--only-summary"], cwd, exit_code=exit_code)


def test_the_shipped_locustfile_sends_patients_tokens_and_sign_ins(serve: Serve, tmp_path: Path) -> None:
    base = serve()
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(targets(base, "--format", "locust"))
    out = locust(tmp_path)
    assert "/eligibility-signposting-api/patient-check/{nhs_number}" in out  # one row for the route
    assert list(statuses(base)["eligibility.patient_check"]) == ["200"]
    # Sign-ins answer 302 to the app's callback: not followed, not a failure.
    locustfile.write_text(targets(base, "--kind", "signin", "-n", "20", "--format", "locust"))
    locust(tmp_path)
    assert list(statuses(base)["nhs_login.authorize"]) == ["302"]
    # Tokens beyond the first round are replays, refused: failures, so locust exits 1.
    locustfile.write_text(targets(base, "--kind", "token", "-n", str(TOKENS), "--format", "locust"))
    locust(tmp_path, exit_code=1)
    token = statuses(base)["apim_oauth.token"]
    assert token["200"] == TOKENS, token


def test_k6_where_installed_sends_the_patients_and_every_token_once(serve: Serve, tmp_path: Path) -> None:
    k6 = tool("k6")
    base = serve()
    (tmp_path / "patients.js").write_text(targets(base, "--format", "k6"))
    iterations = 2 * len(LOAD_TEST_PATIENTS)
    drive([k6, "run", "--quiet", "--vus", "2", "--iterations", str(iterations), "patients.js"], tmp_path)
    assert statuses(base)["eligibility.patient_check"] == {"200": iterations}
    token_targets = targets(base, "--kind", "token", "-n", str(TOKENS), "--format", "k6")
    (tmp_path / "token.js").write_text(token_targets)
    drive([k6, "run", "--quiet", "--vus", "3", "--iterations", str(2 * TOKENS), "token.js"], tmp_path)
    assert statuses(base)["apim_oauth.token"] == {"200": TOKENS, "400": TOKENS}
