#!/usr/bin/env bash
# test_stun.sh - the agent's STUN client (agent/stun_client.c) against a
# real coturn and against stun_probe's own misbehaving server.
# Builds nothing: takes the probe from the environment
#   STUN_PROBE   the tests/agent/stun_probe binary
#                (default: ./tests/agent/stun_probe in the build dir)
#   TURNSERVER   coturn's turnserver (default: turnserver on PATH)
# coturn runs in the foreground of a background job, with its database,
# log and pid file in a temporary directory, listening on 127.0.0.1 and
# 127.0.0.2 (two addresses give RFC 5780 OTHER-ADDRESS and CHANGE-REQUEST
# support).  Checks: the server-reflexive address equals the probe's own
# bound address (no NAT on loopback), OTHER-ADDRESS and RESPONSE-ORIGIN,
# CHANGE-REQUEST answers from the other address/port, both reading modes
# (own read event, agent_stun_input), name resolution (blocking and
# evdns), several rounds on one client, parallel queries, a closed port
# timing out within the bound, the RFC 5389 retransmission schedule, and
# every way a server can misbehave.  Only loopback addresses are used.
# Prints "ok - ..." / "not ok - ..." and "N passed, N failed"; exits 0
# only if all passed, 77 if it cannot run.
set -u

# shellcheck source=coturn.sh
. "$(dirname "$0")/coturn.sh"

STUN_PROBE=${STUN_PROBE:-./tests/agent/stun_probe}
if [ ! -x "$STUN_PROBE" ]; then
	echo "SKIP: no stun_probe at $STUN_PROBE (set STUN_PROBE)"
	exit 77
fi
coturn_find || exit 77
STUN_PROBE=$(realpath "$STUN_PROBE")

pass=0
fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stun-test.XXXXXX")
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $*"; }

# probe ARGS...: runs the client, output in $tmp/out, status in $rc.
# A sanitizer report (when the probe is built with ASan) fails a test of
# its own, whatever the run's checks say.
probe() {
	"$STUN_PROBE" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if grep -q 'Sanitizer' "$tmp/err"; then
		not_ok "sanitizer report from: stun_probe $* ($(grep -m 3 -E 'ERROR|SUMMARY' "$tmp/err" | tr '\n' ' '))"
	fi
}

field() { # field KEY [SERVER]: the value after "KEY " on the first matching line
	if [ $# -eq 2 ]; then
		awk -v k="$1" -v s="$2" '$1 == k && $NF == s {print $2; exit}' "$tmp/out"
	else
		awk -v k="$1" '$1 == k {print $2; exit}' "$tmp/out"
	fi
}
status_of() { awk -v s="$1" '$1 == "query" && $4 == s {print $6; exit}' "$tmp/out"; }
sent_of() { awk -v s="$1" '$1 == "query" && $4 == s {print $8; exit}' "$tmp/out"; }
total_ms() { awk '$1 == "total_ms" {print $2}' "$tmp/out"; }
show() { tr '\n' ';' <"$tmp/out" | head -c 600; echo " / $(head -c 300 "$tmp/err")"; }

# expect NAME COND-DESCRIPTION: checks the last probe run with a test
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name ($(show))"; fi
}

# ---------------------------------------------------------------- coturn

P=$(coturn_free_port) || { echo "SKIP: no free port"; exit 77; }
A=$((P + 1))
coturn_start "$tmp" lo "$P" 127.0.0.1 127.0.0.2
pids+=("$COTURN_PID")
ready=0
for _ in $(seq 50); do
	if "$STUN_PROBE" --timeout 200 "127.0.0.1:$P" "127.0.0.2:$P" >/dev/null 2>&1; then
		ready=1
		break
	fi
	sleep 0.2
done
if [ "$ready" -ne 1 ]; then
	echo "not ok - coturn did not start on 127.0.0.1:$P ($(tail -n 5 "$tmp/turn-lo.log" 2>/dev/null))"
	echo "0 passed, 1 failed"
	exit 1
fi
ok "coturn answers on 127.0.0.1:$P and 127.0.0.2:$P"

# A fixed local port: the mapping must be exactly it.
Q=$(coturn_free_port)
S1="127.0.0.1:$P"
S2="127.0.0.2:$P"
probe --bind "127.0.0.1:$Q" "$S1"
check "srflx is the probe's own address and port" \
	test "$rc" -eq 0 -a "$(status_of "$S1")" = ok -a "$(field srflx "$S1")" = "127.0.0.1:$Q"
check "OTHER-ADDRESS names the second IP and the alternative port" \
	test "$(field other "$S1")" = "127.0.0.2:$A"
check "RESPONSE-ORIGIN and the source are the server queried" \
	test "$(field origin "$S1")" = "$S1" -a "$(field from "$S1")" = "$S1"
