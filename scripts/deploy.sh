#!/usr/bin/env bash
# Deploy the simulator to the ECS service that terraform/ created (docs/aws.md): plan the roll-out and ask,
# build the image (--platform linux/amd64, tagged with the git SHA), run it here with the settings to
# deploy and smoke-check it, push it to ECR, apply the plan (a new task definition revision with that
# tag), wait until the service is stable on it and smoke-check the live URL. A failing live check rolls
# the service back to (a copy of) the task definition it ran before. Needs `terraform apply` first.
#
#   scripts/deploy.sh             deploy HEAD: shows the Terraform plan and asks before going on
#   scripts/deploy.sh --yes       the same without asking (CI; without a terminal --yes is required)
#   scripts/deploy.sh --dry-run   print every command with the real names from the Terraform state and
#                                 run none (no AWS, Docker or network needed); no state: one line, exit 1
#   scripts/deploy.sh --smoke-check [URL] [--settings JSON]
#                                 only the smoke checks, against URL (default: application_url) for the
#                                 settings JSON, a container environment such as '{"APIM_VALIDATION":
#                                 "off"}' (default: the deployed one, Terraform's container_environment)
#
# The smoke checks follow the settings: GET /health answers "healthy"; a patient-check a JSON object when
# eligibility is enabled (else 404); a bare client-credentials POST /oauth2/token a token with
# APIM_VALIDATION=off, 400 invalid_request (no client assertion) with structural or strict, 404 without
# apim_oauth; /.well-known/openid-configuration the issuer LOGIN_ROOT_URL with nhs_login (else 404).
#
# AWS credentials and region come from the usual variables (AWS_PROFILE, AWS_REGION); everything else
# (repository, cluster, service, URL, the simulator's settings) from the Terraform outputs and settings,
# so nothing account-specific lives here. Settings belong in terraform/terraform.tfvars (or TF_VAR_*),
# which the roll-out's plan reads like any other; the deployed tag is kept in terraform/image.auto.tfvars.json.
# DEPLOY_TF_DIR: another Terraform directory than terraform/ (its configuration, settings and local state).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tf_dir=${DEPLOY_TF_DIR:-$root/terraform}
mode=deploy
dry_run=false
yes=false
smoke_url=
smoke_settings=
have_settings=false

usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; }
bad_usage() { printf 'deploy: %s\n' "$1" >&2; usage >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry_run=true ;;
    --yes | -y) yes=true ;;
    --smoke-check)
      mode=smoke
      if [ $# -gt 1 ] && [ "${2#-}" = "$2" ]; then smoke_url=${2%/}; shift; fi ;;
    --settings)
      [ $# -gt 1 ] || bad_usage "--settings needs a JSON object (the container environment)"
      smoke_settings=$2 have_settings=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) bad_usage "unknown argument $1" ;;
  esac
  shift
done
if $have_settings && [ "$mode" != smoke ]; then bad_usage "--settings goes with --smoke-check"; fi

say() { printf '==> %s\n' "$*"; }
die() { printf 'deploy: %s\n' "$*" >&2; exit 1; }
# Print a command, then run it unless this is a dry run.
run() {
  printf '+ %s\n' "$*"
  $dry_run || "$@"
}

# Terraform changes are confirmed by a person unless --yes: refuse at once, before anything is built,
# when nobody can answer.
if [ "$mode" = deploy ] && ! $dry_run && ! $yes && ! [ -t 0 ]; then
  die "the Terraform plan needs your confirmation but standard input is not a terminal: run this in a terminal, or pass --yes to apply without asking (CI)"
fi

needed=(python3 curl)
[ "$mode" = smoke ] && [ -n "$smoke_url" ] && $have_settings || needed+=(terraform)
[ "$mode" = deploy ] && needed+=(git)
[ "$mode" = deploy ] && ! $dry_run && needed+=(aws docker)
for tool in "${needed[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/deploy.XXXXXX")
container=
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  if [ -n "$container" ]; then docker rm -f "$container" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- Smoke checks ----------------------------------------------------------------------------------
# smoke_check URL SETTINGS: the checks SETTINGS (the container environment, a JSON object) call for,
# against URL, each printed as the curl command it runs (none in a dry run). On the first failure it
# prints what failed, what the settings expect and what the server says it runs, and returns 1: the
# caller says what to do.

