#!/usr/bin/env bash
# CPU per real-time stream: controld (ingest + recording to HLS) against nginx-rtmp (ingest +
# HLS, 4 s fragments), same machine, same run, same publisher (cfstream-loadgen) and file.
# Prints figures; asserts nothing. See bench/README.md.
#
#   bench/vs-nginx.sh [N ...]      (default: 1 50; each N is a number of concurrent streams)
#
# Environment: DURATION (seconds each stream publishes, default 60), RAMP (new connections per
# second, default 50), CARGO_TARGET_DIR (builds and the cached media, default target/).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
duration=${DURATION:-60}
ramp=${RAMP:-50}
# After the load generator ends: time for controld's pipelines to notice the publisher left
# (recording timeoutSeconds 1) and finish their recordings, and for nginx to close its HLS.
settle=3
if [ $# -gt 0 ]; then counts=("$@"); else counts=(1 50); fi

install_nginx_rtmp
build
make_media
bench_init

# Publishes N streams with the load generator and prints the server's CPU for them.
# measure NAME PID N --url … | --url-file …
measure() {
  local name=$1 pid=$2 n=$3
  shift 3
  local before after out
  before=$(cpu_seconds "$pid")
  out=$("$loadgen" --file "$media" --connections "$n" --ramp "$ramp" --duration "$duration" \
    --quiet "$@") || true
  sleep "$settle"
  after=$(cpu_seconds "$pid")
  echo "$out" | sed -n "s/^total: /  $name loadgen: /p"
  awk -v name="$name" -v n="$n" -v d="$duration" -v b="$before" -v a="$after" 'BEGIN {
    cpu = a - b
    printf "  %-8s server CPU %.2f s: %.4f s per stream, %.3f %% of a core per real-time stream\n",
      name, cpu, cpu / n, 100 * cpu / n / d
  }'
  last_cpu=$(awk -v b="$before" -v a="$after" 'BEGIN { printf "%.3f", a - b }')
}

# What the servers wrote for the streams of one run, to show the CPU bought real work.
nginx_hls() { # N
  echo "  nginx    HLS: $(find "$nginx_hls_dir" -name "bench$1-*.m3u8" | wc -l) playlists"
}
controld_hls() { # MARKER (a file older than the run's output)
  local media="$work/controld/media" finished segments
  finished=$(find "$media" -name index.log -newer "$1" -exec grep -lx end {} + | wc -l)
  segments=$(find "$media" -name 'seg-*.v.m4s' -newer "$1" | wc -l)
  echo "  controld HLS: $finished finished recordings, $segments segments"
}

nginx_port=$(free_port)
start_nginx "$nginx_port"
start_controld "$(free_port)"

machine_line
echo "== each stream: $duration s of $(basename "$media"), ramp $ramp connections/s"
for n in "${counts[@]}"; do
  echo "N = $n"
  measure nginx "$nginx_pid" "$n" --url "rtmp://127.0.0.1:$nginx_port/live/bench$n-{n}"
  nginx_cpu=$last_cpu
  nginx_hls "$n"
  create_inputs "$n" "$work/inputs-$n" '{"meta":{"name":"vs-nginx"},"recording":{"mode":"automatic","timeoutSeconds":1}}'
  cut -d' ' -f3 "$work/inputs-$n" >"$work/urls-$n"
  touch "$work/before-$n"
  measure controld "$controld_pid" "$n" --url-file "$work/urls-$n"
  controld_hls "$work/before-$n"
  awk -v c="$last_cpu" -v g="$nginx_cpu" 'BEGIN {
    if (g > 0) printf "  ratio controld/nginx %.2f (target <= 0.7)\n", c / g
  }'
done
