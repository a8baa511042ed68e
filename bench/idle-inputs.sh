#!/usr/bin/env bash
# Idle inputs (issue 8, benchmark 4): controld with INPUTS configured live inputs, none live,
# after a restart: RSS (VmRSS, VmHWM), threads and CPU over SECONDS, and the time of one
# GET /live_inputs list. Target: < 300 MiB, ~0 CPU. Prints figures; asserts nothing.
#
#   bench/idle-inputs.sh [INPUTS] [SECONDS]      (default 10000 inputs, 60 s; also as env vars)
#
# Environment: INPUTS, SECONDS, PARALLEL (API connections creating the inputs, default 4),
# CARGO_TARGET_DIR (builds, default target/). See bench/README.md.
set -euo pipefail

# SECONDS is bash's own clock (seconds since the shell started): read the caller's value first.
if printenv SECONDS >/dev/null; then sample_seconds=$SECONDS; else sample_seconds=60; fi
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
inputs=${1:-${INPUTS:-10000}}
sample_seconds=${2:-$sample_seconds}
parallel=${PARALLEL:-4}
figures=(VmRSS VmHWM Threads)

build
bench_init
start_controld 0
machine_line
echo "fresh start, 0 inputs:        $(proc_figures "$controld_pid" "${figures[@]}")"

t0=$(now)
create_inputs "$inputs" "$work/inputs" '{"meta":{"name":"idle {n}"},"recording":{"mode":"automatic"}}' "$parallel"
t1=$(now)
awk -v n="$inputs" -v a="$t0" -v b="$t1" -v p="$parallel" 'BEGIN {
  printf "created %d live inputs in %.1f s (%.0f per s, %d API connections)\n", n, b - a, n / (b - a), p }'
echo "after creating them:          $(proc_figures "$controld_pid" "${figures[@]}")"

restart_controld
cpu0=$(cpu_seconds "$controld_pid")
echo "after the restart:            $(proc_figures "$controld_pid" "${figures[@]}") (start-up CPU ${cpu0} s)"

# One sample a second: VmRSS and threads, from /proc/PID/status.
echo "sampling for $sample_seconds s (no publisher, no API calls)"
rss_max=0 threads_min=999999 threads_max=0
t0=$(now)
for _ in $(seq "$sample_seconds"); do
  sleep 1
  read -r rss threads < <(awk '/^VmRSS/ { r = $2 } /^Threads/ { t = $2 } END { print r, t }' \
    "/proc/$controld_pid/status")
  [ "$rss" -gt "$rss_max" ] && rss_max=$rss
  [ "$threads" -lt "$threads_min" ] && threads_min=$threads
  [ "$threads" -gt "$threads_max" ] && threads_max=$threads
done
cpu1=$(cpu_seconds "$controld_pid")
t1=$(now)
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$controld_pid/status")
awk -v n="$inputs" -v c0="$cpu0" -v c1="$cpu1" -v a="$t0" -v b="$t1" -v rss="$rss" \
  -v rmax="$rss_max" -v hwm="$hwm" -v tmin="$threads_min" -v tmax="$threads_max" 'BEGIN {
  printf "%d idle inputs over %.1f s: VmRSS %.1f MiB (max %.1f MiB), VmHWM %.1f MiB, threads %d-%d\n",
    n, b - a, rss / 1024, rmax / 1024, hwm / 1024, tmin, tmax
  printf "  CPU %.3f s = %.3f %% of one core (target: < 300 MiB, ~0 CPU)\n", c1 - c0, 100 * (c1 - c0) / (b - a) }'

read -r code seconds size < <(curl -s -o /dev/null -w '%{http_code} %{time_total} %{size_download}\n' \
  -H "Authorization: Bearer $token" "$controld_api/live_inputs")
awk -v c="$code" -v t="$seconds" -v s="$size" 'BEGIN {
  printf "GET /live_inputs (all of them, one call): HTTP %s in %.1f ms, %.1f MB\n", c, 1000 * t, s / 1e6 }'
echo "after the list call:          $(proc_figures "$controld_pid" "${figures[@]}")"
echo "data dir: $(du -sh "$work/controld" | cut -f1)"
