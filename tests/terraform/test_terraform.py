"""The Terraform configuration in terraform/: formatting, validation, `terraform test` against a mocked
AWS provider, checkov and a full apply + destroy against moto (a local AWS emulator on 127.0.0.1). The
deploy script's tests (test_deploy.py) share the helpers below.

Needs terraform with the hashicorp/aws provider (registry or local mirror) and `.venv-tools` from
scripts/terraform-tools.sh (checkov, moto). Missing tools skip these tests, unless
TEST_REQUIRE_TERRAFORM=1 (CI), where they fail instead. Terraform runs on a temporary copy of the
configuration so no state or .terraform/ is left in the repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

pytestmark = pytest.mark.terraform

REPO = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO / "terraform"
TOOLS_BIN = REPO / ".venv-tools" / "bin"
# Only for machines without registry access (see TF_CLI_CONFIG_FILE below); the product never uses it.
OFFLINE_CONFIG_TOOL = REPO.parent / "shared" / "tools" / "terraform-offline"

# The provider's service endpoints that the configuration uses, all pointed at the emulator.
EMULATED_SERVICES = (
    "applicationautoscaling",
    "cloudwatch",
    "ec2",
    "ecr",
    "ecs",
    "elbv2",
    "iam",
    "logs",
    "s3",
    "secretsmanager",
    "sts",
)

# allowed_cidr_blocks for the emulator apply: documentation ranges (RFC 5737), as in the .tftest.hcl files.
ALLOWED_CIDR_BLOCKS = ["198.51.100.0/24", "203.0.113.7/32"]

# Runs one AWS API call against the emulator with .venv-tools' boto3 (a moto dependency; the project's
# own venv has no AWS SDK) and prints the response as JSON.
_AWS_CALL = """
import json, sys
import boto3
url, service, operation, params = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
client = boto3.client(service, endpoint_url=url, region_name="eu-west-2",
                      aws_access_key_id="test", aws_secret_access_key="test")
response = getattr(client, operation)(**params)
response.pop("ResponseMetadata", None)
print(json.dumps(response, default=str))
"""


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("TEST_REQUIRE_TERRAFORM") == "1":
        pytest.fail(f"{reason} (TEST_REQUIRE_TERRAFORM=1)")
    pytest.skip(reason)


def run(
    args: list[str], env: dict[str, str], timeout: float, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def output_of(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"


@pytest.fixture(scope="session")
def tf_env() -> dict[str, str]:
    return terraform_env()


def terraform_env() -> dict[str, str]:
    """Environment for terraform: non-interactive, and able to install the provider on this machine."""
    if shutil.which("terraform") is None:
        unavailable("terraform is not on PATH")
    env = dict(os.environ, TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")
    config = env.get("TF_CLI_CONFIG_FILE", "")
    if (not config or not Path(config).is_file()) and OFFLINE_CONFIG_TOOL.is_file():
        found = subprocess.run(
            [str(OFFLINE_CONFIG_TOOL)], capture_output=True, text=True, timeout=120, check=False
        )
        if found.returncode == 0:
            env["TF_CLI_CONFIG_FILE"] = found.stdout.strip()
    return env


def copy_config(dest: Path) -> Path:
    """A copy of terraform/ without local state or settings, so runs neither see nor leave any."""
    shutil.copytree(
        TERRAFORM_DIR,
        dest,
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "*.tfplan", "*.tfvars*", "__pycache__"),
    )
    return dest


def init(workdir: Path, env: dict[str, str]) -> dict[str, str]:
    """`terraform init` in workdir with its own TF_DATA_DIR; returns the env to use there."""
    env = dict(env, TF_DATA_DIR=str(workdir / ".terraform"))
    # readonly: the committed lock file must already cover the provider.
    proc = run(
        ["terraform", f"-chdir={workdir}", "init", "-backend=false", "-lockfile=readonly", "-no-color"],
        env,
        timeout=300,
    )
    if proc.returncode != 0:
        last_line = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        unavailable(f"terraform init cannot install the aws provider: {last_line}")
    return env


@pytest.fixture(scope="module")
def initialised(
    tf_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    workdir = copy_config(tmp_path_factory.mktemp("tf") / "terraform")
    return workdir, init(workdir, tf_env)


def tool(name: str) -> Path:
    path = TOOLS_BIN / name
    if not path.exists():
        unavailable(f"{path.relative_to(REPO)} is missing: run scripts/terraform-tools.sh")
    return path


def aws_call(moto_url: str, service: str, operation: str, **params: object) -> dict[str, Any]:
    """One boto3 call against the emulator (e.g. aws_call(url, "ecs", "describe_task_definition", ...))."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = run(
        [str(tool("python")), "-c", _AWS_CALL, moto_url, service, operation, json.dumps(params)], env, 120
    )
    assert proc.returncode == 0, f"{service}.{operation}\n" + output_of(proc)
    response: dict[str, Any] = json.loads(proc.stdout)
    return response


