#!/usr/bin/env bash
# CPU per real-time stream with recordings copied to an S3-compatible bucket (a private Garage on
# loopback, --media-url) against local disk only: the same controld build, publisher
# (cfstream-loadgen) and file, one after the other in one run. Prints figures, Garage's own CPU
# beside them; asserts nothing. See bench/README.md.
#
#   bench/bucket-cpu.sh [N]      (default 50 concurrent streams)
#
# Environment: DURATION (seconds each stream publishes, default 60), RAMP (new connections per
# second, default 50).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
n=${1:-50}
duration=${DURATION:-60}
ramp=${RAMP:-50}
# After the load generator ends: time for the pipelines to notice (timeoutSeconds 1), finish
# their recordings and, with the bucket, copy them before the videos are ready.
settle=5

build
make_media
"$root/scripts/setup-garage.sh" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p cfstream-e2e \
  --example garage_server
bench_init

coproc garage { "$target/release/examples/garage_server"; }
bench_track "$garage_PID"
read -r settings <&"${garage[0]}"
garage_pid=${settings##*GARAGE_PID=}
bench_track "$garage_pid"

# run NAME: publishes N streams to a fresh controld (environment as set) and prints its CPU.
run() {
  local name=$1 before after
  start_controld 0 "$work/$name"
  create_inputs "$n" "$work/inputs-$name"
  cut -d' ' -f3 "$work/inputs-$name" >"$work/urls-$name"
  before=$(cpu_seconds "$controld_pid")
  garage_before=$(cpu_seconds "$garage_pid")
  "$loadgen" --file "$media" --connections "$n" --ramp "$ramp" --duration "$duration" \
    --quiet --url-file "$work/urls-$name" | sed -n "s/^total: /  $name loadgen: /p" || true
  sleep "$settle"
  after=$(cpu_seconds "$controld_pid")
  awk -v name="$name" -v n="$n" -v d="$duration" -v b="$before" -v a="$after" 'BEGIN {
    printf "  %-6s controld CPU %.2f s: %.3f %% of a core per real-time stream\n",
      name, a - b, 100 * (a - b) / n / d
  }'
  awk -v b="$garage_before" -v a="$(cpu_seconds "$garage_pid")" 'BEGIN {
    printf "         Garage CPU meanwhile %.2f s\n", a - b }'
  last_cpu=$(awk -v b="$before" -v a="$after" 'BEGIN { printf "%.3f", a - b }')
  curl -s "http://$controld_http/metrics" | grep '^cfstream_bucket_' | sed 's/^/         /' || true
  stop_controld
}

machine_line
echo "== N = $n streams of $duration s of $(basename "$media"), ramp $ramp connections/s"
run local
local_cpu=$last_cpu
# shellcheck disable=SC2086  # the settings are one line of NAME=value words
export $settings CONTROLD_MEDIA_URL=s3://media/bench
run bucket
awk -v b="$last_cpu" -v l="$local_cpu" 'BEGIN {
  if (l > 0) printf "  ratio bucket/local controld CPU %.2f\n", b / l
}'