# The expectations, as shell assignments: the plugins enabled (SIMULATOR_PLUGINS; unset = every plugin
# the image installs), APIM_VALIDATION and the OIDC issuer (LOGIN_ROOT_URL without a trailing slash).
smoke_expectations() {
  python3 - "$1" <<'EOF'
import json, shlex, sys

example = """'{"APIM_VALIDATION": "off", "SIMULATOR_PLUGINS": "health,eligibility,apim_oauth"}'"""
try:
    env = json.loads(sys.argv[1])
except ValueError as exc:
    sys.exit(f"deploy: the settings are not JSON ({exc}): give the container environment, e.g. {example}")
if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
    sys.exit(f"deploy: the settings must be a JSON object of strings (the container environment), e.g. {example}")
built_in = ["health", "eligibility", "apim_oauth", "nhs_login"]  # what the image installs
plugins = env.get("SIMULATOR_PLUGINS")
enabled = built_in if plugins is None else [name.strip() for name in plugins.split(",") if name.strip()]
validation = env.get("APIM_VALIDATION", "structural").strip().lower()
if "apim_oauth" in enabled and validation not in ("off", "structural", "strict"):
    sys.exit(f"deploy: APIM_VALIDATION={validation} is not off, structural or strict: the simulator would not start")
issuer = env.get("LOGIN_ROOT_URL", "http://localhost:9123").rstrip("/")
for name, value in (("smoke_plugins", " ".join(enabled)), ("smoke_validation", validation),
                    ("smoke_issuer", issuer)):
    print(f"{name}={shlex.quote(value)}")
EOF
}

# body_ok KIND FILE [ARG]: whether the body in FILE is what KIND expects; prints why not.
body_ok() {
  python3 - "$@" <<'EOF'
import json, sys

kind, path, arg = sys.argv[1], sys.argv[2], (sys.argv[3:] or [""])[0]
text = open(path, encoding="utf-8", errors="replace").read()
if kind == "any":
    sys.exit(0)
if kind == "healthy":
    sys.exit(0 if text == "healthy" else f"the body is {text[:200]!r}, not 'healthy'")
try:
    doc = json.loads(text)
except ValueError:
    sys.exit(f"the body is not JSON: {text[:300]!r}")
if not isinstance(doc, dict):
    sys.exit(f"the body is not a JSON object: {text[:300]}")
if kind == "token" and not (isinstance(doc.get("access_token"), str) and doc.get("token_type") == "Bearer"):
    sys.exit(f"not a token (access_token, token_type Bearer): {text[:300]}")
if kind == "refusal" and not (doc.get("error") == "invalid_request"
                              and "client_assertion_type" in str(doc.get("error_description"))):
    sys.exit(f"not the invalid_request refusal of a missing client_assertion_type: {text[:300]}")
if kind == "discovery" and doc.get("issuer") != arg:
    sys.exit(f"the issuer is {doc.get('issuer')!r}, not LOGIN_ROOT_URL {arg!r}")
EOF
}

# What the server at URL says it runs (GET /_simulator/plugins), in one line; empty when it does not say.
running_settings() {
  curl -sS --max-time 10 "$1/_simulator/plugins" 2>/dev/null | python3 -c '
import json, sys
try:
    plugins = json.load(sys.stdin)["plugins"]
except (ValueError, KeyError, TypeError):
    sys.exit(0)
parts = ["plugins " + " ".join(p["name"] for p in plugins)]
for plugin in plugins:
    for setting in plugin.get("settings") or []:
        if setting.get("env") in ("APIM_VALIDATION", "LOGIN_ROOT_URL"):
            parts.append("{}={}".format(setting["env"], setting["value"]))
print("; ".join(parts))' || true
}

plugin_on() { case " $smoke_plugins " in *" $1 "*) return 0 ;; esac; return 1; }

