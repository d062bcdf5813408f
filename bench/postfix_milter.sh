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
#  2. requests: BENCH_REQUESTS sealed request mails (default 2000, made
#     with mptool, BENCH_IDENTITIES identities round-robin, a fresh session
#     ID each) through Postfix + milter, each answered by a reply that the
#     milter injects with sendmail(1) and Postfix discards, against the very
#     same mails (same bytes, same envelope) through Postfix without the
#     milter; the milter's counters must show one reply per request.
#
# Each side runs BENCH_ROUNDS times (default 2), alternating (without,
# with, without, with), and the best run of each side counts.  Results
# are printed as ratios against the baseline of the same run: timings on
# shared machines are noisy, so nothing is ever asserted about speed.
# --quick: 2000 messages and 200 requests (well under 2 minutes).
#
# Binaries: MILTER, MAILPUNCHCTL, KEYGEN, MPTOOL, defaulting to BUILD_DIR
# (first argument, else $PWD)/mailpunch-milter, mailpunchctl,
# mailpunch-keygen, tests/tools/mptool.  Other knobs (environment):
# BENCH_SESSIONS (10 parallel SMTP sessions), BENCH_SIZE (2048 bytes, the
# smtp-source message size), BENCH_BATCH (20 messages per connection for
# the request benchmark), BENCH_KEEP=1 (keep the directory).
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

if [ "$quick" = 1 ]; then
	def_messages=2000 def_requests=200
else
	def_messages=20000 def_requests=2000
fi
N=${BENCH_MESSAGES:-$def_messages}
M=${BENCH_REQUESTS:-$def_requests}
ROUNDS=${BENCH_ROUNDS:-2}
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

# shellcheck source=../tests/mailenv/mailenv.sh
. "$src/tests/mailenv/mailenv.sh"

start_seconds=$SECONDS
dir=$(mktemp -d /tmp/mpb.XXXXXX) || die "mktemp failed"
chmod 755 "$dir"
table=/mpb-$$
milter_pid=

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$milter_pid" ]; then
		kill -9 "$milter_pid" 2>/dev/null
		wait "$milter_pid" 2>/dev/null
	fi
	mailenv_stop "$dir" >/dev/null 2>&1
	rm -f "/dev/shm$table"
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
fmt() { awk -v x="$1" -v p="${2:-1}" 'BEGIN { printf "%.*f", p, x }'; }
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

# CPU accounting: busy and total jiffies of the whole machine, and the
# milter's own CPU time plus that of the children it waited for (the
# sendmail/postdrop runs that inject replies).
cpu_sample() {
	awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; printf "%d %d", t - $5 - $6, t }' /proc/stat
}
milter_cpu() {
	# utime stime cutime cstime are fields 14..17 (after the ")" of comm)
	sed 's/^.*) //' "/proc/$milter_pid/stat" 2>/dev/null | awk '{ printf "%d %d", $12 + $13, $14 + $15 }'
}
HZ=$(getconf CLK_TCK)

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

set_milter() {
	if [ "$1" = on ]; then
		mailenv_set_milter "$dir" "unix:$dir/milter.sock" >/dev/null || die "cannot configure the milter"
	else
		mailenv_set_milter "$dir" "" >/dev/null || die "cannot remove the milter"
	fi
}

# Every run prints one line to $dir/results: "BENCH SIDE ROUND RATE SECONDS
# CPU% MILTER_CPU_MS_PER_MSG CHILD_CPU_MS_PER_MSG DELIVERED"
record() { echo "$*" >>"$dir/results"; }

