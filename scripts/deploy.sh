#!/usr/bin/env bash
# Build the simulator's image, push it to ECR under the git SHA, roll the ECS service to it, wait until
# it is stable and smoke-check the live URL. Needs the infrastructure from `terraform apply` first.
#
#   scripts/deploy.sh             # deploy HEAD
#   scripts/deploy.sh --dry-run   # print every step with the real names from the Terraform state, run
#                                 # nothing (no AWS, Docker or network needed; stops when there is no state)
#
# AWS credentials and region come from the usual variables (AWS_PROFILE, AWS_REGION); everything else
# (repository, cluster, service, URL) from the Terraform outputs, so nothing account-specific lives here.
# Other Terraform settings belong in terraform/terraform.tfvars (or TF_VAR_*), which the roll-out's
# `terraform apply` reads like any other; the deployed tag is kept in terraform/image.auto.tfvars.json.
# DEPLOY_TF_DIR names another Terraform directory than terraform/ (its outputs and state are read).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# DEPLOY_TF_DIR: the Terraform configuration (and its local state) to read; terraform/ by default.
tf_dir=${DEPLOY_TF_DIR:-$root/terraform}
dry_run=false

usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; }
for arg in "$@"; do
  case $arg in
    --dry-run) dry_run=true ;;
    -h | --help) usage; exit 0 ;;
    *) echo "deploy: unknown argument $arg" >&2; usage >&2; exit 2 ;;
  esac
done

say() { printf '==> %s\n' "$*"; }
die() { printf 'deploy: %s\n' "$*" >&2; exit 1; }
# Print a command, then run it unless this is a dry run.
run() {
  printf '+ %s\n' "$*"
  $dry_run || "$@"
}

if ! $dry_run; then
  for tool in aws docker terraform git curl python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH"
  done
fi

# --- What to deploy --------------------------------------------------------------------------------
if ! sha=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null); then
  $dry_run || die "no git commit to name the image after: commit first"
  sha='<git-sha>'
fi
tag=$sha
# Tags are immutable: an image built from uncommitted changes must not take the commit's name.
if [ "$sha" != '<git-sha>' ] && [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
  tag="$sha-dirty-$(date -u +%Y%m%d%H%M%S)"
  say "working tree has uncommitted changes: tagging $tag"
fi

# Every output at once, as JSON: `terraform output -raw NAME` prints its "No outputs found" warning on
# standard output with exit code 0 when there is no state, which must never be taken for a name.
outputs_json=$(terraform -chdir="$tf_dir" output -json -no-color 2>/dev/null) || outputs_json='{}'
tf_output() {
  printf '%s' "$outputs_json" | python3 -c '
import json, sys
value = json.load(sys.stdin).get(sys.argv[1], {}).get("value")
print(value if isinstance(value, str) else "")' "$1"
}
repo_url=$(tf_output ecr_repository_url)
cluster=$(tf_output ecs_cluster_name)
service=$(tf_output ecs_service_name)
app_url=$(tf_output application_url)
if [ -z "$repo_url" ] || [ -z "$cluster" ] || [ -z "$service" ] || [ -z "$app_url" ]; then
  die "no Terraform state in $tf_dir (no ECR repository, cluster, service or URL to deploy to): run terraform -chdir=terraform init && terraform -chdir=terraform apply first (docs/aws.md)"
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

say "deploying $image to $cluster/$service in $region (profile ${AWS_PROFILE:-default})"

# --- Settings --------------------------------------------------------------------------------------
# allowed_cidr_blocks (who may reach the ALB) has no default. Without it the roll-out's `terraform apply`
# would fail only after the image is built and pushed, so read it first, from the same sources apply
# reads (terraform.tfvars, *.auto.tfvars, TF_VAR_allowed_cidr_blocks), validation included.
say "check that the Terraform settings give allowed_cidr_blocks (your load generators' source ranges)"
if ! $dry_run; then
  console_err=$(mktemp)
  cidrs=$(printf 'join(" ", var.allowed_cidr_blocks)\n' |
          terraform -chdir="$tf_dir" console -no-color 2>"$console_err") || true
  errors=$(cat "$console_err")
  rm -f "$console_err"
  case $errors in *Error*) die "the Terraform settings are invalid:
$errors" ;; esac
  case $cidrs in
    '' | *'known after apply'*)
      die "allowed_cidr_blocks is not set: put your load generators' ranges in terraform/terraform.tfvars, e.g. allowed_cidr_blocks = [\"203.0.113.0/24\"] (see terraform/terraform.tfvars.example)" ;;
  esac
  say "the ALB will accept ${cidrs//\"/}"
fi

# --- Build and push --------------------------------------------------------------------------------
say "1/6 log Docker in to ECR"
printf '+ aws ecr get-login-password --region %s | docker login --username AWS --password-stdin %s\n' "$region" "$registry"
$dry_run || aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry"

say "2/6 build and push $image (skipped when the tag is already in ECR: tags are immutable)"
printf '+ aws ecr describe-images --region %s --repository-name %s --image-ids imageTag=%s\n' "$region" "$repo_name" "$tag"
if ! $dry_run && aws ecr describe-images --region "$region" --repository-name "$repo_name" \
     --image-ids "imageTag=$tag" >/dev/null 2>&1; then
  say "$image already exists: not rebuilding"
else
  run docker build --platform linux/amd64 --tag "$image" "$root"
  run docker push "$image"
fi

# --- Roll out --------------------------------------------------------------------------------------
say "3/6 roll the service to $tag (a new task definition revision; the circuit breaker rolls back a failure)"
# Recorded in an auto-loaded variables file, so a later hand-run `terraform plan/apply` keeps this image.
tag_file=$tf_dir/image.auto.tfvars.json
printf '+ echo %s > %s\n' "'{\"image_tag\": \"$tag\"}'" "$tag_file"
$dry_run || printf '{"image_tag": "%s"}\n' "$tag" >"$tag_file"
run terraform -chdir="$tf_dir" apply -input=false -auto-approve

# The service is created with no task before the first image exists; the new minimum of the scalable
# target normally raises it, and this makes sure it does before we wait.
say "4/6 make sure at least one task is wanted"
printf '+ aws ecs describe-services --region %s --cluster %s --services %s --query services[0].desiredCount\n' "$region" "$cluster" "$service"
scale_up=(aws ecs update-service --region "$region" --cluster "$cluster" --service "$service" --desired-count 1
          --query service.desiredCount --output text)
if $dry_run; then
  printf '+ [if it is 0] %s\n' "${scale_up[*]}"
elif [ "$(aws ecs describe-services --region "$region" --cluster "$cluster" --services "$service" \
          --query 'services[0].desiredCount' --output text)" = "0" ]; then
  run "${scale_up[@]}"
fi

say "5/6 wait until the service is stable"
run aws ecs wait services-stable --region "$region" --cluster "$cluster" --services "$service"

# --- Smoke checks ----------------------------------------------------------------------------------
say "6/6 smoke-check $app_url"
# check NAME STATUS CURL-ARGS...: fail unless curl gets STATUS; the body is left in $body.
check() {
  local name=$1 want=$2 status tmp
  shift 2
  printf '+ curl %s  (expect HTTP %s)\n' "$*" "$want"
  body=
  $dry_run && return 0
  tmp=$(mktemp)
  # Retries cover the seconds in which the ALB registers the new targets.
  status=$(curl -sS --max-time 60 --retry 5 --retry-delay 5 --retry-all-errors -o "$tmp" -w '%{http_code}' "$@") || true
  body=$(cat "$tmp")
  rm -f "$tmp"
  [ "$status" = "$want" ] || die "$name: HTTP $status, expected $want: $body"
}
is_json() { python3 -c "import json, sys; doc = json.load(sys.stdin); sys.exit(0 if ($1) else 1)"; }

check health 200 "$app_url/health"
$dry_run || [ "$body" = "healthy" ] || die "GET /health answered '$body', expected 'healthy'"

check patient-check 200 "$app_url/eligibility-signposting-api/patient-check/9686368973"
$dry_run || printf '%s' "$body" | is_json 'isinstance(doc, dict)' || die "patient-check did not return a JSON object: $body"

# Without a signed client assertion the token endpoint must refuse with an OAuth2 JSON error: this
# proves it is live and validating, without any key material in this script.
check oauth2-token 400 -X POST --data grant_type=client_credentials "$app_url/oauth2/token"
$dry_run || printf '%s' "$body" | is_json '"error" in doc' || die "POST /oauth2/token did not return an OAuth2 error: $body"

if $dry_run; then
  say "dry run: nothing was changed"
else
  say "deployed $image: $app_url"
fi
