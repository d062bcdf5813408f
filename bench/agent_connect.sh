#!/usr/bin/env bash
# How long `mailpunch-agent connect` takes on loopback, through a real
# Postfix (with mailpunch-milter) and Dovecot with IMAP IDLE, split into
# phases, over N runs (default 20): median and spread of
#   request -> reply      alice's REQUEST answered (mail out and back)
#   signal  -> peer       alice's OFFER relayed by the host, seen by bob
#   punch + handshake     bob's OFFER receipt to alice's established path
#   QUIC handshake        established path to the verified QUIC/TLS
#                         connection (transport_ready) at alice
#   total                 connect start to transport_ready
# and, as the baseline measured in the same run, one plain mail round
# trip through the same mail system (submit, deliver, seen in the
# mailbox), printed with the ratio total / baseline.
# Usage: bench/agent_connect.sh [RUNS] (as root, from the build tree, or
# with MILTER, AGENT, KEYGEN set).  Never fails on timings.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$PWD
MILTER=${MILTER:-$build/mailpunch-milter}
AGENT=${AGENT:-$build/mailpunch-agent}
KEYGEN=${KEYGEN:-$build/mailpunch-keygen}
runs=${1:-20}
[ "$(id -u)" -eq 0 ] || { echo "needs root"; exit 77; }
# shellcheck source=../tests/mailenv/mailenv.sh
. "$src/tests/mailenv/mailenv.sh"
# shellcheck source=../tests/integration/agentenv.sh
. "$src/tests/integration/agentenv.sh"

dir=$(mktemp -d /tmp/mp-bench-connect.XXXXXX)
chmod 755 "$dir"
AGENTENV_TABLE=/mp-bench-connect-$$
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

# (listen and connect write their events to stderr: stdout is the stream)
"$AGENT" -c "$dir/bob/agent.conf" --json listen </dev/null >/dev/null 2>"$dir/bob.json" &
pids+=($!)
for _ in $(seq 300); do grep -q '"event":"reply"' "$dir/bob.json" && break; sleep 0.1; done

# Baseline: one plain mail, submitted and seen in the mailbox.
baseline() {
	local t0 n
	printf 'From: alice@lab.example\r\nTo: alice@lab.example\r\nSubject: ping %s\r\n\r\nping\r\n' "$1" >"$dir/ping.mail"
	t0=$(date +%s%3N)
	mailenv_submit "$dir/env" alice pw-alice alice@lab.example alice@lab.example "$dir/ping.mail" >/dev/null
	mailenv_wait_mail "$dir/env" alice "Subject: ping $1\$" 30 >/dev/null
	n=$(date +%s%3N)
	echo $((n - t0))
}

: >"$dir/phases"
for i in $(seq "$runs"); do
	base=$(baseline "$i")
	t0=$(date +%s%3N)
	"$AGENT" -c "$dir/alice/agent.conf" --json connect bob </dev/null >/dev/null 2>"$dir/alice.json" ||
		{ echo "run $i failed"; continue; }
	sleep 0.2
	ev() { grep "\"event\":\"$2\"" "$1" | tail -n 1 | grep -o '"epoch_ms":[0-9]*' | cut -d: -f2; }
	reply=$(ev "$dir/alice.json" reply)
	signal=$(ev "$dir/alice.json" signal)
	offer=$(ev "$dir/bob.json" offer)
	est=$(ev "$dir/alice.json" established)
	msg=$(ev "$dir/alice.json" transport_ready)
	echo "$((reply - t0)) $((offer - signal)) $((est - offer)) $((msg - est)) $((msg - t0)) $base" >>"$dir/phases"
done

python3 - "$dir/phases" "$runs" "$(nproc)" <<'PY'
import statistics, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
names = ["request -> reply", "signal -> peer", "punch + handshake", "QUIC handshake", "total connect", "baseline: plain mail round trip"]
print(f"mailpunch-agent connect on loopback: {len(rows)} of {sys.argv[2]} runs, {sys.argv[3]} CPUs, IMAP IDLE")
print(f"{'phase':34} {'median':>8} {'min':>7} {'max':>7}  (ms)")
for i, n in enumerate(names):
    col = [r[i] for r in rows]
    if col:
        print(f"{n:34} {statistics.median(col):8.0f} {min(col):7d} {max(col):7d}")
if rows:
    t = statistics.median(r[4] for r in rows)
    b = statistics.median(r[5] for r in rows)
    print(f"ratio total / baseline: {t / b:.2f}  (a connect costs about {t / b:.1f} mail round trips)")
    print(f"target: median total under 1500 ms -> {'met' if t < 1500 else 'not met'} ({t:.0f} ms)")
PY
