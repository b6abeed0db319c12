#!/usr/bin/env bash
# Benchmark suite for fount (issue #7): ingest, viewers, latency, startup.
# Starts the origin (fount built from this tree, or Debian's nginx with
# libnginx-mod-rtmp), drives it with fount-bench, samples the origin's CPU
# (utime+stime from /proc/PID/stat) and RSS (VmRSS) and writes a markdown
# results file. See bench/README.md. It installs nothing.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: bench/run.sh [options]

  --quick                 tiny smoke run (~2 minutes): small sizes, 8 s windows
  --target fount|nginx    origin to start (default fount); nginx = nginx-rtmp HLS
  --origin-rtmp URL       use an origin that is already running instead:
  --origin-http URL         rtmp://HOST:PORT/APP, http://HOST:PORT and its PID
  --origin-pid PID          (CPU and RSS are sampled from that PID and its children)
  --sizes LIST            which parts: ingest,ffmpeg,viewers,latency,startup (default all),
                          whep (not in the default: WebRTC viewers beside classic and LL-HLS)
  --ingest "N ..."        publisher counts (default "1 10 50 200")
  --ffmpeg "N ..."        real ffmpeg publisher counts for the ffmpeg part (default "1 20 100")
  --ffmpeg-targets "..."  origins the ffmpeg part runs one after the other, in the same run
                          (default "fount nginx"; nginx needs libnginx-mod-rtmp)
  --viewers "M ..."       viewer counts on one stream (default "100 1000 3000")
  --modes "classic ll"    viewer modes to run (default both for fount; nginx: classic)
  --rounds R              whep part: run its modes (whep, classic, ll) R times, alternating
                          (default 1)
  --seconds S             measured interval per size (default 60)
  --warmup S              settle time before measuring (default 10)
  --out FILE              results file (default bench/results/<date>-<host>.md)
  -h, --help              this help
USAGE
}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
target=fount
quick=0
origin_rtmp="" origin_http="" origin_pid=""
sizes="ingest,ffmpeg,viewers,latency,startup"
ingest_sizes="1 10 50 200"
ffmpeg_sizes="1 20 100"
ffmpeg_targets="fount nginx"
viewer_sizes="100 1000 3000"
modes_opt=""
rounds=1
seconds=60
warmup=10
out=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--target) target=${2:?}; shift ;;
	--origin-rtmp) origin_rtmp=${2:?}; shift ;;
	--origin-http) origin_http=${2:?}; shift ;;
	--origin-pid) origin_pid=${2:?}; shift ;;
	--sizes) sizes=${2:?}; shift ;;
	--ingest) ingest_sizes=${2:?}; shift ;;
	--ffmpeg) ffmpeg_sizes=${2:?}; shift ;;
	--ffmpeg-targets) ffmpeg_targets=${2:?}; shift ;;
	--viewers) viewer_sizes=${2:?}; shift ;;
	--modes) modes_opt=${2:?}; shift ;;
	--rounds) rounds=${2:?}; shift ;;
	--seconds) seconds=${2:?}; shift ;;
	--warmup) warmup=${2:?}; shift ;;
	--out) out=${2:?}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
if [ "$quick" = 1 ]; then
	ingest_sizes="1 5" ffmpeg_sizes="1 5" viewer_sizes="20 100" seconds=8 warmup=3
fi
external=0
if [ -n "$origin_rtmp$origin_http$origin_pid" ]; then
	if [ -z "$origin_rtmp" ] || [ -z "$origin_http" ] || [ -z "$origin_pid" ]; then
		echo "run.sh: --origin-rtmp, --origin-http and --origin-pid go together" >&2
		exit 2
	fi
	[ -r "/proc/$origin_pid/stat" ] || { echo "run.sh: no process $origin_pid" >&2; exit 2; }
	external=1 target=external
