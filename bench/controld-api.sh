#!/usr/bin/env bash
# controld benchmark: GET live input latency at a fixed request rate, and the cost of 1,000
# configured idle inputs (RSS and threads after a start). Prints figures; asserts nothing.
#
#   bench/controld-api.sh [RATE=1000] [SECONDS=10] [INPUTS=1000] [CONNECTIONS=4]
#
# Builds release binaries into $CARGO_TARGET_DIR (default target/). Everything on loopback,
# ports chosen by the OS, data in a temp dir that is removed at the end.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
rate=${1:-1000}
seconds=${2:-10}
inputs=${3:-1000}
connections=${4:-4}

build
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p cfstream-e2e --example api_load
load="$target/release/examples/api_load"

bench_init
start_controld 0
echo "fresh start, 0 inputs:          $(proc_figures "$controld_pid")"

create_inputs "$inputs" "$work/inputs" '{"meta":{"name":"bench {n}"},"recording":{"mode":"automatic"}}'
uid=$(head -1 "$work/inputs" | cut -d' ' -f1)
echo "after creating $inputs inputs:    $(proc_figures "$controld_pid")"

restart_controld >/dev/null
echo "restart with $inputs idle inputs: $(proc_figures "$controld_pid")"

echo "GET live input, $rate req/s for $seconds s:"
"$load" "$controld_api/live_inputs/$uid" "$token" "$rate" "$seconds" "$connections"
echo "after the load:                  $(proc_figures "$controld_pid")"
