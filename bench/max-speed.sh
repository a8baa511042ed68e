#!/usr/bin/env bash
# Max-speed ingest of one stream (issue 8, benchmark 5): the cached 60 s FLV published with
# `ffmpeg -c copy -f flv` without -re, to nginx-rtmp (HLS on) and to controld (one live input,
# recording automatic); wall time until the server wrote everything, the real-time factor
# (60 s / that time), and the server's CPU seconds. Prints figures; asserts nothing.
#
#   bench/max-speed.sh
#
# Environment: RUNS (default 3; the median is printed too), CARGO_TARGET_DIR (builds and the
# cached media, default target/). See bench/README.md for exactly what is timed.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
runs=${RUNS:-3}
media_seconds=60
# controld's reconnect window (recording.timeoutSeconds): it ends the recording this long after
# the publisher left, so the end of its last write minus this is when it had taken everything.
timeout=1

install_nginx_rtmp
build
make_media
bench_init
nginx_port=$(free_port)
start_nginx "$nginx_port"
start_controld 0

# publish URL: sends the whole file at maximum speed; prints the wall clock when ffmpeg exited.
publish() {
  ffmpeg -nostdin -hide_banner -loglevel error -i "$media" -c copy -f flv "$1"
  now
}

# newest_mtime DIR MARKER NAME_GLOB...: newest modification time of matching files newer than MARKER.
newest_mtime() {
  local dir=$1 marker=$2 expr=() glob
  shift 2
  for glob in "$@"; do expr+=(${expr[0]+-o} -name "$glob"); done
  find "$dir" -newer "$marker" -type f \( "${expr[@]}" \) -printf '%T@\n' | sort -g | tail -1
}

# report NAME START PUBLISHED DONE CPU: one result line; sets $last_factor.
report() {
  last_factor=$(awk -v m="$media_seconds" -v s="$2" -v d="$4" 'BEGIN { printf "%.2f", m / (d - s) }')
  awk -v name="$1" -v s="$2" -v p="$3" -v d="$4" -v cpu="$5" -v f="$last_factor" 'BEGIN {
    printf "  %-8s publisher exit %.2f s, all written %.2f s: real-time factor %.1fx, server CPU %.2f s\n",
      name, p - s, d - s, f, cpu }'
}

# run_nginx I: publishes to nginx-rtmp; done = max(publisher exit, last HLS file written).
run_nginx() {
  local stream=max$1 c0 start published last finished marker="$work/nginx-marker-$1"
  touch "$marker"
  c0=$(cpu_seconds "$nginx_pid")
  start=$(now)
  published=$(publish "rtmp://127.0.0.1:$nginx_port/live/$stream")
  # nginx closes the last fragment and rewrites the playlist when the publisher leaves.
  sleep 1
  last=$(newest_mtime "$nginx_hls_dir" "$marker" "$stream-*.ts" "$stream.m3u8")
  finished=$(awk -v p="$published" -v l="${last:-0}" 'BEGIN { printf "%.6f", (l > p ? l : p) }')
  report nginx "$start" "$published" "$finished" \
    "$(awk -v a="$c0" -v b="$(cpu_seconds "$nginx_pid")" 'BEGIN { print b - a }')"
  echo "           HLS: $(find "$nginx_hls_dir" -name "$stream-*.ts" | wc -l) fragments"
}

# run_controld I: publishes to a new live input;
# done = max(publisher exit, last recording file written - timeout).
run_controld() {
  local c0 start published last finished url marker="$work/controld-marker-$1" media_dir
  media_dir="$work/controld/media"
  create_inputs 1 "$work/input-$1" \
    "{\"meta\":{\"name\":\"max-speed $1\"},\"recording\":{\"mode\":\"automatic\",\"timeoutSeconds\":$timeout}}"
  url=$(cut -d' ' -f3 "$work/input-$1")
  touch "$marker"
  c0=$(cpu_seconds "$controld_pid")
  start=$(now)
  published=$(publish "$url")
  # Wait for the finished recording (its index.log gains its `end` record), at most 60 s.
  for _ in $(seq 600); do
    [ -n "$(find "$media_dir" -name index.log -newer "$marker" -exec grep -lx end {} + \
      2>/dev/null)" ] && break
    sleep 0.1
  done
  sleep 0.5
  last=$(newest_mtime "$media_dir" "$marker" 'seg-*.m4s' index.log)
  finished=$(awk -v p="$published" -v l="${last:-0}" -v t="$timeout" 'BEGIN {
    printf "%.6f", (l - t > p ? l - t : p) }')
  report controld "$start" "$published" "$finished" \
    "$(awk -v a="$c0" -v b="$(cpu_seconds "$controld_pid")" 'BEGIN { print b - a }')"
  echo "           recording: $(find "$media_dir" -name 'seg-*.v.m4s' -newer "$marker" | wc -l) segments," \
    "$(find "$media_dir" -name index.log -newer "$marker" -exec grep -lx end {} + | wc -l) finished"
}

machine_line
echo "== $(basename "$media") ($media_seconds s) with ffmpeg -c copy, no -re; $runs runs"
nginx_factors=() controld_factors=()
for i in $(seq "$runs"); do
  echo "run $i"
  run_nginx "$i"
  nginx_factors+=("$last_factor")
  run_controld "$i"
  controld_factors+=("$last_factor")
  awk -v c="$last_factor" -v g="${nginx_factors[-1]}" 'BEGIN {
    printf "  real-time factor controld/nginx %.2f\n", c / g }'
done
n_med=$(median "${nginx_factors[@]}")
c_med=$(median "${controld_factors[@]}")
awk -v n="$n_med" -v c="$c_med" -v r="$runs" 'BEGIN {
  printf "median of %d: nginx %.1fx, controld %.1fx, controld/nginx %.2f\n", r, n, c, c / n }'