fi
case "$target" in fount | nginx | external) ;; *) echo "run.sh: --target fount or nginx" >&2; exit 2 ;; esac
for mode in $modes_opt; do
	case "$mode:$target" in
	classic:fount | ll:fount | classic:nginx | auto:external) ;;
	*) echo "run.sh: --modes: $mode is not a mode for this origin (fount: classic ll; nginx: classic; an origin of your own: auto)" >&2; exit 2 ;;
	esac
done
has() { case ",$sizes," in *",$1,"*) return 0 ;; esac; return 1; }
case "$rounds" in '' | *[!0-9]* | 0) echo "run.sh: --rounds: a whole number >= 1" >&2; exit 2 ;; esac
if has whep && [ "$target" != fount ]; then
	echo "run.sh: the whep part needs fount (it starts its own, with WebRTC on loopback)" >&2
	exit 2
fi
# The ffmpeg part compares origins in one run: it starts its own.
if has ffmpeg && [ "$external" = 1 ]; then
	ffmpeg_targets=external
fi
for t in $ffmpeg_targets; do
	case "$t" in fount | nginx | external) ;; *) echo "run.sh: --ffmpeg-targets: fount or nginx, not $t" >&2; exit 2 ;; esac
done

# Tools: say which Debian package is missing, install nothing.
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 (Debian package: $2)"); }
need go golang-go
need ffmpeg ffmpeg
need getconf libc-bin
module=/usr/lib/nginx/modules/ngx_rtmp_module.so
if [ "$target" = nginx ] || { has ffmpeg && [[ " $ffmpeg_targets " == *" nginx "* ]]; }; then
	need nginx nginx
	[ -f "$module" ] || missing+=("$module (Debian package: libnginx-mod-rtmp)")
