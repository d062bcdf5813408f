#!/usr/bin/env bash
# The QUIC transport between two agents on loopback, against plain TCP
# (socat) on the same loopback in the same run:
#   bulk throughput   SIZE MB (default 256) from alice's stdin through one
#                     stream to bob's stdout (/dev/null), timed from the
#                     verified connection (transport_ready) to alice's
#                     exit (all data acknowledged, both sides closed);
#                     socat over TCP moves the same bytes the same way
#   CPU per GB        user+system time of both ends (socat: both; agents:
#                     both, less what an empty connection costs them --
#                     mail rendezvous, punching, handshake, close -- the
#                     median over the handshake runs, so that the figure
#                     is the transfer's and does not shrink with SIZE)
#   file transfer     the same SIZE MB as a file: `connect --send` to
#                     `listen --receive` (SHA-256 on both sides, fsync,
#                     rename), timed from transport_ready to the exit,
#                     against socat over TCP from the file to a new
#                     file, fsynced as the agent's receiver does (and
#                     against the stream baseline above)
#   handshake         QUIC+TLS handshake on the established path
#                     (handshake_ms of transport_ready), median of RUNS
# Usage: bench/transport.sh [SIZE_MB] [RUNS] (as root, from the build
# tree, or with MILTER, AGENT, KEYGEN set).  Prints figures and ratios;
# never fails on timings.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$PWD
MILTER=${MILTER:-$build/mailpunch-milter}
AGENT=${AGENT:-$build/mailpunch-agent}
KEYGEN=${KEYGEN:-$build/mailpunch-keygen}
size_mb=${1:-256}
runs=${2:-5}
[ "$(id -u)" -eq 0 ] || { echo "needs root"; exit 77; }
command -v socat >/dev/null || { echo "needs socat (apt-get install socat)"; exit 77; }
# shellcheck source=../tests/mailenv/mailenv.sh
. "$src/tests/mailenv/mailenv.sh"
# shellcheck source=../tests/integration/agentenv.sh
. "$src/tests/integration/agentenv.sh"

dir=$(mktemp -d /tmp/mp-bench-quic.XXXXXX)
chmod 755 "$dir"
AGENTENV_TABLE=/mp-bench-quic-$$
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	agentenv_down "$dir"
	rm -rf "$dir"
}
trap cleanup EXIT

agentenv_up "$dir" "$MILTER" "$KEYGEN" "ReplyRateLimit 0" "ClientRateLimit 0" || exit 1
for u in alice bob; do
	agentenv_conf "$dir" "$u"
	"$AGENT" -c "$dir/$u/agent.conf" id >/dev/null 2>&1
done

# runs a command; prints "elapsed_s cpu_s exit" (CPU of all its children)
cat >"$dir/rus.py" <<'PY'
import resource, subprocess, sys, time
t = time.time()
rc = subprocess.call(sys.argv[1:])
el = time.time() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{el:.4f} {r.ru_utime + r.ru_stime:.4f} {rc}", file=sys.stderr)
PY
tck=$(getconf CLK_TCK)
cpu_of() { awk -v t="$tck" '{printf "%.4f\n", ($14 + $15) / t}' "/proc/$1/stat"; }
bytes=$((size_mb * 1024 * 1024))

mkdir -p "$dir/recv"
"$AGENT" -c "$dir/bob/agent.conf" --json listen --receive "$dir/recv" --overwrite </dev/null >/dev/null \
	2>"$dir/bob.json" &
bob_pid=$!
pids+=("$bob_pid")
for _ in $(seq 300); do grep -q '"event":"reply"' "$dir/bob.json" && break; sleep 0.1; done