# run_source SIDE ROUND -- smtp-source, N messages, then queue empty.
run_source() {
	local side=$1 round=$2 off t0 t1 c0 c1 m0 m1 rc secs rate busy mms cms got
	set_milter "$side"
	wait_queue_empty 60 || die "queue not empty before a run"
	sleep 0.5
	off=$(log_size)
	c0=$(cpu_sample)
	m0=$(milter_cpu)
	t0=$(now)
	"$SMTP_SOURCE" -s "$SESSIONS" -m "$N" -l "$SIZE" -M bench.example \
		-f sender@sink.example -t rcpt@sink.example \
		"127.0.0.1:$MAILENV_SMTP_PORT" >"$dir/smtp-source.out" 2>&1
	rc=$?
	wait_queue_empty 900 || die "ordinary mail ($side milter) did not leave the queue"
	t1=$(now)
	c1=$(cpu_sample)
	m1=$(milter_cpu)
	if [ "$rc" -ne 0 ] || [ -s "$dir/smtp-source.out" ]; then
		note "bench: smtp-source exited $rc:"
		head -n 5 "$dir/smtp-source.out" >&2
		[ "$rc" -ne 0 ] && die "smtp-source failed ($side milter)"
	fi
	[ "$(deferred_count)" -eq 0 ] || die "mail was deferred ($side milter): see $dir/log/postfix.log"
	got=$(delivered_since "$off" "$N")
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	rate=$(awk -v n="$N" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')
	read -r busy mms cms < <(cpu_figures "$c0" "$c1" "$m0" "$m1" "$N")
	record ordinary "$side" "$round" "$rate" "$secs" "$busy" "$mms" "$cms" "$got"
	note "$(printf '  ordinary  %-8s round %d: %6d msgs in %7.2f s = %8.1f msg/s  (cpu %s%%, delivered %s)' \
		"$side" "$round" "$N" "$secs" "$rate" "$busy" "$got")"
}

# cpu_figures C0 C1 M0 M1 COUNT -> "busy% milter_ms/msg children_ms/msg"
cpu_figures() {
	local c0=($1) c1=($2) m0=($3) m1=($4)
	awk -v b0="${c0[0]}" -v t0="${c0[1]}" -v b1="${c1[0]}" -v t1="${c1[1]}" \
		-v u0="${m0[0]:-0}" -v k0="${m0[1]:-0}" -v u1="${m1[0]:-0}" -v k1="${m1[1]:-0}" \
		-v n="$5" -v hz="$HZ" 'BEGIN {
		busy = (t1 > t0) ? 100 * (b1 - b0) / (t1 - t0) : 0
		printf "%.0f %.3f %.3f\n", busy, 1000 * (u1 - u0) / hz / n, 1000 * (k1 - k0) / hz / n
	}'
}

