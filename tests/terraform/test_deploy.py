"""scripts/deploy.sh: with no Terraform state it stops in one line; its dry run prints every command with
the names of a real (moto-applied) state; its smoke checks follow the deployed settings, tried against
real `simulator serve` processes; without a terminal it refuses to apply unless --yes, and in one it
applies only what was confirmed. End to end, with stand-ins for `aws` (boto3 against moto) and `docker`
(`docker run` starts this checkout's `simulator serve`), a deploy rolls the service to a new revision, and
one whose live check fails rolls it back.

The Terraform parts reuse test_terraform.py's helpers (a temporary copy of terraform/, moto on
127.0.0.1), so no state is left in the repository.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.conftest import Serve, clean_env, simulator_command
from tests.terraform.test_terraform import (
    ALLOWED_CIDR_BLOCKS,
    REPO,
    aws_call,
    copy_config,
    init,
    moto_server,
    on_emulator,
    output_of,
    run,
    terraform_env,
    tool,
)

pytestmark = pytest.mark.terraform

DEPLOY = REPO / "scripts" / "deploy.sh"
TAG = re.compile(r"[0-9a-f]{12}(-dirty-\d{14})?")
# The settings of the moto-applied state: the smoke checks must follow them (a token with validation off,
# no NHS login discovery).
STATE_ENVIRONMENT = {"APIM_VALIDATION": "off", "SIMULATOR_PLUGINS": "health,eligibility,apim_oauth"}
DEPLOYED_TAG = "0123456789ab"


def deploy(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """deploy.sh with ARGS, standard input not a terminal."""
    return subprocess.run(
        ["bash", str(DEPLOY), *args],
        cwd=REPO,
        env=env if env is not None else dict(os.environ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def commands(stdout: str) -> list[str]:
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


# -- no state -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stateless(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """terraform/ as a user has it before the first apply: initialised, never applied."""
    workdir = copy_config(tmp_path_factory.mktemp("stateless") / "terraform")
    env = init(workdir, terraform_env())
    env["DEPLOY_TF_DIR"] = str(workdir)
    # `terraform output -raw` prints a warning on standard output with exit code 0 here: the trap.
    proc = run(["terraform", f"-chdir={workdir}", "output", "-raw", "ecs_cluster_name"], env, 120)
    assert proc.returncode == 0, output_of(proc)
    assert "No outputs found" in proc.stdout, output_of(proc)
    return workdir, env


@pytest.mark.parametrize("args", [["--dry-run"], ["--smoke-check"], ["--smoke-check", "--dry-run"]])
def test_without_state_it_stops_with_one_line(
    stateless: tuple[Path, dict[str, str]], args: list[str]
) -> None:
    workdir, env = stateless
    proc = deploy(*args, env=env)
    assert proc.returncode == 1, output_of(proc)
    assert proc.stderr.splitlines() == [
        f"deploy: no Terraform state in {workdir}: "
        f"run terraform -chdir={workdir} apply first (see docs/aws.md)"
    ], output_of(proc)
    assert proc.stdout == "", output_of(proc)


def test_before_terraform_init_it_says_to_init_too(tmp_path: Path) -> None:
    workdir = copy_config(tmp_path / "terraform")  # with the lock file, so `terraform output` fails
    proc = deploy("--dry-run", env=dict(terraform_env(), DEPLOY_TF_DIR=str(workdir)))
    assert proc.returncode == 1, output_of(proc)
    assert proc.stderr.splitlines() == [
        f"deploy: no Terraform state in {workdir} (not even initialised): "
        f"run terraform -chdir={workdir} init && terraform -chdir={workdir} apply first (see docs/aws.md)"
    ], output_of(proc)
    assert proc.stdout == ""


def test_without_a_terminal_it_refuses_to_apply_unless_yes(stateless: tuple[Path, dict[str, str]]) -> None:
    # Refused before anything is read, built or pushed: no AWS, Docker or state needed to see it.
    _, env = stateless
    proc = deploy(env=env)
    assert proc.returncode == 1, output_of(proc)
    assert proc.stderr.splitlines() == [
        "deploy: the Terraform plan needs your confirmation but standard input is not a terminal: "
        "run this in a terminal, or pass --yes to apply without asking (CI)"
    ], output_of(proc)
    assert proc.stdout == ""
    # With --yes it goes on (here to the state check, since this copy has none).
    proc = deploy("--yes", env=dict(env, PATH=f"{fake_tools_dir(env)}:{env['PATH']}"))
    assert "standard input is not a terminal" not in proc.stderr, output_of(proc)
    assert "no Terraform state" in proc.stderr, output_of(proc)


def fake_tools_dir(env: dict[str, str]) -> Path:
    """A folder with stand-ins for aws and docker that fail if called (this test must not reach them)."""
    folder = Path(env["DEPLOY_TF_DIR"]).parent / "fake-bin"
    folder.mkdir(exist_ok=True)
    for name in ("aws", "docker"):
        tool = folder / name
        tool.write_text(f"#!/bin/sh\necho '{name} must not be called here' >&2\nexit 99\n")
        tool.chmod(0o755)
    return folder


# -- a moto-applied state ---------------------------------------------------------------------------------


class Applied(NamedTuple):
    workdir: Path
    env: dict[str, str]  # with DEPLOY_TF_DIR = workdir
    outputs: dict[str, Any]  # right after the apply
    moto_url: str


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Applied]:
    """A copy of terraform/ applied to moto, with settings of its own in terraform.tfvars.json, as a user's
    terraform/ is after `terraform apply` (and one deploy of DEPLOYED_TAG)."""
    base = tmp_path_factory.mktemp("applied")
    with moto_server(base / "moto.log") as moto_url:
        workdir = copy_config(base / "terraform")
        env = on_emulator(workdir, terraform_env(), moto_url)
        settings = {"allowed_cidr_blocks": ALLOWED_CIDR_BLOCKS, "environment": STATE_ENVIRONMENT}
        (workdir / "terraform.tfvars.json").write_text(json.dumps(settings))
        tag_variable = ["-var", f"image_tag={DEPLOYED_TAG}"]
        proc = run(
            ["terraform", f"-chdir={workdir}", "apply", "-no-color", "-auto-approve", *tag_variable],
            env,
            900,
        )
        assert proc.returncode == 0, output_of(proc)
        yield Applied(workdir, dict(env, DEPLOY_TF_DIR=str(workdir)), outputs_of(workdir, env), moto_url)


def outputs_of(workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = run(["terraform", f"-chdir={workdir}", "output", "-json"], env, 120)
    assert proc.returncode == 0, output_of(proc)
    return {k: v["value"] for k, v in json.loads(proc.stdout).items()}


def test_the_state_has_what_the_deploy_reads(applied: Applied) -> None:
    outputs = applied.outputs
    environment = outputs["container_environment"]
    assert environment["APIM_VALIDATION"] == "off"
    assert environment["LOGIN_ROOT_URL"] == outputs["application_url"]
    assert outputs["image"] == f"{outputs['ecr_repository_url']}:{DEPLOYED_TAG}"
    assert re.fullmatch(
        r"arn:aws:ecs:eu-west-2:\d{12}:task-definition/fake-api:\d+", outputs["task_definition_arn"]
    )


@pytest.mark.slow
def test_dry_run_prints_every_command_with_the_real_names(applied: Applied) -> None:
    workdir, env, outputs, _ = applied
    # Credentials are not needed: only `terraform output` and `terraform console` run (read-only).
    env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    proc = deploy("--dry-run", env=env)
    assert proc.returncode == 0, output_of(proc)
    assert proc.stderr == "", output_of(proc)
    assert "<" not in proc.stdout, proc.stdout
    assert "No outputs" not in proc.stdout, proc.stdout
    repo, cluster, service = (
        outputs["ecr_repository_url"],
        outputs["ecs_cluster_name"],
        outputs["ecs_service_name"],
    )
    url = outputs["application_url"]
    lines = commands(proc.stdout)
    (plan,) = [c for c in lines if " plan " in c]
    tag = re.search(r"-var image_tag=(\S+)", plan)
    assert tag, plan
    assert TAG.fullmatch(tag.group(1)), plan
    new_tag = tag.group(1)
    image = f"{repo}:{new_tag}"
    local = re.search(r"-p 127\.0\.0\.1:(\d+):9123", proc.stdout)
    assert local, proc.stdout
    here, container = f"http://127.0.0.1:{local.group(1)}", f"deploy-smoke-{local.group(1)}"
    smoke = [
        ("curl -sS {base}/health", "expect HTTP 200"),
        ("curl -sS {base}/eligibility-signposting-api/patient-check/9686368973", "expect HTTP 200"),
        # The state's APIM_VALIDATION=off: a bare client-credentials request gets a token.
        ("curl -sS -X POST --data grant_type=client_credentials {base}/oauth2/token", "expect HTTP 200"),
        # nhs_login is not in the state's SIMULATOR_PLUGINS.
        ("curl -sS {base}/.well-known/openid-configuration", "expect HTTP 404"),
    ]
    ecr = "aws ecr get-login-password --region eu-west-2 | docker login --username AWS --password-stdin"
    ecs = f"--region eu-west-2 --cluster {cluster}"
    tag_file = workdir / "image.auto.tfvars.json"
    expected = [
        (f"terraform -chdir={workdir} plan -input=false -var image_tag={new_tag} -out=", ""),
        (f"{ecr} {repo.split('/')[0]}", ""),
        ("aws ecr describe-images --region eu-west-2 --repository-name fake-api", f"imageTag={new_tag}"),
        (f"docker build --platform linux/amd64 --tag {image} {REPO}", ""),
        (f"docker run --detach --name {container} --read-only --platform linux/amd64", image),
        *[(c.format(base=here), e) for c, e in smoke],
        (f"docker rm -f {container}", ""),
        (f"docker push {image}", ""),
        (f"aws ecs describe-services {ecs} --services {service}", "--query services[0].taskDefinition"),
        (f'echo \'{{"image_tag": "{new_tag}"}}\' > {tag_file}', ""),
        (f"terraform -chdir={workdir} apply -input=false ", "tfplan"),
        (f"[if it is 0] aws ecs update-service {ecs} --service {service} --desired-count 1", ""),
        (f"aws ecs wait services-stable {ecs} --services {service}", ""),
        *[(c.format(base=url), e) for c, e in smoke],
        # The rollback: a copy of the revision the service runs now, registered and rolled to.
        (
            "aws ecs describe-task-definition --region eu-west-2 --task-definition "
            + outputs["task_definition_arn"],
            "--query taskDefinition --output json",
        ),
        ("aws ecs register-task-definition --region eu-west-2 --cli-input-json file://", ""),
        (f"aws ecs update-service {ecs} --service {service} --task-definition fake-api ", ""),
        (f"aws ecs wait services-stable {ecs} --services {service}", ""),
        (f'echo \'{{"image_tag": "{DEPLOYED_TAG}"}}\' > {tag_file}', ""),
    ]
    position = 0
    for start, contains in expected:
        found = next(
            (i for i in range(position, len(lines)) if lines[i].startswith(start) and contains in lines[i]),
            None,
        )
        assert found is not None, f"{start!r} missing or out of order in:\n" + "\n".join(lines[position:])
        position = found + 1
    # The container runs with the settings to deploy (the shared state's URL aside).
    (docker_run,) = [c for c in lines if c.startswith("docker run")]
    assert "-e APIM_VALIDATION=off" in docker_run, docker_run
    assert "-e SIMULATOR_PLUGINS=health,eligibility,apim_oauth" in docker_run, docker_run
    assert f"-e LOGIN_ROOT_URL={url}" in docker_run
    # The plan is shown and confirmed, never applied unreviewed; a dry run changes nothing.
    assert "-auto-approve" not in proc.stdout
    assert "deploy asks whether to go on" in proc.stdout
    assert "dry run: nothing was changed" in proc.stdout
    assert not (workdir / "image.auto.tfvars.json").exists()
    assert not list(workdir.glob("*tfplan*"))


# -- end to end, with stand-ins for aws and docker ------------------------------------------------------

# `aws` for the calls deploy.sh makes, as boto3 calls against moto; every call is logged.
FAKE_AWS = """
import json, os, sys
from pathlib import Path

