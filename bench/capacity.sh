#!/usr/bin/env bash
# Capacity (issue 8, benchmark 2): for each N, N concurrent real-time streams into controld for
# DURATION seconds; an N passes when every segment of every input was listed in its live
# playlist within one target duration of its closing keyframe (late = 0, missing = 0, and no
# load generator error). Prints per N the verdict, the latency figures, controld's and the load
# generator's CPU, then the largest passing N. Target: >= 300 on the 2-core box. Prints figures;
# asserts nothing.
#
#   bench/capacity.sh [N ...]      (default: 300)
#
# Environment: DURATION (seconds each stream publishes, default 300 = 5 minutes), RAMP (new
# connections per second, default 50), CARGO_TARGET_DIR (builds and the cached media, default
# target/). See bench/README.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
duration=${DURATION:-300}
if [ $# -gt 0 ]; then counts=("$@"); else counts=(300); fi

build
make_media
bench_init
start_controld
machine_line
echo "== each stream: $duration s of $(basename "$media"), ramp ${RAMP:-50} connections/s"
capacity=""
for n in "${counts[@]}"; do
  latency_load "$n" "$duration"
  verdict=FAIL
  if [ "$late" = 0 ] && [ "$missing" = 0 ] && [ "$errors" = 0 ] && [ "${segments:-0}" != 0 ]; then
    verdict=PASS
    if [ -z "$capacity" ] || [ "$n" -gt "$capacity" ]; then capacity=$n; fi
  fi
  echo "N = $n: $verdict (late $late, missing $missing, load generator errors $errors," \
    "$segments segments), latency p50 $p50 ms, p99 $p99 ms, max $max_ms ms;" \
    "controld CPU $controld_pct % of a core, loadgen CPU $loadgen_pct % ($wall s)"
  echo "  $latency_line"
  echo "  loadgen ${loadgen_line#total: }"
done
if [ -n "$capacity" ]; then
  echo "capacity >= $capacity"
else
  echo "capacity: no N passed"
fi
