#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for the tests (apt packages, Chromium, npm and Python
# packages, PostgreSQL), builds everything and runs the whole test suite: once on the embedded
# default (SQLite), then the tests of the state again on PostgreSQL. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/setup-dashboard.sh
scripts/setup-python-venv.sh
postgres_url=$(scripts/setup-postgres.sh)
# Tests about PostgreSQL itself (several nodes on one database) use this server in every pass.
export CFSTREAM_TEST_POSTGRES=$postgres_url
scripts/setup-garage.sh

cargo build --workspace --all-targets
scripts/check-meson.sh
cargo test --workspace

# The same API behaviour on PostgreSQL: the in-process API tests and the end-to-end tests whose
# subject is state (API, SDK, tokens, webhooks, outputs, retention, restarts and kill -9).
export CONTROLD_TEST_DATABASE_URL=$postgres_url
cargo test -p controld --test api --test playback
cargo test -p cfstream-e2e --test controld_api --test controld_sdk --test controld_access \
  --test controld_webhooks --test controld_outputs --test controld_retention \
  --test controld_restart --test controld_chaos --test controld_metrics
