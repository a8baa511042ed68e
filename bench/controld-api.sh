#!/usr/bin/env bash
# controld benchmark: GET live input latency at a fixed request rate, and the cost of 1,000
# configured idle inputs (RSS and threads after a start). Prints figures; asserts nothing.
#
#   bench/controld-api.sh [RATE=1000] [SECONDS=10] [INPUTS=1000] [CONNECTIONS=4]
#
# Builds release binaries into $CARGO_TARGET_DIR (default target/). Everything on loopback,
# ports chosen by the OS, data in a temp dir that is removed at the end.
set -euo pipefail

rate=${1:-1000}
seconds=${2:-10}
inputs=${3:-1000}
connections=${4:-4}
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
account=bench
token=bench-token

cargo build --release --quiet -p controld --bin controld
cargo build --release --quiet -p cfstream-e2e --example api_load
controld="$target/release/controld"
load="$target/release/examples/api_load"

data="$(mktemp -d)"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT

# Starts controld on port 0; sets $pid and $http once it prints its listening line.
start() {
  CONTROLD_ACCOUNT_ID=$account CONTROLD_API_TOKEN=$token CONTROLD_LOG=warn \
    "$controld" --data-dir "$data" --http 127.0.0.1:0 --rtmp 127.0.0.1:0 >"$data/out" 2>"$data/err" &
  pid=$!
  for _ in $(seq 100); do
    http=$(sed -n 's/^controld: http=\([^ ]*\) .*/\1/p' "$data/out")
    [ -n "$http" ] && return 0
    sleep 0.1
  done
  echo "controld did not start:" >&2
  cat "$data/err" >&2
  exit 1
}

stop() {
  kill "$pid"
  wait "$pid" || true
  pid=""
}

proc_figures() {
  awk '/^VmRSS|^Threads/ {printf "%s %s %s  ", $1, $2, $3} END {print ""}' "/proc/$pid/status"
}

api="/client/v4/accounts/$account/stream"
start
echo "fresh start, 0 inputs:          $(proc_figures)"

uid=$(curl -sf -H "Authorization: Bearer $token" -X POST "http://$http$api/live_inputs" \
  -d '{"meta":{"name":"bench 0"},"recording":{"mode":"automatic"}}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["uid"])')
for i in $(seq 2 "$inputs"); do
  echo "{\"meta\":{\"name\":\"bench $i\"},\"recording\":{\"mode\":\"automatic\"}}"
done | python3 -c '
import http.client, sys
host, port = sys.argv[1].rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port))
for body in sys.stdin:
    conn.request("POST", sys.argv[2] + "/live_inputs", body, {"Authorization": "Bearer " + sys.argv[3]})
    r = conn.getresponse(); r.read()
    assert r.status == 200, r.status
' "$http" "$api" "$token"
echo "after creating $inputs inputs:    $(proc_figures)"

stop
start
echo "restart with $inputs idle inputs: $(proc_figures)"

echo "GET live input, $rate req/s for $seconds s:"
"$load" "http://$http$api/live_inputs/$uid" "$token" "$rate" "$seconds" "$connections"
echo "after the load:                  $(proc_figures)"
