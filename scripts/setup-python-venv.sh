#!/usr/bin/env bash
# Creates tests/.venv with the official Cloudflare Python SDK (pinned), used by the SDK
# compatibility test (tests/tests/controld_sdk.rs → tests/python/test_sdk.py). Idempotent: an
# existing venv with the pinned version is left alone.
set -euo pipefail

CLOUDFLARE_SDK_VERSION=5.9.0
# Validates controld's /openapi.json (tests/tests/controld_openapi.rs).
OPENAPI_VALIDATOR_VERSION=0.7.2
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/tests/.venv"

if [ -x "$venv/bin/python" ] &&
  "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('cloudflare') != '$CLOUDFLARE_SDK_VERSION' or m.version('openapi-spec-validator') != '$OPENAPI_VALIDATOR_VERSION')" 2>/dev/null; then
  exit 0
fi

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  # Debian ships venv's pip bootstrap separately.
  echo "setup-python-venv: installing python3-venv"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends python3-venv
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "cloudflare==$CLOUDFLARE_SDK_VERSION" \
  "openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION"
echo "setup-python-venv: cloudflare $CLOUDFLARE_SDK_VERSION installed in $venv"
