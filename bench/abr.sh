#!/usr/bin/env bash
# CPU cost of adaptive bitrate (issue 14): fount's CPU per rendition when
# EVENTS streams are each pushed as a 3-rendition ladder (grouped pushes,
# ?variant=) against the same renditions pushed as 3×EVENTS plain streams.
# The same bytes arrive either way (one ffmpeg -c copy per event, three
# outputs each), so the difference is what renditions cost: alignment,
# the multivariant and I-frame playlists, rendition reports.
# Needs ffmpeg and Go; installs nothing. Usage:
#   bench/abr.sh [--events N] [--seconds S] [--warmup S] [--low-latency true|false] [--out FILE]
set -euo pipefail

events=5 seconds=30 warmup=8 ll=true out=""
while [ $# -gt 0 ]; do
	case "$1" in
	--events) events=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--warmup) warmup=$2; shift 2 ;;
	--low-latency) ll=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/fount-abr-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/fount" ./cmd/fount)
# The test ladder: 1280x720 2.5 Mbit/s, 854x480 1.2, 640x360 0.6, forced
# keyframes every 2 s, AAC 96k; 30 s, pushed in a loop.
clip="$work/ladder.mkv"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30 \
	-f lavfi -i sine=frequency=440:sample_rate=48000 -t 30 \
	-filter_complex "[0:v]split=3[a][b][c];[b]scale=854:480[b2];[c]scale=640:360[c2]" \
	-map "[a]" -map "[b2]" -map "[c2]" -map 1:a -c:v libx264 -preset ultrafast -tune zerolatency \
	-b:v:0 2500k -b:v:1 1200k -b:v:2 600k -g 60 -keyint_min 60 -sc_threshold 0 \
	-force_key_frames "expr:gte(t,n_forced*2)" -pix_fmt yuv420p -c:a aac -b:a 96k "$clip"

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }

# run MODE: starts fount, pushes, and prints fount's CPU (% of one core)
# over the measured interval.
run() {
	local mode=$1 port=$((20000 + RANDOM % 20000))
	"$work/fount" serve --rtmp-addr 127.0.0.1:$port --http-addr 127.0.0.1:$((port + 1)) \
		--api-addr 127.0.0.1:$((port + 2)) --low-latency="$ll" >"$work/fount-$mode.log" 2>&1 &
	local fpid=$!
	pids+=("$fpid")
	for _ in $(seq 50); do
		curl -s -o /dev/null "http://127.0.0.1:$((port + 2))/api/v1/streams" && break
		sleep 0.1
	done
	local push=()
	for e in $(seq "$events"); do
		local args=(-hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$clip")
		for r in 0 1 2; do
			local name=${mode}$e-$r
			[ "$mode" = grouped ] && name="event$e?variant=r$r"
			args+=(-map "0:v:$r" -map 0:a -c copy -f flv "rtmp://127.0.0.1:$port/live/$name")
		done
		ffmpeg "${args[@]}" &
		push+=($!)
		pids+=($!)
	done
	sleep "$warmup"
	local c0 c1
	c0=$(cpu "$fpid")
	sleep "$seconds"
	c1=$(cpu "$fpid")
	curl -s "http://127.0.0.1:$((port + 2))/api/v1/streams" >"$work/streams-$mode.json"
	for p in "${push[@]}"; do kill "$p" 2>/dev/null || true; done
	kill "$fpid"
	wait "$fpid" 2>/dev/null || true
	awk -v a="$c0" -v b="$c1" -v t="$ticks" -v s="$seconds" 'BEGIN{printf "%.2f", (b-a)/t/s*100}'
}

plain=$(run plain)
grouped=$(run grouped)
n=$((events * 3))
report=$(cat <<EOF
# ABR CPU: $events events × 3 renditions, $(date -u +%Y-%m-%d)

\`bench/abr.sh --events $events --seconds $seconds --low-latency $ll\` on $(nproc) cores
($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')). The same $n renditions
(2.5, 1.2 and 0.6 Mbit/s H.264 + 96k AAC, -c copy from ffmpeg) pushed as $n plain streams, then
as $events streams of 3 grouped renditions. fount's CPU over ${seconds} s after ${warmup} s warm-up.

| | fount CPU (% of one core) | per rendition |
|---|---|---|
| $n plain streams | $plain | $(awk -v c="$plain" -v n="$n" 'BEGIN{printf "%.3f", c/n}') |
| $events × 3 grouped renditions | $grouped | $(awk -v c="$grouped" -v n="$n" 'BEGIN{printf "%.3f", c/n}') |
| grouped / plain | $(awk -v a="$grouped" -v b="$plain" 'BEGIN{printf "%.2f×", a/b}') | |
EOF
)
echo "$report"
[ -n "$out" ] && echo "$report" >"$out"
exit 0