check "one request was enough" test "$(sent_of "$S1")" = 1

probe --bind 127.0.0.1:0 "$S1"
bound=$(field bound)
check "ephemeral port: srflx equals the bound address ($bound)" \
	test "$rc" -eq 0 -a -n "$bound" -a "$(field srflx "$S1")" = "$bound"

probe --bind "127.0.0.2:$Q" "$S1"
check "socket on 127.0.0.2: srflx 127.0.0.2:$Q" \
	test "$rc" -eq 0 -a "$(field srflx "$S1")" = "127.0.0.2:$Q"

probe --shared --bind 127.0.0.1:0 "$S1"
bound=$(field bound)
check "shared socket (agent_stun_input): srflx equals the bound address, nothing left over" \
	test "$rc" -eq 0 -a "$(field srflx "$S1")" = "$bound" -a "$(field unconsumed)" = 0

probe --bind 127.0.0.1:0 "$S1" "$S2"
bound=$(field bound)
check "two servers in parallel both answer with the same mapping" \
	test "$rc" -eq 0 -a "$(status_of "$S1")" = ok -a "$(status_of "$S2")" = ok \
	-a "$(field srflx "$S1")" = "$bound" -a "$(field srflx "$S2")" = "$bound" \
	-a "$(field distinct_srflx)" = 1
check "parallel queries take one round trip, not two timeouts" test "$(total_ms)" -lt 1000
check "the second server names its own origin" test "$(field origin "$S2")" = "$S2"

probe --change both "$S1"
check "CHANGE-REQUEST ip+port: answered from 127.0.0.2:$A" \
	test "$rc" -eq 0 -a "$(field from "$S1")" = "127.0.0.2:$A"
probe --change port "$S1"
check "CHANGE-REQUEST port: answered from 127.0.0.1:$A" \
	test "$rc" -eq 0 -a "$(field from "$S1")" = "127.0.0.1:$A"
probe --change ip "$S1"
check "CHANGE-REQUEST ip: answered from 127.0.0.2:$P" \
	test "$rc" -eq 0 -a "$(field from "$S1")" = "127.0.0.2:$P"

if grep -Eq '^127\.0\.0\.1[[:space:]]+(.*[[:space:]])?localhost([[:space:]]|$)' /etc/hosts; then
	probe --bind 127.0.0.1:0 "localhost:$P"
	bound=$(field bound)
	check "host name (getaddrinfo): localhost:$P answers" \
		test "$rc" -eq 0 -a "$(field srflx "localhost:$P")" = "$bound"
	probe --evdns --bind 127.0.0.1:0 "localhost:$P"
	bound=$(field bound)
	check "host name (evdns, /etc/hosts): localhost:$P answers" \
		test "$rc" -eq 0 -a "$(field srflx "localhost:$P")" = "$bound"
else
	echo "# no 'localhost' line for 127.0.0.1 in /etc/hosts: name tests skipped"
fi
probe --timeout 500 "no-such-host.invalid:$P"
check "a name that does not resolve fails as notfound" \
	test "$rc" -eq 1 -a "$(status_of "no-such-host.invalid:$P")" = notfound
# the probe's evdns base has no name server: the lookup never ends
probe --evdns --timeout 500 "no-such-host.invalid:$P" "$S1"
check "a lookup that never ends is bounded by the timeout, the other query answers" \
	test "$rc" -eq 1 -a "$(status_of "no-such-host.invalid:$P")" = timeout \
	-a "$(status_of "$S1")" = ok -a "$(total_ms)" -le 1000

probe --rounds 3 --free-in-callback "$S1" "$S2"
check "three rounds on one client, freed from its callback" \
	test "$rc" -eq 0 -a "$(grep -c '^distinct_srflx 1 round' "$tmp/out")" = 3 \
	-a "$(grep -c ' status ok ' "$tmp/out")" = 6

# ---------------------------------------------------------------- timeouts

C=$(coturn_free_port)
probe --timeout 1200 "127.0.0.1:$C"
t=$(total_ms)
check "closed port times out within the 1200 ms bound (${t} ms, 2 sends)" \
	test "$rc" -eq 1 -a "$(status_of "127.0.0.1:$C")" = timeout \
	-a "$(sent_of "127.0.0.1:$C")" = 2 -a "${t:-0}" -ge 1150 -a "${t:-99999}" -le 1700
probe "127.0.0.1:$C"
t=$(total_ms)
check "closed port, default bound: 3 s (${t} ms, 3 sends)" \
	test "$rc" -eq 1 -a "$(status_of "127.0.0.1:$C")" = timeout \
	-a "$(sent_of "127.0.0.1:$C")" = 3 -a "${t:-0}" -ge 2950 -a "${t:-99999}" -le 3500