fi
if [ ${#missing[@]} -gt 0 ]; then
	printf 'run.sh: missing: %s\n' "${missing[@]}" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/fount-bench-run.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

log "building into $work"
(cd "$root" && go build -o "$work/fount-bench" ./cmd/fount-bench)
if [ "$target" = fount ] || { has ffmpeg && [[ " $ffmpeg_targets " == *" fount "* ]]; }; then
	(cd "$root" && go build -o "$work/fount" ./cmd/fount)
fi
log "recording the test clip (10 s 1280x720 30 fps H.264 2.5 Mbit/s + AAC, 2 s GOP)"
ffmpeg -hide_banner -loglevel error -nostdin -y \
	-f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
	-t 10 -c:v libx264 -preset veryfast -profile:v high -b:v 2500k -maxrate 2500k -bufsize 5000k \
	-g 60 -keyint_min 60 -sc_threshold 0 -bf 2 -pix_fmt yuv420p -c:a aac -ac 2 -b:a 128k "$work/clip.flv"

hz=$(getconf CLK_TCK)
bench="$work/fount-bench"
allow=()
[ "$external" = 1 ] && allow=(--allow-remote)

# free_port picks a loopback port nobody listens on.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# procs lists PID and its descendants (nginx: master and workers).
procs() {
	local p=$1 c
	echo "$p"
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do procs "$c"; done
}
# ticks is the CPU time (utime+stime, clock ticks) of PID and children.
ticks() {
	local sum=0 p f
	for p in $(procs "$1"); do
		# Fields after the ")" that ends the command name: utime is 12th, stime 13th.
		f=$(sed 's/.*) //' /proc/"$p"/stat 2>/dev/null) || continue
		set -- $f
		sum=$((sum + ${12} + ${13}))
	done
	echo "$sum"
}
# ticks_all is ticks summed over several PIDs (and their children).
ticks_all() {
	local sum=0 p
	for p in "$@"; do sum=$((sum + $(ticks "$p"))); done
	echo "$sum"
}
# rss_kb is the resident memory of PID and children, shared memory left
# out: fount maps its memory files, which media_kb counts whole.
rss_kb() {
	local sum=0 p v
	for p in $(procs "$1"); do
		v=$(awk '/^VmRSS:/ {r = $2} /^RssShmem:/ {s = $2} END {print r - s}' /proc/"$p"/status 2>/dev/null) || continue
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}
# memfd_kb is the memory held in memory files (memfd) by PID and children:
# fount keeps its segments there, outside its RSS (docs/performance.md).
# Blocks allocated, so a sparse hole costs nothing.
memfd_kb() {
	local p blocks=0 b
	for p in $(procs "$1"); do
		for b in $(find /proc/"$p"/fd -lname '/memfd:*' -print0 2>/dev/null | xargs -0r stat -L -c %b 2>/dev/null); do
			blocks=$((blocks + b))
		done
	done
	echo $((blocks / 2))
}
# media_kb is where the origin keeps its media: fount's memory files, or
# nginx-rtmp's fragment files (on disk, cached in the page cache).
media_kb() {
	if [ -n "$origin_hls_dir" ] && [ "$target" = nginx ]; then
		du -sk "$origin_hls_dir" 2>/dev/null | cut -f1
	else
		memfd_kb "$1"
	fi
}
# cpu_pct PID SECONDS: % of one core over the next SECONDS.
cpu_pct() {
	local t0 t1 s0 s1
	t0=$(ticks "$1")
	s0=$(date +%s.%N)
	sleep "$2"
	t1=$(ticks "$1")
	s1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" -v s="$s0" -v e="$s1" -v hz="$hz" 'BEGIN { printf "%.1f", (b - a) / hz / (e - s) * 100 }'
}
# jnum FILE KEY: the first number after "KEY": in a fount-bench JSON file;
# jsub FILE OBJECT KEY: the same inside the named object.
# A key left out of the JSON (omitempty) reads as 0.
jnum() { { grep -o "\"$2\": [0-9.e+-]*" "$1" 2>/dev/null || echo ": 0"; } | awk 'NR == 1 {print $2}'; }
jsub() { { sed -n "/\"$2\": {/,/^  }/p" "$1" 2>/dev/null | grep -o "\"$3\": [0-9.e+-]*" || echo ": 0"; } | awk 'NR == 1 {print $2}'; }

# r0 rounds to a whole number.
r0() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }

wait_http() {
	local i
	for i in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "run.sh: origin did not listen on port $1" >&2
	return 1
}

origin_pid_now=""
origin_hls_dir="" # nginx-rtmp: where it writes its fragments
rtmp_url="" http_url=""
# start_origin MODE: MODE is ll (fount defaults: fMP4 LL-HLS) or classic
# (fount: --segment-format ts --low-latency=false); nginx-rtmp is classic.
start_origin() {
	if [ "$external" = 1 ]; then
		origin_pid_now=$origin_pid rtmp_url=$origin_rtmp http_url=$origin_http
		return
	fi
	local rp hp flags=()
	rp=$(free_port) hp=$(free_port)
	rtmp_url="rtmp://127.0.0.1:$rp/live" http_url="http://127.0.0.1:$hp"
	if [ "$target" = fount ]; then
		# Above fount's one-machine defaults (100 publishers, 200 streams):
		# the ingest sizes go to 200 streams.
		flags=(--max-publishers 500 --max-streams 500)
		# WebRTC (WHEP) on a loopback port of its own, not fount's
		# default :8189 on every interface.
		flags+=(--webrtc-udp-addr "127.0.0.1:$(free_port)")
		[ "$1" = classic ] && flags+=(--segment-format ts --low-latency=false)
		"$work/fount" serve --rtmp-addr "127.0.0.1:$rp" --http-addr "127.0.0.1:$hp" --api-addr "" \
			--log-level warn "${flags[@]}" 2>>"$work/origin.log" &
	else
		local d="$work/nginx-$rp"
		origin_hls_dir="$d/hls"
		mkdir -p "$d/hls" "$d/tmp"
		local user=""
		[ "$(id -u)" = 0 ] && user="user root;"
		sed -e "s|@MODULE@|$module|; s|@USER@|$user|; s|@DIR@|$d|g; s|@RTMP_PORT@|$rp|; s|@HTTP_PORT@|$hp|" \
			"$here/nginx-rtmp.conf.tmpl" >"$d/nginx.conf"
		nginx -p "$d" -c "$d/nginx.conf" -g "daemon off;" 2>>"$work/origin.log" &
	fi
	origin_pid_now=$!
	pids+=("$origin_pid_now")
	wait_http "$hp"
}
stop_origin() {
	[ "$external" = 1 ] && return
	kill "$origin_pid_now" 2>/dev/null || true
	wait "$origin_pid_now" 2>/dev/null || true
}

host=$(hostname -s 2>/dev/null || hostname)
if [ -z "$out" ]; then
	mkdir -p "$here/results"
	out="$here/results/$(date +%Y-%m-%d)-$host.md"
	[ "$quick" = 1 ] && out="$here/results/$(date +%Y-%m-%d)-$host-quick.md"
fi
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
{
	echo "# fount-bench results: $target, $(date -u +%Y-%m-%dT%H:%MZ), $host"
	echo
	echo "- machine: $(nproc) cores, ${cpu_model:-unknown CPU}, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- origin: $target$([ "$target" = fount ] && echo ", $(cd "$root" && git describe --always --dirty 2>/dev/null || echo unknown), $(go version | cut -d' ' -f3)")$([ "$target" = nginx ] && echo ", $(nginx -v 2>&1 | cut -d/ -f2), libnginx-mod-rtmp")"
	echo "- stream: 1280x720 30 fps H.264 ~2.5 Mbit/s + 128 kbit/s AAC, 2 s GOP, replayed by fount-bench publish"
	echo "- CPU: utime+stime of the origin (and its children) over ${seconds} s after ${warmup} s warm-up, in % of one core; RSS: VmRSS less RssShmem; media files: fount's memory files (memfd), nginx-rtmp's HLS directory (du)"
	echo "- run: bench/run.sh $([ "$quick" = 1 ] && echo --quick) --sizes $sizes$(has whep && echo " --viewers \"$viewer_sizes\" --seconds $seconds --warmup $warmup --rounds $rounds")"
	echo
} >"$out"
results() { echo "$*" >>"$out"; }

