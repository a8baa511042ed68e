#!/usr/bin/env bash
# Thumbnails beside live inputs (issue 15): N live inputs publish (segment latency measured as
# in segment-latency.sh) while a client asks their live thumbnails at RATE requests/s, round
# robin over the inputs (an input every N / RATE s: mostly a new segment, so mostly decodes);
# then the same N inputs without thumbnail requests. Prints the thumbnails' latency p50/p99/max
# and statuses, controld's CPU per thumbnail request (the CPU of the run with requests minus
# the one without, over the requests answered 200), and the inputs' segment latency in both
# runs. Asserts nothing.
#
#   bench/thumbnails.sh [N]      (default: 50)
#
# Environment: RATE (thumbnail requests per second, default 10), DURATION (seconds each stream
# publishes, default 60; requests run from 10 s in to 5 s before the end), RAMP (new
# connections per second, default 50), CONTROLD_THUMBNAIL_CONCURRENCY (controld's decode
# slots, default 1), CARGO_TARGET_DIR. See bench/README.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
n=${1:-50}
rate=${RATE:-10}
duration=${DURATION:-60}

# thumbnail_client INPUTS OUT: asks /UID/thumbnails/thumbnail.jpg of the inputs in INPUTS
# (create_inputs' file) at $rate requests/s, each at its own instant whatever the ones before
# it are doing (open loop), from 10 s to $duration - 5 s; prints the "thumbnails:" line to OUT.
thumbnail_client() {
  python3 - "$controld_http" "$1" "$rate" "$duration" >"$2" <<'PY' &
import http.client, sys, threading, time
addr, inputs, rate, duration = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
host, port = addr.rsplit(":", 1)
uids = [line.split()[0] for line in open(inputs) if line.strip()]
results, lock = [], threading.Lock()
def ask(uid):
    start = time.monotonic()
    try:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        conn.request("GET", f"/{uid}/thumbnails/thumbnail.jpg")
        response = conn.getresponse()
        body = response.read()
        status = response.status if response.status != 200 or body[:2] == b"\xff\xd8" else "bad"
    except Exception:
        status = "error"
    with lock:
        results.append((status, (time.monotonic() - start) * 1000))
time.sleep(10)
t0, threads = time.monotonic(), []
for i in range(int((duration - 15) * rate)):
    delay = t0 + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    thread = threading.Thread(target=ask, args=(uids[i % len(uids)],))
    thread.start()
    threads.append(thread)
for thread in threads:
    thread.join()
ok = sorted(ms for status, ms in results if status == 200)
count = lambda s: sum(1 for status, _ in results if status == s)
pick = lambda q: ok[min(len(ok) - 1, int(q * len(ok)))] if ok else 0
print(f"thumbnails: requests={len(results)} ok={len(ok)} busy={count(503)} "
      f"not_found={count(404)} other={len(results) - len(ok) - count(503) - count(404)} "
      f"p50_ms={pick(0.5):.1f} p99_ms={pick(0.99):.1f} max_ms={(ok[-1] if ok else 0):.1f}")
PY
  thumbnail_pid=$!
}

# run_inputs WITH_THUMBNAILS: latency_load's measurement of $n fresh inputs for $duration s,
# with the thumbnail client beside them when WITH_THUMBNAILS is 1.
run_inputs() {
  local before after start
  latency_inputs "$n"
  thumbnails_line=""
  before=$(cpu_seconds "$controld_pid")
  start=$(now)
  [ "$1" = 1 ] && thumbnail_client "$latency_dir/inputs" "$latency_dir/thumbnails"
  latency_loadgen "$n" "$duration" || true
  if [ "$1" = 1 ]; then
    wait "$thumbnail_pid"
    thumbnails_line=$(cat "$latency_dir/thumbnails")
  fi
  sleep 3
  after=$(cpu_seconds "$controld_pid")
  wall=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  latency_results
  controld_cpu=$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.2f", b - a }')
  controld_pct=$(awk -v c="$controld_cpu" -v w="$wall" 'BEGIN { printf "%.1f", 100 * c / w }')
}

report() {
  echo "  segment latency p50 $p50 ms, p99 $p99 ms, max $max_ms ms over $segments segments;" \
    "late $late, missing $missing; load generator errors $errors"
  echo "  controld CPU $controld_cpu s ($controld_pct % of a core over $wall s)"
}

build
make_media
bench_init
start_controld
machine_line
echo "== $n inputs, each $duration s of $(basename "$media") over RTMP, ramp ${RAMP:-50}/s;" \
  "thumbnail concurrency ${CONTROLD_THUMBNAIL_CONCURRENCY:-1}"
echo "with thumbnails ($rate requests/s of the inputs' live thumbnails, 640 wide)"
run_inputs 1
with_cpu=$controld_cpu
ok=$(kv "${thumbnails_line#thumbnails: }" ok)
echo "  $thumbnails_line"
report
echo "without thumbnails"
run_inputs 0
report
awk -v a="$with_cpu" -v b="$controld_cpu" -v n="$ok" 'BEGIN {
  if (n > 0) printf "controld CPU per thumbnail request: %.1f ms (%.2f s more over %d answered)\n",
    1000 * (a - b) / n, a - b, n }'
