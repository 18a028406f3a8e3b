"""docs/migration.md ("Coming from the openresty fake"), replayed against the real simulator.

The page's ``sh`` blocks whose first line is ``# replay: NAME`` are parsed here, so the page and the simulator
cannot drift apart:

- the block's ``docker run`` line gives the server's environment (its ``-e`` options; a ``-v SRC:DST`` volume
  becomes the local folder ``SRC``); every ``*_DELAY_SECONDS`` is emptied, which keeps the replay fast and
  checks that an empty variable means its default, as in the old fake;
- other lines before it (``mkdir``, a ``cat <<'EOF'`` file) run first, in a scratch folder;
- each line ending ``# -> STATUS text`` is run by bash, its ``http://localhost:9123`` pointed at the server,
  and must get that HTTP status from curl and print ``text`` (``# -> exit N``: that exit code).

The ``migration`` block is also replayed as written (docker build, docker run with the real delays) by a
container test. The ``load-test`` block's vegeta loop is run up to ``| vegeta``, and each target requested.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import Serve, clean_env, free_port, start_server, stop_servers

ROOT = Path(__file__).parents[1]
PAGE = ROOT / "docs" / "migration.md"
ORIGIN = "http://localhost:9123"
BLOCK = re.compile(r"^```sh\n# replay: (\S+)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXPECT = re.compile(r"\s+# -> (\d{3}|exit \d+)(?: (.*))?$")
# The seed's load-test patients (vaccinations-app's fake-api readme), for the page's vegeta loop.
SEED_PATIENTS = {
    "9657933617", "9658218989", "9658220142", "9686368906", "9735548852", "9450114080", "9658218873",
    "9658218997", "9658220150", "9686368973", "9658218881", "9658219004", "9686369120", "9466447939",
    "9658218903", "9658219012", "9661033498", "9735548844",
}  # fmt: skip


@dataclass
class Check:
    command: str
    expect: str  # "200" or "exit 0"
    text: str

    @property
    def label(self) -> str:
        return " ".join(self.command.split())[:90]


@dataclass
class Replay:
    name: str
    setup: list[str] = field(default_factory=list)
    build: str | None = None
    run: str | None = None
    checks: list[Check] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


def blocks() -> dict[str, str]:
    found = {name: body for name, body in BLOCK.findall(PAGE.read_text())}
    assert found, f"{PAGE} has no ```sh block starting '# replay: NAME'"
    return found


def parse(name: str, body: str) -> Replay:
    replay = Replay(name)
    lines = iter(body.splitlines())
    for line in lines:
        if not line.strip():
            continue
        if "<<'EOF'" in line:  # a file written by a here-document: up to its EOF line
            here = [line]
            for more in lines:
                here.append(more)
                if more == "EOF":
                    break
            replay.setup.append("\n".join(here))
        elif line.startswith("docker build"):
            replay.build = line
        elif "docker run " in line:
            replay.run = line[line.index("docker run ") :]
        elif (found := EXPECT.search(line)) is not None:
            replay.checks.append(Check(line[: found.start()], found.group(1), (found.group(2) or "").strip()))
        else:
            replay.other.append(line)
    return replay


def replays() -> dict[str, Replay]:
    return {name: parse(name, body) for name, body in blocks().items()}


def docker_env(run: str, workdir: Path) -> dict[str, str]:
    """The ``-e`` variables of a ``docker run`` line, with the paths of its ``-v`` volumes made local."""
    words = shlex.split(run)
    env: dict[str, str] = {}
    volumes: dict[str, str] = {}
    for option, value in itertools.pairwise(words):
        if option == "-e":
            key, _, val = value.partition("=")
            env[key] = val
        elif option == "-v":
            source, destination = value.split(":")[:2]
            volumes[destination] = source.replace("$PWD", str(workdir))
    for key, val in env.items():
        for destination, source in volumes.items():
            if val == destination or val.startswith(destination + "/"):
                env[key] = source + val[len(destination) :]
    return env


def run_check(check: Check, base: str, timeout: float = 60) -> tuple[str, str, float]:
    """Run one of the page's commands against ``base``: (what it got, what it printed, seconds)."""
    command = check.command.replace(ORIGIN, base)
    env = clean_env({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    started = time.monotonic()
    if check.expect.startswith("exit"):
        done = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        return f"exit {done.returncode}", done.stdout + done.stderr, time.monotonic() - started
    handle, name = tempfile.mkstemp(prefix="replay-")
    os.close(handle)
    out = Path(name)
    try:
        done = subprocess.run(
            ["bash", "-c", f"{command} -o {shlex.quote(name)} -w '%{{http_code}}'"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return done.stdout.strip()[-3:], out.read_text(errors="replace"), time.monotonic() - started
    finally:
        out.unlink(missing_ok=True)


def assert_answers(check: Check, got: str, printed: str) -> None:
    assert got == check.expect, f"{check.label}: got {got}, the page says {check.expect}:\n{printed[-1500:]}"
    assert check.text in printed, (
        f"{check.label}: {check.text!r} is not in what it printed:\n{printed[:1500]}"
    )


def needs(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH: the page's commands use them")


# -- the page's shape --------------------------------------------------------------------------------


def test_the_page_has_its_replayable_blocks() -> None:
    found = replays()
    assert {"seed", "migration", "old-errors", "load-test"} <= set(found)
    for name in ("seed", "migration", "old-errors"):
        assert found[name].run is not None, f"block {name} has no docker run line"
        assert found[name].checks, f"block {name} checks nothing"
    seed = found["seed"].run
    assert seed == (
        "docker run -d --rm -p 9123:9123 -e ELID_DELAY_SECONDS=2 -e APIM_DELAY_SECONDS=10 "
        "--name local-fake-api fake-api"
    ), "the seed block must quote the seed's docker run line as it is"


@pytest.mark.parametrize(
    "old",
    [
        "`GET /health`", "/eligibility-signposting-api/patient-check/{nhs}", "`/oauth2/token`",
        "`/oauth2/{other name}`", "`GET /.well-known/openid-configuration`", "`GET /.well-known/jwks.json`",
        "`GET /authorize`", "`POST /token`", "`GET /userinfo`", "`GET /nbs`", "`ELID_DELAY_SECONDS`",
        "`APIM_DELAY_SECONDS`", "`LOGIN_ROOT_URL`", "`APP_ROOT_URL`", "`NBS_URL`", "X-NHS-Number",
        "X-Test-Oauth-Error", "--force-new-deployment", "docker push", "aws ecr get-login-password",
        "terraform -chdir=terraform init", "vegeta attack", "make deploy", "`APIM_VALIDATION=off`",
        "`LOGIN_VALIDATION=off`",
    ],
)  # fmt: skip
def test_the_page_maps_every_old_route_variable_and_command(old: str) -> None:
    assert old in PAGE.read_text()


# -- the replay against `simulator serve` ------------------------------------------------------------

CHECKS = [
    pytest.param(name, index, id=f"{name}:{check.label}")
    for name, replay in replays().items()
    for index, check in enumerate(replay.checks)
]


@pytest.fixture(scope="module")
def replay_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One server per replay block, started on first use with the block's settings: {block: base URL}."""
    procs: list[subprocess.Popen[bytes]] = []

    class Lazy(dict[str, str]):
        def __missing__(self, name: str) -> str:
            replay = replays()[name]
            assert replay.run is not None
            workdir = tmp_path_factory.mktemp(f"replay-{name}")
            for script in replay.setup:
                subprocess.run(["bash", "-c", script], cwd=workdir, check=True, timeout=30)
            env = docker_env(replay.run, workdir)
            env |= {key: "" for key in env if key.endswith("_DELAY_SECONDS")}
            proc, base = start_server(env, workdir / "server.log")
            procs.append(proc)
            self[name] = base
            return base

    yield Lazy()
    stop_servers(procs)


@pytest.mark.server
@pytest.mark.parametrize(("name", "index"), CHECKS)
def test_the_page_replays(name: str, index: int, replay_servers: dict[str, str]) -> None:
    """Each command of a replay block gets what the page says, from a server with that block's settings."""
    check = replays()[name].checks[index]
    needs("bash", "curl", *(["jq"] if "jq " in check.command else []))
    got, printed, _ = run_check(check, replay_servers[name])
    assert_answers(check, got, printed)


@pytest.mark.server
def test_the_seed_load_test_targets_are_the_18_patients_and_all_answer(serve: Serve) -> None:
    """The vegeta loop (up to ``| vegeta``) and ``simulator targets`` print the same 18 patient-checks."""
    needs("bash")
    lines = blocks()["load-test"].splitlines()
    variables = [line for line in lines if line.startswith(("KEYS=", "BASE_URL="))]
    generators = [line.split(" | vegeta")[0] for line in lines if "| vegeta attack" in line]
    assert len(variables) == 2
    assert len(generators) == 2, "the loop and simulator targets, each piped to vegeta"
    env = clean_env({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    printed = [
        subprocess.run(
            ["bash", "-c", "\n".join([*variables, generator])],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.splitlines()
        for generator in generators
    ]
    loop, targets = printed
    assert sorted(loop) == sorted(targets)
    prefix = f"GET {ORIGIN}/eligibility-signposting-api/patient-check/"
    assert all(line.startswith(prefix) for line in loop)
    assert {line.removeprefix(prefix) for line in loop} == SEED_PATIENTS

    base = serve()
    with httpx.Client(timeout=10) as client:
        for line in loop:
            response = client.get(line.removeprefix("GET ").replace(ORIGIN, base))
            assert response.status_code == 200, line
            assert response.headers["content-type"] == "application/json"
            assert "processedSuggestions" in response.json(), line


# -- the old variables -------------------------------------------------------------------------------

OLD_DEFAULTS = {
    "ELID_DELAY_SECONDS": 0,
    "APIM_DELAY_SECONDS": 0,
    "LOGIN_ROOT_URL": "http://localhost:9123",
    "LOGIN_APP_ROOT_URL": "https://localhost:3000",  # APP_ROOT_URL's own name
    "ELID_NBS_URL": "http://localhost:9123/nbs",  # NBS_URL's
}


def _settings(base: str) -> dict[str, object]:
    plugins = httpx.get(f"{base}/_simulator/plugins").json()["plugins"]
    return {s["env"]: s["value"] for p in plugins for s in p.get("settings") or []}


def _callback(base: str, **query: str) -> str:
    params = {"client_id": "vita-app-sandpit", "response_type": "code", "scope": "openid profile"} | query
    response = httpx.get(f"{base}/authorize", params=params)
    assert response.status_code == 302, response.text
    return response.headers["location"]


@pytest.mark.server
def test_empty_old_variables_mean_their_defaults(serve: Serve) -> None:
    old = ["ELID_DELAY_SECONDS", "APIM_DELAY_SECONDS", "LOGIN_ROOT_URL", "APP_ROOT_URL", "NBS_URL"]
    base = serve(dict.fromkeys(old, ""))
    settings = _settings(base)
    assert {name: settings[name] for name in OLD_DEFAULTS} == OLD_DEFAULTS
    assert httpx.get(f"{base}/.well-known/openid-configuration").json()["issuer"] == "http://localhost:9123"
    assert _callback(base).startswith("https://localhost:3000/api/auth/callback/nhs-login?code=")
    body = httpx.get(f"{base}/eligibility-signposting-api/patient-check/9686368973").text
    assert "http://localhost:9123/nbs/" in body
    assert "@@NBS_URL@@" not in body


@pytest.mark.server
def test_the_old_variables_are_honoured(serve: Serve) -> None:
    root = "http://fake-api.example:9123"
    base = serve(
        {"LOGIN_ROOT_URL": root, "APP_ROOT_URL": "https://app.example", "NBS_URL": "https://nbs.example/nbs"}
    )
    discovery = httpx.get(f"{base}/.well-known/openid-configuration").json()
    urls = {key: value for key, value in discovery.items() if isinstance(value, str) and "://" in value}
    named = {"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"}
    assert named <= set(urls)
    assert all(url == root or url.startswith(f"{root}/") for url in urls.values()), urls
    assert _callback(base).startswith("https://app.example/api/auth/callback/nhs-login?code=")
    body = httpx.get(f"{base}/eligibility-signposting-api/patient-check/9686368973").text
    assert "https://nbs.example/nbs/" in body


@pytest.mark.server
def test_the_delays_cover_every_answer_of_their_routes_but_health(serve: Serve) -> None:
    """Fractional seconds; the seed's token POST gets its 415 after the APIM delay, /health at once."""
    base = serve({"ELID_DELAY_SECONDS": "0.4", "APIM_DELAY_SECONDS": "0.4"})
    with httpx.Client(timeout=10) as client:
        for method, path, status in [
            ("GET", "/eligibility-signposting-api/patient-check/9658218989", 200),
            ("GET", "/eligibility-signposting-api/patient-check/9436793375", 500),
            ("POST", "/oauth2/token", 415),
            ("GET", "/oauth2/token", 405),
        ]:
            started = time.monotonic()
            assert client.request(method, f"{base}{path}").status_code == status
            assert time.monotonic() - started >= 0.4, path
        started = time.monotonic()
        assert client.get(f"{base}/health").text == "healthy"
        assert time.monotonic() - started < 0.3


# -- the claim that the app itself needs no migration setting ----------------------------------------


def _rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.mark.server
def test_the_apps_own_requests_pass_the_default_checks(serve: Serve) -> None:
    """Sign-in, token exchange and patient-check as the vaccinations app sends them, with no setting:
    Auth.js's client assertion (``{"alg": "RS512"}``, ``aud`` [issuer, token endpoint], 60 s) and the app's
    APIM assertion (jsonwebtoken: RS512 with its key id and ``typ`` JWT, ``exp`` +300 s, a UUID ``jti``)."""
    base = serve(base_vars=("LOGIN_ROOT_URL",))
    client_id, app = "vita-app-test", "https://app.example/api/auth/callback/nhs-login"
    location = _callback(base, client_id=client_id, redirect_uri=app, prompt="none", state="s1")
    code = httpx.URL(location).params["code"]
    now = int(time.time())
    login_assertion = jwt.encode(
        {"jti": str(uuid.uuid4()), "aud": [base, f"{base}/token"], "exp": now + 60, "iat": now, "nbf": now,
         "iss": client_id, "sub": client_id},
        _rsa_pem(), algorithm="RS512", headers={"typ": None},
    )  # fmt: skip
    tokens = httpx.post(
        f"{base}/token",
        data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": app, "client_id": client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": login_assertion,
        },
    )  # fmt: skip
    assert tokens.status_code == 200, tokens.text
    apim_assertion = jwt.encode(
        {"iss": "app-api-key", "sub": "app-api-key", "aud": f"{base}/oauth2/token", "jti": str(uuid.uuid4()),
         "exp": now + 300},
        _rsa_pem(), algorithm="RS512", headers={"kid": "app-key-1"},
    )  # fmt: skip
    exchanged = httpx.post(
        f"{base}/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "subject_token": tokens.json()["id_token"],
            "client_assertion": apim_assertion,
        },
    )
    assert exchanged.status_code == 200, exchanged.text
    assert exchanged.json()["expires_in"] == "599"
    check = httpx.get(
        f"{base}/eligibility-signposting-api/patient-check/9686368973",
        headers={"Authorization": f"Bearer {exchanged.json()['access_token']}"},
    )
    assert check.status_code == 200


# -- the migration block as written: docker build and run, real delays --------------------------------

IMAGE = "api-simulator:migration"


def _docker_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no docker command"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60, check=False)
    if info.returncode != 0:
        return " ".join((info.stderr or info.stdout).split())[:200] or f"docker info exited {info.returncode}"
    return None


@pytest.mark.container
@pytest.mark.slow
def test_the_migration_block_replays_in_the_image_with_its_delays() -> None:
    problem = _docker_problem()
    if problem is not None:
        reason = f"no Docker engine answers ({problem})"
        if os.environ.get("TEST_REQUIRE_DOCKER") == "1":
            pytest.fail(f"{reason}; TEST_REQUIRE_DOCKER=1 requires one", pytrace=False)
        pytest.skip(reason)
    needs("bash", "curl", "jq")
    replay = replays()["migration"]
    assert replay.build is not None
    assert replay.run is not None
    build = [IMAGE if word == "fake-api" else word for word in shlex.split(replay.build)]
    built = subprocess.run(build, cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False)
    assert built.returncode == 0, built.stderr[-3000:]

    port = free_port()
    name = f"migration-test-{port}"
    swap = {"9123:9123": f"127.0.0.1:{port}:9123", "local-fake-api": name, "fake-api": IMAGE}
    run = [swap.get(word, word) for word in shlex.split(replay.run)]
    assert f"127.0.0.1:{port}:9123" in run
    assert name in run
    started = subprocess.run(run, capture_output=True, text=True, timeout=60, check=False)
    assert started.returncode == 0, started.stderr
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        with ThreadPoolExecutor(max_workers=len(replay.checks)) as pool:
            results = list(pool.map(lambda check: run_check(check, base, timeout=120), replay.checks))
        for check, (got, printed, seconds) in zip(replay.checks, results, strict=True):
            assert_answers(check, got, printed)
            if "/patient-check/" in check.command:
                assert seconds >= 2, f"{check.label}: {seconds:.2f} s, not after ELID_DELAY_SECONDS=2"
            if "/oauth2/" in check.command or "--smoke-check" in check.command:
                assert seconds >= 10, f"{check.label}: {seconds:.2f} s, not after APIM_DELAY_SECONDS=10"
            if check.command.split()[-1].endswith("/health"):
                assert seconds < 2, f"{check.label}: {seconds:.2f} s; /health is never delayed"
    finally:
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=False)
        subprocess.run(["docker", "stop", "-t", "30", name], capture_output=True, timeout=60, check=False)
    assert "Traceback" not in logs.stdout + logs.stderr


def test_the_old_error_mapping_is_valid_json() -> None:
    (script,) = replays()["old-errors"].setup
    document = script.split("\n", 1)[1].rsplit("\nEOF", 1)[0]
    mapping = json.loads(document)
    assert {entry["status"] for entry in mapping.values()} == {200}