# probe NAME STATUS KIND ARG WHY CURL-ARGS...: one check; false, with smoke_error set, unless curl gets
# STATUS and a body KIND accepts. Retries cover the seconds in which a server starts or the ALB registers
# new targets (connection errors, 502-504); any other answer is final.
probe() {
  local name=$1 want=$2 kind=$3 arg=$4 why=$5 status reason
  shift 5
  printf '+ curl -sS %s  (expect HTTP %s: %s)\n' "$*" "$want" "$why"
  $dry_run && return 0
  status=$(curl -sS --max-time 90 --retry 15 --retry-delay 2 --retry-max-time 120 --retry-all-errors -o "$work/body" \
                -w '%{http_code}' "$@" 2>"$work/curl.err") || true
  [ -f "$work/body" ] || : >"$work/body"
  if [ "$status" != "$want" ]; then
    reason="HTTP ${status:-000}, expected $want ($why)"
    [ "${status:-000}" = 000 ] && reason="$reason: $(head -n1 "$work/curl.err")"
    [ -s "$work/body" ] && reason="$reason: $(head -c 300 "$work/body")"
    smoke_error="$name: $reason"
    return 1
  fi
  if ! reason=$(body_ok "$kind" "$work/body" "$arg" 2>&1); then
    smoke_error="$name: HTTP $status as expected, but $reason"
    return 1
  fi
  rm -f "$work/body"
}

smoke_check() {
  local url=${1%/} smoke_plugins smoke_validation smoke_issuer assignments expected running
  assignments=$(smoke_expectations "$2") || exit 1  # it said why
  eval "$assignments"
  smoke_error=
  expected="plugins $smoke_plugins"
  plugin_on apim_oauth && expected="$expected; APIM_VALIDATION=$smoke_validation"
  plugin_on nhs_login && expected="$expected; LOGIN_ROOT_URL=$smoke_issuer"
  say "smoke-check $url for the settings: $expected"

  if ! plugin_on health; then
    smoke_error="health: SIMULATOR_PLUGINS leaves out health, and the ALB's health check (GET /health) needs it: add health to SIMULATOR_PLUGINS"
  elif probe health 200 healthy '' 'healthy' "$url/health"; then
    local patient=$url/eligibility-signposting-api/patient-check/9686368973 token=$url/oauth2/token
    local discovery=$url/.well-known/openid-configuration
    if plugin_on eligibility; then
      probe patient-check 200 json-object '' 'the patient'\''s eligibility, a JSON object' "$patient"
    else
      probe patient-check 404 any '' 'eligibility is not in SIMULATOR_PLUGINS' "$patient"
    fi &&
    if ! plugin_on apim_oauth; then
      probe oauth2-token 404 any '' 'apim_oauth is not in SIMULATOR_PLUGINS' \
        -X POST --data grant_type=client_credentials "$token"
    elif [ "$smoke_validation" = off ]; then
      probe oauth2-token 200 token '' 'APIM_VALIDATION=off: any POST gets a token' \
        -X POST --data grant_type=client_credentials "$token"
    else
      probe oauth2-token 400 refusal '' "APIM_VALIDATION=$smoke_validation: invalid_request, no client assertion" \
        -X POST --data grant_type=client_credentials "$token"
    fi &&
    if plugin_on nhs_login; then
      probe discovery 200 discovery "$smoke_issuer" "nhs_login: JSON with issuer $smoke_issuer" "$discovery"
    else
      probe discovery 404 any '' 'nhs_login is not in SIMULATOR_PLUGINS' "$discovery"
    fi
  fi
  [ -z "$smoke_error" ] && return 0
  printf 'deploy: smoke check failed at %s: %s\n' "$url" "$smoke_error" >&2
  printf 'deploy: the settings expect: %s\n' "$expected" >&2
  $dry_run && return 1
  running=$(running_settings "$url")
  [ -n "$running" ] && printf 'deploy: %s/_simulator/plugins says it runs: %s\n' "$url" "$running" >&2
  return 1
}