# handshake time on the established path; the CPU of such an empty
# connection (rendezvous by mail, punching, handshake, close: both
# agents) is what every run costs besides its bytes
: >"$dir/hs"
: >"$dir/conn-cpu"
for i in $(seq "$runs"); do
	b0=$(cpu_of "$bob_pid")
	python3 "$dir/rus.py" bash -c "'$AGENT' -c '$dir/alice/agent.conf' --json connect bob </dev/null >/dev/null \
		2>'$dir/alice-hs.json'" 2>"$dir/hs.rus"
	read -r _ a_cpu a_rc <"$dir/hs.rus"
	[ "$a_rc" = 0 ] || { echo "handshake run $i failed"; continue; }
	b1=$(cpu_of "$bob_pid")
	echo "$a_cpu $b0 $b1" | awk '{printf "%.4f\n", $1 + $3 - $2}' >>"$dir/conn-cpu"
	grep '"event":"transport_ready"' "$dir/alice-hs.json" | grep -o '"handshake_ms":[0-9]*' | cut -d: -f2 >>"$dir/hs"
done

# QUIC bulk
bob_cpu0=$(cpu_of "$bob_pid")
python3 "$dir/rus.py" bash -c "head -c $bytes /dev/zero | '$AGENT' -c '$dir/alice/agent.conf' --json connect bob \
	>/dev/null 2>'$dir/alice-bulk.json'" 2>"$dir/quic.rus"
end=$(date +%s%3N)
bob_cpu1=$(cpu_of "$bob_pid")
ready=$(grep '"event":"transport_ready"' "$dir/alice-bulk.json" | grep -o '"epoch_ms":[0-9]*' | cut -d: -f2)
read -r _ quic_cpu quic_rc <"$dir/quic.rus"

# file transfer: the same bytes as a file (a file of zeros: the page
# cache, not the disk, is measured; both sides hash it)
head -c "$bytes" /dev/zero >"$dir/bulk.bin"
bob_cpu2=$(cpu_of "$bob_pid")
python3 "$dir/rus.py" bash -c "'$AGENT' -c '$dir/alice/agent.conf' --json connect bob --send '$dir/bulk.bin' \
	>'$dir/alice-file.json' 2>/dev/null </dev/null" 2>"$dir/file.rus"
file_end=$(date +%s%3N)
bob_cpu3=$(cpu_of "$bob_pid")
file_ready=$(grep '"event":"transport_ready"' "$dir/alice-file.json" | grep -o '"epoch_ms":[0-9]*' | cut -d: -f2)
read -r _ file_cpu file_rc <"$dir/file.rus"
cmp -s "$dir/bulk.bin" "$dir/recv/bulk.bin" || file_rc=99

# TCP baseline: socat to socat on the same loopback
port=$((20000 + RANDOM % 20000))
python3 "$dir/rus.py" socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" - >/dev/null 2>"$dir/tcp-rx.rus" &
rx=$!
for _ in $(seq 50); do ss -ltn | grep -q ":$port " && break; sleep 0.05; done
python3 "$dir/rus.py" bash -c "head -c $bytes /dev/zero | socat -u - TCP:127.0.0.1:$port" 2>"$dir/tcp-tx.rus"
wait "$rx"
read -r tcp_s tcp_tx_cpu _ <"$dir/tcp-tx.rus"
read -r _ tcp_rx_cpu _ <"$dir/tcp-rx.rus"

# TCP baseline for the file: socat from the file to a new file, made
# durable with fsync (`sync FILE`) as the agent's receiver does; timed
# from the sender's start to the receiver's end
port=$((port + 1))
python3 "$dir/rus.py" bash -c "socat -u TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr CREATE:'$dir/tcp-recv.bin' &&
	sync '$dir/tcp-recv.bin'" 2>"$dir/tcpf-rx.rus" &
rx=$!
for _ in $(seq 50); do ss -ltn | grep -q ":$port " && break; sleep 0.05; done
tcpf_start=$(date +%s%3N)
python3 "$dir/rus.py" socat -u "FILE:$dir/bulk.bin" "TCP:127.0.0.1:$port" 2>"$dir/tcpf-tx.rus"
wait "$rx"
tcpf_end=$(date +%s%3N)
cmp -s "$dir/bulk.bin" "$dir/tcp-recv.bin" || echo "TCP file baseline: the copy differs"
read -r _ tcpf_tx_cpu _ <"$dir/tcpf-tx.rus"
read -r _ tcpf_rx_cpu _ <"$dir/tcpf-rx.rus"

