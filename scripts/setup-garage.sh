#!/usr/bin/env bash
# Builds Garage, the S3-compatible object store the storage tests run (tests/src/garage.rs),
# into target/tools/garage-2.5.0 unless it is there already: about 9.5 min on 2 cores on a
# fresh clone (as in CI), nothing after that.
set -euo pipefail
cd "$(dirname "$0")/.."

version=2.5.0
root=target/tools/garage-$version
if [ -x "$root/bin/garage" ] && "$root/bin/garage" --version | grep -q "cargo:$version "; then
    exit 0
fi
cargo install --locked garage --version "$version" --root "$root"