def test_fmt(tf_env: dict[str, str]) -> None:
    proc = run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM_DIR)], tf_env, 60
    )
    assert proc.returncode == 0, "run `terraform fmt -recursive terraform`\n" + output_of(proc)


def test_validate(initialised: tuple[Path, dict[str, str]]) -> None:
    workdir, env = initialised
    proc = run(["terraform", f"-chdir={workdir}", "validate", "-no-color"], env, 120)
    assert proc.returncode == 0, output_of(proc)


def test_terraform_test_with_mocked_aws(initialised: tuple[Path, dict[str, str]]) -> None:
    workdir, env = initialised
    proc = run(["terraform", f"-chdir={workdir}", "test", "-no-color"], env, 600)
    assert proc.returncode == 0, output_of(proc)
    summary = re.search(r"Success! (\d+) passed, 0 failed", proc.stdout)
    assert summary, output_of(proc)
    assert int(summary.group(1)) > 0, output_of(proc)


def without_tf_vars(env: dict[str, str]) -> dict[str, str]:
    """env without TF_VAR_* and TF_CLI_ARGS*, so only the files and arguments given count."""
    return {k: v for k, v in env.items() if not k.startswith(("TF_VAR_", "TF_CLI_ARGS"))}


def test_allowed_cidr_blocks_is_required(initialised: tuple[Path, dict[str, str]]) -> None:
    # Refused before any provider call, so no credentials or emulator are needed.
    workdir, env = initialised
    proc = run(
        ["terraform", f"-chdir={workdir}", "plan", "-input=false", "-no-color", "-var", "image_tag=abc1234"],
        without_tf_vars(env),
        120,
    )
    assert proc.returncode != 0, output_of(proc)
    assert "No value for required variable" in proc.stderr, output_of(proc)
    assert 'variable "allowed_cidr_blocks"' in proc.stderr, output_of(proc)