# --- The Terraform state ---------------------------------------------------------------------------
# Every output at once, as JSON: `terraform output -raw NAME` prints its "No outputs found" warning on
# standard output with exit code 0 when there is no state, which must never be taken for a name. With no
# state (initialised, never applied) the JSON is {}.
# Sets repo_url, cluster, service, app_url, log_group, state_task_definition, state_image and
# deployed_settings (the container environment, JSON); stops when there is no state.
repo_url='' cluster='' service='' app_url='' log_group='' state_task_definition='' state_image='' deployed_settings=''
read_outputs() {
  local json
  if ! json=$(terraform -chdir="$tf_dir" output -json -no-color 2>"$work/output.err"); then
    # Before `terraform init` (its providers missing) there is no state either, unless a local one exists.
    if grep -qE 'terraform init|plugins are not installed|initialization required|not installed' "$work/output.err" &&
       ! [ -s "$tf_dir/terraform.tfstate" ]; then
      die "no Terraform state in $tf_dir (not even initialised): run terraform -chdir=$tf_dir init && terraform -chdir=$tf_dir apply first (see docs/aws.md)"
    fi
    die "terraform output failed in $tf_dir: $(grep -m1 'Error' "$work/output.err" || head -n1 "$work/output.err")"
  fi
  eval "$(printf '%s' "$json" | python3 -c '
import json, shlex, sys
outputs = json.load(sys.stdin)
def value(name):
    found = outputs.get(name, {}).get("value")
    return found if isinstance(found, str) else ""
names = {"repo_url": "ecr_repository_url", "cluster": "ecs_cluster_name", "service": "ecs_service_name",
         "app_url": "application_url", "state_task_definition": "task_definition_arn", "state_image": "image",
         "log_group": "log_group_name"}
for var, name in names.items():
    print(var + "=" + shlex.quote(value(name)))
environment = outputs.get("container_environment", {}).get("value")
print("deployed_settings=" + shlex.quote(json.dumps(environment) if isinstance(environment, dict) else ""))
')"
  if [ -z "$repo_url" ] || [ -z "$cluster" ] || [ -z "$service" ] || [ -z "$app_url" ]; then
    die "no Terraform state in $tf_dir: run terraform -chdir=$tf_dir apply first (see docs/aws.md)"
  fi
}

# tf_eval EXPRESSION: sets tf_value to what the configuration, its settings and the state make of the
# expression now, as JSON (`terraform console`: read-only, no AWS call); empty when it is known only after
# apply (a required variable without a value). Stops on invalid settings.
tf_eval() {
  local out errors
  out=$(printf 'jsonencode(%s)\n' "$1" | terraform -chdir="$tf_dir" console -no-color 2>"$work/console.err") || true
  errors=$(cat "$work/console.err")
  case $errors in *Error*) die "the Terraform settings are invalid:
$errors" ;; esac
  tf_value=$(printf '%s' "$out" | python3 -c '
import json, sys
try:
    print(json.loads(sys.stdin.read().strip()))
except ValueError:
    pass  # (known after apply)') || tf_value=
}

if [ "$mode" = smoke ]; then
  if [ -z "$smoke_url" ] || ! $have_settings; then read_outputs; fi
  url=${smoke_url:-$app_url}
  $have_settings || smoke_settings=$deployed_settings
  [ -n "$smoke_settings" ] ||
    die "the Terraform state has no container_environment output yet: run terraform -chdir=$tf_dir apply (or make deploy) once, or pass --settings"
  if smoke_check "$url" "$smoke_settings"; then
    if $dry_run; then say "dry run: nothing was requested"; else say "smoke checks passed: $url answers as its settings say"; fi
    exit 0
  fi
  die "$url does not answer as these settings say. If they are what you deployed, the service runs something else: roll it out again (make deploy) or back (docs/aws.md); if it runs other settings on purpose, pass those with --settings"
fi

