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

root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
duration=${DURATION:-60}
ramp=${RAMP:-50}
# After the load generator ends: time for controld's pipelines to notice the publisher left
# (recording timeoutSeconds 1) and finish their recordings, and for nginx to close its HLS.
settle=3
account=bench
token=bench-token
media="$target/bench-media/vs-nginx-720p30-3mbps-60s.flv"
nginx_module=/usr/lib/nginx/modules/ngx_rtmp_module.so
if [ $# -gt 0 ]; then counts=("$@"); else counts=(1 50); fi

if [ ! -e "$nginx_module" ]; then
  echo "== installing libnginx-mod-rtmp (nginx-rtmp)"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y -q libnginx-mod-rtmp >/dev/null
fi

echo "== building controld and cfstream-loadgen (release)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml" \
  -p controld -p cfstream-loadgen --bin controld --bin cfstream-loadgen
controld="$target/release/controld"
loadgen="$target/release/cfstream-loadgen"

mkdir -p "$(dirname "$media")"
if [ ! -s "$media" ]; then
  echo "== making $media (60 s, 1280x720, 30 fps, 3 Mbps H.264, keyframe every 4 s, AAC)"
  ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f lavfi -i testsrc2=size=1280x720:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 \
    -c:v libx264 -preset veryfast -b:v 3M -maxrate 3M -bufsize 6M -pix_fmt yuv420p \
    -x264-params keyint=120:min-keyint=120:scenecut=0 \
    -c:a aac -b:a 128k -f flv "$media.tmp"
  mv "$media.tmp" "$media"
fi

work="$(mktemp -d)"
nginx_pid=""
controld_pid=""
cleanup() {
  for pid in $nginx_pid $controld_pid; do
    kill "$pid" 2>/dev/null || continue
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

clk_tck=$(getconf CLK_TCK)
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_listening() { # PORT PID NAME
  for _ in $(seq 100); do
    ss -ltn "sport = :$1" | grep -q LISTEN && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "$3 did not start listening on port $1" >&2
  exit 1
}
# utime + stime in seconds of PID and its child processes (nginx: master and workers).
cpu_seconds() {
  local pids
  pids="$1 $(pgrep -P "$1" | tr '\n' ' ')"
  for pid in $pids; do
    [ -r "/proc/$pid/stat" ] && sed 's/.*) //' "/proc/$pid/stat"
  done | awk -v hz="$clk_tck" '{ t += $12 + $13 } END { printf "%.3f", t / hz }'
}

start_nginx() {
  local port=$1 prefix="$work/nginx"
  mkdir -p "$prefix/hls"
  # nginx started as root runs its workers as nobody: they must reach and write the HLS path.
  chmod 755 "$work" "$prefix"
  chmod 1777 "$prefix/hls"
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" -e "s|@HLS_PATH@|$prefix/hls|g" \
    "$root/bench/nginx/nginx.conf.in" >"$prefix/nginx.conf"
  nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" &
  nginx_pid=$!
  wait_listening "$port" "$nginx_pid" nginx-rtmp
}

start_controld() {
  local port=$1
  mkdir -p "$work/controld"
  CONTROLD_ACCOUNT_ID=$account CONTROLD_API_TOKEN=$token CONTROLD_LOG=warn \
    "$controld" --data-dir "$work/controld" --http 127.0.0.1:0 --rtmp "127.0.0.1:$port" \
    >"$work/controld.out" 2>"$work/controld.err" &
  controld_pid=$!
  for _ in $(seq 100); do
    http=$(sed -n 's/^controld: http=\([^ ]*\) .*/\1/p' "$work/controld.out")
    [ -n "$http" ] && return 0
    sleep 0.1
  done
  echo "controld did not start:" >&2
  cat "$work/controld.err" >&2
  exit 1
}

# Creates N live inputs (recording automatic, 1 s reconnect window) and writes their RTMP URLs.
controld_urls() { # N FILE
  python3 - "$http" "/client/v4/accounts/$account/stream/live_inputs" "$token" "$1" >"$2" <<'EOF'
import http.client, json, sys
addr, path, token, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
host, port = addr.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port))
body = json.dumps({"meta": {"name": "vs-nginx"},
                   "recording": {"mode": "automatic", "timeoutSeconds": 1}})
for _ in range(count):
    conn.request("POST", path, body, {"Authorization": "Bearer " + token})
    response = conn.getresponse()
    reply = json.loads(response.read())
    if response.status != 200:
        sys.exit(f"creating a live input failed: {response.status} {reply}")
    rtmp = reply["result"]["rtmp"]
    print(rtmp["url"].rstrip("/") + "/" + rtmp["streamKey"])
EOF
}

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
  echo "  nginx    HLS: $(find "$work/nginx/hls" -name "bench$1-*.m3u8" | wc -l) playlists"
}
controld_hls() { # MARKER (a file older than the run's output)
  local media="$work/controld/media" finished segments
  finished=$(find "$media" -name video.m3u8 -newer "$1" -exec grep -l EXT-X-ENDLIST {} + | wc -l)
  segments=$(find "$media" -name 'seg-*.ts' -newer "$1" | wc -l)
  echo "  controld HLS: $finished finished recordings, $segments segments"
}

nginx_port=$(free_port)
start_nginx "$nginx_port"
controld_port=$(free_port)
start_controld "$controld_port"

echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "$(uname -sr), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo none)," \
  "$(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== each stream: $duration s of $(basename "$media"), ramp $ramp connections/s"
for n in "${counts[@]}"; do
  echo "N = $n"
  measure nginx "$nginx_pid" "$n" --url "rtmp://127.0.0.1:$nginx_port/live/bench$n-{n}"
  nginx_cpu=$last_cpu
  nginx_hls "$n"
  controld_urls "$n" "$work/urls-$n"
  touch "$work/before-$n"
  measure controld "$controld_pid" "$n" --url-file "$work/urls-$n"
  controld_hls "$work/before-$n"
  awk -v c="$last_cpu" -v g="$nginx_cpu" 'BEGIN {
    if (g > 0) printf "  ratio controld/nginx %.2f (target <= 0.7)\n", c / g
  }'
done
