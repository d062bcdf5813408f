#!/usr/bin/env bash
# bench/postfix_milter.sh -- what mailpunch-milter costs a real Postfix.
#
#   bench/postfix_milter.sh [--quick] [BUILD_DIR]
#
# Starts a private Postfix (tests/mailenv, loopback only, everything under
# one temporary directory) whose only destination is a domain delivered by
# Postfix's discard(8) agent, and measures, in one run:
#
#  1. ordinary mail: smtp-source sends BENCH_MESSAGES messages (default
#     20000, 2048 bytes, one per connection, 10 sessions) without and with
#     the milter in smtpd_milters/non_smtpd_milters; throughput = messages
#     / seconds from the first connection until Postfix's queue is empty;
#     and, as a third side, with bench/null_milter (a do-nothing libmilter
#     filter negotiating the same steps) instead: what any libmilter
#     filter costs, against which mailpunch's own share is measured;
#  2. requests: BENCH_REQUESTS sealed request mails (default 2000, made
#     with mptool, BENCH_IDENTITIES identities round-robin, a fresh session
#     ID each) through Postfix + milter, each turned into its reply
#     (ReplyMethod rewrite) that Postfix discards, against the very same
#     mails (same bytes, same envelope) through Postfix without the
#     milter; the milter's counters must show one reply per request.
#
# Each side runs BENCH_ROUNDS times (default 3), alternating (without,
# with, without, with, ...), and the best run of each side counts.  Results
# are printed as ratios against the baseline of the same run: timings on
# shared machines are noisy, so nothing is ever asserted about speed.
# --quick: 2000 messages and 200 requests (well under 2 minutes).
#
# Binaries: MILTER, MAILPUNCHCTL, KEYGEN, MPTOOL, NULL_MILTER, defaulting
# to BUILD_DIR (first argument, else $PWD)/mailpunch-milter, mailpunchctl,
# mailpunch-keygen, tests/tools/mptool, bench/null_milter (make
# bench/null_milter; without it the third side is skipped).  Other knobs (environment):
# BENCH_SESSIONS (10 parallel SMTP sessions), BENCH_SIZE (2048 bytes, the
# smtp-source message size), BENCH_BATCH (20 messages per connection for
# the request benchmark), BENCH_KEEP=1 (keep the directory), BENCH_TABLE
# (the milter's Table, e.g. a redis:// URL; bench/redis_milter.sh uses it),
# BENCH_INJECT=sendmail|smtp (replies as new mails, ReplyMethod inject,
# through sendmail(1) or over SMTP with InjectSocket).
# Needs root, Postfix (with smtp-source), Dovecot, python3
# (tests/mailenv/install-deps).  Exit 0 when the measurements were made,
# 1 when the benchmark could not run, 77 when prerequisites are missing.
set -uo pipefail

usage() {
	sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

quick=0
build=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "usage: $0 [--quick] [BUILD_DIR]" >&2; exit 1 ;;
	*) build=$1 ;;
	esac
	shift
done
build=$(cd "${build:-$PWD}" && pwd) || exit 1
src=$(cd "$(dirname "$0")/.." && pwd)

MILTER=${MILTER:-$build/mailpunch-milter}
CTL=${MAILPUNCHCTL:-$build/mailpunchctl}
KEYGEN=${KEYGEN:-$build/mailpunch-keygen}
MPTOOL=${MPTOOL:-$build/tests/tools/mptool}
NULL_MILTER=${NULL_MILTER:-$build/bench/null_milter}

if [ "$quick" = 1 ]; then
	def_messages=2000 def_requests=200
else
	def_messages=20000 def_requests=2000
fi
N=${BENCH_MESSAGES:-$def_messages}
M=${BENCH_REQUESTS:-$def_requests}
ROUNDS=${BENCH_ROUNDS:-3}
SESSIONS=${BENCH_SESSIONS:-10}
SIZE=${BENCH_SIZE:-2048}
BATCH=${BENCH_BATCH:-20}
IDENTITIES=${BENCH_IDENTITIES:-50}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

for v in N M ROUNDS SESSIONS SIZE BATCH IDENTITIES; do
	case ${!v} in '' | *[!0-9]* | 0) echo "bench: $v must be a positive integer (got '${!v}')" >&2; exit 1 ;; esac