# --- What to deploy, and where ---------------------------------------------------------------------
read_outputs
sha=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null) || die "no git commit to name the image after: commit first"
tag=$sha
# Tags are immutable: an image built from uncommitted changes must not take the commit's name.
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
  tag="$sha-dirty-$(date -u +%Y%m%d%H%M%S)"
  say "working tree has uncommitted changes: tagging $tag"
fi

registry=${repo_url%%/*}
repo_name=${repo_url#*/}
image=$repo_url:$tag
# The repository's own region is authoritative; AWS_REGION, when set, must agree with it.
repo_region=$(printf '%s' "$registry" | sed -n 's/^[0-9]*\.dkr\.ecr\.\([a-z0-9-]*\)\.amazonaws\.com.*/\1/p')
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-${repo_region:-eu-west-2}}}
if [ -n "$repo_region" ] && [ "$region" != "$repo_region" ]; then
  die "AWS_REGION is $region but the Terraform-managed repository is in $repo_region"
fi
tag_file=$tf_dir/image.auto.tfvars.json
plan_file=$work/tfplan

say "deploying $image to $cluster/$service in $region (profile ${AWS_PROFILE:-default})"

# --- Settings --------------------------------------------------------------------------------------
# allowed_cidr_blocks (who may reach the ALB) has no default; read it first from the same sources the plan
# reads (terraform.tfvars, *.auto.tfvars, TF_VAR_*), validation included, and the simulator's settings
# the roll-out will give the tasks, which the smoke checks follow.
tf_eval 'var.allowed_cidr_blocks'
cidrs=$(printf '%s' "$tf_value" | python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)))' 2>/dev/null) || cidrs=
if [ -z "$cidrs" ]; then
  die "allowed_cidr_blocks is not set: put your load generators' ranges in $tf_dir/terraform.tfvars, e.g. allowed_cidr_blocks = [\"203.0.113.0/24\"] (see terraform/terraform.tfvars.example)"
fi
say "the ALB will accept $cidrs"
tf_eval 'local.container_environment'
rollout_settings=$tf_value
[ -n "$rollout_settings" ] || die "the container environment is not known before apply: run terraform -chdir=$tf_dir apply first"

# --- 1. The plan -----------------------------------------------------------------------------------
say "1/8 plan the roll-out: a task definition revision with image_tag $tag, and any other pending change"
run terraform -chdir="$tf_dir" plan -input=false -var "image_tag=$tag" -out="$plan_file"
if $dry_run; then
  $yes || say "(here deploy asks whether to go on; --yes does not ask)"
elif $yes; then
  say "--yes: going on without asking"
else
  read -r -p "Build and push $image, then apply this plan? [y/N] " answer || answer=
  case $answer in
    y | Y | yes | Yes | YES) ;;
    *) die "not confirmed: nothing was built, pushed or changed" ;;
  esac
fi

# --- 2-5. Build, check here, push ------------------------------------------------------------------
say "2/8 log Docker in to ECR"
printf '+ aws ecr get-login-password --region %s | docker login --username AWS --password-stdin %s\n' "$region" "$registry"
$dry_run || aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry"

say "3/8 build $image (tags are immutable: one already in ECR is pulled, not rebuilt)"
printf '+ aws ecr describe-images --region %s --repository-name %s --image-ids imageTag=%s\n' "$region" "$repo_name" "$tag"
built=true
if ! $dry_run && aws ecr describe-images --region "$region" --repository-name "$repo_name" \
     --image-ids "imageTag=$tag" >/dev/null 2>&1; then
  built=false
  say "$image is already in ECR"
  run docker pull --platform linux/amd64 "$image"
else
  run docker build --platform linux/amd64 --tag "$image" "$root"
fi

