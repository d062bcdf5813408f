#!/usr/bin/env bash
# mailpunch-agent end to end against a real Postfix (with mailpunch-milter)
# and a real Dovecot, all on loopback: registration over SMTP submission
# (STARTTLS, AUTH) and IMAP IDLE or POP3, bob listening and alice
# connecting (signal through the host, punching, identity handshake,
# authenticated messages both ways), a forged reply, a vanished peer and
# its failure notice, direct invitation, two hosts with one down, and the
# errors a user meets first (password, certificate).
# Needs root and tests/mailenv/install-deps.  Run from the build tree.
# Prints ok/not ok lines and "N passed, N failed"; exit 77 = skipped.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$PWD
MILTER=${MILTER:-$build/mailpunch-milter}
AGENT=${AGENT:-$build/mailpunch-agent}
CTL=${MAILPUNCHCTL:-$build/mailpunchctl}
KEYGEN=${KEYGEN:-$build/mailpunch-keygen}
MPTOOL=${MPTOOL:-$build/tests/tools/mptool}

if [ "$(id -u)" -ne 0 ] || ! command -v postfix >/dev/null || ! command -v dovecot >/dev/null; then
	echo "skipped: needs root, Postfix and Dovecot (tests/mailenv/install-deps)"
	exit 77
fi
# shellcheck source=../mailenv/mailenv.sh
. "$src/mailenv/mailenv.sh"
# shellcheck source=agentenv.sh
. "$src/integration/agentenv.sh"

