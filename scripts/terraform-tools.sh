#!/usr/bin/env bash
# Create .venv-tools with checkov and moto's server, the tools the Terraform tests need.
# They live apart from .venv because checkov pins versions that conflict with FastAPI/pydantic.
#
#   scripts/terraform-tools.sh          # idempotent; prints the venv's path
#
# Exit 0 when both tools import; non-zero with a reason otherwise.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${TOOLS_VENV:-$root/.venv-tools}
python=${PYTHON:-python3}

ready() {
  [ -x "$venv/bin/checkov" ] && "$venv/bin/python" -c 'import moto.server, flask_cors' >/dev/null 2>&1
}

if ! ready; then
  echo "terraform-tools: installing checkov and moto[server] into $venv" >&2
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  # moto 5.x: the emulator launcher in terraform/tests/moto_server.py patches its response class.
  "$venv/bin/pip" install --quiet 'checkov>=3.2,<4' 'moto[server]>=5.0,<6'
  ready || { echo "terraform-tools: checkov or moto[server] did not install" >&2; exit 1; }
fi
printf '%s\n' "$venv"
