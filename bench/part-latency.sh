#!/usr/bin/env bash
# Part latency (issue 13): from the arrival of a part's first frame at controld (its segment's
# EXT-X-PROGRAM-DATE-TIME plus the parts before it) to the instant the LL-HLS media playlist
# listing the part was read, by cfstream-loadgen --parts (one follower per stream, one blocking
# reload per part). Target: p99 < part target + 50 ms at N = 1 and N = 200. Then one stream
# measured without and with VIEWERS LL-HLS viewers of its input held in blocking reloads (a
# second cfstream-loadgen, --viewers). Prints figures; asserts nothing.
#
#   bench/part-latency.sh [N ...]      (default: 1 200)
#
# Environment: DURATION (seconds each stream publishes, default 60), RAMP (new connections per
# second, default 50), VIEWERS (default 300; 0 skips the viewer rounds), PART_TARGET_MS
# (controld's CONTROLD_PART_TARGET_MS, default controld's own, 500), PART_LOGS (a directory: each
# round's timed parts are written there, cfstream-loadgen --part-log), CARGO_TARGET_DIR (builds
# and the cached media, default target/). See bench/README.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
duration=${DURATION:-60}
viewers=${VIEWERS:-300}
if [ $# -gt 0 ]; then counts=("$@"); else counts=(1 200); fi
[ -n "${PART_TARGET_MS:-}" ] && export CONTROLD_PART_TARGET_MS=$PART_TARGET_MS
[ -n "${PART_LOGS:-}" ] && mkdir -p "$PART_LOGS"

# part_log NAME: the --part-log argument for round NAME (none without PART_LOGS).
part_log() {
  [ -n "${PART_LOGS:-}" ] && echo "--part-log=$PART_LOGS/$1.txt"
  return 0
}

# part_results: sets the part figures of $latency_line (latency_results' line).
part_results() {
  parts=$(kv "$latency_line" parts)
  part_p50=$(kv "$latency_line" part_p50_ms)
  part_p99=$(kv "$latency_line" part_p99_ms)
  part_max=$(kv "$latency_line" part_max_ms)
  part_late=$(kv "$latency_line" part_late)
  part_caught_up=$(kv "$latency_line" part_caught_up)
  part_target=$(kv "$latency_line" part_target_ms)
}

# print_round LABEL: the figures of the round just measured.
print_round() {
  part_results
  echo "  loadgen ${loadgen_line#total: }"
  echo "  $latency_line"
  echo "  $1: part latency p50 $part_p50 ms, p99 $part_p99 ms, max $part_max ms over $parts parts" \
    "(part target $part_target ms: budget $(awk -v t="$part_target" 'BEGIN { print t + 50 }') ms;" \
    "over it $part_late, caught up $part_caught_up); segment latency p99 $p99 ms over $segments" \
    "segments; load generator errors $errors"
  echo "  controld CPU $controld_cpu s ($controld_pct % of a core over $wall s)," \
    "loadgen CPU $loadgen_cpu s ($loadgen_pct %)"
}

# viewer_round COUNT: one stream measured as latency_load 1 does, with COUNT LL-HLS viewers of
# its input (a second load generator, started before the publisher and following for the
# publish's duration) when COUNT > 0. Sets viewers_line and viewers_latency_line too.
viewer_round() {
  local count=$1 before after start viewer_pid=""
  latency_inputs 1
  before=$(cpu_seconds "$controld_pid")
  start=$(now)
  if [ "$count" -gt 0 ]; then
    # They poll the multivariant playlist until the input is live, then follow part by part.
    # shellcheck disable=SC2046  # part_log prints one word or none
    "$loadgen" --viewers "$count" --playlists "$latency_dir/playlists" --duration "$duration" \
      --quiet $(part_log "viewers-$count") >"$latency_dir/viewers.out" 2>"$latency_dir/viewers.err" &
    viewer_pid=$!
    bench_track "$viewer_pid"
  fi
  # shellcheck disable=SC2046
  latency_loadgen 1 "$duration" --parts $(part_log "publisher-with-$count-viewers") || true
  [ -n "$viewer_pid" ] && { wait "$viewer_pid" || true; }
  sleep 3
  after=$(cpu_seconds "$controld_pid")
  wall=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  latency_results
  controld_cpu=$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.2f", b - a }')
  controld_pct=$(awk -v c="$controld_cpu" -v w="$wall" 'BEGIN { printf "%.1f", 100 * c / w }')
  loadgen_pct=$(awk -v c="${loadgen_cpu:-0}" -v w="$wall" 'BEGIN { printf "%.1f", 100 * c / w }')
  viewers_line=""
  viewers_latency_line=""
  if [ -n "$viewer_pid" ]; then
    viewers_line=$(grep -m1 '^viewers: ' "$latency_dir/viewers.out" || true)
    viewers_latency_line=$(grep -m1 '^latency: ' "$latency_dir/viewers.out" || true)
    sed 's/^/  viewers: /' "$latency_dir/viewers.err" >&2
  fi
}

build
make_media
bench_init
start_controld
machine_line
echo "== each stream: $duration s of $(basename "$media") over RTMP, ramp ${RAMP:-50} connections/s," \
  "followed with LL-HLS blocking reloads per part; CONTROLD_PART_TARGET_MS=${CONTROLD_PART_TARGET_MS:-default}"
for n in "${counts[@]}"; do
  echo "N = $n"
  # shellcheck disable=SC2046
  latency_load "$n" "$duration" --parts $(part_log "n-$n")
  print_round "N = $n"
done
if [ "$viewers" -gt 0 ]; then
  for count in 0 "$viewers"; do
    echo "one stream, $count LL-HLS viewers of its input"
    viewer_round "$count"
    print_round "$count viewers"
    if [ -n "$viewers_line" ]; then
      viewer_cpu=$(kv "$viewers_line" loadgen_cpu_seconds)
      echo "  ${viewers_line}"
      echo "  viewers' own $viewers_latency_line"
      echo "  viewers' part latency p50 $(kv "$viewers_latency_line" part_p50_ms) ms, p99" \
        "$(kv "$viewers_latency_line" part_p99_ms) ms, max $(kv "$viewers_latency_line" part_max_ms) ms" \
        "over $(kv "$viewers_latency_line" parts) parts; viewer process CPU $viewer_cpu s" \
        "($(awk -v c="${viewer_cpu:-0}" -v w="$wall" 'BEGIN { printf "%.1f", 100 * c / w }') %)"
    fi
  done
fi
