#!/usr/bin/env bash
# Player latency (issue 13): how far behind the publisher's clock a viewer who joins a running
# broadcast plays, with hls.js (plain HLS and LL-HLS) and dash.js in Debian's Chromium
# (tests/players/play.mjs). ffmpeg publishes a 640x360 x264 stream with 4 s GOPs in real time;
# each player joins after JOIN seconds and plays for WATCH seconds; the median of its once-a-second
# latency samples is printed (hls.js: Date.now() − the PROGRAM-DATE-TIME on screen; dash.js: its
# live latency). Targets: LL-HLS ≤ 2.5 s, plain HLS ≤ 8 s. Prints figures; asserts nothing.
#
#   bench/player-latency.sh            Environment: JOIN (default 20), WATCH (default 40)
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
join=${JOIN:-20}
watch=${WATCH:-40}

build
bench_init
start_controld
machine_line
input=$(curl -sf -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"meta":{"name":"latency"},"recording":{"mode":"automatic"}}' "$controld_api/live_inputs")
read -r uid key < <(python3 -c 'import json, sys; r = json.load(sys.stdin)["result"]; print(r["uid"], r["rtmp"]["streamKey"])' <<<"$input")
seconds=$((join + 3 * watch + 30))
ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=640x360:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$seconds" -c:v libx264 -preset veryfast \
  -tune zerolatency -pix_fmt yuv420p -x264-params keyint=120:min-keyint=120:scenecut=0 \
  -c:a aac -b:a 96k -f flv "$controld_rtmp_url/$key" &
bench_track $!
sleep "$join"
base="http://$controld_http/$uid/manifest"
echo "== joining after $join s, watching $watch s each, 4 s GOPs"
for case in "hls $base/video.m3u8" "hls $base/video.m3u8?protocol=llhls" "dash $base/video.mpd"; do
  read -r player url <<<"$case"
  report=$(node "$root/tests/players/play.mjs" --player "$player" --url "$url" --seconds "$watch")
  python3 -c 'import json, sys
r = json.load(sys.stdin)
print("  {} {}: median latency {} ms over {} samples, stalls {}, fatal {}".format(
    r["player"], sys.argv[1], r["medianLatencyMs"], len(r["latencyMs"]), r["stalls"], r["fatal"]))' \
    "${url#"$base"/}" <<<"$report"
done
