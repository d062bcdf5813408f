#!/usr/bin/env bash
# test_mailpunchctl.sh - end-to-end tests of mailpunchctl against
# ctl_test_server (a control socket answering with mp_control_exec over
# a real table).  Builds nothing: takes the programs from the environment
#   MAILPUNCHCTL     the mailpunchctl binary
#   CTL_TEST_SERVER  the ctl_test_server binary
# Checks the human and --json output, the socket choice (-s,
# MAILPUNCH_CONTROL, unix: prefix) and every exit status: usage (2),
# missing socket and nobody listening (3), permission denied (4, as
# "nobody" when run as root), unknown user (5), protocol errors and
# timeout (6).  Set CTL_SKIP_SLOW=1 to skip the 10-second timeout test.
# Prints "ok - ..." / "not ok - ..." and "N passed, N failed"; exits
# non-zero if anything failed.
set -u

: "${MAILPUNCHCTL:?set MAILPUNCHCTL to the mailpunchctl binary}"
: "${CTL_TEST_SERVER:?set CTL_TEST_SERVER to the ctl_test_server binary}"
MAILPUNCHCTL=$(realpath "$MAILPUNCHCTL")
CTL_TEST_SERVER=$(realpath "$CTL_TEST_SERVER")

pass=0
fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mailpunchctl-test.XXXXXX")
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

# Runs mailpunchctl, keeping stdout, stderr and the exit status.
run() {
	"$MAILPUNCHCTL" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

# check NAME EXPECTED_STATUS [grep -E patterns that stdout must match...]
check() {
	local name=$1 want=$2 pat
	shift 2
	if [ "$rc" -ne "$want" ]; then
		not_ok "$name (exit $rc, want $want; stderr: $(head -c 300 "$tmp/err"))"
		return
	fi
	for pat in "$@"; do
		if ! grep -Eq -- "$pat" "$tmp/out"; then
			not_ok "$name (no /$pat/ in: $(head -c 500 "$tmp/out"))"
			return
		fi
	done
	ok "$name"
}

check_err() {
	local name=$1 pat=$2
	if grep -Eq -- "$pat" "$tmp/err"; then
		ok "$name"
	else
		not_ok "$name (stderr: $(cat "$tmp/err"))"
	fi
}

# A JSON checker: python3 when present, else a structural sanity check.
json_ok() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import json,sys; json.loads(sys.stdin.buffer.read().decode("utf-8"))' <"$1"
	else
		[ "$(wc -l <"$1")" -eq 1 ] && head -c 1 "$1" | grep -q '{'
	fi
}

# Starts a server; waits for "ready"; sets $srv_pid.
start_server() {
	local out=$1
	shift
	"$CTL_TEST_SERVER" "$@" >"$out" 2>"$out.err" &
	srv_pid=$!
	pids+=("$srv_pid")
	for _ in $(seq 100); do
		grep -q '^ready$' "$out" 2>/dev/null && return 0
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "ctl_test_server did not start: $(cat "$out.err")" >&2
	return 1
}

sock=$tmp/control.sock
start_server "$tmp/server.out" "$sock" "$tmp/table" 3600 || exit 1
main_pid=$srv_pid
uid() { awk -v n="$1" '$1 == n { print $2 }' "$tmp/server.out"; }
alice=$(uid alice)
bob=$(uid bob)
carol=$(uid carol)
odd=$(uid odd)
unknown=aaaaaaaaaaaaaaaaaaaaaaaaaa

# ---------------------------------------------------------------- human output
run -s "$sock" help
check "help" 0 '^  list \[N\] ' '^  show USERID '

run -s "$sock" list
check "list: header and rows" 0 '^USER ID +NAME +AGE +FLAGS +STATE +REPLY ADDRESS +CANDIDATES$' \
	"^$alice  Alice Liddell +[0-9]+s +- +live +alice@example.org +198\.51\.100\.20:40000 \[2001:db8::20\]:40001$" \
	"^$bob  Bob .* F +live +bob@example.com +-$" \
	"^$carol  Carol .* expired +carol@example.net" \
	'^4 of 4 entries, newest first$'
if ! grep -Eq '^(OK|\.)$' "$tmp/out" && [ "$(grep -c . "$tmp/out")" -eq 6 ]; then
	ok "list: no status line or final dot in the output"
else
	not_ok "list: protocol framing leaked into the output"