# run_mails SIDE ROUND -- the pre-generated mails of ROUND through the
# python sender, then queue empty; with the milter, checks the replies.
run_mails() {
	local side=$1 round=$2 manifest=$dir/manifest.$2 off t0 t1 c0 c1 m0 m1 out secs rate busy mms cms
	local r0=0 r1=0 sent failed got
	set_milter "$side"
	wait_queue_empty 60 || die "queue not empty before a run"
	sleep 0.5
	[ "$side" = on ] && r0=$(stat_of replies)
	off=$(log_size)
	c0=$(cpu_sample)
	m0=$(milter_cpu)
	out=$("$PY" "$dir/send.py" "$MAILENV_SMTP_PORT" "$manifest" "$SESSIONS" "$BATCH" 2>"$dir/send.err") ||
		{ cat "$dir/send.err" >&2; die "the SMTP sender failed ($side milter)"; }
	wait_queue_empty 900 || die "requests ($side milter) did not leave the queue"
	t1=$(now)
	c1=$(cpu_sample)
	m1=$(milter_cpu)
	read -r t0 sent failed <<<"$out"
	if [ "$failed" -ne 0 ]; then
		note "bench: $failed of $M mails refused ($side milter):"
		head -n 5 "$dir/send.err" >&2
	fi
	[ "$(deferred_count)" -eq 0 ] || die "mail was deferred ($side milter): see $dir/log/postfix.log"
	if [ "$side" = on ]; then
		r1=$(stat_of replies)
		got=$((r1 - r0))
		if [ "$got" -ne "$M" ]; then
			note "bench: only $got replies for $M requests in round $round -- the rate is meaningless:"
			"$CTL" -s "$dir/control.sock" stats >&2
			tail -n 5 "$dir/milter.log" >&2
			record requests-incomplete "$side" "$round" 0 0 0 0 0 "$got"
			return 0
		fi
		# the replies are what Postfix delivers on this side
		got="$got replies, $(delivered_since "$off" "$M") delivered"
	else
		got="$(delivered_since "$off" "$M") delivered"
	fi
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	rate=$(awk -v n="$M" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')
	read -r busy mms cms < <(cpu_figures "$c0" "$c1" "$m0" "$m1" "$M")
	record requests "$side" "$round" "$rate" "$secs" "$busy" "$mms" "$cms" "${got%% *}"
	note "$(printf '  %-9s %-8s round %d: %6d mails in %7.2f s = %8.1f mail/s  (cpu %s%%, %s)' \
		"$([ "$side" = on ] && echo requests || echo ordinary)" "$side" "$round" "$M" "$secs" "$rate" "$busy" "$got")"
}

# Best rate of BENCH SIDE, and the figures of that run.
best() {
	awk -v b="$1" -v s="$2" '$1 == b && $2 == s && $4 + 0 > best + 0 { best = $4; line = $0 }
		END { print line }' "$dir/results"
}

# --------------------------------------------------------- the SMTP sender
cat >"$dir/send.py" <<'PY'
"""send.py PORT MANIFEST SESSIONS BATCH -- sends pre-generated mails.

MANIFEST lines are "FILE FROM TO".  Every mail is read into memory (line
ends made CRLF) before the clock starts; then SESSIONS threads take
batches of BATCH mails, one SMTP connection per batch.  Prints
"T0 SENT FAILED" (T0: wall clock of the first connection); refusals go
to stderr as "CODE TEXT".
"""
import re
import smtplib
import sys
import threading
import time

port, manifest, sessions, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
mails = []
with open(manifest) as f:
    for line in f:
        path, frm, to = line.split()
        with open(path, "rb") as m:
            data = re.sub(rb"(?<!\r)\n", b"\r\n", m.read())
        mails.append((frm, to, data))
batches = [mails[i:i + batch] for i in range(0, len(mails), batch)]
lock = threading.Lock()
state = {"next": 0, "sent": 0, "failed": 0}
errors = []


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
        s = None
        for frm, to, data in batches[i]:
            try:
                if s is None:
                    s = smtplib.SMTP("127.0.0.1", int(port), timeout=120)
                    s.ehlo("bench.example")
                s.sendmail(frm, [to], data)
                with lock:
                    state["sent"] += 1
            except smtplib.SMTPRecipientsRefused as e:
                fail(" ".join("%s %r" % v for v in e.recipients.values()))
                s.rset()
            except smtplib.SMTPResponseException as e:
                fail("%s %r" % (e.smtp_code, e.smtp_error))
                try:
                    s.rset()
                except (OSError, smtplib.SMTPException):
                    s = None
            except (OSError, smtplib.SMTPException) as e:
                fail("connection: %r" % e)
                s = None
        if s is not None:
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
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

# One request per line of stdin ("INDEX"): a fresh session ID each.
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
rm -f "/dev/shm$table"
"$MILTER" -f -c "$dir/milter.conf" 2>>"$dir/milter.stderr" &
milter_pid=$!
for _ in $(seq 100); do
	[ -S "$dir/milter.sock" ] && [ -S "$dir/control.sock" ] && break
	kill -0 "$milter_pid" 2>/dev/null || { cat "$dir/milter.stderr" >&2; die "the milter did not start"; }
	sleep 0.1
done
[ -S "$dir/control.sock" ] || die "the milter did not open its sockets"

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
note "== 1. ordinary mail, without and with the milter"
for r in $(seq 1 "$ROUNDS"); do
	run_source off "$r"
	run_source on "$r"
done

# ------------------------------------------------------------ benchmark 2
note "== 2. requests (with the milter) against the same mails without it"
for r in $(seq 1 "$ROUNDS"); do
	run_mails off "$r"
	run_mails on "$r"
done
echo

# ----------------------------------------------------------------- summary
read -r _ _ _ o_off o_off_s o_off_cpu _ _ _ <<<"$(best ordinary off)"
read -r _ _ _ o_on o_on_s o_on_cpu o_on_mms _ _ <<<"$(best ordinary on)"
read -r _ _ _ q_off q_off_s q_off_cpu _ _ _ <<<"$(best requests off)"
q_line=$(best requests on)
incomplete=$(grep -c '^requests-incomplete' "$dir/results")

echo "1. ordinary mail ($N msgs x $SIZE bytes, best of $ROUNDS)"
printf '   without milter  %9.1f msg/s  (%.2f s, cpu %s%%)\n' "$o_off" "$o_off_s" "$o_off_cpu"
printf '   with milter     %9.1f msg/s  (%.2f s, cpu %s%%; milter cpu %.3f ms/msg)\n' "$o_on" "$o_on_s" "$o_on_cpu" "$o_on_mms"
printf '   ratio with/without  %.3f   (target >= 0.95)\n' "$(awk -v a="$o_on" -v b="$o_off" 'BEGIN { print a / b }')"
echo
echo "2. requests ($M mails x ~$req_size bytes, best of $ROUNDS)"
printf '   ordinary, no milter %7.1f mail/s  (%.2f s, cpu %s%%)\n' "$q_off" "$q_off_s" "$q_off_cpu"
if [ -n "$q_line" ]; then
	read -r _ _ _ q_on q_on_s q_on_cpu q_on_mms q_on_cms q_on_n <<<"$q_line"
	printf '   requests + milter   %7.1f req/s   (%.2f s, cpu %s%%; milter cpu %.3f ms/req, its sendmail children %.3f ms/req)\n' \
		"$q_on" "$q_on_s" "$q_on_cpu" "$q_on_mms" "$q_on_cms"
	printf '   ratio requests/ordinary  %.3f   (target >= 0.8)\n' "$(awk -v a="$q_on" -v b="$q_off" 'BEGIN { print a / b }')"
	echo "   replies counted by the milter: $q_on_n of $M in the best run$([ "$incomplete" -gt 0 ] && echo "; $incomplete run(s) incomplete")"
else
	echo "   requests + milter   no complete run: replies != requests (see above); no ratio"
fi
echo
printf 'wall time %d s (set-up included)\n' "$((SECONDS - start_seconds))"
[ -n "$q_line" ] || exit 1
exit 0