# The image as the task runs it: the same environment, read-only root, amd64; SIMULATOR_STATE_URL left
# out (the shared Valkey is reachable from the VPC only). Nothing irreversible has happened yet.
say "4/8 run $image here with the settings to deploy, and smoke-check it before anything is pushed or applied"
docker_env=()
while IFS= read -r -d '' variable; do docker_env+=(-e "$variable"); done < <(
  printf '%s' "$rollout_settings" | python3 -c '
import json, sys
for name, value in sorted(json.load(sys.stdin).items()):
    if name != "SIMULATOR_STATE_URL":
        sys.stdout.write(f"{name}={value}\0")')
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
name=deploy-smoke-$port
local_run=(docker run --detach --name "$name" --read-only --platform linux/amd64 -p "127.0.0.1:$port:9123"
           "${docker_env[@]}" "$image")
printf '+ %s\n' "${local_run[*]}"
if ! $dry_run; then
  container=$name
  "${local_run[@]}" >/dev/null
fi
if ! smoke_check "http://127.0.0.1:$port" "$rollout_settings"; then
  docker logs --tail 30 "$container" >&2 2>&1 || true
  die "$image fails its smoke check with the settings to deploy (its last log lines above): nothing was pushed or applied. Fix the image or the settings ($tf_dir/terraform.tfvars) and run make deploy again"
fi
printf '+ docker rm -f %s\n' "$name"
if ! $dry_run; then
  docker rm -f "$container" >/dev/null
  container=
fi

say "5/8 push $image"
if $built; then run docker push "$image"; else say "already in ECR: not pushed"; fi

# --- 6-7. Roll out ---------------------------------------------------------------------------------
say "6/8 apply the plan: the service rolls to a new task definition revision running $tag"
# Recorded first: the revision to roll back to when the live smoke check fails.
describe_service=(aws ecs describe-services --region "$region" --cluster "$cluster" --services "$service")
printf '+ %s\n' "${describe_service[*]} --query services[0].taskDefinition --output text"
if $dry_run; then
  previous_task_definition=$state_task_definition
else
  previous_task_definition=$("${describe_service[@]}" --query 'services[0].taskDefinition' --output text)
fi
printf '+ %s\n' "aws ecs describe-task-definition --region $region --task-definition $previous_task_definition --query taskDefinition.containerDefinitions[0].image --output text"
if $dry_run; then
  previous_image=$state_image
  say "the state records $previous_task_definition ($previous_image) as the service's revision"
else
  previous_image=$(aws ecs describe-task-definition --region "$region" --task-definition "$previous_task_definition" \
                     --query 'taskDefinition.containerDefinitions[0].image' --output text)
  say "the service runs $previous_task_definition ($previous_image) now"
fi
# Recorded in an auto-loaded variables file, so a later hand-run `terraform plan/apply` keeps this image.
printf '+ echo %s > %s\n' "'{\"image_tag\": \"$tag\"}'" "$tag_file"
$dry_run || printf '{"image_tag": "%s"}\n' "$tag" >"$tag_file"
run terraform -chdir="$tf_dir" apply -input=false "$plan_file"

# The service is created with no task before the first image exists; the new minimum of the scalable
# target normally raises it, and this makes sure it does before we wait.
say "7/8 make sure at least one task is wanted, and wait until the service is stable on the new revision"
printf '+ %s\n' "${describe_service[*]} --query services[0].desiredCount --output text"
scale_up=(aws ecs update-service --region "$region" --cluster "$cluster" --service "$service" --desired-count 1
          --query service.desiredCount --output text)
if $dry_run; then
  printf '+ [if it is 0] %s\n' "${scale_up[*]}"
elif [ "$("${describe_service[@]}" --query 'services[0].desiredCount' --output text)" = "0" ]; then
  run "${scale_up[@]}"
fi
run aws ecs wait services-stable --region "$region" --cluster "$cluster" --services "$service"
# Stable may also mean the deployment circuit breaker rolled back to the old revision.
$dry_run || read_outputs
printf '+ %s\n' "${describe_service[*]} --query services[0].taskDefinition --output text  (expect the revision the apply registered, terraform output task_definition_arn)"
if ! $dry_run; then
  running_task_definition=$("${describe_service[@]}" --query 'services[0].taskDefinition' --output text)
  [ "$running_task_definition" = "$state_task_definition" ] ||
    die "the service is stable on $running_task_definition, not on the new $state_task_definition ($image): the deployment circuit breaker rolled it back because the new tasks did not become healthy. See ${describe_service[*]} --query 'services[0].events[:10]', and the logs: aws logs tail $log_group --since 30m. Terraform's state records the new revision: the next make deploy rolls out again"
fi

# --- 8. The live smoke check -----------------------------------------------------------------------
# A failing live check rolls back to the revision the service ran before. Terraform deregistered that
# revision when it replaced it, and ECS does not point a service at a deregistered (INACTIVE) revision, so
# a copy of it (same image, environment, roles and size) is registered as a new revision and rolled to.
roll_back() {
  local previous_tag=${previous_image##*:} copy
  if [ -z "$previous_task_definition" ] || [ "$previous_task_definition" = None ] || [ "$previous_tag" = none ]; then
    die "$image is live on $app_url but fails its smoke check (above), and there is no earlier image to roll back to (this was the first deploy). Fix the cause, commit and run make deploy again"
  fi
  say "rolling $service back to a copy of $previous_task_definition ($previous_image)"
  printf '+ %s\n' "aws ecs describe-task-definition --region $region --task-definition $previous_task_definition --query taskDefinition --output json > $work/previous.json"
  printf '+ %s\n' "aws ecs register-task-definition --region $region --cli-input-json file://$work/rollback.json --query taskDefinition.taskDefinitionArn --output text  (rollback.json: previous.json's registrable fields)"
  if $dry_run; then
    copy=${previous_task_definition##*/}
    copy=${copy%:*}  # the family: its newest revision, which will be the copy
  else
    aws ecs describe-task-definition --region "$region" --task-definition "$previous_task_definition" \
      --query taskDefinition --output json >"$work/previous.json"
    python3 - "$work/previous.json" "$work/rollback.json" <<'EOF_PY'
import json, sys

# What RegisterTaskDefinition takes back from DescribeTaskDefinition (tags aside: the service propagates its own).
KEYS = ("family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions", "volumes",
        "placementConstraints", "requiresCompatibilities", "cpu", "memory", "pidMode", "ipcMode",
        "proxyConfiguration", "ephemeralStorage", "runtimePlatform")
previous = json.load(open(sys.argv[1]))
json.dump({k: previous[k] for k in KEYS if previous.get(k) not in (None, [], {})}, open(sys.argv[2], "w"))
EOF_PY
    copy=$(aws ecs register-task-definition --region "$region" --cli-input-json "file://$work/rollback.json" \
             --query taskDefinition.taskDefinitionArn --output text)
  fi
  run aws ecs update-service --region "$region" --cluster "$cluster" --service "$service" \
    --task-definition "$copy" --query service.taskDefinition --output text
  run aws ecs wait services-stable --region "$region" --cluster "$cluster" --services "$service"
  # So that the next apply registers the previous image again, not the failed one.
  printf '+ echo %s > %s\n' "'{\"image_tag\": \"$previous_tag\"}'" "$tag_file"
  $dry_run && return 0
  printf '{"image_tag": "%s"}\n' "$previous_tag" >"$tag_file"
  die "$image failed its smoke check on $app_url (above): the service is rolled back to $copy, a copy of $previous_task_definition ($previous_image). Terraform's state still records the failed revision $state_task_definition and knows nothing of the copy, so it disagrees with the service until the next apply: $tag_file names $previous_tag again, so a hand-run terraform apply registers the previous image under Terraform again, and the next make deploy the commit you fix it with (after either, the copy can go: aws ecs deregister-task-definition --region $region --task-definition $copy). Fix the cause, commit and run make deploy"
}

say "8/8 smoke-check $app_url with the deployed settings"
# After the apply the outputs hold the settings deployed; a dry run shows those the apply would deploy.
if $dry_run || [ -z "$deployed_settings" ]; then live_settings=$rollout_settings; else live_settings=$deployed_settings; fi
if ! smoke_check "$app_url" "$live_settings" && ! $dry_run; then
  roll_back
fi
if $dry_run; then
  say "if a live check fails, deploy rolls back (as above, not run):"
  roll_back
  say "dry run: nothing was changed"
else
  say "deployed $image: $app_url"
fi