done

die() { echo "bench: $*" >&2; exit 1; }
skip() { echo "bench: skipped: $*" >&2; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root (Postfix is started as root)"
command -v postfix >/dev/null || skip "no postfix (tests/mailenv/install-deps)"
command -v dovecot >/dev/null || skip "no dovecot (tests/mailenv/install-deps)"
[ -x "$SMTP_SOURCE" ] || skip "no $SMTP_SOURCE (package postfix)"
command -v "$PY" >/dev/null || skip "no python3"
for b in "$MILTER" "$CTL" "$KEYGEN" "$MPTOOL"; do
	[ -x "$b" ] || skip "$b not found: give the build directory or set MILTER/MAILPUNCHCTL/KEYGEN/MPTOOL (make tests/tools/mptool)"
done

# shellcheck source=SCRIPTDIR/../tests/mailenv/mailenv.sh
. "$src/tests/mailenv/mailenv.sh"

start_seconds=$SECONDS
dir=$(mktemp -d /tmp/mpb.XXXXXX) || die "mktemp failed"
chmod 755 "$dir"
# BENCH_TABLE: the milter's Table (default a fresh shared-memory table)
table=${BENCH_TABLE:-/mpb-$$}
milter_pid=
null_pid=
acct_pid=
child_pid=

# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$child_pid" ] && kill -9 "$child_pid" 2>/dev/null
	for p in $milter_pid $null_pid; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	mailenv_stop "$dir" >/dev/null 2>&1
	[ -z "${BENCH_TABLE:-}" ] && rm -f "/dev/shm$table"
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: kept $dir" >&2
	else
		rm -rf "$dir"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

note() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }

# ------------------------------------------------------------------- helpers

# Queue empty: one find that stops at the first file.
queue_has_mail() {
	local q=$dir/spool
	[ -n "$(find "$q/maildrop" "$q/incoming" "$q/active" "$q/deferred" "$q/hold" \
		-type f -print -quit 2>/dev/null)" ]
}

wait_queue_empty() {
	local deadline=$((SECONDS + $1))
	while queue_has_mail; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			note "bench: queue not empty after $1 s:"
			postqueue -c "$dir/postfix" -p 2>/dev/null | tail -n 20 >&2
			return 1
		fi
		sleep 0.02
	done
	return 0
}

deferred_count() {
	find "$dir/spool/deferred" "$dir/spool/hold" -type f 2>/dev/null | wc -l
}

# CPU accounting, sampled before and after each run (outside the timed
# window): "BUSY TOTAL PF MSELF MKIDS CLIENT" -- busy and total jiffies of
# the whole machine (other people's jobs included), then clock ticks of:
# every Postfix (and idle Dovecot) process of the environment, live ones
# plus what their parents (the master) reaped; the milter itself; the
# children the milter reaped (sendmail + postdrop injecting replies); and
# this shell's reaped children (smtp-source or the python sender, plus the
# queue polling).
acct() {
	local pids p s
	pids=$(mailenv_pids "$dir")
	{
		awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print "sys", t - $5 - $6, t }' /proc/stat
		for p in $pids; do
			s=$(cat "/proc/$p/stat" 2>/dev/null) && echo "pf ${s##*) }"
		done
		s=$(cat "/proc/${acct_pid:-$milter_pid}/stat" 2>/dev/null) && echo "mi ${s##*) }"
		s=$(cat "/proc/$$/stat" 2>/dev/null) && echo "me ${s##*) }"
	} | awk '
		# after "pid (comm) ": utime stime cutime cstime are fields 13..16 here
		$1 == "sys" { busy = $2; total = $3 }
		$1 == "pf" { pf += $13 + $14 + $15 + $16 }
		$1 == "mi" { ms = $13 + $14; mk = $15 + $16 }
		$1 == "me" { me = $15 + $16 }
		END { printf "%d %d %d %d %d %d\n", busy, total, pf, ms, mk, me }'
}
HZ=$(getconf CLK_TCK)