python3 - "$size_mb" "$quic_rc" "${ready:-0}" "$end" "$quic_cpu" "$bob_cpu0" "$bob_cpu1" \
	"$tcp_s" "$tcp_tx_cpu" "$tcp_rx_cpu" "$dir/hs" "$(nproc)" \
	"$file_rc" "${file_ready:-0}" "$file_end" "$file_cpu" "$bob_cpu2" "$bob_cpu3" "$dir/conn-cpu" \
	"$tcpf_start" "$tcpf_end" "$tcpf_tx_cpu" "$tcpf_rx_cpu" <<'PY'
import statistics, sys
mb, rc, ready, end = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
a_cpu, b0, b1 = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
tcp_s, tcp_cpu = float(sys.argv[8]), float(sys.argv[9]) + float(sys.argv[10])
hs = [int(l) for l in open(sys.argv[11]) if l.strip()]
gb = mb / 1024
print(f"transport bench: {mb} MB through one stream on loopback, {sys.argv[12]} CPUs")
if rc != 0 or not ready:
    print(f"QUIC bulk run failed (exit {rc})")
    sys.exit(1)
conn = [float(l) for l in open(sys.argv[19]) if l.strip()]
# what a connection costs besides its bytes (measured on the empty ones)
fixed = statistics.median(conn) if conn else 0.0
quic_s = (end - ready) / 1000
quic_cpu = a_cpu + (b1 - b0) - fixed
q, t = mb / quic_s, mb / tcp_s
print(f"{'':24} {'MB/s':>9} {'s':>8} {'CPU s/GB':>9}")
print(f"{'QUIC (two agents)':24} {q:9.1f} {quic_s:8.2f} {quic_cpu / gb:9.2f}")
print(f"{'TCP (socat to socat)':24} {t:9.1f} {tcp_s:8.2f} {tcp_cpu / gb:9.2f}")
print(f"throughput ratio QUIC / TCP: {q / t:.3f}  (target >= 0.5: {'met' if q / t >= 0.5 else 'not met'})")
print(f"CPU per GB ratio QUIC / TCP: {(quic_cpu / gb) / (tcp_cpu / gb):.1f}")
f_rc, f_ready, f_end = int(sys.argv[13]), int(sys.argv[14]), int(sys.argv[15])
f_cpu = float(sys.argv[16]) + float(sys.argv[18]) - float(sys.argv[17]) - fixed
if f_rc != 0 or not f_ready:
    print(f"file transfer run failed (exit {f_rc})")
else:
    f_s = (f_end - f_ready) / 1000
    tf_s = (int(sys.argv[21]) - int(sys.argv[20])) / 1000
    tf_cpu = float(sys.argv[22]) + float(sys.argv[23])
    print(f"{'file (--send/--receive)':24} {mb / f_s:9.1f} {f_s:8.2f} {f_cpu / gb:9.2f}")
    print(f"{'TCP file (socat, fsync)':24} {mb / tf_s:9.1f} {tf_s:8.2f} {tf_cpu / gb:9.2f}")
    print(f"file transfer ratio file / TCP file: {(mb / f_s) / (mb / tf_s):.3f}; CPU per GB ratio: "
          f"{(f_cpu / gb) / (tf_cpu / gb):.1f}  (file / TCP stream: {(mb / f_s) / t:.3f})")
print(f"(QUIC CPU: both agents, less {fixed:.2f} s, the median CPU of an empty connection:"
      " mail rendezvous, punching, handshake, close)")
if hs:
    print(f"QUIC+TLS handshake on the established path: median {statistics.median(hs):.0f} ms "
          f"(min {min(hs)}, max {max(hs)}, {len(hs)} runs)")
PY