# --- ingest (and startup, measured by the same publishers) -------------------
startup_rows=()
if has ingest || has startup; then
	log "ingest: ${ingest_sizes// /, } streams"
	results "## Ingest (publish only, no viewers)"
	results ""
	results "| streams | origin CPU | per stream | RSS | idle RSS | media files | memory per stream (RSS growth + media files) | publishers ok | load tool CPU |"
	results "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	for n in $ingest_sizes; do
		start_origin ll
		sleep 1
		idle=$(rss_kb "$origin_pid_now")
		ramp=$(( n < 10 ? 1 : 5 ))
		dur=$((ramp + warmup + seconds + 3))
		"$bench" publish "${allow[@]}" --url "$rtmp_url" --streams "$n" --name-prefix "ing$n" --file "$work/clip.flv" \
			--duration "${dur}s" --ramp "${ramp}s" --startup-url "$http_url" --json "$work/pub-$n.json" >"$work/pub-$n.txt" 2>&1 &
		pub=$!
		pids+=("$pub")
		sleep $((ramp + warmup))
		tt0=$(ticks "$pub")
		cpu=$(cpu_pct "$origin_pid_now" "$seconds")
		tt1=$(ticks "$pub")
		rss=$(rss_kb "$origin_pid_now")
		mfd=$(media_kb "$origin_pid_now")
		wait "$pub" || true
		stop_origin
		conn=$(jnum "$work/pub-$n.json" connected)
		drop=$(jnum "$work/pub-$n.json" dropped)
		toolcpu=$(awk -v a="$tt0" -v b="$tt1" -v hz="$hz" -v s="$seconds" 'BEGIN { printf "%.1f", (b - a) / hz / s * 100 }')
		results "$(awk -v n="$n" -v c="$cpu" -v r="$rss" -v i="$idle" -v m="$mfd" -v ok="$conn" -v d="$drop" -v t="$toolcpu" 'BEGIN {
			printf "| %d | %.1f %% | %.2f %% | %.0f MB | %.0f MB | %.0f MB | %.1f MB | %d of %d (%d dropped) | %.1f %% |", n, c, c / n, r / 1024, i / 1024, m / 1024, (r - i + m) / 1024 / n, ok, n, d, t }')"
		startup_rows+=("| $n | $(r0 "$(jsub "$work/pub-$n.json" startup p50_ms)") ms | $(r0 "$(jsub "$work/pub-$n.json" startup p99_ms)") ms | $(r0 "$(jsub "$work/pub-$n.json" startup max_ms)") ms | $(jsub "$work/pub-$n.json" startup count) | $(jnum "$work/pub-$n.json" startup_missed) |")
		log "ingest $n: origin CPU $cpu %, RSS $((rss / 1024)) MB (idle $((idle / 1024)) MB), memory files $((mfd / 1024)) MB, publishers $conn/$n"
	done
	results ""
