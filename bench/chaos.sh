#!/usr/bin/env bash
# Chaos (issue 17, item 8): N reconnecting publishers stream into controld while it is killed with
# SIGKILL KILLS times, each time after a random (seeded) number of new segments got listed, and
# restarted on the same data dir and RTMP port. Prints per kill how long the new process took to
# have every publisher back, then the totals: restarts, take-back p50/max, recordings left
# live-inprogress, segments listed at a kill but dropped since, index.logs without `end`,
# segments checked (each exists with the size its index.log record gives, and its recording
# decodes with `ffmpeg -xerror` from controld's playlist) and the failures. Prints figures; exit
# status 1 when a check failed.
#
#   bench/chaos.sh
#
# Environment: N (publishers, default 100), KILLS (default 20), SEED (bash RANDOM seed of the
# kill schedule, default 17), RAMP (new connections per second, default 50), CARGO_TARGET_DIR.
# See bench/README.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
n=${N:-100}
kills=${KILLS:-20}
seed=${SEED:-17}

# state_count STATE: live inputs whose current status is STATE, from controld's /metrics.
state_count() {
  curl -sf "http://$controld_http/metrics" |
    awk -v want="cfstream_live_inputs{state=\"$1\"}" '$1 == want { c = $2 } END { print c + 0 }'
}

# await_publishers: waits up to 120 s until all N inputs are connected; prints the seconds since
# $1 (a `now` time) or "timeout".
await_publishers() {
  local since=$1
  for _ in $(seq 1200); do
    if [ "$(state_count connected)" -ge "$n" ]; then
      awk -v a="$since" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'
      return 0
    fi
    sleep 0.1
  done
  echo timeout
}

# recorded_segments: the path of every video segment a recording's index.log lists (whole
# lines only: a torn last line is not a record; segments below a `trim` are not listed).
recorded_segments() {
  python3 - "$data/media" <<'EOF'
import pathlib, sys
for log in pathlib.Path(sys.argv[1]).glob("*/*/index.log"):
    listed, trim = [], 0
    for record in log.read_bytes().decode(errors="replace").split("\n")[:-1]:
        fields = dict(w.split("=", 1) for w in record.split()[1:] if "=" in w)
        if record.startswith("seg kind=v "):
            listed.append(int(fields["seq"]))
        elif record.startswith("trim "):
            trim = int(fields["seq"])
    for seq in listed:
        if seq >= trim:
            print(log.parent / f"seg-{seq:08d}.v.m4s")
EOF
}

# await_new_segments K: waits (up to 120 s) until K more segments are listed than now.
await_new_segments() {
  local target
  target=$(($(recorded_segments | wc -l) + $1))
  for _ in $(seq 600); do
    [ "$(recorded_segments | wc -l)" -ge "$target" ] && return 0
    sleep 0.2
  done
  echo "  $1 new segments were not listed within 120 s" >&2
}

# live_in_progress: videos of the account still live-inprogress.
live_in_progress() {
  curl -sf -H "Authorization: Bearer $token" \
    "http://$controld_http$api_path?status=live-inprogress&limit=1000" |
    python3 -c 'import json, sys; print(len(json.load(sys.stdin)["result"]))'
}

build
make_small_media
bench_init
data="$work/controld"
port=$(free_port)
start_controld "$port" "$data"
machine_line
echo "== $n publishers of $(basename "$media") (cfstream-loadgen, retry every 0.2 s), $kills SIGKILLs," \
  "seed $seed"
create_inputs "$n" "$work/inputs"
awk '{ print $3 }' "$work/inputs" >"$work/urls"
"$loadgen" --file "$media" --url-file "$work/urls" --connections "$n" --ramp "${RAMP:-50}" \
  --duration 86400 --retry-delay 0.2 --quiet >"$work/loadgen.out" 2>&1 &
loadgen_pid=$!
bench_track "$loadgen_pid"
echo "all $n publishers connected after $(await_publishers "$(now)") s"

