#!/usr/bin/env bash
# mailpunch-keygen from the command line: files, modes, refusal to
# overwrite, public output that the library parses back, exit codes.
set -uo pipefail
KEYGEN=${KEYGEN:-./mailpunch-keygen}
MPTOOL=${MPTOOL:-./tests/tools/mptool}
tmp=$(mktemp -d /tmp/mp-keygen.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $*"; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what"; fi; }

out=$("$KEYGEN" host -a rdv@lab.example "$tmp/host.key")
check "host key created" test -f "$tmp/host.key"
check "host key mode 0600" test "$(stat -c %a "$tmp/host.key")" = 600
check "host key printed as mph1." grep -Eq '^host-key mph1\.[A-Za-z0-9_-]{43}$' <<<"$out"
check "line for members names address and key" grep -Eq '^host rdv@lab\.example mph1\.' <<<"$out"
"$KEYGEN" host "$tmp/host.key" >/dev/null 2>"$tmp/err"
check "existing key not overwritten (exit 1)" test $? -eq 1
check "... and the message says -f" grep -q -- '-f' "$tmp/err"
before=$(sha256sum <"$tmp/host.key")
check "-f replaces the key" "$KEYGEN" host -f "$tmp/host.key"
check "... with a different key" test "$before" != "$(sha256sum <"$tmp/host.key")"

out=$("$KEYGEN" user -n Alice "$tmp/alice.key")
uid=$(awk '/^user-id/ {print $2}' <<<"$out")
check "user ID is 26 base32 characters" grep -Eq '^[a-z2-7]{26}$' <<<"$uid"
check "identity printed as mpu1." grep -Eq '^identity mpu1\.[A-Za-z0-9_-]{86}$' <<<"$out"
check "show prints the same user ID" grep -q "^user-id $uid$" <<<"$("$KEYGEN" show "$tmp/alice.key")"
check "the library derives the same ID from the file" grep -q "^uid $uid$" <<<"$("$MPTOOL" pubid "$tmp/alice.key")"
check "show recognises a host key" grep -q '^host-key mph1\.' <<<"$("$KEYGEN" show "$tmp/host.key")"

"$KEYGEN" >/dev/null 2>&1; check "no arguments: usage (exit 2)" test $? -eq 2
"$KEYGEN" host -a not-an-address "$tmp/x.key" >/dev/null 2>&1; check "bad address: usage (exit 2)" test $? -eq 2
"$KEYGEN" show /nonexistent/key >/dev/null 2>&1; check "missing file: exit 1" test $? -eq 1
chmod 644 "$tmp/alice.key"
"$KEYGEN" show "$tmp/alice.key" >/dev/null 2>&1; check "world-readable key refused" test $? -eq 1

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
