# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared helpers of the bench/ scripts: `source "$(dirname "$0")/lib.sh"` after `set -euo pipefail`.
# Sourcing only defines variables and functions; nothing is built, started or written until a
# function is called. Call bench_init first (temp dir $work, cleanup of started servers on exit).
#
# Variables: root (repository), target ($CARGO_TARGET_DIR or target/), account / token (controld's
# fixed account id and API token), api_path (the stream API path of that account), media (the
# cached 60 s FLV), small_media (a 300 kbps one), nginx_module, clk_tck. Set by functions: work
# (bench_init); controld, loadgen (build); media (make_small_media); controld_pid, controld_http,
# controld_api, controld_rtmp, controld_rtmp_url (start_controld); nginx_pid, nginx_hls_dir
# (start_nginx).

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
account=bench
token=bench-token
api_path="/client/v4/accounts/$account/stream"
media="$target/bench-media/vs-nginx-720p30-3mbps-60s.flv"
small_media="$target/bench-media/small-180p15-300kbps-60s.flv"
nginx_module=/usr/lib/nginx/modules/ngx_rtmp_module.so
clk_tck=$(getconf CLK_TCK)
work=""
controld_pid=""
nginx_pid=""
# Extra pids killed (and waited for) by bench_cleanup; append with bench_track PID.
bench_pids=()

# bench_init: makes the temp dir $work and installs bench_cleanup as the EXIT trap.
bench_init() {
  work="$(mktemp -d)"
  trap bench_cleanup EXIT
}

# bench_track PID: have bench_cleanup stop PID too.
bench_track() {
  bench_pids+=("$1")
}

# stop_pid PID: SIGTERM one process and wait for it (no error if it is already gone).
stop_pid() {
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || return 0
  wait "$1" 2>/dev/null || true
}

# bench_cleanup: stops nginx, controld and tracked pids, keeps the evidence of a crash
# (keep_crash), removes $work (the EXIT trap).
bench_cleanup() {
  local pid
  for pid in $nginx_pid $controld_pid "${bench_pids[@]}"; do
    stop_pid "$pid"
  done
  [ -n "$work" ] && keep_crash && rm -rf "$work"
  return 0
}

