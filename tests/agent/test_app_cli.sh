#!/usr/bin/env bash
# mailpunch-agent's application options on the command line (--send,
# --receive, --overwrite, --forward, --forward-udp, --allow-forward,
# --allow-forward-udp): what is accepted goes on to read the
# configuration (here a missing file: exit 3), what is refused is a
# usage error (exit 2) with a message naming the option.  No network.
set -uo pipefail
AGENT=${AGENT:-./mailpunch-agent}
tmp=$(mktemp -d /tmp/mp-appcli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $*"; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what"; fi; }
conf=$tmp/none.conf

# accepted: parsing passes, the missing configuration stops the run
accepted() {
	local what=$1; shift
	"$AGENT" -c "$conf" "$@" >"$tmp/out" 2>&1
	local rc=$?
	check "$what (exit 3, got $rc)" test $rc -eq 3
}
# refused: usage error whose message contains $2
refused() {
	local what=$1 says=$2; shift 2
	"$AGENT" -c "$conf" "$@" >"$tmp/out" 2>&1
	local rc=$?
	check "$what (exit 2, got $rc)" test $rc -eq 2
	check "... says \"$says\"" grep -qF -- "$says" "$tmp/out"
}

accepted "connect PEER --send FILE" connect bob --send a.txt
accepted "--send before PEER" connect --send a.txt bob
accepted "--send FILE FILE FILE" connect bob --send a b c
accepted "--forward and --forward-udp" connect bob --forward 8080:127.0.0.1:80 --forward-udp 27015:[::1]:27015
accepted "--forward to localhost" connect bob --forward 2222:localhost:22
accepted "listen with everything" listen --receive "$tmp" --overwrite --allow-forward 127.0.0.1:80 \
	--allow-forward localhost:22 --allow-forward-udp 10.0.0.2:27015
accepted "--json after the command" listen --json --receive "$tmp"

refused "a DNS name as forward destination" "example.com" connect bob --forward 8080:example.com:80
refused "port 0" "--forward" connect bob --forward 0:127.0.0.1:80
refused "missing local port" "LOCALPORT:HOST:PORT" connect bob --forward 127.0.0.1:80
refused "bare IPv6 without brackets" "--allow-forward" listen --allow-forward ::1:22
refused "--allow-forward without port" "HOST:PORT" listen --allow-forward 127.0.0.1
refused "--send on listen" "belong to connect" listen --send x
refused "--receive on connect" "belong to listen" connect bob --receive "$tmp"
refused "--overwrite without --receive" "--receive" listen --overwrite
refused "application options on status" "connect or listen" status --send x
refused "extra words without --send" "usage" connect bob extra
refused "--forward without argument" "usage" connect bob --forward

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