fi
if has startup && [ ${#startup_rows[@]} -gt 0 ]; then
	results "## Startup (publisher connect → first 200 playlist with a segment)"
	results ""
	results "| streams starting | p50 | p99 | max | measured | never playable |"
	results "| --- | --- | --- | --- | --- | --- |"
	for r in "${startup_rows[@]}"; do results "$r"; done
	results ""
fi

# --- ingest with real ffmpeg publishers ----------------------------------------
# fount-bench's publisher sets its own chunk size; real encoders send what
# the server leads them to (ffmpeg mirrors the server's Set Chunk Size), so
# this part pushes with ffmpeg and counts the publishers' CPU too: a server
# that makes encoders work harder costs its users their encoder machines.
if has ffmpeg; then
	log "ingest with ffmpeg publishers: ${ffmpeg_sizes// /, } streams; origins: $ffmpeg_targets"
	results "## Ingest with real ffmpeg publishers (\`ffmpeg -re -stream_loop -1 -i clip -c copy -f flv\`)"
	results ""
	results "| publishers | origin | origin CPU | per stream | publishers' CPU | per publisher | publishers still up |"
	results "| --- | --- | --- | --- | --- | --- | --- |"
	saved_target=$target
	for n in $ffmpeg_sizes; do
		for target in $ffmpeg_targets; do
			[ "$target" = external ] && target=$saved_target
			start_origin ll
			sleep 1
			fpids=()
			for i in $(seq 1 "$n"); do
				ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$work/clip.flv" -c copy \
					-f flv "$rtmp_url/ff$n-$i" 2>>"$work/ffmpeg-$n.log" &
				fpids+=("$!")
				pids+=("$!")
			done
			sleep "$warmup"
			# The publishers' window is timed: reading 100 processes'
			# ticks takes a while on each side of the origin's window.
			ft0=$(ticks_all "${fpids[@]}")
			fs0=$(date +%s.%N)
			cpu=$(cpu_pct "$origin_pid_now" "$seconds")
			ft1=$(ticks_all "${fpids[@]}")
			fs1=$(date +%s.%N)
			up=0
			for p in "${fpids[@]}"; do kill -0 "$p" 2>/dev/null && up=$((up + 1)); done
			for p in "${fpids[@]}"; do kill "$p" 2>/dev/null || true; done
			for p in "${fpids[@]}"; do wait "$p" 2>/dev/null || true; done
			stop_origin
			pcpu=$(awk -v a="$ft0" -v b="$ft1" -v hz="$hz" -v s0="$fs0" -v s1="$fs1" 'BEGIN { printf "%.1f", (b - a) / hz / (s1 - s0) * 100 }')
			results "$(awk -v n="$n" -v o="$target" -v c="$cpu" -v p="$pcpu" -v u="$up" 'BEGIN {
				printf "| %d | %s | %.1f %% | %.2f %% | %.1f %% | %.2f %% | %d of %d |", n, o, c, c / n, p, p / n, u, n }')"
			log "ffmpeg ingest $n, $target: origin CPU $cpu %, publishers $pcpu %, $up of $n up"
		done
	done
	target=$saved_target
	results ""
fi

# --- viewers ----------------------------------------------------------------
if has viewers; then
	modes="classic ll"
	[ "$target" = nginx ] && modes="classic"
	[ "$external" = 1 ] && modes="auto"
	[ -n "$modes_opt" ] && modes=$modes_opt
	results "## Viewers (one stream)"
	results ""
	results "| mode | viewers | requests/s | Mbit/s out | origin CPU | CPU per 1,000 viewers | RSS | failed | missed segments | preload hints gone (404) | behind live p50 / p99 | request p99 (playlist / media) | load tool CPU |"
	gone_notes=""
	results "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	for mode in $modes; do
		for m in $viewer_sizes; do
			log "viewers: $m, $mode"
			start_origin "$mode"
			ramp=$(( m < 500 ? 2 : 10 ))
			vdur=$((ramp + warmup + seconds + 2))
			"$bench" publish "${allow[@]}" --url "$rtmp_url" --streams 1 --name-prefix "v$mode$m" --file "$work/clip.flv" \
				--duration "$((vdur + 8))s" --ramp 0s >"$work/vpub.txt" 2>&1 &
			pub=$!
			pids+=("$pub")
			sleep 5 # a segment or two before the first viewer
			vmode=$mode
			"$bench" view "${allow[@]}" --url "$http_url" --streams 1 --name-prefix "v$mode$m" --viewers "$m" --mode "$vmode" \
				--duration "${vdur}s" --ramp "${ramp}s" --json "$work/view-$mode-$m.json" >"$work/view-$mode-$m.txt" 2>&1 &
			view=$!
			pids+=("$view")
			sleep $((ramp + warmup))
			vt0=$(ticks "$view")
			cpu=$(cpu_pct "$origin_pid_now" "$seconds")
			vt1=$(ticks "$view")
			rss=$(rss_kb "$origin_pid_now")
			wait "$view" || true
			kill "$pub" 2>/dev/null || true
			wait "$pub" 2>/dev/null || true
			stop_origin
			j="$work/view-$mode-$m.json"
			toolcpu=$(awk -v a="$vt0" -v b="$vt1" -v hz="$hz" -v s="$seconds" 'BEGIN { printf "%.1f", (b - a) / hz / s * 100 }')
			pl_p99=$(r0 "$(jsub "$j" playlist p99_ms)")
			[ "$mode" = ll ] && pl_p99="$(r0 "$(jsub "$j" blocking_playlist p99_ms)") (blocking)"
			media=segment
			[ "$mode" = ll ] && media=part
			results "$(awk -v mo="$mode" -v m="$m" -v rq="$(jsub "$j" total per_s)" \
				-v mb="$(jsub "$j" total mbit_per_s)" \
				-v c="$cpu" -v r="$rss" -v f="$(jsub "$j" total failed)" \
				-v mi="$(jnum "$j" missed_segments)" -v hg="$(jnum "$j" preload_hints_gone)" -v l50="$(jsub "$j" lag p50_ms)" -v l99="$(jsub "$j" lag p99_ms)" -v ln="$(jsub "$j" lag count)" \
				-v pp="$pl_p99" -v mp="$(r0 "$(jsub "$j" "$media" p99_ms)")" -v t="$toolcpu" 'BEGIN {
				lag = ln > 0 ? sprintf("%.0f / %.0f ms", l50, l99) : "n/a (no PROGRAM-DATE-TIME)"
				printf "| %s | %d | %.0f | %.0f | %.1f %% | %.1f %% | %.0f MB | %d | %d | %d | %s | %s / %s ms | %.1f %% |", mo, m, rq, mb, c, c / m * 1000, r / 1024, f, mi, hg, lag, pp, mp, t }')"
			log "viewers $m $mode: origin CPU $cpu %; $(grep -E '^ +total' "$work/view-$mode-$m.txt" || true)"
			# Name the hints that 404'd (fount-bench keeps the first few), to tell why.
			gone=$(sed -n '/^preload hints gone/,/^[a-z]/p' "$work/view-$mode-$m.txt" | grep -E '^ +[^ ]' | sed 's/^ */    /' || true)
			[ -n "$gone" ] && gone_notes+="- $mode, $m viewers, preload hints answered 404 (first few):"$'\n'"$gone"$'\n'
		done
	done
	results ""
	results "requests/s and Mbit/s are over the whole view run (ramp included); CPU over the measured interval. The load tool runs on the same machine and its CPU is not the origin's."
	[ -n "$gone_notes" ] && results "" && results "${gone_notes%$'\n'}"
	results ""