fi
if [ "$(awk "/^$alice/ { print index(\$0, \"alice@\") }" "$tmp/out")" = \
     "$(awk '/^USER ID/ { print index($0, "REPLY ADDRESS") }' "$tmp/out")" ]; then
	ok "list: columns aligned"
else
	not_ok "list: columns not aligned"
fi
if LC_ALL=C grep -q $'\x1b' "$tmp/out"; then
	not_ok "list: an escape character from a name reached the terminal"
else
	ok "list: names from mail are escaped"
fi
run -s "$sock" list 2
check "list 2" 0 "^$alice " '^2 of 4 entries'

run -s "$sock" show "$alice"
check "show" 0 "^user ID: +$alice$" '^identity: +mpu1\.[A-Za-z0-9_-]{86}$' \
	'^name: +Alice Liddell$' '^reply address: +alice@example.org$' \
	'^last request: +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z \([0-9]+s ago\)$' \
	'^NAT mapping: +endpoint-independent$' '^candidate 2: +\[2001:db8::20\]:40001 \(local\)$'
run -s "$sock" show "$odd"
check "show: odd name escaped" 0 '^name: +O"d\\\\d\\x1b\[1m\\xff$'

run -s "$sock" stats
check "stats" 0 '^entries +4$' '^capacity +64$' '^requests +4$' '^expirations +0$'

# ---------------------------------------------------------------- JSON output
run -s "$sock" --json list
check "--json list" 0 '^\{"total":4,"entries":\[' "\"uid\":\"$alice\",\"name\":\"Alice Liddell\""
if json_ok "$tmp/out"; then ok "--json list: valid JSON"; else not_ok "--json list: invalid JSON"; fi
run -s "$sock" -j show "$odd"
check "-j show" 0 '"name":"O\\"d\\\\d\\u001b\[1m\\u00ff"' '"identity":"mpu1\.'
if json_ok "$tmp/out"; then ok "-j show: valid JSON"; else not_ok "-j show: invalid JSON"; fi
run -s "$sock" --json stats
check "--json stats" 0 '^\{"stats":\{"requests":4,.*\},"entries":4,"capacity":64\}$'
run -s "$sock" --json help
check "--json help" 0 '^\{"commands":\['

# ---------------------------------------------------------------- changes
run -s "$sock" flag "$alice"
check "flag" 0 "^flagged $alice as failed$"
run -s "$sock" list
check "flag shows in list" 0 "^$alice .* F +live "
run -s "$sock" -j unflag "$alice"
check "unflag" 0 '^\{"unflagged":1\}$'
run -s "$sock" expire
check "expire" 0 '^expired 1 entry \(older than 1h00m\)$'
run -s "$sock" show "$carol"
check "expired entry is gone" 5
run -s "$sock" delete "$bob"
check "delete" 0 "^deleted $bob$"

# ---------------------------------------------------------------- exit statuses
run -s "$sock" show "$unknown"
check "unknown user: exit 5" 5
check_err "unknown user: message" "^mailpunchctl: no entry for user ID $unknown$"
run -s "$sock" --json delete "$unknown"
check "unknown user, JSON: exit 5 and error object" 5 '^\{"error":\{"code":"notfound",'
run -s "$sock" show not-a-user-id
check "bad user ID: exit 2" 2
check_err "bad user ID: message" "^mailpunchctl: 'not-a-user-id' is not a user ID"
run -s "$sock" frobnicate
check "unknown command: exit 2" 2
check_err "unknown command: message" "^mailpunchctl: unknown command 'frobnicate'"
run -s "$sock" list 0
check "bad count: exit 2" 2
run -s "$sock" stats extra
check "extra argument refused by the milter: exit 2" 2
run -s "$sock"
check "no command: exit 2" 2
run -s "$sock" show a b
check "too many arguments: exit 2" 2
run -s "$sock" show "a b"
check "argument with a blank: exit 2" 2
run -s "$sock" show $'x\nlist'
check "argument with a newline: exit 2" 2
run --bogus list
check "unknown option: exit 2" 2
run -s inet:8893@127.0.0.1 list
check "inet socket refused: exit 2" 2
run --help
check "--help" 0 '^usage: mailpunchctl ' 'exit status'

run -s "$tmp/nonexistent.sock" list
check "missing socket: exit 3" 3
check_err "missing socket: message names the path" "$tmp/nonexistent.sock does not exist.*ControlSocket"
MAILPUNCH_CONTROL=$tmp/other.sock run list
check "MAILPUNCH_CONTROL is used" 3
check_err "MAILPUNCH_CONTROL path in message" "$tmp/other.sock"
MAILPUNCH_CONTROL=$sock run stats
check "MAILPUNCH_CONTROL reaches the server" 0 '^entries '
MAILPUNCH_CONTROL=$tmp/other.sock run -s "unix:$sock" stats
check "-s beats MAILPUNCH_CONTROL, unix: prefix" 0 '^entries '

# a socket file left behind by a dead milter
start_server "$tmp/dead.out" "$tmp/dead.sock" "$tmp/dead-table" || exit 1
kill -9 "$srv_pid"
wait "$srv_pid" 2>/dev/null
run -s "$tmp/dead.sock" list
check "stale socket, nobody listening: exit 3" 3
check_err "stale socket: message" "nothing listens on control socket $tmp/dead.sock"

# permission denied: root bypasses modes, so test as nobody
as_other=()
if [ "$(id -u)" -eq 0 ]; then
	if command -v setpriv >/dev/null 2>&1; then
		as_other=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	elif command -v runuser >/dev/null 2>&1; then
		as_other=(runuser -u nobody --)
	fi
fi
if [ "$(id -u)" -eq 0 ] && [ ${#as_other[@]} -eq 0 ]; then
	echo "ok - permission denied # SKIP no setpriv or runuser to drop root"
else
	chmod 755 "$tmp"
	chmod 666 "$sock"
	"${as_other[@]}" "$MAILPUNCHCTL" -s "$sock" stats >"$tmp/out" 2>"$tmp/err"
	rc=$?
	check "open socket usable by another user (control for the next test)" 0 '^entries '
	chmod 000 "$sock"
	"${as_other[@]}" "$MAILPUNCHCTL" -s "$sock" stats >"$tmp/out" 2>"$tmp/err"
	rc=$?
	check "permission denied: exit 4" 4
	check_err "permission denied: message" "permission denied on control socket $sock.*group"
	chmod 660 "$sock"
	chmod 700 "$tmp"
fi

# protocol errors
start_server "$tmp/garbage.out" "$tmp/garbage.sock" "$tmp/garbage-table" -b garbage || exit 1
run -s "$tmp/garbage.sock" list
check "garbage answer: exit 6" 6
check_err "garbage answer: message" "unexpected answer"
start_server "$tmp/trunc.out" "$tmp/trunc.sock" "$tmp/trunc-table" -b truncated || exit 1
run -s "$tmp/trunc.sock" list
check "truncated answer: exit 6" 6
check_err "truncated answer: message" "closed the connection before the answer was complete"
if [ "${CTL_SKIP_SLOW:-0}" = 1 ]; then
	echo "ok - silent milter: exit 6 after 10 s # SKIP CTL_SKIP_SLOW=1"
else
	start_server "$tmp/silent.out" "$tmp/silent.sock" "$tmp/silent-table" -b silent || exit 1
	start=$(date +%s)
	run -s "$tmp/silent.sock" list
	took=$(($(date +%s) - start))
	check "silent milter: exit 6" 6
	if [ "$took" -ge 9 ] && [ "$took" -le 15 ]; then
		ok "silent milter: gave up after ${took} s"
	else
		not_ok "silent milter: gave up after ${took} s, want about 10"
	fi
fi

# a big answer: many reads, buffer growth
start_server "$tmp/big.out" "$tmp/big.sock" "$tmp/big-table" -f 6000 || exit 1
run -s "$tmp/big.sock" list 10000
check "list 10000 of 6004 entries" 0 '^6004 of 6004 entries, newest first$'
if [ "$(wc -l <"$tmp/out")" -eq 6006 ]; then ok "list 10000: every row"; else not_ok "list 10000: $(wc -l <"$tmp/out") lines"; fi
run -s "$tmp/big.sock" --json list 10000
check "--json list 10000" 0 '^\{"total":6004,'
if json_ok "$tmp/out" && [ "$(grep -o '"uid":' "$tmp/out" | wc -l)" -eq 6004 ]; then
	ok "--json list 10000: valid, every entry"
else
	not_ok "--json list 10000: invalid or incomplete"
fi

# flush last: it empties the table
run -s "$sock" flush
check "flush" 0 '^flushed 2 entries$'
run -s "$sock" list
check "list after flush" 0 '^no entries$'

# the server (and so mp_control_exec) survived everything, without a
# sanitizer report when built with one
kill "$main_pid"
wait "$main_pid"
st=$?
if [ "$st" -eq 0 ] && [ ! -s "$tmp/server.out.err" ] && [ ! -e "$sock" ]; then
	ok "server shut down cleanly"
else
	not_ok "server shut down with status $st: $(head -c 2000 "$tmp/server.out.err")"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
