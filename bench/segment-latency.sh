#!/usr/bin/env bash
# Segment latency (issue 8, benchmark 3): from the instant cfstream-loadgen wrote the keyframe
# that closes a segment to the instant controld's live playlist listing that segment was seen
# (inotify), p50/p99/max per number of concurrent streams, with segments later than the
# playlist's target duration ("late") and never listed ("missing"), controld's and the load
# generator's CPU. Target: p99 < 50 ms at N = 1. Prints figures; asserts nothing.
#
#   bench/segment-latency.sh [N ...]      (default: 1 200)
#
# Environment: DURATION (seconds each stream publishes, default 60), RAMP (new connections per
# second, default 50), RTMPS=1 (publish over RTMPS to controld's --rtmps listener, self-signed
# certificate), CARGO_TARGET_DIR (builds and the cached media, default target/). See
# bench/README.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
duration=${DURATION:-60}
if [ $# -gt 0 ]; then counts=("$@"); else counts=(1 200); fi

build
make_media
bench_init
if [ "${RTMPS:-0}" = 1 ]; then start_controld_rtmps; else start_controld; fi
protocol=RTMP
[ -n "${controld_rtmps:-}" ] && protocol=RTMPS
machine_line
echo "== each stream: $duration s of $(basename "$media") over $protocol, ramp ${RAMP:-50} connections/s"
for n in "${counts[@]}"; do
  echo "N = $n"
  latency_load "$n" "$duration"
  echo "  loadgen ${loadgen_line#total: }"
  echo "  $latency_line"
  echo "  segment latency p50 $p50 ms, p99 $p99 ms, max $max_ms ms over $segments segments;" \
    "late $late, missing $missing; load generator errors $errors"
  echo "  controld CPU $controld_cpu s ($controld_pct % of a core over $wall s)," \
    "loadgen CPU $loadgen_cpu s ($loadgen_pct %)"
done