RANDOM=$seed
: >"$work/at-kills"
: >"$work/take-back"
for round in $(seq "$kills"); do
  wanted=$((1 + RANDOM % (2 * n)))
  await_new_segments "$wanted"
  kill -9 "$controld_pid"
  wait "$controld_pid" 2>/dev/null || true
  killed=$(now)
  recorded_segments >>"$work/at-kills"
  start_controld "$port" "$data"
  back=$(await_publishers "$killed")
  echo "$back" >>"$work/take-back"
  printf '  kill %2d after %3d new segments: every publisher back %s s after the kill\n' \
    "$round" "$wanted" "$back"
done

stop_pid "$loadgen_pid"
stuck=""
for _ in $(seq 600); do
  stuck=$(live_in_progress)
  [ "$stuck" -eq 0 ] && break
  sleep 0.2
done

sort -u "$work/at-kills" >"$work/at-kills.sorted"
recorded_segments | sort -u >"$work/recorded.sorted"
dropped=$(comm -23 "$work/at-kills.sorted" "$work/recorded.sorted" | wc -l)
timeouts=$(grep -c timeout "$work/take-back" || true)
read -r p50 max < <(grep -v timeout "$work/take-back" | sort -g |
  awk '{ v[NR] = $1 } END { if (NR) printf "%s %s\n", v[int((NR + 1) / 2)], v[NR]; else print "- -" }')

# Every recording finished (`end`); every listed segment there with its logged size; every
# recording decodes through controld's own playlist (init segments and all).
checks=$(nice -n 10 python3 - "$data/media" "http://$controld_http" <<'EOF'
import concurrent.futures, pathlib, subprocess, sys
media, base = pathlib.Path(sys.argv[1]), sys.argv[2]
logs = sorted(media.glob("*/*/index.log"))
unfinished, segments, recordings, broken, undecodable = 0, {}, [], [], []
for log in logs:
    records = log.read_bytes().decode(errors="replace").split("\n")[:-1]
    if "end" not in records:
        unfinished += 1
    listed, trim = {}, 0
    for record in records:
        fields = dict(w.split("=", 1) for w in record.split()[1:] if "=" in w)
        if record.startswith("seg "):
            name = f"seg-{int(fields['seq']):08d}.{fields['kind']}.m4s"
            listed[(int(fields["seq"]), name)] = int(fields["size"])
        elif record.startswith("trim "):
            trim = int(fields["seq"])
    kept = {log.parent / name: size for (seq, name), size in listed.items() if seq >= trim}
    segments.update(kept)
    if kept:
        recordings.append(log.parent.name)
for segment, size in sorted(segments.items()):
    actual = segment.stat().st_size if segment.exists() else 0
    if actual != size:
        broken.append(f"{segment} ({actual} bytes, {size} logged)")
def decode(video):
    url = f"{base}/{video}/manifest/video.m3u8"
    run = subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-xerror",
                          "-i", url, "-f", "null", "-"], capture_output=True, text=True)
    return None if run.returncode == 0 else f"{url}: {run.stderr.strip()[:300]}"
with concurrent.futures.ThreadPoolExecutor(2) as pool:
    undecodable = [e for e in pool.map(decode, recordings) if e]
for problem in broken + undecodable:
    print("  FAILED", problem, file=sys.stderr)
print(len(logs), len(recordings), unfinished, len(segments), len(broken), len(undecodable))
EOF
)
read -r playlists recordings unfinished checked broken undecodable <<<"$checks"
failures=$((dropped + unfinished + broken + undecodable + stuck + timeouts))
echo "restarts $kills, publishers back after a kill p50 ${p50} s max ${max} s ($timeouts timed out)"
echo "videos live-inprogress at the end $stuck; segments listed at a kill then dropped $dropped"
echo "index.logs $playlists ($unfinished without end), recordings decoded $recordings," \
  "segments checked $checked (broken $broken), recordings that do not decode $undecodable"
echo "failures $failures"
[ "$failures" -eq 0 ]