# keep_crash: when a process started in $work dumped core there (the kernel's core_pattern must
# be a plain file name, e.g. "core"), moves the core with controld's stdout/stderr to
# $target/crashes/<UTC time>/ and says so.
keep_crash() {
  local cores=("$work"/core*) keep
  [ -e "${cores[0]}" ] || return 0
  keep="$target/crashes/$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir -p "$keep"
  mv "${cores[@]}" "$keep/"
  cp "$work"/*.err "$work"/*.out "$keep/" 2>/dev/null || true
  echo "a process crashed: core and logs kept in $keep (gdb ${controld:-controld} $keep/core*)" >&2
}

# free_port: prints a loopback TCP port that was free a moment ago.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_listening PORT PID NAME: waits up to 10 s for a TCP listener on PORT; exits if PID died.
wait_listening() {
  for _ in $(seq 100); do
    ss -ltn "sport = :$1" | grep -q LISTEN && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "$3 did not start listening on port $1" >&2
  exit 1
}

# cpu_seconds PID: utime + stime in seconds of PID and its child processes (nginx: master and workers).
cpu_seconds() {
  local pids pid
  pids="$1 $(pgrep -P "$1" | tr '\n' ' ')"
  for pid in $pids; do
    [ -r "/proc/$pid/stat" ] && sed 's/.*) //' "/proc/$pid/stat"
  done | awk -v hz="$clk_tck" '{ t += $12 + $13 } END { printf "%.3f", t / hz }'
}

# proc_figures PID [FIELD ...]: prints fields of /proc/PID/status (default VmRSS Threads) on one line.
proc_figures() {
  local pid=$1
  shift
  [ $# -gt 0 ] || set -- VmRSS Threads
  awk -v want="$*" 'BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) f[w[i] ":"] = 1 }
    ($1 in f) { printf "%s %s %s  ", $1, $2, $3 } END { print "" }' "/proc/$pid/status"
}

# now: wall clock in seconds with nanoseconds.
now() {
  date +%s.%N
}

# median X ...: prints the median of the numbers given.
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# machine_line: prints "== cores, CPU model, kernel, commit, UTC time, load average".
machine_line() {
  echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
    "$(uname -sr), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo none)," \
    "$(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# build: release-builds controld and cfstream-loadgen; sets $controld and $loadgen.
build() {
  # From a fresh checkout: the packages the build and the scripts need (idempotent, quick).
  "$root/scripts/setup.sh" >&2
  echo "== building controld and cfstream-loadgen (release)"
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" \
    -p controld -p cfstream-loadgen --bin controld --bin cfstream-loadgen
  controld="$target/release/controld"
  loadgen="$target/release/cfstream-loadgen"
}

# make_media: makes $media once (60 s 720p30 3 Mbps H.264, keyframe every 4 s, 128 kbps AAC FLV).
make_media() {
  make_flv "$media" 1280x720 30 3M 128k
}

# make_small_media: makes $small_media once (60 s 320x180 15 fps 300 kbps H.264, keyframe every
# 4 s, 64 kbps AAC FLV), a tenth of $media's bytes for many streams without filling the disk, and
# sets media to it.
make_small_media() {
  make_flv "$small_media" 320x180 15 300k 64k
  media=$small_media
}

# make_flv FILE SIZE FPS VIDEO_BITRATE AUDIO_BITRATE: makes FILE once, 60 s of test pattern
# (x264, a keyframe every 4 s, closed GOPs) and a 440 Hz tone (AAC).
make_flv() {
  local file=$1 size=$2 fps=$3 video=$4 audio=$5 keyint=$(($3 * 4))
  mkdir -p "$(dirname "$file")"
  [ -s "$file" ] && return 0
  echo "== making $file (60 s, $size, $fps fps, $video H.264, keyframe every 4 s, AAC)"
  ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=$size:rate=$fps" \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 \
    -c:v libx264 -preset veryfast -b:v "$video" -maxrate "$video" -bufsize "$((${video%[kM]} * 2))${video: -1}" \
    -pix_fmt yuv420p -x264-params "keyint=$keyint:min-keyint=$keyint:scenecut=0" \
    -c:a aac -b:a "$audio" -f flv "$file.tmp"
  mv "$file.tmp" "$file"
}

# install_debug_tools: apt-get installs valgrind and llvm (llvm-symbolizer, which
# AddressSanitizer uses to name source lines in its reports) when missing.
install_debug_tools() {
  command -v valgrind >/dev/null && command -v llvm-symbolizer >/dev/null && return 0
  echo "== installing valgrind and llvm"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y -q valgrind llvm >/dev/null
}

# install_nginx_rtmp: apt-get installs libnginx-mod-rtmp when $nginx_module is missing.
install_nginx_rtmp() {
  [ -e "$nginx_module" ] && return 0
  echo "== installing libnginx-mod-rtmp (nginx-rtmp)"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y -q libnginx-mod-rtmp >/dev/null
}

# start_controld [RTMP_PORT=0] [DATA_DIR=$work/controld]: starts controld (HTTP on a free loopback
# port, fixed account and token, CONTROLD_LOG=warn) and waits for its ready line. Sets and exports
# controld_pid, controld_http (ADDR), controld_api (http://ADDR$api_path), controld_rtmp (ADDR)
# and controld_rtmp_url (rtmp://ADDR/live). Data survive a stop_controld + start_controld.
start_controld() {
  local port=${1:-0} data=${2:-$work/controld} line
  mkdir -p "$data"
  # In $work with core dumps on, so that a crash leaves a core for bench_cleanup to keep.
  (
    cd "$work" && ulimit -c unlimited 2>/dev/null
    # Every load-generator connection comes from 127.0.0.1: no per-address cap unless asked.
    export CONTROLD_MAX_UNAUTHENTICATED_PER_ADDRESS=${CONTROLD_MAX_UNAUTHENTICATED_PER_ADDRESS:-0}
    CONTROLD_ACCOUNT_ID=$account CONTROLD_API_TOKEN=$token CONTROLD_LOG=warn \
      exec "$controld" --data-dir "$data" --http 127.0.0.1:0 --rtmp "127.0.0.1:$port"
  ) >"$data.out" 2>"$data.err" &
  controld_pid=$!
  for _ in $(seq 300); do
    line=$(grep -m1 '^controld: http=' "$data.out" || true)
    if [ -n "$line" ]; then
      controld_http=${line#controld: http=}
      controld_http=${controld_http%% *}
      controld_rtmp=${line#* rtmp=}
      controld_rtmp=${controld_rtmp%% *}
      controld_api="http://$controld_http$api_path"
      controld_rtmp_url="rtmp://$controld_rtmp/live"
      export controld_pid controld_http controld_api controld_rtmp controld_rtmp_url
      return 0
    fi
    kill -0 "$controld_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "controld did not start:" >&2
  cat "$data.err" >&2
  exit 1
}

# stop_controld: SIGTERM controld (it finishes live recordings first) and wait for it to exit.
stop_controld() {
  stop_pid "$controld_pid"
  controld_pid=""
}

# restart_controld: stop_controld, then start_controld on the same data dir (new ports); prints how
# long the start took (until the ready line).
restart_controld() {
  local t0
  stop_controld
  t0=$(now)
  start_controld 0
  awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "controld restarted: ready after %.2f s\n", b - a }'
}

# create_inputs N FILE [BODY] [PARALLEL=4]: creates N live inputs through controld's API over
# PARALLEL keep-alive connections; writes "UID STREAM_KEY RTMP_URL/STREAM_KEY" per input to FILE.
# BODY defaults to recording automatic with a 1 s reconnect window; "{n}" in it becomes 1..N.
create_inputs() {
  local body=${3:-'{"meta":{"name":"bench {n}"},"recording":{"mode":"automatic","timeoutSeconds":1}}'}
  python3 - "$controld_http" "$api_path/live_inputs" "$token" "$1" "$body" "${4:-4}" >"$2" <<'EOF'
import http.client, json, sys, threading
addr, path, token, count, body, parallel = sys.argv[1:7]
host, port = addr.rsplit(":", 1)
count, parallel = int(count), max(1, int(sys.argv[6]))
lines, errors = [None] * count, []
def worker(start):
    conn = http.client.HTTPConnection(host, int(port))
    for i in range(start, count, parallel):
        if errors:
            return
        conn.request("POST", path, body.replace("{n}", str(i + 1)),
                     {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read()
        if response.status != 200:
            errors.append(f"creating a live input failed: {response.status} {raw[:300]!r}")
            return
        result = json.loads(raw)["result"]
        rtmp = result["rtmp"]
        lines[i] = f'{result["uid"]} {rtmp["streamKey"]} {rtmp["url"].rstrip("/")}/{rtmp["streamKey"]}'
threads = [threading.Thread(target=worker, args=(k,)) for k in range(min(parallel, count))]
for t in threads: t.start()
for t in threads: t.join()
if errors:
    sys.exit(errors[0])
print("\n".join(lines))
EOF
}

# start_nginx PORT: starts nginx-rtmp in the foreground from bench/nginx/nginx.conf.in (prefix
# $work/nginx, HLS into $nginx_hls_dir) and waits until it listens; sets nginx_pid.
start_nginx() {
  local port=$1 prefix="$work/nginx"
  nginx_hls_dir="$prefix/hls"
  mkdir -p "$nginx_hls_dir"
  # nginx started as root runs its workers as nobody: they must reach and write the HLS path.
  chmod 755 "$work" "$prefix"
  chmod 1777 "$nginx_hls_dir"
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" -e "s|@HLS_PATH@|$nginx_hls_dir|g" \
    "$root/bench/nginx/nginx.conf.in" >"$prefix/nginx.conf"
  nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" &
  nginx_pid=$!
  wait_listening "$port" "$nginx_pid" nginx-rtmp
}

# stop_nginx: stops nginx-rtmp (master and workers) and waits for the master.
stop_nginx() {
  stop_pid "$nginx_pid"
  nginx_pid=""
}

# --- Segment latency (bench/segment-latency.sh, capacity.sh, soak.sh) ---

# kv LINE KEY: prints the value of KEY=VALUE in LINE (empty when absent).
kv() {
  printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1
}

# fd_count PID: the number of open file descriptors of PID.
fd_count() {
  find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

# latency_inputs N: creates N live inputs (create_inputs' default body: recording automatic, 1 s
# reconnect window) and, in a new directory $latency_dir, their publish URLs ("urls": rtmps://
# on $controld_rtmps when that is set, else the API's rtmp:// URLs) and playback URLs
# ("playlists": http://$controld_http/UID/manifest/video.m3u8, which cfstream-loadgen follows
# to the current broadcast's media playlist), one per line for cfstream-loadgen.
latency_inputs() {
  latency_dir=$(mktemp -d "$work/latency-$1-XXXX")
  create_inputs "$1" "$latency_dir/inputs"
  awk -v base="http://$controld_http" '{ print base "/" $1 "/manifest/video.m3u8" }' \
    "$latency_dir/inputs" >"$latency_dir/playlists"
  if [ -n "${controld_rtmps:-}" ]; then
    awk -v base="rtmps://$controld_rtmps/live" '{ print base "/" $2 }' "$latency_dir/inputs" \
      >"$latency_dir/urls"
  else
    awk '{ print $3 }' "$latency_dir/inputs" >"$latency_dir/urls"
  fi
}

# latency_args N DURATION [ARG ...]: sets the array loadgen_args: publish $media to the inputs of
# $latency_dir for DURATION s (ramp $RAMP, default 50 connections/s, --quiet) with segment latency
# measured through their playlists (--insecure for RTMPS); ARGs are appended.
latency_args() {
  local n=$1 duration=$2
  shift 2
  loadgen_args=(--file "$media" --url-file "$latency_dir/urls" --connections "$n"
    --ramp "${RAMP:-50}" --duration "$duration" --playlists "$latency_dir/playlists" --quiet)
  [ -n "${controld_rtmps:-}" ] && loadgen_args+=(--insecure)
  loadgen_args+=("$@")
}

# latency_loadgen N DURATION [ARG ...]: runs the load generator with latency_args' arguments;
# output in $latency_dir/out. Exit status: the load generator's (1 = some connection had errors).
latency_loadgen() {
  latency_args "$@"
  "$loadgen" "${loadgen_args[@]}" >"$latency_dir/out"
}

# latency_results: reads $latency_dir/out; sets loadgen_line, latency_line (the load generator's
# total: and latency: lines), errors, late, missing, p50, p99, max_ms, segments, loadgen_cpu.
latency_results() {
  loadgen_line=$(grep -m1 '^total: ' "$latency_dir/out" || true)
  latency_line=$(grep -m1 '^latency: ' "$latency_dir/out" || true)
  errors=$(kv "$loadgen_line" errors)
  loadgen_cpu=$(kv "$loadgen_line" loadgen_cpu_seconds)
  late=$(kv "$latency_line" late)
  missing=$(kv "$latency_line" missing)
  segments=$(kv "$latency_line" segments)
  p50=$(kv "$latency_line" p50_ms)
  p99=$(kv "$latency_line" p99_ms)
  max_ms=$(kv "$latency_line" max_ms)
}

# latency_load N DURATION [ARG ...]: latency_inputs + latency_loadgen (ARGs appended to its
# arguments) + latency_results, with controld's CPU over the run (from before the first
# connection to 3 s after the load generator ended: recordings finish 1 s after their publisher
# left). Also sets controld_cpu (s), wall (s), controld_pct and loadgen_pct (% of one core over
# the wall time).
latency_load() {
  local n=$1 duration=$2 before after start
  shift 2
  latency_inputs "$n"
  before=$(cpu_seconds "$controld_pid")
  start=$(now)
  latency_loadgen "$n" "$duration" "$@" || true
  sleep 3
  after=$(cpu_seconds "$controld_pid")
  wall=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  latency_results
  controld_cpu=$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.2f", b - a }')
  controld_pct=$(awk -v c="$controld_cpu" -v w="$wall" 'BEGIN { printf "%.1f", 100 * c / w }')
  loadgen_pct=$(awk -v c="${loadgen_cpu:-0}" -v w="$wall" 'BEGIN { printf "%.1f", 100 * c / w }')
}

# start_controld_rtmps: start_controld with an RTMPS listener too (self-signed certificate for
# 127.0.0.1 made with openssl in $work); sets controld_rtmps (ADDR).
start_controld_rtmps() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$work/tls-key.pem" -out "$work/tls-cert.pem" \
    2>/dev/null
  CONTROLD_RTMPS=127.0.0.1:0 CONTROLD_TLS_CERT="$work/tls-cert.pem" \
    CONTROLD_TLS_KEY="$work/tls-key.pem" start_controld
  controld_rtmps=$(sed -n 's/^controld: .* rtmps=\([^ ]*\).*/\1/p' "$work/controld.out")
  if [ -z "$controld_rtmps" ]; then
    echo "controld did not report an RTMPS listener" >&2
    exit 1
  fi
}
