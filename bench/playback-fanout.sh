#!/usr/bin/env bash
# CPU of controld for one real-time publisher with 0 players, then with N RTMP players
# (`rtmpPlayback`) and with N SRT players (`srtPlayback`, the FLV remuxed to MPEG-TS once for
# all of them), each round on a new live input recording to HLS (mode automatic). Publisher: one
# ffmpeg copying the 720p30 3 Mbps file of lib.sh in real time (`-re -c copy`); players: ffmpeg
# `-c copy -f null`. controld's CPU is measured over the same window of each round, once every
# player is playing. Prints figures; asserts nothing. See bench/README.md.
#
#   bench/playback-fanout.sh [N]      (default: 20)
#
# Environment: WINDOW (seconds measured per round, default 40), CARGO_TARGET_DIR.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
players=${1:-20}
window=${WINDOW:-40}

build
make_media
bench_init
export CONTROLD_SRT=127.0.0.1:0
start_controld 0
srt_addr=$(grep -m1 '^controld: http=' "$work/controld.out" | sed 's/.* srt=//; s/ .*//')
machine_line

# field UID PYTHON-EXPR: a field of the live input (`i` is its JSON result).
field() {
  curl -s -H "Authorization: Bearer $token" "$controld_api/live_inputs/$1" |
    python3 -c "import json,sys; i = json.load(sys.stdin)['result']; print($2)"
}

# round KIND N: one publisher and N players of KIND (none, rtmp, srt); prints controld's CPU.
round() {
  local kind=$1 n=$2 inputs="$work/inputs-$1" pids=() uid key url before after
  create_inputs 1 "$inputs"
  read -r uid key url <"$inputs"
  ffmpeg -nostdin -hide_banner -loglevel error -re -i "$media" -c copy -f flv "$url" &
  local publisher=$!
  bench_track "$publisher"
  # Live once its first segment is listed; players join then.
  for _ in $(seq 300); do
    curl -s "http://$controld_http/$uid/manifest/media-v.m3u8" | grep -q '^seg-' && break
    sleep 0.1
  done
  local play_url
  case $kind in
    rtmp) play_url="$controld_rtmp_url/$(field "$uid" "i['rtmpPlayback']['streamKey']")" ;;
    srt) play_url="srt://$srt_addr?streamid=play$uid&passphrase=$(field "$uid" "i['srtPlayback']['passphrase']")" ;;
  esac
  for _ in $(seq "$n"); do
    ffmpeg -nostdin -hide_banner -loglevel error -i "$play_url" -c copy -f null - &
    pids+=($!)
    bench_track "$!"
  done
  sleep 3
  before=$(cpu_seconds "$controld_pid")
  sleep "$window"
  after=$(cpu_seconds "$controld_pid")
  local alive=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
  awk -v k="$kind" -v n="$n" -v w="$window" -v b="$before" -v a="$after" -v alive="$alive" 'BEGIN {
    printf "  players=%-2d %-4s controld CPU %.2f s in %d s: %.2f %% of a core (%d players still playing)\n", n, k, a - b, w, 100 * (a - b) / w, alive
  }'
  for pid in "${pids[@]}" "$publisher"; do stop_pid "$pid"; done
  sleep 2
}

round none 0
round rtmp "$players"
round srt "$players"
stop_controld
