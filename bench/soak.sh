#!/usr/bin/env bash
# Soak (issue 8): N real-time streams into controld for DURATION seconds. Samples controld's RSS,
# threads and open file descriptors every INTERVAL seconds and prints them, the RSS slope (least
# squares over the samples taken under load after a warm-up, KiB per minute), the descriptors
# before the load and after it ended (a leak shows as more after), and the load generator's
# segment latency figures (late, missing). Target: RSS flat, no missed segment, no fd leak.
# Prints figures; asserts nothing.
#
#   bench/soak.sh
#
# Environment: N (streams, default 200), DURATION (seconds, default 600), INTERVAL (seconds
# between samples, default 10), WARMUP (seconds left out of the slope, default 60 or a third of
# DURATION when shorter), RAMP (new connections per second, default 50), CARGO_TARGET_DIR.
# See bench/README.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
n=${N:-200}
duration=${DURATION:-600}
interval=${INTERVAL:-10}
warmup=${WARMUP:-$((duration / 3 < 60 ? duration / 3 : 60))}
settle=5

# sample T: prints and records "T RSS_KiB THREADS FDS" of controld.
sample() {
  local rss threads fds
  rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$controld_pid/status")
  threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$controld_pid/status")
  fds=$(fd_count "$controld_pid")
  echo "$1 $rss $threads $fds" >>"$work/samples"
  printf '  %6s s  RSS %7s KiB  threads %4s  fds %5s\n' "$1" "$rss" "$threads" "$fds"
}

build
make_media
bench_init
start_controld
machine_line
echo "== $n streams of $(basename "$media") for $duration s, ramp ${RAMP:-50} connections/s," \
  "a sample every $interval s"
latency_inputs "$n"
: >"$work/samples"
echo "before the load (inputs created):"
fd_before=$(fd_count "$controld_pid")
sample before
latency_args "$n" "$duration"
start=$(now)
"$loadgen" "${loadgen_args[@]}" >"$latency_dir/out" &
loadgen_pid=$!
bench_track "$loadgen_pid"
echo "under load (seconds since the first connection):"
while kill -0 "$loadgen_pid" 2>/dev/null; do
  sample "$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')"
  for _ in $(seq "$interval"); do
    kill -0 "$loadgen_pid" 2>/dev/null || break
    sleep 1
  done
done
wait "$loadgen_pid" || true
sleep "$settle"
echo "after the load ended (+$settle s):"
sample after
fd_after=$(fd_count "$controld_pid")

latency_results
# Least squares over the samples under load after the warm-up (the load generator may run a few
# seconds past DURATION waiting for the last segments; those samples are left out too).
awk -v warmup="$warmup" -v duration="$duration" '
  $1 ~ /^[0-9]+$/ && $1 >= warmup && $1 <= duration {
    x = $1 / 60; n++; sx += x; sy += $2; sxx += x * x; sxy += x * $2
    if (n == 1) first = $2
    last = $2
  }
  END {
    if (n < 2) { print "RSS slope: fewer than 2 samples after the warm-up"; exit }
    slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    printf "RSS slope %.1f KiB/min over %d samples from %d s to %d s (RSS %d -> %d KiB)\n",
      slope, n, warmup, duration, first, last
  }' "$work/samples"
echo "open fds: $fd_before before the load, $fd_after after it ended (+$settle s)"
echo "segments: late $late, missing $missing of $segments listed; latency p50 $p50 ms," \
  "p99 $p99 ms, max $max_ms ms; load generator errors $errors"
echo "  $latency_line"
echo "  loadgen ${loadgen_line#total: }"