import boto3, botocore.exceptions, jmespath

args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write("aws " + " ".join(args) + "\\n")
service, operation = args[0], args[1]
if (service, operation) == ("ecr", "get-login-password"):
    sys.exit(print("password"))
if (service, operation) == ("ecs", "wait"):  # moto's services are stable at once
    sys.exit(0)
options, rest = {}, args[2:]
while rest:
    key, rest = rest[0].removeprefix("--"), rest[1:]
    options[key], rest = (rest[0], rest[1:]) if rest and not rest[0].startswith("--") else (True, rest)
client = boto3.client(service, endpoint_url=os.environ["MOTO_URL"], region_name=options["region"],
                      aws_access_key_id="test", aws_secret_access_key="test")
calls = {
    "describe-images": lambda: client.describe_images(
        repositoryName=options["repository-name"],
        imageIds=[{"imageTag": options["image-ids"].split("=")[1]}]),
    "describe-services": lambda: client.describe_services(
        cluster=options["cluster"], services=[options["services"]]),
    "describe-task-definition": lambda: client.describe_task_definition(
        taskDefinition=options["task-definition"]),
    "register-task-definition": lambda: client.register_task_definition(
        **json.loads(Path(options["cli-input-json"].removeprefix("file://")).read_text())),
    "update-service": lambda: client.update_service(
        cluster=options["cluster"], service=options["service"],
        **({"desiredCount": int(options["desired-count"])} if "desired-count" in options else {}),
        **({"taskDefinition": options["task-definition"]} if "task-definition" in options else {})),
}
try:
    response = calls[operation]()
