#!/usr/bin/env bash
# Memory errors under churn (issue 17): controld built with AddressSanitizer (or run under
# valgrind memcheck), N publishers that come and go for DURATION seconds (cfstream-loadgen
# --churn, ABORT % of the ends abrupt), then the end of every stream and a SIGTERM shutdown.
# Prints per run what was exercised (publishes, abrupt ends, refusals, recordings made) and what
# the tool reported; keeps the reports. Exit status 1 when a run had a report or controld died.
#
#   bench/asan-churn.sh   (N=100 DURATION=300 CHURN=5 ABORT=30 STOPS=1 RUNS=1 TOOL=asan MEDIA=bench)
#
# STOPS: live inputs disabled (and re-enabled 0.5 s later) per second while the streams run, so
# that the daemon also tears pipelines down while their source waits on the publisher's socket.
# TOOL: asan (controld built with -Zsanitizer=address on the stable toolchain through
# RUSTC_BOOTSTRAP, for diagnosis only), valgrind (release controld under memcheck: also sees
# what GStreamer's and GLib's C code writes, which ASan does not instrument; use a small N),
# none (release controld, glibc's malloc checks: MALLOC_CHECK_=3 with libc_malloc_debug and
# MALLOC_PERTURB_). MEDIA: bench (the 3 Mbps FLV of vs-nginx.sh, ~0.4 MB/s of recordings per
# stream) or small (320x180 300 kbps, ~50 kB/s per stream, for a high N). Runs under nice 10.
# See bench/README.md.
set -euo pipefail
if [ "$(nice)" -lt 10 ]; then exec nice -n 10 "$0" "$@"; fi
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
n=${N:-100} duration=${DURATION:-300} churn=${CHURN:-5} abort=${ABORT:-30} runs=${RUNS:-1}
tool=${TOOL:-asan} stops=${STOPS:-1}
reports="$target/asan-churn/$(date -u +%Y%m%dT%H%M%SZ)"

build
install_debug_tools
case "$tool" in
  asan)
    echo "== building controld with AddressSanitizer"
    # --target keeps the sanitizer flags off build scripts and proc macros.
    RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes" \
      CARGO_PROFILE_RELEASE_DEBUG=1 cargo build --release --quiet \
      --manifest-path "$root/Cargo.toml" --target x86_64-unknown-linux-gnu -p controld --bin controld
    controld="$target/x86_64-unknown-linux-gnu/release/controld"
    # No leak check: GLib's type system and GStreamer's registry live as long as the process.
    export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:log_path=$reports/asan"
    ;;
  valgrind)
    release_controld=$controld
    controld="$reports/controld-valgrind"
    ;;
  none)
    export MALLOC_CHECK_=3 MALLOC_PERTURB_=165
    malloc_debug=/lib/x86_64-linux-gnu/libc_malloc_debug.so.0
    ;;
  *)
    echo "TOOL must be asan, valgrind or none" >&2
    exit 2
    ;;
esac
case "${MEDIA:-bench}" in
  bench) make_media ;;
  small) make_small_media ;;
  *)
    echo "MEDIA must be bench or small" >&2
    exit 2
    ;;
esac
# GLib 2.74 hands GStreamer's buffers, memories and events out of its own slab (g_slice), where
# neither ASan nor glibc sees a double free; with this they come from malloc (valgrind implies it).
export G_SLICE=always-malloc
mkdir -p "$reports"
if [ "$tool" = valgrind ]; then
  # memcheck only: invalid reads/writes and frees, no leak report.
  cat >"$controld" <<EOF
#!/bin/sh
exec valgrind --tool=memcheck --leak-check=no --error-limit=no --num-callers=40 \
  --fair-sched=yes --log-file="$reports/valgrind.%p" "$release_controld" "\$@"
EOF
  chmod +x "$controld"
fi
bench_init
# Recordings: ~0.4 MB/s per stream of the bench FLV, ~0.05 MB/s of the small one.
rate_kb=$([ "$media" = "$small_media" ] && echo 50 || echo 400)
need_mb=$((n * duration * rate_kb / 1024))
free_mb=$(df -Pm "$work" | awk 'NR == 2 { print $4 }')
if [ "$need_mb" -gt $((free_mb * 8 / 10)) ]; then
  echo "the recordings would take ~$need_mb MB of the $free_mb MB free under $work:" \
    "lower N or DURATION, or MEDIA=small" >&2
  exit 2