probe --timeout 1000 "127.0.0.1:$C" "$S1"
t=$(total_ms)
check "a dead server beside a live one: live answers, dead times out (${t} ms)" \
	test "$rc" -eq 1 -a "$(status_of "$S1")" = ok -a "$(status_of "127.0.0.1:$C")" = timeout \
	-a "${t:-99999}" -le 1500

# ---------------------------------------------------------------- misbehaving servers

# serve MODE: starts stun_probe's server; sets F (address) and LOG.
serve() {
	local port i
	port=$(coturn_free_port)
	LOG="$tmp/serve.$1.$port"
	"$STUN_PROBE" --serve "127.0.0.1:$port" --mode "$1" >"$LOG" 2>&1 &
	pids+=($!)
	F="127.0.0.1:$port"
	for i in $(seq 50); do
		grep -q '^listening' "$LOG" && return 0
		sleep 0.1
	done
	return 1
}
# times: the server's request arrival times, space-separated
times() { awk '$1 == "request" {printf "%s ", $4}' "$LOG"; }
# near T WANT: |T - WANT| <= 150
near() { [ "$1" -ge $(($2 - 150)) ] && [ "$1" -le $(($2 + 150)) ]; }
schedule_is() { # schedule_is WANT...: arrival times match, one by one
	local -a got
	read -r -a got <<<"$(times)"
	[ "${#got[@]}" -eq $# ] || return 1
	local i=0 w
	for w in "$@"; do
		near "${got[$i]}" "$w" || return 1
		i=$((i + 1))
	done
}
check_sched() {
	local name=$1
	shift
	if schedule_is "$@"; then ok "$name"; else not_ok "$name (got: $(times); want: $*)"; fi
}

serve silent
probe "$F"
check_sched "retransmissions at 0, 500, 1500 ms within the 3 s bound" 0 500 1500

serve silent
probe --rto 100 --timeout 2000 "$F"
check_sched "RTO 100 ms doubles: 0, 100, 300, 700, 1500 ms" 0 100 300 700 1500

serve silent
probe --rto 50 --timeout 10000 "$F"
t=$(total_ms)
check_sched "at most 7 requests (Rc), then one wait of 16 RTO" 0 50 150 350 750 1550 3150
check "... ending at ~3950 ms, before the 10 s bound (${t} ms)" \
	test "$(status_of "$F")" = timeout -a "${t:-0}" -ge 3850 -a "${t:-99999}" -le 4300

serve drop:2
probe "$F"
check "answer to the third request counts (sent 3)" \
	test "$rc" -eq 0 -a "$(status_of "$F")" = ok -a "$(sent_of "$F")" = 3

serve wrong-tid
probe --shared --timeout 1000 "$F"
check "answers with another transaction ID are not taken, and not consumed" \
	test "$rc" -eq 1 -a "$(status_of "$F")" = timeout -a "$(field unconsumed)" = 2

serve other-port
probe --timeout 1000 "$F"
check "answers from another port of the server are ignored" \
	test "$rc" -eq 1 -a "$(status_of "$F")" = timeout

serve bad-fp
probe --timeout 1000 "$F"
check "answers with a broken FINGERPRINT are ignored" \
	test "$rc" -eq 1 -a "$(status_of "$F")" = timeout

serve error
probe "$F"
check "an error response ends the query at once with its code" \
	test "$rc" -eq 1 -a "$(status_of "$F")" = error -a "$(field error "$F")" = 400 \
	-a "$(total_ms)" -lt 500

serve garbage
probe --shared "$F"
check "shared socket: non-STUN datagrams are handed back, the answer taken" \
	test "$rc" -eq 0 -a "$(status_of "$F")" = ok -a "$(field unconsumed)" = 3
serve garbage
probe "$F"
check "own read event: non-STUN datagrams are dropped, the answer taken" \
	test "$rc" -eq 0 -a "$(status_of "$F")" = ok

serve unknown-attr
probe "$F"
check "unknown comprehension-required attribute: the answer is refused" \
	test "$rc" -eq 1 -a "$(status_of "$F")" = malformed

serve no-mapped
probe "$F"
check "success without a mapped address is refused" \
	test "$rc" -eq 1 -a "$(status_of "$F")" = malformed

serve legacy
probe --bind 127.0.0.1:0 "$F"
bound=$(field bound)
check "RFC 3489 server: MAPPED-ADDRESS and CHANGED-ADDRESS are used" \
	test "$rc" -eq 0 -a "$(field srflx "$F")" = "$bound" \
	-a "$(field other "$F")" = "127.0.0.1:$((${F##*:} + 1))"

serve dup
probe --shared "$F"
check "a duplicated answer is harmless" test "$rc" -eq 0 -a "$(status_of "$F")" = ok

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
