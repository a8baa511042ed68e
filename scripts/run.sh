#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds controld and runs it on the embedded default:
# SQLite and media under ./data (override with CONTROLD_DATA_DIR or --data-dir). Extra arguments
# go to controld, e.g. `scripts/run.sh --http 0.0.0.0:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/setup-dashboard.sh --no-browser
cargo build --release -p controld
exec target/release/controld "$@"
