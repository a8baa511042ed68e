#!/usr/bin/env bash
# Installs what the dashboard and its browser test need: Debian's Chromium and the npm packages of
# controld/dashboard (hls.js, embedded into controld at build time), tests/dashboard
# (playwright-core), tests/players (dash.js, for tests/tests/players.rs) and tests/ts-sdk (Cloudflare's TypeScript SDK, for tests/tests/controld_sdk.rs). Idempotent and fast when done: `npm ci` runs only when node_modules is missing
# or was installed from another package-lock.json.
# --no-browser: only what building controld needs (no Chromium, no test packages).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
browser=1
case "${1:-}" in
  --no-browser) browser=0 ;;
  "") ;;
  *) echo "usage: $0 [--no-browser]" >&2; exit 2 ;;
esac

if ! command -v npm >/dev/null; then
  echo "setup-dashboard: installing nodejs and npm"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nodejs npm
fi

if ((browser)) && [ ! -x /usr/bin/chromium ]; then
  echo "setup-dashboard: installing chromium"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
fi

# The stamp holds the hash of the lock file node_modules was installed from.
npm_dirs=("$root/controld/dashboard")
if ((browser)); then npm_dirs+=("$root/tests/dashboard" "$root/tests/players" "$root/tests/ts-sdk"); fi
for dir in "${npm_dirs[@]}"; do
  stamp="$dir/node_modules/.installed-from-lock"
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup-dashboard: npm ci in ${dir#"$root"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
    echo "$want" >"$stamp"
  fi
done