fi

# --- WebRTC (WHEP) viewers beside HLS viewers --------------------------------
# The same source and viewer count for each mode, alternating, with the
# origin's figures with the stream and no viewer taken first, so that a
# viewer's cost is what the viewers add (N viewers - 0 viewers) / N.
if has whep; then
	base=10
	[ "$quick" = 1 ] && base=3
	results "## WebRTC (WHEP) viewers beside HLS viewers (one stream)"
	results ""
	results "Each row: a fresh origin, one stream (fount-bench publish, the clip), ${base} s measured with no viewer (*0 viewers*), then the viewers, ${warmup} s warm-up after the ramp, ${seconds} s measured. Per viewer = (with viewers − with 0 viewers) / viewers. WHEP sessions are video only (the clip's audio is AAC)."
	results ""
	results "| round | mode | viewers | origin CPU | CPU with 0 viewers | CPU per viewer | RSS | RSS with 0 viewers | memory per viewer | Mbit/s received | viewers failed | frames/s per viewer min / median | load tool CPU |"
	results "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	: >"$work/whep-rows"
	for round in $(seq 1 "$rounds"); do
		for mode in whep classic ll; do
			for m in $viewer_sizes; do
				log "whep part, round $round: $m viewers, $mode"
				omode=$mode
				[ "$mode" = whep ] && omode=ll
				start_origin "$omode"
				ramp=$(( m < 500 ? 2 : 10 ))
				vdur=$((ramp + warmup + seconds + 2))
				name="w$mode$m"
				"$bench" publish "${allow[@]}" --url "$rtmp_url" --streams 1 --name-prefix "$name" --file "$work/clip.flv" \
					--duration "$((base + vdur + 13))s" --ramp 0s >"$work/wpub.txt" 2>&1 &
				pub=$!
				pids+=("$pub")
				sleep 5 # a segment or two (and a keyframe) before measuring
				rss0=$(rss_kb "$origin_pid_now")
				cpu0=$(cpu_pct "$origin_pid_now" "$base")
				j="$work/whep-$round-$mode-$m.json"
				extra=()
				[ "$mode" = whep ] && extra=(--warmup "${warmup}s")
				"$bench" view "${allow[@]}" --url "$http_url" --streams 1 --name-prefix "$name" --viewers "$m" --mode "$mode" \
					--duration "${vdur}s" --ramp "${ramp}s" "${extra[@]}" --json "$j" >"$work/whep-$round-$mode-$m.txt" 2>&1 &
				view=$!
				pids+=("$view")
				sleep $((ramp + warmup))
				vt0=$(ticks "$view")
				cpu=$(cpu_pct "$origin_pid_now" "$seconds")
				vt1=$(ticks "$view")
				rss=$(rss_kb "$origin_pid_now")
				wait "$view" || true
				kill "$pub" 2>/dev/null || true
				wait "$pub" 2>/dev/null || true
				stop_origin
				toolcpu=$(awk -v a="$vt0" -v b="$vt1" -v hz="$hz" -v s="$seconds" 'BEGIN { printf "%.1f", (b - a) / hz / s * 100 }')
				if [ "$mode" = whep ]; then
					mb=$(jnum "$j" mbit_per_s)
					failed=$(jnum "$j" viewers_failed)
					fps="$(jsub "$j" frames_per_s min) / $(jsub "$j" frames_per_s p50)"
				else
					mb=$(jsub "$j" total mbit_per_s)
					failed=$(( $(r0 "$(jsub "$j" total failed)") + $(r0 "$(jnum "$j" never_joined)") ))
					fps="n/a (HLS)"
				fi
				row=$(awk -v ro="$round" -v mo="$mode" -v m="$m" -v c="$cpu" -v c0="$cpu0" -v r="$rss" -v r0="$rss0" -v mb="$mb" -v f="$failed" -v fps="$fps" -v t="$toolcpu" 'BEGIN {
					if (mo == "whep") { split(fps, a, " / "); fps = sprintf("%.1f / %.1f", a[1], a[2]) }
					printf "| %d | %s | %d | %.1f %% | %.1f %% | %.3f %% | %.1f MB | %.1f MB | %.0f KB | %.0f | %d | %s | %.1f %% |", ro, mo, m, c, c0, (c - c0) / m, r / 1024, r0 / 1024, (r - r0) / m, mb, f, fps, t }')
				results "$row"
				awk -v mo="$mode" -v m="$m" -v c="$cpu" -v c0="$cpu0" -v r="$rss" -v r0="$rss0" 'BEGIN { printf "%s %d %.4f %.1f\n", mo, m, (c - c0) / m, (r - r0) / m }' >>"$work/whep-rows"
				log "whep part $round $mode $m: origin CPU $cpu % (0 viewers: $cpu0 %), RSS $((rss / 1024)) MB (0 viewers: $((rss0 / 1024)) MB), failed $failed, frames/s $fps"
			done
		done
	done
	results ""
	results "Medians over the rounds, per viewer, and WHEP against each HLS mode:"
	results ""
	results "| viewers | mode | CPU per viewer (median) | memory per viewer (median) | WHEP CPU ÷ this | WHEP memory ÷ this |"
	results "| --- | --- | --- | --- | --- | --- |"
	for m in $viewer_sizes; do
		for mode in whep classic ll; do
			med() { awk -v mo="$1" -v m="$m" -v k="$2" '$1 == mo && $2 == m { print $k }' "$work/whep-rows" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
			results "$(awk -v m="$m" -v mo="$mode" -v c="$(med "$mode" 3)" -v k="$(med "$mode" 4)" -v wc="$(med whep 3)" -v wk="$(med whep 4)" 'BEGIN {
				rc = c > 0 ? sprintf("%.1f", wc / c) : "n/a"; rk = k > 0 ? sprintf("%.1f", wk / k) : "n/a"
				printf "| %d | %s | %.3f %% | %.0f KB | %s | %s |", m, mo, c, k, rc, rk }')"
		done
	done
	results ""
fi

# --- latency (fount's own Go benchmark) ---------------------------------------
if has latency; then
	if [ "$target" = fount ]; then
		secs=60
		[ "$quick" = 1 ] && secs=10
		log "latency: BenchmarkPartDelay, ${secs} s"
		results "## Part availability delay (LL-HLS, BenchmarkPartDelay, ${secs} s)"
		results ""
		results '```'
		(cd "$root" && FOUNT_BENCH_SECONDS=$secs go test -run '^$' -bench PartDelay -benchtime 1x ./cmd/fount 2>&1 | grep -E 'Benchmark|^ok|FAIL|cpu:') >>"$out" || results "(the benchmark failed)"
		results '```'
		results ""
	else
		results "(latency: BenchmarkPartDelay measures fount from the inside; not run for $target)"
		results ""
	fi
fi

log "results in $out"
cat "$out"