def console(
    workdir: Path, env: dict[str, str], expression: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["terraform", f"-chdir={workdir}", "console", "-no-color", *args],
        input=expression + "\n",
        env=without_tf_vars(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_tfvars_example_is_valid_and_sets_the_required_variable(
    initialised: tuple[Path, dict[str, str]],
) -> None:
    # terraform.tfvars.example is what the README tells users to copy: it must pass validation as shipped.
    workdir, env = initialised
    example = TERRAFORM_DIR / "terraform.tfvars.example"
    proc = console(workdir, env, "jsonencode(var.allowed_cidr_blocks)", f"-var-file={example}")
    assert proc.returncode == 0, output_of(proc)
    assert "Error" not in proc.stderr, output_of(proc)
    cidrs = json.loads(json.loads(proc.stdout.strip()))
    assert cidrs, output_of(proc)
    assert "0.0.0.0/0" not in cidrs, cidrs


def test_any_source_needs_the_explicit_opt_in(initialised: tuple[Path, dict[str, str]]) -> None:
    workdir, env = initialised
    anywhere = ["-var", 'allowed_cidr_blocks=["0.0.0.0/0"]']
    refused = console(workdir, env, "var.allowed_cidr_blocks", *anywhere)
    assert "allow_any_source = true" in " ".join(refused.stderr.split()), output_of(refused)
    allowed = console(
        workdir, env, "jsonencode(var.allowed_cidr_blocks)", *anywhere, "-var", "allow_any_source=true"
    )
    assert "Error" not in allowed.stderr, output_of(allowed)
    assert json.loads(json.loads(allowed.stdout.strip())) == ["0.0.0.0/0"], output_of(allowed)


def test_checkov_has_no_failed_checks() -> None:
    checkov = tool("checkov")
    proc = run(
        [str(checkov), "-d", str(TERRAFORM_DIR), "--framework", "terraform", "--skip-download", "-o", "json"],
        dict(os.environ),
        600,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail("checkov printed no JSON report\n" + output_of(proc))
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert summary["failed"] == 0
    assert summary["parsing_errors"] == 0, output_of(proc)
    assert summary["passed"] > 0
    # Every skip is an inline `#checkov:skip=ID:reason` with its reason.
    unexplained = [
        c["check_id"]
        for c in report["results"]["skipped_checks"]
        if not (c["check_result"].get("suppress_comment") or "").strip()
    ]
    assert not unexplained, f"skips without a reason: {unexplained}"


@pytest.fixture
def moto_url(tmp_path: Path) -> Iterator[str]:
    with moto_server(tmp_path / "moto.log") as url:
        yield url


@contextmanager
def moto_server(log_path: Path) -> Iterator[str]:
    """moto's server on a free loopback port, with the launcher's Application Auto Scaling tagging."""
    python = tool("python")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = log_path.open("w")
    server = subprocess.Popen(
        [str(python), str(TERRAFORM_DIR / "tests" / "moto_server.py"), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, MOTO_PORT=str(port)),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto did not start:\n" + log_path.read_text()[-3000:])
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def on_emulator(workdir: Path, env: dict[str, str], moto_url: str) -> dict[str, str]:
    """Point the configuration in ``workdir`` at moto and init it; returns the env to run terraform with."""
    # An override file (merged over versions.tf by Terraform) points the provider at moto; the real
    # configuration is unchanged. max_retries keeps a failing call from retrying for minutes.
    override = {
        "provider": {
            "aws": {
                "access_key": "test",
                "secret_key": "test",
                "skip_credentials_validation": True,
                "skip_metadata_api_check": True,
                "s3_use_path_style": True,
                "max_retries": 2,
                "endpoints": [{service: moto_url for service in EMULATED_SERVICES}],
            }
        }
    }
    (workdir / "emulator_override.tf.json").write_text(json.dumps(override, indent=2))
    env = init(workdir, env)
    for leaked in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(leaked, None)
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_EC2_METADATA_DISABLED="true")
    return env


@pytest.mark.slow
def test_apply_and_destroy_against_emulator(tf_env: dict[str, str], tmp_path: Path, moto_url: str) -> None:
    workdir = copy_config(tmp_path / "terraform")
    env = on_emulator(workdir, tf_env, moto_url)
    tf = ["terraform", f"-chdir={workdir}"]

    # The NHS login signing key, shared by every task through Secrets Manager. Not a real key: ECS in
    # moto starts no container; the marker proves the value never reaches Terraform or the task definition.
    key_marker = f"MOTO-TEST-ONLY-{os.getpid()}-{time.time_ns()}"
    key_pem = f"-----BEGIN PRIVATE KEY-----\n{key_marker}\n-----END PRIVATE KEY-----\n"
    secret = aws_call(
        moto_url, "secretsmanager", "create_secret", Name="fake-api/nhs-login-key", SecretString=key_pem
    )
    secret_arn = secret["ARN"]
    token_arn = aws_call(
        moto_url, "secretsmanager", "create_secret", Name="fake-api/admin-token", SecretString="t" * 32
    )["ARN"]

    variables = [
        "-var",
        "image_tag=0123456789ab",
        # Required, no default: who may reach the ALB (two documentation ranges).
        "-var",
        f"allowed_cidr_blocks={json.dumps(ALLOWED_CIDR_BLOCKS)}",
        "-var",
        'environment={"APIM_DELAY_SECONDS":"2"}',
        "-var",
        f"login_private_key_secret_arn={secret_arn}",
        # The optional S3 bucket for the ALB's access logs, so that path is exercised too.
        "-var",
        "alb_access_logs=true",
        # The admin token's secret, so that path is too. (shared_state is tested with the mocked provider
        # only: moto creates a replication group without its member clusters, which the provider reads.)
        "-var",
        f"admin_token_secret_arn={token_arn}",
    ]

    proc = run([*tf, "plan", "-no-color", "-out=emulator.tfplan", *variables], env, 300)
    assert proc.returncode == 0, output_of(proc)
    plan = json.loads(run([*tf, "show", "-json", "emulator.tfplan"], env, 120).stdout)
    planned = {
        rc["address"]
        for rc in plan["resource_changes"]
        if rc["mode"] == "managed" and rc["change"]["actions"] == ["create"]
    }
    assert len(planned) > 40, sorted(planned)
    assert 'aws_vpc_endpoint.interface["secretsmanager"]' in planned, sorted(planned)
    assert {
        "aws_s3_bucket.alb_logs[0]",
        "aws_s3_bucket_policy.alb_logs[0]",
        "aws_cloudwatch_dashboard.this",
        "aws_iam_role_policy.read_admin_token[0]",
    } <= planned

    proc = run([*tf, "apply", "-no-color", "emulator.tfplan"], env, 600)
    assert proc.returncode == 0, output_of(proc)
    state = set(run([*tf, "state", "list"], env, 120).stdout.split())
    assert planned <= state, f"planned but not created: {sorted(planned - state)}"

    outputs = {k: v["value"] for k, v in json.loads(run([*tf, "output", "-json"], env, 120).stdout).items()}
    assert outputs["ecs_cluster_name"] == "fake-api-ecs-cluster"
    assert outputs["ecs_service_name"] == "fake-api-ecs-service"
    assert outputs["application_url"].startswith("http://")
    ecr_url = re.compile(r"\d{12}\.dkr\.ecr\.eu-west-2\.amazonaws\.com/fake-api")
    assert ecr_url.fullmatch(outputs["ecr_repository_url"]), outputs
    # Scaling reads the simulator's own metrics; the configured delays (APIM_DELAY_SECONDS) move nothing.
    assert outputs["scaling_signals"] == {
        "namespace": "api-simulator",
        "dimensions": {"Service": "fake-api"},
        "scale_out": {
            "when": "either, in 2 of 3 minutes",
            "overshoot_p99_ms_above": 100,
            "in_flight_per_task_above": 2000,
        },
        "scale_in": {
            "when": "both, for 5 minutes (or no metrics at all)",
            "overshoot_p99_ms_below": 20,
            "in_flight_per_task_below": 800,
        },
        "cpu_target_percent": 60,
    }, outputs
    assert outputs["dashboard_name"] == "fake-api"
    assert outputs["dashboard_url"].endswith("#dashboards/dashboard/fake-api"), outputs

    # What CloudWatch and Application Auto Scaling registered: alarms on the simulator's metrics, none on
    # the ALB's latency, each calling a step-scaling policy of the service.
    every_alarm = aws_call(moto_url, "cloudwatch", "describe_alarms")["MetricAlarms"]
    assert "TargetResponseTime" not in json.dumps(every_alarm)
    # CPU target tracking creates its own alarms (on CPUUtilization), named TargetTracking-<resource>-...
    alarms = {a["AlarmName"]: a for a in every_alarm if not a["AlarmName"].startswith("TargetTracking-")}
    assert set(alarms) == {"fake-api-overshoot-high", "fake-api-in-flight-high", "fake-api-simulator-quiet"}
    policies = {
        p["PolicyName"]: p
        for p in aws_call(
            moto_url, "application-autoscaling", "describe_scaling_policies", ServiceNamespace="ecs"
        )["ScalingPolicies"]
    }
    assert set(policies) == {
        "fake-api-simulator-scale-out",
        "fake-api-simulator-scale-in",
        "fake-api-cpu-target",
    }
    scale_out = policies["fake-api-simulator-scale-out"]["PolicyARN"]
    scale_in = policies["fake-api-simulator-scale-in"]["PolicyARN"]
    for name, metric, statistic, threshold in (
        ("fake-api-overshoot-high", "OvershootP99", "Maximum", 100),
        ("fake-api-in-flight-high", "InFlight", "Average", 2000),
    ):
        alarm = alarms[name]
        assert alarm["Namespace"] == "api-simulator", alarm
        assert (alarm["MetricName"], alarm["Statistic"], alarm["Threshold"]) == (metric, statistic, threshold)
        assert alarm["Dimensions"] == [{"Name": "Service", "Value": "fake-api"}], alarm
        assert alarm["AlarmActions"] == [scale_out], alarm
    quiet = alarms["fake-api-simulator-quiet"]
    assert quiet["AlarmActions"] == [scale_in], quiet
    assert quiet["TreatMissingData"] == "breaching", quiet
    expressions = [q["Expression"] for q in quiet["Metrics"] if q.get("ReturnData")]
    assert expressions == ["IF(overshoot < 20 AND in_flight < 800, 1, 0)"], quiet["Metrics"]

    dashboard = aws_call(moto_url, "cloudwatch", "get_dashboard", DashboardName="fake-api")
    body = json.loads(dashboard["DashboardBody"])
    assert '"api-simulator"' in json.dumps(body)
    assert "TargetResponseTime" in json.dumps(body)

    # The ALB's security group admits exactly allowed_cidr_blocks, on port 80 only (no certificate).
    (alb_sg,) = aws_call(
        moto_url,
        "ec2",
        "describe_security_groups",
        Filters=[{"Name": "group-name", "Values": ["fake-api-alb"]}],
    )["SecurityGroups"]
    ingress = sorted(
        (p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"])
        for p in alb_sg["IpPermissions"]
        for r in p.get("IpRanges", [])
    )
    assert ingress == sorted(("tcp", 80, 80, cidr) for cidr in ALLOWED_CIDR_BLOCKS), alb_sg

    # The ALB logs into its bucket, which expires the logs and lets only ELB's eu-west-2 account write.
    bucket = outputs["alb_access_logs_bucket"]
    assert re.fullmatch(r"fake-api-alb-logs-\d{12}", bucket), outputs
    lb_arn = aws_call(moto_url, "elbv2", "describe_load_balancers", Names=["fake-api-alb"])["LoadBalancers"][
        0
    ]["LoadBalancerArn"]
    attributes = {
        a["Key"]: a["Value"]
        for a in aws_call(moto_url, "elbv2", "describe_load_balancer_attributes", LoadBalancerArn=lb_arn)[
            "Attributes"
        ]
    }
    assert attributes["access_logs.s3.enabled"] == "true", attributes
    assert (attributes["access_logs.s3.bucket"], attributes["access_logs.s3.prefix"]) == (bucket, "alb")
    (rule,) = aws_call(moto_url, "s3", "get_bucket_lifecycle_configuration", Bucket=bucket)["Rules"]
    assert rule["Expiration"] == {"Days": 30}, rule
    assert rule["Status"] == "Enabled", rule
    encryption = aws_call(moto_url, "s3", "get_bucket_encryption", Bucket=bucket)
    (sse,) = encryption["ServerSideEncryptionConfiguration"]["Rules"]
    assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", encryption
    bucket_policy = json.loads(aws_call(moto_url, "s3", "get_bucket_policy", Bucket=bucket)["Policy"])
    writers = [s["Principal"] for s in bucket_policy["Statement"] if s["Effect"] == "Allow"]
    assert writers == [{"AWS": "652711504416"}], bucket_policy

    # What ECS registered: the key by reference, the issuer on the ALB's URL, no key in plain text.
    task_definition = aws_call(moto_url, "ecs", "describe_task_definition", taskDefinition="fake-api")
    (container,) = task_definition["taskDefinition"]["containerDefinitions"]
    assert container["secrets"] == [
        {"name": "LOGIN_PRIVATE_KEY", "valueFrom": secret_arn},
        {"name": "SIMULATOR_ADMIN_TOKEN", "valueFrom": token_arn},
    ], container
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert "SIMULATOR_ADMIN_TOKEN" not in environment, environment
    assert outputs.get("shared_state_url") is None, outputs  # a null output is left out
    assert "LOGIN_PRIVATE_KEY" not in environment, environment
    assert environment["LOGIN_ROOT_URL"] == outputs["application_url"], environment
    assert key_marker not in json.dumps(task_definition)
    assert key_marker not in run([*tf, "show", "-json"], env, 120).stdout, "the key reached Terraform state"
    # The execution role, which ECS uses to fetch the secret, may read exactly that secret.
    policy = aws_call(
        moto_url,
        "iam",
        "get_role_policy",
        RoleName="fake-api-task-execution",
        PolicyName="read-nhs-login-signing-key",
    )["PolicyDocument"]
    if isinstance(policy, str):
        policy = json.loads(urllib.parse.unquote(policy))
    reads = [s for s in policy["Statement"] if "secretsmanager" in json.dumps(s["Action"])]
    assert reads == [
        {
            "Sid": "ReadLoginSigningKey",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": secret_arn,
        }
    ], policy

    proc = run([*tf, "destroy", "-no-color", "-auto-approve", *variables], env, 600)
    assert proc.returncode == 0, output_of(proc)
    left = [a for a in run([*tf, "state", "list"], env, 120).stdout.split() if not a.startswith("data.")]
    assert not left, f"not destroyed: {left}"
