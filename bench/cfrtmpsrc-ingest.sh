#!/usr/bin/env bash
# cfrtmpsrc ingest benchmark: CPU seconds of the receiving process for one 60 s 3 Mbps 720p30
# H.264+AAC FLV published with `ffmpeg -c copy`, once at maximum speed and once in real time
# (-re), and the real-time factor. See bench/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
# From a fresh checkout: the packages the build and this script need (idempotent, quick).
"$ROOT/scripts/setup.sh" >&2
CACHE=$TARGET/bench-media
MEDIA=$CACHE/cfrtmpsrc-720p30-3mbps-60s.flv
# The receiver ends (EOS) this many seconds after the publisher left.
IDLE_TIMEOUT=1

mkdir -p "$CACHE"
if [ ! -s "$MEDIA" ]; then
    echo "== making $MEDIA (60 s, 1280x720, 30 fps, 3 Mbps H.264 + 128 kbps AAC)"
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i testsrc2=size=1280x720:rate=30 \
        -f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 \
        -c:v libx264 -preset veryfast -b:v 3M -maxrate 3M -bufsize 6M -g 60 -pix_fmt yuv420p \
        -c:a aac -b:a 128k -f flv "$MEDIA.tmp"
    mv "$MEDIA.tmp" "$MEDIA"
fi

echo "== building the plugin (release)"
cargo build --release --quiet -p gst-plugin-cfstream --manifest-path "$ROOT/Cargo.toml"
export GST_PLUGIN_PATH=$TARGET/release
gst-inspect-1.0 cfrtmpsrc >/dev/null

CLK_TCK=$(getconf CLK_TCK)
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# utime + stime of a process in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null
}
now() {
    date +%s.%N
}

# run LABEL [ffmpeg input options…]
run() {
    local label=$1
    shift
    local port
    port=$(free_port)
    gst-launch-1.0 -q cfrtmpsrc location="rtmp://127.0.0.1:$port/live" stream-key=bench \
        idle-timeout=$IDLE_TIMEOUT \
        ! flvdemux name=demux \
        demux.video ! queue ! fakesink \
        demux.audio ! queue ! fakesink &
    local receiver=$!
    # Wait until the element listens.
    until ss -ltn "sport = :$port" | grep -q LISTEN; do
        kill -0 "$receiver" || { echo "receiver failed to start"; exit 1; }
        sleep 0.05
    done
    local start ticks last
    start=$(now)
    ffmpeg -nostdin -hide_banner -loglevel error "$@" -i "$MEDIA" -c copy -f flv \
        "rtmp://127.0.0.1:$port/live/bench"
    local published
    published=$(now)
    # Sample the receiver's CPU until it exits (EOS IDLE_TIMEOUT s after all media was output).
    last=0
    while ticks=$(cpu_ticks "$receiver") && [ -n "$ticks" ]; do
        last=$ticks
        sleep 0.1
    done
    wait "$receiver"
    local end
    end=$(now)
    awk -v label="$label" -v ticks="$last" -v hz="$CLK_TCK" -v start="$start" \
        -v published="$published" -v end="$end" -v idle=$IDLE_TIMEOUT 'BEGIN {
        # Done receiving = exit − idle timeout (minus the last ≤0.1 s sampling step).
        wall = end - idle - start
        printf "%-10s receiver CPU %.2f s (%.3f %% of a core per real-time stream), ", \
            label, ticks / hz, 100 * ticks / hz / 60
        printf "publisher done after %.2f s, ingest %.2f s, real-time factor %.1fx\n", \
            published - start, wall, 60 / wall
    }'
}

echo "== $(nproc) cores, $(uname -sr), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
run "max-speed"
run "real-time" -re