dir=$(mktemp -d /tmp/mp-agent.XXXXXX)
chmod 755 "$dir"     # Postfix and Dovecot users must reach the environment
AGENTENV_TABLE=/mp-agent-$$
pass=0
fail=0
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.2
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	agentenv_down "$dir"
	[ "$fail" -eq 0 ] && rm -rf "$dir"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() {
	fail=$((fail + 1))
	echo "not ok - $*"
	for f in "$dir"/last.out "$dir"/*/agent.log "$dir/milter.log"; do
		[ -f "$f" ] && tail -n 4 "$f" | sed "s|^|#   $(basename "$(dirname "$f")")/$(basename "$f"): |"
	done
}
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what"; fi; }
# runs the agent as USER with a deadline, output in $dir/last.out, status in $rc
agent() {
	local who=$1; shift
	timeout 60 "$AGENT" -c "$dir/$who/agent.conf" "$@" >"$dir/last.out" 2>&1 </dev/null
	rc=$?
}

agentenv_up "$dir" "$MILTER" "$KEYGEN" "TableCapacity       1000" "LogLevel            debug" || exit 1

# write_conf USER [extra lines...]: an agent.conf for USER
write_conf() {
	local u=$1; shift
	agentenv_conf "$dir" "$u" \
		"POP3Host            localhost" \
		"POP3Port            $MAILENV_POP3S_PORT" \
		"PollInterval        1s" \
		"LogLevel            info" \
		"ReplyTimeout        30s" \
		"PunchTimeout        4s" \
		"$@"
}

write_conf alice
write_conf bob
write_conf carol "ReceiveProtocol pop3"

agent alice --json id
check "id creates alice's identity and prints it (--json)" grep -q '"user_id":"[a-z2-7]\{26\}"' "$dir/last.out"
alice_uid=$(grep -o '"user_id":"[a-z2-7]*"' "$dir/last.out" | cut -d'"' -f4)
alice_pub=$(grep -o '"identity":"mpu1[^"]*"' "$dir/last.out" | cut -d'"' -f4)
agent bob id
bob_uid=$(awk '/^user-id/ {print $2}' "$dir/last.out")
bob_pub=$(awk '/^identity/ {print $2}' "$dir/last.out")
agent carol id
check "the identity key file is private" test "$(stat -c %a "$dir/alice/identity.key")" = 600

# An unrelated mail waits in alice's mailbox; it must stay exactly as it is.
printf 'From: someone@lab.example\r\nTo: alice@lab.example\r\nSubject: lunch\r\n\r\nnoon?\r\n' >"$dir/lunch.mail"
mailenv_send "$dir/env" someone@lab.example alice@lab.example "$dir/lunch.mail" >/dev/null
lunch=$(mailenv_wait_mail "$dir/env" alice 'Subject: lunch' 20)
lunch_id=$(basename "$lunch" | cut -d: -f1)
cp "$lunch" "$dir/lunch.before"

# 1. register over IMAP IDLE; alice is the first member
agent alice register
check "alice registers (exit $rc)" test "$rc" = 0
check "... and her reply lists no peers yet" grep -q 'reply from rdv@lab.example: 0 peers' "$dir/last.out"

# 2. bob listens; alice connects to him by name
"$AGENT" -c "$dir/bob/agent.conf" listen >"$dir/bob/listen.out" 2>&1 &
bob_pid=$!
pids+=("$bob_pid")
for _ in $(seq 100); do grep -q 'listening as' "$dir/bob/listen.out" && break; sleep 0.1; done
check "bob registers and listens" grep -q "listening as $bob_uid" "$dir/bob/listen.out"
# (alice's stdin stays open a few seconds: the connection lives on while
# bob's status is looked at; the data path itself: test_transport.sh)
start=$(date +%s.%N)
(echo "hello from alice"; sleep 4) | timeout 60 "$AGENT" -c "$dir/alice/agent.conf" connect bob \
	>"$dir/alice.data" 2>"$dir/alice.connect.out" &
alice_pid=$!
for _ in $(seq 300); do grep -q "secure connection" "$dir/alice.connect.out" && break; sleep 0.1; done
took=$(echo "$(date +%s.%N) - $start" | bc)
timeout 20 "$AGENT" -c "$dir/bob/agent.conf" status >"$dir/bob.status" 2>&1 </dev/null
wait "$alice_pid"
rc=$?
cp "$dir/alice.connect.out" "$dir/last.out"
check "alice connects to bob (exit $rc; connected after ${took}s)" test "$rc" = 0
check "alice's side: path established with bob's identity verified" grep -q "established with $bob_uid via 127.0.0.1:" "$dir/last.out"
check "alice's side: QUIC connection with bob's identity key pinned" grep -q "secure connection with $bob_uid" "$dir/last.out"
check "status shows bob's listen running with its established link" \
	bash -c "grep -q 'listen: running as pid $bob_pid' '$dir/bob.status' && grep -q 'link $alice_uid 127.0.0.1:[0-9]* established' '$dir/bob.status'"
check "bob's side: established with alice" grep -q "established with $alice_uid" "$dir/bob/listen.out"
check "bob receives alice's line over the stream" grep -q "hello from alice" "$dir/bob/listen.out"
for _ in $(seq 30); do grep -q "connection with $alice_uid closed" "$dir/bob/listen.out" && break; sleep 0.1; done
check "bob's side: the connection closed cleanly" grep -q "connection with $alice_uid closed: peer closed the connection" "$dir/bob/listen.out"
# Dovecot itself moves a mail from new/ to cur/ once a client has seen the
# folder; the flags (after ":2,") must stay empty: not \Seen, not deleted.
lunch_now=$(find "$dir/env/mail/alice/Maildir/new" "$dir/env/mail/alice/Maildir/cur" -name "$lunch_id*" | head -n 1)
check "the unrelated mail in alice's mailbox is still there, unread" \
	bash -c "[ -n '$lunch_now' ] && ! basename '$lunch_now' | grep -q ':2,.*[ST]'"
check "... with the same content" cmp "$dir/lunch.before" "$lunch_now"
# (bob's ANSWER may still be on its way after alice is done: the next
# run consumes such late signals; the reply alice handled must be gone)
check "the reply alice handled was removed from her mailbox" \
	bash -c "! grep -rlq 'Subject: \[mailpunch\] reply' '$dir/env/mail/alice/Maildir/new' '$dir/env/mail/alice/Maildir/cur'"

# 3. a forged reply (sealed with the host key, but answering no request)
"$MPTOOL" reply "$dir/host.key" "$alice_pub" rdv@lab.example alice@lab.example >"$dir/forged.mail"
mailenv_send "$dir/env" rdv@lab.example alice@lab.example "$dir/forged.mail" >/dev/null
mailenv_wait_mail "$dir/env" alice 'Subject: \[mailpunch\] reply' 20 >/dev/null
agent alice register
check "a register with a forged reply waiting still succeeds (exit $rc)" test "$rc" = 0
check "the forged reply was rejected and logged" grep -q 'matches no outstanding request' "$dir/alice/agent.log"
check "the real reply lists bob" grep -q "$bob_uid  bob" "$dir/last.out"

# 4. bob vanishes: alice cannot reach him, and tells the host
kill "$bob_pid"
wait "$bob_pid" 2>/dev/null
agent alice connect bob
check "connecting to a vanished peer fails with exit 8 (got $rc)" test "$rc" = 8
check "... after reporting the failure to the host" grep -q 'reporting it to rdv@lab.example' "$dir/last.out"
flagged=0
for _ in $(seq 50); do
	"$CTL" -s "$dir/control.sock" --json show "$bob_uid" 2>/dev/null | grep -q '"failed":true' && { flagged=1; break; }
	sleep 0.2
done
check "the host's table shows bob flagged (mailpunchctl show)" test "$flagged" = 1

# 5. POP3 instead of IMAP
agent carol register
check "carol registers over POP3 (exit $rc)" test "$rc" = 0
check "... and sees alice and bob" bash -c "grep -q '$alice_uid' '$dir/last.out' && grep -q '$bob_uid' '$dir/last.out'"

# 6. direct mode: an invitation by mail, no host
write_conf alice "Friend bob@lab.example $bob_pub"
write_conf bob "Friend alice@lab.example $alice_pub"
"$AGENT" -c "$dir/bob/agent.conf" listen >"$dir/bob/listen2.out" 2>&1 &
bob_pid=$!
pids+=("$bob_pid")
for _ in $(seq 100); do grep -q 'listening as' "$dir/bob/listen2.out" && break; sleep 0.1; done
agent alice invite bob@lab.example
check "alice invites bob directly and connects (exit $rc)" test "$rc" = 0
check "... with bob's identity verified" grep -q "established with $bob_uid" "$dir/last.out"
check "bob took it as an invitation" grep -q "invitation from $alice_uid" "$dir/bob/listen2.out"
# carol is no Friend of bob's: her invitation (even with a From: forged
# to look like the host's) is ignored
write_conf carol "ReceiveProtocol pop3" "Friend bob@lab.example $bob_pub"
agent carol invite bob@lab.example
check "an invitation from someone who is not a Friend gets nowhere (exit $rc)" test "$rc" = 8
check "... bob ignored it" grep -q "not a Friend: ignored" "$dir/bob/agent.log"
kill "$bob_pid"

# 7a. IPv6: both announce only ::1, so the path must be IPv6 (a peer that
# announces IPv4 too would be found there first: peer-reflexive)
if ip -6 addr show lo 2>/dev/null | grep -q '::1/128'; then
	write_conf bob "AnnounceAddress ::1"
	sed -i '/^AnnounceAddress *127.0.0.1$/d' "$dir/bob/agent.conf"
	write_conf alice "AnnounceAddress ::1"
	sed -i '/^AnnounceAddress *127.0.0.1$/d' "$dir/alice/agent.conf"
	"$AGENT" -c "$dir/bob/agent.conf" listen >"$dir/bob/listen3.out" 2>&1 &
	bob_pid=$!
	pids+=("$bob_pid")
	for _ in $(seq 100); do grep -q 'listening as' "$dir/bob/listen3.out" && break; sleep 0.1; done
	agent alice connect bob
	check "alice reaches bob over IPv6 (exit $rc)" test "$rc" = 0
	check "... on an IPv6 path" grep -q "established with $bob_uid via \[::1\]:" "$dir/last.out"
	kill "$bob_pid"
	write_conf bob
	write_conf alice
else
	echo "# no ::1 on this host: IPv6 check skipped"
fi

# 7. two hosts, one of them down: the working host's reply is enough
"$KEYGEN" host "$dir/down.key" >"$dir/down.pub"
write_conf alice "Host rdv@down.example $(awk '/^host-key/ {print $2}' "$dir/down.pub")"
agent alice register
check "with a second host down, registration still succeeds (exit $rc)" test "$rc" = 0

# 8. endpoints from a real STUN server (coturn) on loopback
if command -v turnserver >/dev/null; then
	sport=$((20000 + RANDOM % 20000))
	turnserver -n --listening-ip 127.0.0.1 --listening-port "$sport" --stun-only --no-cli --no-tls \
		--no-dtls --log-file "$dir/turn.log" --simple-log --pidfile "$dir/turn.pid" \
		--userdb "$dir/turndb" >/dev/null 2>&1 &
	pids+=($!)
	sleep 1
	write_conf alice "STUNServer 127.0.0.1:$sport" "LocalPort 0"
	agent alice register
	check "with a STUN server, registration succeeds (exit $rc)" test "$rc" = 0
	check "... announcing the server-reflexive endpoint STUN reported" grep -Eq '^  srflx 127\.0\.0\.1:[0-9]+$' "$dir/last.out"
	check "... and the NAT discovered beside it (no NAT on loopback)" grep -q '^nat: mapping no-nat,' "$dir/last.out"
	agent bob --json register
	check "... which the REQUEST carried: bob's reply shows alice's NAT" \
		grep -q '"name":"alice"[^}]*"nat":{"mapping":"no-nat"' "$dir/last.out"
	write_conf alice
else
	echo "# coturn not installed: STUN checks skipped"
fi

# 9. the errors a user meets first
echo wrong >"$dir/alice/pw"
agent alice register
check "wrong password: exit 4 (got $rc)" test "$rc" = 4
check "... with a clear message" grep -qi 'auth' "$dir/last.out"
echo pw-alice >"$dir/alice/pw"
grep -v '^CAFile' "$dir/alice/agent.conf" >"$dir/alice/agent.conf.new" && mv "$dir/alice/agent.conf.new" "$dir/alice/agent.conf"
agent alice register
check "untrusted server certificate: exit 5 (got $rc)" test "$rc" = 5
check "... naming the certificate problem" grep -qi 'certificate' "$dir/last.out"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