# figures A0 A1 COUNT -> "BUSY% OURS% PF_MS MILTER_MS INJECT_MS CLIENT_MS"
# (machine busy and our share of it between the two samples -- /proc/stat
# counts in the same USER_HZ ticks as /proc/PID/stat; CPU ms per mail)
figures() {
	awk -v a="$1" -v b="$2" -v n="$3" -v hz="$HZ" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		for (i = 1; i <= 6; i++) d[i] = y[i] - x[i]
		ours = d[3] + d[4] + d[5] + d[6]
		printf "%.0f %.0f %.3f %.3f %.3f %.3f\n", (d[2] > 0 ? 100 * d[1] / d[2] : 0),
			(d[2] > 0 ? 100 * ours / d[2] : 0), 1000 * d[3] / hz / n, 1000 * d[4] / hz / n,
			1000 * d[5] / hz / n, 1000 * d[6] / hz / n
	}'
}

# run_child OUT ERR CMD... -- runs the load generator in the background
# and waits for it, so that a signal reaches our trap (and the cleanup
# kills the generator) at once instead of after the run.
run_child() {
	local out=$1 err=$2 rc
	shift 2
	if [ "$out" = "$err" ]; then "$@" >"$out" 2>&1 </dev/null & else "$@" >"$out" 2>"$err" </dev/null & fi
	child_pid=$!
	wait "$child_pid"
	rc=$?
	child_pid=
	return "$rc"
}

log_size() { stat -c %s "$dir/log/postfix.log" 2>/dev/null || echo 0; }

# Deliveries logged by discard(8) since byte OFFSET of the Postfix log
# (postlogd writes asynchronously: wait up to 5 s for EXPECT lines).
delivered_since() {
	local off=$1 expect=$2 n=0 i
	for i in $(seq 1 50); do
		n=$(tail -c +"$((off + 1))" "$dir/log/postfix.log" | grep -c 'postfix/discard.*status=sent')
		[ "$n" -ge "$expect" ] && break
		sleep 0.1
	done
	echo "$n"
}

stat_of() {
	"$CTL" -s "$dir/control.sock" --json stats | grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2
}

# set_milter on|null|off: mailpunch, the do-nothing filter, or none;
# the "milter" CPU figures follow the one in use.
set_milter() {
	case $1 in
	on) mailenv_set_milter "$dir" "unix:$dir/milter.sock" >/dev/null || die "cannot configure the milter"
		acct_pid=$milter_pid ;;
	null) mailenv_set_milter "$dir" "unix:$dir/null.sock" >/dev/null || die "cannot configure null_milter"
		acct_pid=$null_pid ;;
	*) mailenv_set_milter "$dir" "" >/dev/null || die "cannot remove the milter"
		acct_pid=$milter_pid ;;
	esac
}

# Every run appends one line to $dir/results:
#   BENCH SIDE ROUND RATE SECONDS DRAIN BUSY% OURS% PF_MS MILTER_MS INJECT_MS CLIENT_MS COUNT
record() { echo "$*" >>"$dir/results"; }

report_run() {
	local what=$1 side=$2 round=$3 n=$4 secs=$5 rate=$6 drain=$7 fig=$8 extra=$9
	local busy ours pf ms mk cl
	read -r busy ours pf ms mk cl <<<"$fig"
	printf '%s\n' "$(printf '  %-8s milter %-4s round %d: %6d in %7.2f s = %7.1f/s (drain %.2f s) | cpu/mail ms: postfix %.3f milter %.3f inject %.3f client %.3f | machine %s%% busy, ours %s%% | %s' \
		"$what" "$side" "$round" "$n" "$secs" "$rate" "$drain" "$pf" "$ms" "$mk" "$cl" "$busy" "$ours" "$extra")"
}

