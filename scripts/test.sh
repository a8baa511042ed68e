#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for the tests (apt packages, Chromium, npm and Python
# packages), builds everything and runs the whole test suite. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/setup-dashboard.sh
scripts/setup-python-venv.sh
scripts/setup-garage.sh

cargo build --workspace --all-targets
scripts/check-meson.sh
cargo test --workspace
