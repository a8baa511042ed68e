#!/usr/bin/env bash
# Seeds the fuzz corpora from real ffmpeg output:
# - flv_tags: a small H.264+AAC FLV file written by ffmpeg;
# - handshake, chunk_stream: the bytes ffmpeg sends when it publishes that file over RTMP to a
#   cfrtmpsrc (recorded by a relay between the two);
# - amf0: the AMF0 bodies found in that capture (connect, createStream, publish, onMetaData).
# Usage: cfstream-proto/fuzz/seed-corpus.sh   (needs ffmpeg, gst-launch-1.0, python3)
set -euo pipefail

FUZZ=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$FUZZ/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --quiet -p gst-plugin-cfstream --manifest-path "$ROOT/Cargo.toml"
export GST_PLUGIN_PATH=$TARGET/debug

ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f lavfi -i testsrc2=size=160x120:rate=15 -f lavfi -i sine=sample_rate=44100 -t 1 \
    -c:v libx264 -preset ultrafast -g 15 -c:a aac -b:a 32k -f flv "$WORK/small.flv"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
SERVER_PORT=$(free_port)
RELAY_PORT=$(free_port)
gst-launch-1.0 -q cfrtmpsrc location="rtmp://127.0.0.1:$SERVER_PORT/live" stream-key=seed \
    idle-timeout=1 ! fakesink &
# Relays one connection to the server and records what the client sends.
python3 - "$RELAY_PORT" "$SERVER_PORT" "$WORK/capture.bin" <<'EOF' &
import socket, sys, threading
relay_port, server_port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
listener = socket.create_server(("127.0.0.1", relay_port))
client, _ = listener.accept()
server = socket.create_connection(("127.0.0.1", server_port))
def copy(src, dst, record):
    while data := src.recv(65536):
        if record:
            record.write(data)
        dst.sendall(data)
    dst.shutdown(socket.SHUT_WR)
with open(out, "wb") as record:
    back = threading.Thread(target=copy, args=(server, client, None))
    back.start()
    copy(client, server, record)
    back.join()
EOF
RELAY=$!
until ss -ltn "sport = :$SERVER_PORT" | grep -q LISTEN && ss -ltn "sport = :$RELAY_PORT" | grep -q LISTEN; do
    sleep 0.05
done
ffmpeg -nostdin -hide_banner -loglevel error -i "$WORK/small.flv" -c copy -f flv \
    "rtmp://127.0.0.1:$RELAY_PORT/live/seed"
wait "$RELAY"

for target in handshake chunk_stream amf0 flv_tags; do
    mkdir -p "$FUZZ/corpus/$target"
done
cp "$WORK/small.flv" "$FUZZ/corpus/flv_tags/ffmpeg-small.flv"
# Targets that read a piece size from the first byte get one prepended (0x10: 16-byte pieces).
{ printf '\x10'; head -c 3073 "$WORK/capture.bin"; } > "$FUZZ/corpus/handshake/ffmpeg-c0c1c2"
{ printf '\x10'; head -c 65536 "$WORK/capture.bin"; } > "$FUZZ/corpus/chunk_stream/ffmpeg-publish"
# AMF0 bodies: each starts with a string value (0x02, u16 length) naming a command or data.
python3 - "$WORK/capture.bin" "$FUZZ/corpus/amf0" <<'EOF'
import sys
capture = open(sys.argv[1], "rb").read()
for name in [b"connect", b"releaseStream", b"FCPublish", b"createStream", b"publish",
             b"@setDataFrame"]:
    start = capture.find(b"\x02" + len(name).to_bytes(2, "big") + name)
    if start >= 0:
        # Up to the next chunk header is close enough for a seed: the fuzzer trims it.
        open(f"{sys.argv[2]}/ffmpeg-{name.decode().lstrip('@')}", "wb").write(capture[start:start + 400])
EOF
ls -l "$FUZZ"/corpus/*