# run_source SIDE ROUND -- smtp-source, N messages, then queue empty.
run_source() {
	local side=$1 round=$2 off t0 t1 ts a0 a1 rc secs rate drain fig got
	set_milter "$side"
	wait_queue_empty 60 || die "queue not empty before a run"
	sleep 0.5
	off=$(log_size)
	a0=$(acct)
	t0=$(now)
	run_child "$dir/smtp-source.out" "$dir/smtp-source.out" \
		"$SMTP_SOURCE" -s "$SESSIONS" -m "$N" -l "$SIZE" -M bench.example \
		-f sender@sink.example -t rcpt@sink.example "127.0.0.1:$MAILENV_SMTP_PORT"
	rc=$?
	ts=$(now)
	wait_queue_empty 900 || die "ordinary mail (milter $side) did not leave the queue"
	t1=$(now)
	a1=$(acct)
	if [ "$rc" -ne 0 ] || [ -s "$dir/smtp-source.out" ]; then
		note "bench: smtp-source exited $rc:"
		head -n 5 "$dir/smtp-source.out" >&2
		[ "$rc" -ne 0 ] && die "smtp-source failed (milter $side)"
	fi
	[ "$(deferred_count)" -eq 0 ] || die "mail was deferred (milter $side): see $dir/log/postfix.log"
	got=$(delivered_since "$off" "$N")
	[ "$got" -eq "$N" ] || note "bench: only $got of $N messages logged as delivered (milter $side)"
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	drain=$(awk -v a="$ts" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	rate=$(awk -v n="$N" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')
	fig=$(figures "$a0" "$a1" "$N")
	record ordinary "$side" "$round" "$rate" "$secs" "$drain" "$fig" "$got"
	report_run ordinary "$side" "$round" "$N" "$secs" "$rate" "$drain" "$fig" "$got delivered"
}

# run_mails SIDE ROUND -- the pre-generated mails of ROUND through the
# python sender, then queue empty; with the milter, checks the replies.
run_mails() {
	local side=$1 round=$2 manifest=$dir/manifest.$2 off t0 t1 ts a0 a1 out secs rate drain fig
	local r0=0 r1=0 sent failed got what=baseline
	[ "$side" = on ] && what=requests
	set_milter "$side"
	wait_queue_empty 60 || die "queue not empty before a run"
	sleep 0.5
	[ "$side" = on ] && r0=$(stat_of replies)
	off=$(log_size)
	a0=$(acct)
	run_child "$dir/send.out" "$dir/send.err" \
		"$PY" "$dir/send.py" "$MAILENV_SMTP_PORT" "$manifest" "$SESSIONS" "$BATCH" ||
		{ cat "$dir/send.err" >&2; die "the SMTP sender failed (milter $side)"; }
	out=$(cat "$dir/send.out")
	ts=$(now)
	wait_queue_empty 900 || die "$what (milter $side) did not leave the queue"
	t1=$(now)
	a1=$(acct)
	read -r t0 sent failed <<<"$out"
	[ "$((sent + failed))" -eq "$M" ] || die "the sender reports $sent sent + $failed failed of $M"
	if [ "$failed" -ne 0 ]; then
		note "bench: $failed of $M mails refused (milter $side):"
		head -n 5 "$dir/send.err" >&2
		[ "$side" = off ] && die "Postfix refused baseline mail: see $dir/log/postfix.log"
	fi
	[ "$(deferred_count)" -eq 0 ] || die "mail was deferred (milter $side): see $dir/log/postfix.log"
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	drain=$(awk -v a="$ts" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	rate=$(awk -v n="$M" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')
	fig=$(figures "$a0" "$a1" "$M")
	if [ "$side" = on ]; then
		r1=$(stat_of replies)
		got=$((r1 - r0))
		if [ "$got" -ne "$M" ]; then
			note "bench: only $got replies for $M requests in round $round -- the rate is meaningless:"
			"$CTL" -s "$dir/control.sock" stats >&2
			tail -n 5 "$dir/milter.log" >&2
			record requests-incomplete "$side" "$round" "$rate" "$secs" "$drain" "$fig" "$got"
			return 0
		fi
		# the replies are what Postfix delivers on this side
		extra="$got replies, $(delivered_since "$off" "$M") delivered"
	else
		got=$(delivered_since "$off" "$M")
		extra="$got delivered"
	fi
	record requests "$side" "$round" "$rate" "$secs" "$drain" "$fig" "$got"
	report_run "$what" "$side" "$round" "$M" "$secs" "$rate" "$drain" "$fig" "$extra"
}

# summary BENCH SIDE -> "RATE SECONDS RUNS PF_MS MILTER_MS INJECT_MS CLIENT_MS BUSY%":
# the best rate and its duration; CPU per mail and machine load are means
# over the runs (CPU time adds up, so it is far less noisy than rates).
summary() {
	awk -v b="$1" -v s="$2" '$1 == b && $2 == s {
			n++; if ($4 + 0 > best + 0) { best = $4; secs = $5 }
			pf += $9; ms += $10; mk += $11; cl += $12; busy += $7 }
		END { if (n) printf "%s %s %d %.3f %.3f %.3f %.3f %.0f\n", best, secs, n,
			pf / n, ms / n, mk / n, cl / n, busy / n }' "$dir/results"
}

# --------------------------------------------------------- the SMTP sender
cat >"$dir/send.py" <<'PY'
"""send.py PORT MANIFEST SESSIONS BATCH -- sends pre-generated mails.

MANIFEST lines are "FILE FROM TO".  Every mail is read into memory (line
ends made CRLF, dot-stuffed) before the clock starts; then SESSIONS
threads take batches of BATCH mails, one SMTP connection per batch, and
send them with PIPELINING (MAIL, RCPT, DATA in one write), so that the
load generator costs little CPU next to Postfix.  Prints "T0 SENT FAILED"
(T0: wall clock of the first connection); refusals go to stderr.
"""
import re
import socket
import sys
import threading
import time

port, manifest, sessions, batch = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
mails = []
with open(manifest) as f:
    for line in f:
        path, frm, to = line.split()
        with open(path, "rb") as m:
            data = re.sub(rb"(?<!\r)\n", b"\r\n", m.read())
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        data = re.sub(rb"(?m)^\.", b"..", data) + b".\r\n"
        env = b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (frm.encode(), to.encode())
        mails.append((env, data))
batches = [mails[i:i + batch] for i in range(0, len(mails), batch)]
lock = threading.Lock()
state = {"next": 0, "sent": 0, "failed": 0}
errors = []


class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buf = b""

    def reply(self):
        """One (possibly multi-line) reply: (code, last line)."""
        while True:
            i = self.buf.find(b"\r\n")
            if i < 0:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise OSError("connection closed")
                self.buf += chunk
                continue
            line, self.buf = self.buf[:i], self.buf[i + 2:]
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), line.decode("ascii", "replace")


def fail(what):
    with lock:
        state["failed"] += 1
        if len(errors) < 20:
            errors.append(what)


def worker():
    while True:
        with lock:
            i = state["next"]
            state["next"] += 1
        if i >= len(batches):
            return
        c = None
        for env, data in batches[i]:
            try:
                if c is None:
                    c = Conn()
                    if c.reply()[0] != 220:
                        raise OSError("no greeting")
                    c.s.sendall(b"EHLO bench.example\r\n")
                    if c.reply()[0] != 250:
                        raise OSError("EHLO refused")
                c.s.sendall(env)
                r = [c.reply() for _ in range(3)]
                if r[2][0] != 354:
                    fail(" / ".join(x[1] for x in r))
                    if r[0][0] == 250:
                        c.s.sendall(b"RSET\r\n")
                        c.reply()
                    continue
                c.s.sendall(data)
                code, text = c.reply()
                if code == 250:
                    with lock:
                        state["sent"] += 1
                else:
                    fail(text)
            except OSError as e:
                fail("connection: %r" % e)
                c = None
        if c is not None:
            try:
                c.s.sendall(b"QUIT\r\n")
                c.reply()
                c.s.close()
            except OSError:
                pass


t0 = time.time()
threads = [threading.Thread(target=worker) for _ in range(sessions)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for e in errors:
    print(e, file=sys.stderr)
print("%.6f %d %d" % (t0, state["sent"], state["failed"]))
PY

# gen.sh INDEX...: one request mail per index, a fresh session ID each.
cat >"$dir/gen.sh" <<'SH'
#!/bin/sh
# gen.sh INDEX...  (MPTOOL KEYS HOSTPUB OUT IDENTITIES in the environment)
for i in "$@"; do
	u=$((i % IDENTITIES))
	"$MPTOOL" request "$KEYS/u$u.key" "$HOSTPUB" "u$u@sink.example" rdv@sink.example "u$u" \
		198.51.100.7:40000 >"$OUT/$i.eml" || exit 255
done
SH
chmod 755 "$dir/gen.sh"

# ------------------------------------------------------------------- set-up
note "== set-up (not timed)"
mkdir -p "$dir/keys" "$dir/req"
"$KEYGEN" host "$dir/keys/host.key" >"$dir/keys/host.pub" || die "mailpunch-keygen host failed"
hostpub=$(awk '/^host-key/ {print $2}' "$dir/keys/host.pub")
[ -n "$hostpub" ] || die "no host public key in $dir/keys/host.pub"
np=$(nproc)
seq 0 $((IDENTITIES - 1)) | xargs -P "$np" -I{} "$KEYGEN" user -n u{} "$dir/keys/u{}.key" >/dev/null ||
	die "mailpunch-keygen user failed"

gen_start=$SECONDS
seq 0 $((ROUNDS * M - 1)) |
	MPTOOL=$MPTOOL KEYS=$dir/keys HOSTPUB=$hostpub OUT=$dir/req IDENTITIES=$IDENTITIES \
		xargs -P "$np" -n 100 "$dir/gen.sh" || die "mptool request failed"
for r in $(seq 1 "$ROUNDS"); do
	for i in $(seq $(((r - 1) * M)) $((r * M - 1))); do
		echo "$dir/req/$i.eml u$((i % IDENTITIES))@sink.example rdv@sink.example"
	done >"$dir/manifest.$r"
done
req_size=$(cat "$dir"/req/*.eml | wc -c)
req_size=$((req_size / (ROUNDS * M)))
note "  $((ROUNDS * M)) request mails from $IDENTITIES identities generated in $((SECONDS - gen_start)) s (average $req_size bytes)"

mailenv_start "$dir" >/dev/null || die "mailenv_start failed"
# Everything goes to sink.example, a relay domain delivered by discard(8).
# in_flow_delay = 0: otherwise smtpd sleeps up to 1 s per message whenever
# the queue manager lags, and the benchmark measures Postfix's flow control.
mailenv_postconf "$dir" \
	"relay_domains = sink.example" \
	"relay_transport = discard:" \
	"in_flow_delay = 0" \
	"smtpd_client_connection_rate_limit = 0" \
	"smtpd_client_message_rate_limit = 0" \
	"smtpd_client_connection_count_limit = 0" >/dev/null || die "postconf failed"

cat >"$dir/milter.conf" <<CONF
Socket              unix:$dir/milter.sock
SocketMode          0666
RendezvousAddress   rdv@sink.example
HostKey             $dir/keys/host.key
Table               $table
TableCapacity       1000
ControlSocket       $dir/control.sock
LogDestination      $dir/milter.log
LogLevel            info
RequireSenderMatch  yes
ReplyRateLimit      0
ClientRateLimit     0
ReplayCacheSize     $((ROUNDS * M > 200000 ? ROUNDS * M * 2 : 200000))
SendmailCommand     /usr/sbin/sendmail -C $MAILENV_POSTFIX_CONFIG_DIR -i
CONF
# Replies: the request is rewritten into its reply (the default), or
# BENCH_INJECT=sendmail / smtp: each reply is a new mail (ReplyMethod
# inject) handed to sendmail, or sent over kept-open SMTP connections
case ${BENCH_INJECT:-} in
'') ;;
sendmail) echo "ReplyMethod         inject" >>"$dir/milter.conf" ;;
smtp) printf 'ReplyMethod         inject\nInjectSocket        inet:%s@127.0.0.1\n' \
	"$MAILENV_SMTP_PORT" >>"$dir/milter.conf" ;;
*) die "BENCH_INJECT is sendmail or smtp (got '$BENCH_INJECT')" ;;
esac
[ -z "${BENCH_TABLE:-}" ] && rm -f "/dev/shm$table"
"$MILTER" -f -c "$dir/milter.conf" 2>>"$dir/milter.stderr" &
milter_pid=$!
for _ in $(seq 100); do
	[ -S "$dir/milter.sock" ] && [ -S "$dir/control.sock" ] && break
	kill -0 "$milter_pid" 2>/dev/null || { cat "$dir/milter.stderr" >&2; die "the milter did not start"; }
	sleep 0.1
done
[ -S "$dir/control.sock" ] || die "the milter did not open its sockets"
if [ -x "$NULL_MILTER" ]; then
	# umask 0: Postfix's smtpd (user postfix) must be able to connect
	(umask 0 && exec "$NULL_MILTER" "unix:$dir/null.sock") 2>>"$dir/null_milter.stderr" &
	null_pid=$!
	for _ in $(seq 50); do [ -S "$dir/null.sock" ] && break; sleep 0.1; done
	[ -S "$dir/null.sock" ] || die "null_milter did not open its socket"
else
	note "bench: no $NULL_MILTER (make bench/null_milter): the do-nothing filter side is skipped"
fi

# A smoke test of each path before measuring anything.
set_milter on
"$SMTP_SOURCE" -s 1 -m 5 -l "$SIZE" -f sender@sink.example -t rcpt@sink.example \
	"127.0.0.1:$MAILENV_SMTP_PORT" || die "smtp-source cannot send through Postfix + milter"
echo "$dir/smoke.eml u0@sink.example rdv@sink.example" >"$dir/manifest.smoke"
"$MPTOOL" request "$dir/keys/u0.key" "$hostpub" u0@sink.example rdv@sink.example u0 >"$dir/smoke.eml" ||
	die "mptool request failed"
out=$("$PY" "$dir/send.py" "$MAILENV_SMTP_PORT" "$dir/manifest.smoke" 1 1 2>&1) || die "sender failed: $out"
wait_queue_empty 30 || die "smoke test mail stuck"
[ "$(stat_of replies)" = 1 ] || { mailenv_logs "$dir" >&2; tail "$dir/milter.log" >&2; die "the smoke-test request was not answered"; }
set_milter off

# ------------------------------------------------------------- environment
pf_version=$(postconf -c "$dir/postfix" -h mail_version 2>/dev/null)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
libmilter=$(dpkg-query -W -f '${Version}' 'libmilter1.0.1' 2>/dev/null || echo '?')
cflags=$(sed -n "s/^CFLAGS='\(.*\)'$/\1/p" "$build/config.log" 2>/dev/null | head -n 1)
echo "mailpunch-milter Postfix benchmark ($([ "$quick" = 1 ] && echo quick || echo full))"
echo "  machine      nproc $np, ${cpu_model:-unknown CPU}, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  software     Postfix $pf_version, libmilter $libmilter, $("$PY" --version 2>&1), milter $("$MILTER" -V | awk '{print $2}') (CFLAGS ${cflags:-?})"
echo "  postfix      loopback, discard(8) delivery, in_flow_delay = 0, default_process_limit $(postconf -c "$dir/postfix" -h default_process_limit), milter_protocol 6"
echo "  ordinary     $N messages of $SIZE bytes (smtp-source -s $SESSIONS, one message per connection) x $ROUNDS rounds per side"
echo "  requests     $M requests of ~$req_size bytes from $IDENTITIES identities ($SESSIONS sessions, $BATCH mails per connection) x $ROUNDS rounds per side;"
echo "               baseline: the same mails without the milter"
echo

# ------------------------------------------------------------ benchmark 1
echo "== 1. ordinary mail, without a milter, with a do-nothing libmilter filter, with mailpunch-milter"
for r in $(seq 1 "$ROUNDS"); do
	run_source off "$r"
	[ -n "$null_pid" ] && run_source null "$r"
	run_source on "$r"
done

# ------------------------------------------------------------ benchmark 2
echo "== 2. requests (with the milter) against the same mails without it"
for r in $(seq 1 "$ROUNDS"); do
	run_mails off "$r"
	run_mails on "$r"
done
echo

# ----------------------------------------------------------------- summary
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
read -r o_off o_off_s _ o_off_pf _ _ o_off_cl o_off_busy <<<"$(summary ordinary off)"
read -r o_on o_on_s _ o_on_pf o_on_ms _ o_on_cl o_on_busy <<<"$(summary ordinary on)"
read -r o_null o_null_s _ o_null_pf o_null_ms _ _ o_null_busy <<<"$(summary ordinary null)"
read -r q_off q_off_s _ q_off_pf _ _ q_off_cl q_off_busy <<<"$(summary requests off)"
q_sum=$(summary requests on)
incomplete=$(grep -c '^requests-incomplete' "$dir/results")

echo "1. ordinary mail: $N messages x $SIZE bytes, best of $ROUNDS runs per side"
printf '   without milter  %8.1f msg/s  (%.2f s)  cpu/msg: postfix %.3f ms                  (machine %s%% busy)\n' \
	"$o_off" "$o_off_s" "$o_off_pf" "$o_off_busy"
printf '   with milter     %8.1f msg/s  (%.2f s)  cpu/msg: postfix %.3f ms + milter %.3f ms (machine %s%% busy)\n' \
	"$o_on" "$o_on_s" "$o_on_pf" "$o_on_ms" "$o_on_busy"
printf '   RATIO with/without (throughput)   %s   (target >= 0.95)\n' "$(ratio "$o_on" "$o_off")"
printf '   ratio without/with (CPU per msg)  %s   (Postfix + milter; load generator not counted)\n' \
	"$(ratio "$o_off_pf" "$(awk -v a="$o_on_pf" -v b="$o_on_ms" 'BEGIN { print a + b }')")"
if [ -n "$o_null" ]; then
	printf '   do-nothing filter  %8.1f msg/s  (%.2f s)  cpu/msg: postfix %.3f ms + milter %.3f ms (machine %s%% busy)\n' \
		"$o_null" "$o_null_s" "$o_null_pf" "$o_null_ms" "$o_null_busy"
	printf '   ratio do-nothing filter/without (throughput)  %s   (what any libmilter filter costs)\n' \
		"$(ratio "$o_null" "$o_off")"
	printf '   ratio mailpunch/do-nothing filter (throughput) %s, (CPU per msg) %s   (mailpunch'"'"'s own share)\n' \
		"$(ratio "$o_on" "$o_null")" \
		"$(ratio "$(awk -v a="$o_null_pf" -v b="$o_null_ms" 'BEGIN { print a + b }')" \
			"$(awk -v a="$o_on_pf" -v b="$o_on_ms" 'BEGIN { print a + b }')")"
fi
echo
echo "2. requests: $M mails x ~$req_size bytes, best of $ROUNDS runs per side"
printf '   ordinary, no milter  %7.1f mail/s (%.2f s)  cpu/mail: postfix %.3f ms                                 (machine %s%% busy)\n' \
	"$q_off" "$q_off_s" "$q_off_pf" "$q_off_busy"
if [ -n "$q_sum" ]; then
	read -r q_on q_on_s q_on_n q_on_pf q_on_ms q_on_mk q_on_cl q_on_busy <<<"$q_sum"
	printf '   requests + milter    %7.1f req/s  (%.2f s)  cpu/req:  postfix %.3f ms + milter %.3f ms + sendmail %.3f ms (machine %s%% busy)\n' \
		"$q_on" "$q_on_s" "$q_on_pf" "$q_on_ms" "$q_on_mk" "$q_on_busy"
	printf '   RATIO requests/ordinary (throughput)  %s   (target >= 0.8)\n' "$(ratio "$q_on" "$q_off")"
	printf '   ratio ordinary/request (CPU per mail) %s\n' \
		"$(ratio "$q_off_pf" "$(awk -v a="$q_on_pf" -v b="$q_on_ms" -v c="$q_on_mk" 'BEGIN { print a + b + c }')")"
	echo "   every request answered: replies counted by the milter = $M in $q_on_n of $ROUNDS runs$([ "$incomplete" -gt 0 ] && echo " ($incomplete run(s) incomplete, not counted)")"
else
	echo "   requests + milter    no complete run: replies != requests (see above); no ratio"
fi
echo "   (load generator cpu/mail: smtp-source $o_off_cl / $o_on_cl ms, python sender $q_off_cl / ${q_on_cl:-?} ms, without / with)"
echo
printf 'wall time %d s (set-up included)\n' "$((SECONDS - start_seconds))"
[ -n "$q_sum" ] || exit 1
exit 0
