#!/usr/bin/env bash
# Several nodes on one PostgreSQL: GET live input latency at a fixed request rate served by one
# node on SQLite, one node on PostgreSQL, then three nodes on the same PostgreSQL database at
# once (each at the same rate), with each node's CPU seconds. Prints figures; asserts nothing.
#
#   bench/nodes-api.sh [RATE=500] [SECONDS=10] [CONNECTIONS=4]
#
# On one machine the three nodes share its cores: the figure says what PostgreSQL costs per
# request and whether nodes contend on it, not how far N machines scale.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
rate=${1:-500}
seconds=${2:-10}
connections=${3:-4}

build
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p cfstream-e2e --example api_load
load="$target/release/examples/api_load"
server=$("$root/scripts/setup-postgres.sh")
database=cfstream_bench_$$
bench_init
psql "$server" -qc "CREATE DATABASE $database"
trap 'bench_cleanup; psql "$server" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)"' EXIT
url="${server%/*}/$database"
# since SECONDS PID: CPU seconds PID used since it had used SECONDS.
since() { awk -v a="$1" -v b="$(cpu_seconds "$2")" 'BEGIN { printf "%.2f", b - a }'; }
# Three nodes on one machine: only RTMP, on OS-chosen ports.
export CONTROLD_RTMPS=off CONTROLD_SRT=off

start_controld 0 "$work/sqlite"
create_inputs 100 "$work/inputs-sqlite"
uid=$(head -1 "$work/inputs-sqlite" | cut -d' ' -f1)
echo "one node, SQLite, $rate req/s:"
before=$(cpu_seconds "$controld_pid")
"$load" "$controld_api/live_inputs/$uid" "$token" "$rate" "$seconds" "$connections"
echo "  controld CPU: $(since "$before" "$controld_pid") s"
stop_controld

declare -A apis pids
for node in a b c; do
  CONTROLD_DATABASE_URL=$url CONTROLD_NODE_ID=node-$node start_controld 0 "$work/node-$node"
  apis[$node]=$controld_api
  pids[$node]=$controld_pid
  bench_track "$controld_pid"
done
create_inputs 100 "$work/inputs-pg"
uid=$(head -1 "$work/inputs-pg" | cut -d' ' -f1)

echo "one node, PostgreSQL, $rate req/s:"
before=$(cpu_seconds "${pids[a]}")
"$load" "${apis[a]}/live_inputs/$uid" "$token" "$rate" "$seconds" "$connections"
echo "  controld CPU: $(since "$before" "${pids[a]}") s"

echo "three nodes, one PostgreSQL, $rate req/s each:"
declare -A cpu
for node in a b c; do cpu[$node]=$(cpu_seconds "${pids[$node]}"); done
loads=()
for node in a b c; do
  "$load" "${apis[$node]}/live_inputs/$uid" "$token" "$rate" "$seconds" "$connections" \
    >"$work/load-$node" &
  loads+=($!)
done
for pid in "${loads[@]}"; do wait "$pid"; done
for node in a b c; do
  echo "  node-$node: $(tr '\n' ' ' <"$work/load-$node")"
  echo "    controld CPU: $(since "${cpu[$node]}" "${pids[$node]}") s"
done