except botocore.exceptions.ClientError as exc:
    sys.exit(f"An error occurred: {exc}")
response.pop("ResponseMetadata", None)
result = jmespath.search(options["query"], response) if "query" in options else response
print(result if options.get("output") == "text" else json.dumps(result, default=str))
"""

# `docker`: build, push and login do nothing; `run` starts this checkout's `simulator serve` with the -e
# variables on the -p port, `logs` and `rm` read and stop it.
FAKE_DOCKER = """
import os, signal, subprocess, sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write("docker " + " ".join(args) + "\\n")
state = Path(os.environ["FAKE_DOCKER_STATE"])
command, rest = args[0], args[1:]
if command == "login":
    sys.stdin.read()
elif command == "run":
    scrub = ("SIMULATOR_", "APIM_", "ELID_", "LOGIN_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(scrub)}
    options = {}
    while rest[0].startswith("-"):
        flag, rest = rest[0], rest[1:]
        if flag == "-e":
            env.update([rest[0].split("=", 1)])
        if flag in ("-e", "-p", "--name", "--platform"):
            options[flag], rest = rest[0], rest[1:]
    name, port = options["--name"], options["-p"].split(":")[1]
    env.update(SIMULATOR_HOST="127.0.0.1", SIMULATOR_PORT=port)
    with open(state / f"{name}.log", "wb") as out:
        server = subprocess.Popen([os.environ["FAKE_SIMULATOR"], "serve"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    (state / f"{name}.pid").write_text(str(server.pid))
    print(name)
elif command == "logs":
    sys.stdout.write((state / f"{rest[-1]}.log").read_text()[-2000:])
elif command == "rm":
    pid = state / f"{rest[-1]}.pid"
    os.killpg(int(pid.read_text()), signal.SIGTERM)
    pid.unlink()
"""

# `curl`, with the ALB's URL served by a local simulator.
FAKE_CURL = """#!/usr/bin/env bash
args=()
for arg in "$@"; do args+=("${arg//"$FAKE_ALB_URL"/"$FAKE_ALB_TARGET"}"); done
exec "$FAKE_CURL" "${args[@]}"
"""


@pytest.fixture
def stand_ins(applied: Applied, tmp_path: Path) -> Iterator[dict[str, str]]:
    """deploy.sh's env with the stand-ins first on PATH; FAKE_ALB_TARGET (to set) serves the live URL."""
    folder, state = tmp_path / "bin", tmp_path / "docker"
    folder.mkdir()
    state.mkdir()
    for name, interpreter, source in (
        ("aws", str(tool("python")), FAKE_AWS),
        ("docker", "python3", FAKE_DOCKER),
    ):
        (folder / f"{name}.py").write_text(source)
        (folder / name).write_text(f'#!/bin/sh\nexec {interpreter} {folder / name}.py "$@"\n')
    (folder / "curl").write_text(FAKE_CURL)
    for name in ("aws", "docker", "curl"):
        (folder / name).chmod(0o755)
    env = clean_env(applied.env) | {
        "PATH": f"{folder}:{os.environ['PATH']}",
        "MOTO_URL": applied.moto_url,
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "FAKE_DOCKER_STATE": str(state),
        "FAKE_SIMULATOR": simulator_command()[0],
        "FAKE_ALB_URL": applied.outputs["application_url"],
        "FAKE_CURL": shutil.which("curl") or "curl",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    yield env
    for pid in state.glob("*.pid"):  # a container deploy.sh did not remove
        os.killpg(int(pid.read_text()), signal.SIGTERM)
        pytest.fail(f"deploy.sh left {pid.stem} running")


def service_now(applied: Applied) -> dict[str, Any]:
    """The ECS service's task definition as moto has it: arn, image, environment, status."""
    (service,) = aws_call(
        applied.moto_url,
        "ecs",
        "describe_services",
        cluster=applied.outputs["ecs_cluster_name"],
        services=[applied.outputs["ecs_service_name"]],
    )["services"]
    found = aws_call(
        applied.moto_url, "ecs", "describe_task_definition", taskDefinition=service["taskDefinition"]
    )
    (container,) = found["taskDefinition"]["containerDefinitions"]
    return {
        "arn": service["taskDefinition"],
        "image": container["image"],
        "environment": {e["name"]: e["value"] for e in container["environment"]},
        "status": found["taskDefinition"]["status"],
    }


def calls(env: dict[str, str]) -> list[str]:
    log = Path(env["FAKE_LOG"])
    return log.read_text().splitlines() if log.exists() else []


def in_order(lines: list[str], *starts: str) -> None:
    position = 0
    for start in starts:
        found = next((i for i in range(position, len(lines)) if lines[i].startswith(start)), None)
        assert found is not None, f"{start!r} missing or out of order in:\n" + "\n".join(lines)
        position = found + 1


@pytest.mark.slow
def test_in_a_terminal_it_asks_and_a_no_changes_nothing(applied: Applied, stand_ins: dict[str, str]) -> None:
    before = service_now(applied)
    primary, replica = pty.openpty()
    os.write(primary, b"n\n")  # the answer, waiting in the terminal's buffer
    try:
        proc = subprocess.run(
            ["bash", str(DEPLOY)],
            cwd=REPO,
            env=stand_ins,
            stdin=replica,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        os.close(replica)
        os.close(primary)
    assert proc.returncode == 1, output_of(proc)
    assert "Plan:" in proc.stdout, output_of(proc)  # shown first
    assert "then apply this plan? [y/N]" in proc.stderr, output_of(proc)
    # (after the prompt the terminal, not stderr, shows the answer and the new line)
    assert proc.stderr.endswith("[y/N] deploy: not confirmed: nothing was built, pushed or changed\n")
    assert not [c for c in calls(stand_ins) if c.startswith("docker")], calls(stand_ins)
    assert service_now(applied) == before
    assert not (applied.workdir / "image.auto.tfvars.json").exists()


@pytest.mark.slow
def test_a_failing_live_check_rolls_back_to_a_copy_of_the_previous_revision(
    applied: Applied, stand_ins: dict[str, str], serve: Serve
) -> None:
    # The live URL answers as APIM_VALIDATION=structural, but the deployed setting is off.
    before = service_now(applied)
    env = stand_ins | {"FAKE_ALB_TARGET": serve({"APIM_VALIDATION": "structural"})}
    proc = deploy("--yes", env=env, timeout=600)
    assert proc.returncode == 1, output_of(proc)
    errors = proc.stderr.splitlines()
    assert errors[0].startswith("deploy: smoke check failed at http://fake-api-alb"), output_of(proc)
    assert "oauth2-token: HTTP 400, expected 200 (APIM_VALIDATION=off" in errors[0], output_of(proc)
    # The local check (same settings, this checkout) passed before anything was pushed or applied.
    in_order(
        calls(env),
        "docker build --platform linux/amd64",
        "docker run --detach",
        "docker rm -f",
        "docker push",
        "aws ecs describe-services",  # the revision to roll back to, recorded before the apply
        "aws ecs describe-task-definition",
        "aws ecs wait services-stable",
        "aws ecs describe-task-definition",  # the copy
        "aws ecs register-task-definition",
        "aws ecs update-service",
    )
    now = service_now(applied)
    applied_revision = outputs_of(applied.workdir, applied.env)["task_definition_arn"]
    assert now["arn"] not in (before["arn"], applied_revision), (now, before, applied_revision)
    assert (now["image"], now["environment"], now["status"]) == (
        before["image"],
        before["environment"],
        "ACTIVE",
    )
    assert errors[-1].startswith(f"deploy: {applied.outputs['ecr_repository_url']}:"), output_of(proc)
    assert f"the service is rolled back to {now['arn']}, a copy of {before['arn']}" in errors[-1]
    assert f"Terraform's state still records the failed revision {applied_revision}" in errors[-1]
    tag_file = applied.workdir / "image.auto.tfvars.json"
    assert json.loads(tag_file.read_text()) == {"image_tag": DEPLOYED_TAG}


@pytest.mark.slow
def test_a_deploy_rolls_the_service_to_a_revision_with_the_new_tag(
    applied: Applied, stand_ins: dict[str, str], serve: Serve
) -> None:
    # After a rollback too: the service runs a copy Terraform does not know; the deploy converges.
    env = stand_ins | {"FAKE_ALB_TARGET": serve(STATE_ENVIRONMENT)}
    proc = deploy("--yes", env=env, timeout=600)
    assert proc.returncode == 0, output_of(proc)
    outputs = outputs_of(applied.workdir, applied.env)
    (tag,) = re.findall(r"^==> deployed \S+:(\S+): http://fake-api-alb", proc.stdout, re.MULTILINE)
    assert TAG.fullmatch(tag), tag
    assert outputs["image"] == f"{outputs['ecr_repository_url']}:{tag}"
    now = service_now(applied)
    assert (now["arn"], now["image"]) == (outputs["task_definition_arn"], outputs["image"])
    assert now["environment"] == outputs["container_environment"]
    assert json.loads((applied.workdir / "image.auto.tfvars.json").read_text()) == {"image_tag": tag}
    assert "register-task-definition" not in "\n".join(calls(env))


# -- the smoke checks against real servers ----------------------------------------------------------------


def smoke(url: str, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """deploy.sh --smoke-check URL --settings JSON (no Terraform involved)."""
    env = clean_env({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    env.pop("DEPLOY_TF_DIR", None)
    return deploy("--smoke-check", url, "--settings", json.dumps(settings), env=env)


MATCHING = {
    "validation off, NHS login on": {"APIM_VALIDATION": "off"},
    "structural (the default), NHS login on": {},
    "structural, NHS login off": {
        "APIM_VALIDATION": "structural",
        "SIMULATOR_PLUGINS": "health,eligibility,apim_oauth",
    },
    "strict, NHS login off": {
        "APIM_VALIDATION": "strict",
        "SIMULATOR_PLUGINS": "health,apim_oauth,eligibility",
    },
    "off, NHS login off": {"APIM_VALIDATION": "off", "SIMULATOR_PLUGINS": "health,eligibility,apim_oauth"},
    "neither eligibility nor apim_oauth": {"SIMULATOR_PLUGINS": "health,nhs_login"},
}


@pytest.mark.server
@pytest.mark.parametrize("settings", MATCHING.values(), ids=MATCHING.keys())
def test_smoke_checks_pass_when_the_settings_match(serve: Serve, settings: dict[str, str]) -> None:
    url = serve(settings, base_vars=("LOGIN_ROOT_URL",))
    proc = smoke(url, settings | {"LOGIN_ROOT_URL": url})
    assert proc.returncode == 0, output_of(proc)
    assert proc.stderr == "", output_of(proc)
    assert f"smoke checks passed: {url} answers as its settings say" in proc.stdout
    token = next(c for c in commands(proc.stdout) if "/oauth2/token" in c)
    validation = settings.get("APIM_VALIDATION", "structural")
    plugins = settings.get("SIMULATOR_PLUGINS", "apim_oauth")
    want = "404" if "apim_oauth" not in plugins else "200" if validation == "off" else "400"
    assert f"(expect HTTP {want}" in token, token


# (what the server runs, what the settings claim, what the failure must say)
MISMATCHED = {
    "validating server, settings say off": (
        {"APIM_VALIDATION": "structural"},
        {"APIM_VALIDATION": "off"},
        ["oauth2-token: HTTP 400, expected 200 (APIM_VALIDATION=off", "APIM_VALIDATION=structural"],
    ),
    "server off, settings say structural": (
        {"APIM_VALIDATION": "off"},
        {"APIM_VALIDATION": "structural"},
        [
            "oauth2-token: HTTP 200, expected 400 (APIM_VALIDATION=structural",
            "runs: plugins",
            "APIM_VALIDATION=off",
        ],
    ),
    "server off, settings say strict": (
        {"APIM_VALIDATION": "off"},
        {"APIM_VALIDATION": "strict"},
        ["oauth2-token: HTTP 200, expected 400 (APIM_VALIDATION=strict"],
    ),
    "no NHS login on the server, settings enable it": (
        {"APIM_VALIDATION": "off", "SIMULATOR_PLUGINS": "health,eligibility,apim_oauth"},
        {"APIM_VALIDATION": "off"},
        ["discovery: HTTP 404, expected 200 (nhs_login"],
    ),
    "NHS login on the server, settings leave it out": (
        {"APIM_VALIDATION": "off"},
        {"APIM_VALIDATION": "off", "SIMULATOR_PLUGINS": "health,eligibility,apim_oauth"},
        ["discovery: HTTP 200, expected 404 (nhs_login is not in SIMULATOR_PLUGINS)"],
    ),
    "another issuer": (
        {"APIM_VALIDATION": "off"},
        {"APIM_VALIDATION": "off", "LOGIN_ROOT_URL": "http://fake-api-alb-1.eu-west-2.elb.amazonaws.com"},
        [
            "the issuer is 'http://127.0.0.1:",
            "not LOGIN_ROOT_URL 'http://fake-api-alb-1.eu-west-2.elb.amazonaws.com'",
        ],
    ),
    "no eligibility on the server": (
        {"SIMULATOR_PLUGINS": "health,apim_oauth,nhs_login"},
        {},
        ["patient-check: HTTP 404, expected 200"],
    ),
}


@pytest.mark.server
@pytest.mark.parametrize(("running", "claimed", "said"), MISMATCHED.values(), ids=MISMATCHED.keys())
def test_smoke_checks_fail_and_say_what_to_do_when_the_settings_differ(
    serve: Serve, running: dict[str, str], claimed: dict[str, str], said: list[str]
) -> None:
    url = serve(running, base_vars=("LOGIN_ROOT_URL",))
    proc = smoke(url, {"LOGIN_ROOT_URL": url} | claimed)
    assert proc.returncode == 1, output_of(proc)
    errors = proc.stderr.splitlines()
    assert errors[0].startswith(f"deploy: smoke check failed at {url}: "), output_of(proc)
    for text in said:
        assert text in proc.stderr, output_of(proc)
    assert errors[1].startswith("deploy: the settings expect: plugins "), output_of(proc)
    assert errors[2].startswith(f"deploy: {url}/_simulator/plugins says it runs: plugins "), output_of(proc)
    assert errors[-1] == (
        f"deploy: {url} does not answer as these settings say. If they are what you deployed, the service "
        "runs something else: roll it out again (make deploy) or back (docs/aws.md); if it runs other "
        "settings on purpose, pass those with --settings"
    ), output_of(proc)
    assert "smoke checks passed" not in proc.stdout


def test_smoke_settings_are_checked_first() -> None:
    # No server needed: bad settings are refused in one line before any request.
    for settings, message in (
        ('{"APIM_VALIDATION": "lax"}', "deploy: APIM_VALIDATION=lax is not off, structural or strict"),
        ("[1]", "deploy: the settings must be a JSON object of strings"),
        ("{", "deploy: the settings are not JSON"),
        (
            '{"SIMULATOR_PLUGINS": "eligibility"}',
            "deploy: smoke check failed at http://127.0.0.1:9: health: ",
        ),
    ):
        proc = deploy("--smoke-check", "http://127.0.0.1:9", "--settings", settings, "--dry-run")
        assert proc.returncode == 1, output_of(proc)
        assert proc.stderr.splitlines()[0].startswith(message), output_of(proc)
        assert "+ curl" not in proc.stdout, output_of(proc)