fi
machine_line
echo "== $tool, N=$n, ${duration} s, publishes of ${churn} s on average, $abort % ended abruptly," \
  "$stops input(s) disabled a second, $(basename "$media"), $runs run(s); reports in $reports"

# stop_inputs INPUTS COUNT_FILE: until killed, STOPS times a second disables a random input of
# INPUTS and enables it again 0.5 s later; appends a line to COUNT_FILE per stop.
stop_inputs() {
  [ "$stops" = 0 ] && return 0
  local uid auth=(-H "Authorization: Bearer $token")
  sleep 10
  while true; do
    uid=$(shuf -n1 "$1" | cut -d' ' -f1)
    curl -s -o /dev/null "${auth[@]}" -X POST "$controld_api/live_inputs/$uid/disable"
    (sleep 0.5 && curl -s -o /dev/null "${auth[@]}" -X POST "$controld_api/live_inputs/$uid/enable") &
    echo "$uid" >>"$2"
    sleep "$(awk -v r="$stops" 'BEGIN { print 1 / r }')"
  done
}

failed=0
for run in $(seq "$runs"); do
  data="$work/run-$run"
  LD_PRELOAD=${malloc_debug:-} start_controld 0 "$data"
  create_inputs "$n" "$work/inputs-$run"
  awk '{ print $3 }' "$work/inputs-$run" >"$work/urls-$run"
  stop_inputs "$work/inputs-$run" "$work/stops-$run" &
  stopper=$!
  "$loadgen" --file "$media" --url-file "$work/urls-$run" --connections "$n" \
    --ramp "${RAMP:-50}" --duration "$duration" --churn "$churn" --abort-percent "$abort" \
    --retry-delay 1 --quiet >"$work/loadgen-$run.out" || true
  kill "$stopper" 2>/dev/null || true
  wait "$stopper" 2>/dev/null || true
  total=$(grep -m1 '^total: ' "$work/loadgen-$run.out" || true)
  # Every stream has ended; their pipelines end one reconnect window (1 s) later.
  for _ in $(seq 120); do
    kill -0 "$controld_pid" 2>/dev/null || break
    connected=$(curl -s "http://$controld_http/metrics" |
      awk '/^cfstream_publishers_connected/ { print $2 }')
    [ "$connected" = 0 ] && break
    sleep 1
  done
  sleep 3
  if kill -0 "$controld_pid" 2>/dev/null; then
    kill "$controld_pid"
    status=0
    wait "$controld_pid" || status=$?
    verdict="exit status $status after SIGTERM"
  else
    status=0
    wait "$controld_pid" || status=$?
    verdict="DIED with status $status during the run"
  fi
  controld_pid=""
  recordings=$(find "$data/media" -mindepth 2 -maxdepth 2 -type d 2>/dev/null | wc -l)
  cp "$data.err" "$reports/controld-$run.err"
  cp "$work/loadgen-$run.out" "$reports/loadgen-$run.out"
  found=$(grep -l -E 'ERROR: AddressSanitizer|Invalid (read|write|free)|Mismatched free|Jump to the invalid' \
    "$reports"/asan.* "$reports"/valgrind.* 2>/dev/null | wc -l || true)
  errors_valgrind=$(grep -h 'ERROR SUMMARY' "$reports"/valgrind.* 2>/dev/null | tail -1 || true)
  echo "run $run: publishes $(($(kv "$total" connections) + $(kv "$total" reconnects) - $(kv "$total" errors)))," \
    "ended early $(kv "$total" churned) (abruptly $(kv "$total" aborted)), refused $(kv "$total" errors)," \
    "inputs disabled $(cat "$work/stops-$run" 2>/dev/null | wc -l)," \
    "$recordings recordings; controld $verdict; reports with errors: $found ${errors_valgrind:+($errors_valgrind)}"
  if [ "$found" != 0 ] || [ "$status" != 0 ]; then failed=1; fi
done
[ "$failed" = 0 ] && echo "no memory error reported" || echo "MEMORY ERROR or crash: see $reports"
exit "$failed"
