#!/usr/bin/env bash
# CPU per real-time stream of controld's SRT ingest against its RTMP ingest, same run, same media
# (the 720p30 3 Mbps file of lib.sh, remuxed to MPEG-TS for SRT), same kind of publisher: N ffmpeg
# processes copying the file in real time (`-re -c copy`), to rtmp://…/live/KEY or to
# srt://…?streamid=UID&passphrase=… (cfstream-loadgen speaks RTMP only). Each input records to
# HLS (mode automatic). Prints figures; asserts nothing. See bench/README.md.
#
#   bench/srt-vs-rtmp.sh [N ...]      (default: 1 50)
#
# Environment: DURATION (seconds each round publishes, default 60), CARGO_TARGET_DIR.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
duration=${DURATION:-60}
if [ $# -gt 0 ]; then counts=("$@"); else counts=(1 50); fi

build
make_media
bench_init
ts_media="${media%.flv}.ts"
[ -s "$ts_media" ] || ffmpeg -nostdin -hide_banner -loglevel error -y -i "$media" -c copy \
  -f mpegts "$ts_media"

# The SRT port from controld's ready line (start_controld knows RTMP's only).
export CONTROLD_SRT=127.0.0.1:0
start_controld 0
srt_addr=$(grep -m1 '^controld: http=' "$work/controld.out" | sed 's/.* srt=//; s/ .*//')
machine_line

# publish PROTOCOL N: N real-time ffmpeg publishers of new inputs; prints controld's CPU for them
# and the median time from a publisher's start to its input's first listed segment.
publish() {
  local protocol=$1 n=$2 inputs="$work/inputs-$1-$2" pids=() before after i
  local body='{"meta":{"name":"bench {n}"},"recording":{"mode":"automatic","timeoutSeconds":1}}'
  create_inputs "$n" "$inputs" "$body"
  before=$(cpu_seconds "$controld_pid")
  local start
  start=$(now)
  while read -r uid key url; do
    if [ "$protocol" = srt ]; then
      local passphrase
      passphrase=$(curl -s -H "Authorization: Bearer $token" "$controld_api/live_inputs/$uid" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["srt"]["passphrase"])')
      ffmpeg -nostdin -hide_banner -loglevel error -re -t "$duration" -i "$ts_media" -c copy \
        -f mpegts "srt://$srt_addr?streamid=$uid&passphrase=$passphrase&pbkeylen=16" &
    else
      ffmpeg -nostdin -hide_banner -loglevel error -re -t "$duration" -i "$media" -c copy \
        -f flv "$url" &
    fi
    pids+=($!)
  done <"$inputs"
  # First segment of the first input: the start-to-playlist time (one GOP plus the path).
  local first_uid first_at=""
  first_uid=$(head -1 "$inputs" | cut -d' ' -f1)
  for _ in $(seq 600); do
    if curl -s "http://$controld_http/$first_uid/manifest/media-v.m3u8" | grep -q '^seg-'; then
      first_at=$(now)
      break
    fi
    sleep 0.05
  done
  for pid in "${pids[@]}"; do wait "$pid" || true; done
  sleep 3
  after=$(cpu_seconds "$controld_pid")
  awk -v p="$protocol" -v n="$n" -v d="$duration" -v b="$before" -v a="$after" \
    -v s="$start" -v f="$first_at" 'BEGIN {
    cpu = a - b
    printf "  %-5s N=%-3d controld CPU %.2f s: %.4f s per stream, %.3f %% of a core per real-time stream", p, n, cpu, cpu / n, 100 * cpu / n / d
    if (f != "") printf ", first segment listed %.2f s after the publisher started", f - s
    printf "\n"
  }'
}

for n in "${counts[@]}"; do
  echo "== N=$n, $duration s each"
  publish rtmp "$n"
  publish srt "$n"
done
stop_controld
