#!/usr/bin/env bash
# mailpunch-milter inside a real Postfix (smtpd_milters and
# non_smtpd_milters) delivering to a real Dovecot, all on loopback:
# requests answered into the requester's mailbox, ordinary mail
# untouched, garbage ignored, notices, signals, and kill -9 of the milter
# in the middle of a transaction (tempfail, retry, nothing lost).
# Needs root and tests/mailenv/install-deps.  Run from the build tree
# (make check does) or set MILTER, MAILPUNCHCTL, KEYGEN, MPTOOL.
# Prints ok/not ok lines and "N passed, N failed"; exit 77 = skipped.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$PWD
MILTER=${MILTER:-$build/mailpunch-milter}
CTL=${MAILPUNCHCTL:-$build/mailpunchctl}
KEYGEN=${KEYGEN:-$build/mailpunch-keygen}
MPTOOL=${MPTOOL:-$build/tests/tools/mptool}

if [ "$(id -u)" -ne 0 ] || ! command -v postfix >/dev/null || ! command -v dovecot >/dev/null; then
	echo "skipped: needs root, Postfix and Dovecot (tests/mailenv/install-deps)"
	exit 77
fi
# shellcheck source=../mailenv/mailenv.sh
. "$src/mailenv/mailenv.sh"

env_dir=$(mktemp -d /tmp/mp-pf.XXXXXX)
table=/mp-pf-$$
pass=0
fail=0
milter_pid=

cleanup() {
	[ -n "$milter_pid" ] && kill -9 "$milter_pid" 2>/dev/null
	mailenv_stop "$env_dir" >/dev/null 2>&1
	rm -f "/dev/shm$table"
	[ "$fail" -eq 0 ] && rm -rf "$env_dir"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() {
	fail=$((fail + 1))
	echo "not ok - $*"
	tail -n 5 "$env_dir/milter.log" 2>/dev/null | sed 's/^/#   milter: /'
	tail -n 5 "$env_dir/log/postfix.log" 2>/dev/null | sed 's/^/#   postfix: /'
}
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what"; fi; }

for u in alice bob carol rdv; do mailenv_add_user "$env_dir" "$u" "pw-$u" || exit 1; done
mkdir -p "$env_dir/keys"
"$KEYGEN" host "$env_dir/keys/host.key" >"$env_dir/keys/host.pub" || exit 1
hostpub=$(awk '/^host-key/ {print $2}' "$env_dir/keys/host.pub")
for u in alice bob carol; do "$KEYGEN" user -n "$u" "$env_dir/keys/$u.key" >/dev/null || exit 1; done
alice_uid=$("$MPTOOL" pubid "$env_dir/keys/alice.key" | awk '/^uid/ {print $2}')
alice_pubid=$("$MPTOOL" pubid "$env_dir/keys/alice.key" | head -n 1)
bob_uid=$("$MPTOOL" pubid "$env_dir/keys/bob.key" | awk '/^uid/ {print $2}')

mailenv_start "$env_dir" --domain lab.example --milter "unix:$env_dir/milter.sock" || exit 1
cat >"$env_dir/milter.conf" <<CONF
Socket              unix:$env_dir/milter.sock
SocketMode          0666
RendezvousAddress   rdv@lab.example
HostKey             $env_dir/keys/host.key
Table               $table
TableCapacity       1000
ControlSocket       $env_dir/control.sock
LogDestination      $env_dir/milter.log
LogLevel            debug
SendmailCommand     /usr/sbin/sendmail -C $MAILENV_POSTFIX_CONFIG_DIR -i
CONF
# By default a request is rewritten into its reply (ReplyMethod rewrite).
# INJECT=smtp: replies are new mails, sent over SMTP on kept-open
# connections.  Signals are injected either way (with sendmail here).
[ "${INJECT:-}" = smtp ] && printf 'ReplyMethod         inject\nInjectSocket        inet:%s@127.0.0.1\n' \
	"$MAILENV_SMTP_PORT" >>"$env_dir/milter.conf"

start_milter() {
	"$MILTER" -f -c "$env_dir/milter.conf" 2>>"$env_dir/milter.stderr" &
	milter_pid=$!
	for _ in $(seq 50); do [ -S "$env_dir/milter.sock" ] && [ -S "$env_dir/control.sock" ] && return 0; sleep 0.1; done
	return 1
}
entries() { "$CTL" -s "$env_dir/control.sock" --json stats | grep -o '"entries":[0-9]*' | cut -d: -f2; }
reply_of() { mailenv_wait_mail "$env_dir" "$1" "$2" 20; }

check "milter starts beside Postfix" start_milter

# 1. Ordinary mail passes byte-identical (apart from the trace headers
#    Postfix and Dovecot add on top).
printf 'From: carol@lab.example\r\nTo: bob@lab.example\r\nSubject: lunch\r\nMessage-ID: <lunch-1@lab.example>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\nSee you at noon?\r\n-- \r\ncarol\r\n' >"$env_dir/ordinary.mail"
check "ordinary mail accepted" mailenv_send "$env_dir" carol@lab.example bob@lab.example "$env_dir/ordinary.mail"
if got=$(mailenv_wait_mail "$env_dir" bob 'lunch-1@lab.example' 20); then
	awk 'BEGIN{skip=1} skip && /^(Return-Path|Delivered-To|Received):/ {cont=1; next}
	     skip && cont && /^[ \t]/ {next} {skip=0; cont=0; print}' "$got" >"$env_dir/ordinary.got"
	tr -d '\r' <"$env_dir/ordinary.mail" >"$env_dir/ordinary.want"
	check "ordinary mail delivered byte-identical" cmp "$env_dir/ordinary.want" "$env_dir/ordinary.got"
else
	not_ok "ordinary mail delivered"
fi

# 2. alice's request, submitted with STARTTLS and AUTH, is answered into
#    her mailbox; the table is empty, so the reply lists nobody.
"$MPTOOL" request "$env_dir/keys/alice.key" "$hostpub" alice@lab.example rdv@lab.example alice 198.51.100.1:4000 >"$env_dir/alice-req.mail"
check "alice submits a request (STARTTLS + AUTH)" \
	mailenv_submit "$env_dir" alice pw-alice alice@lab.example rdv@lab.example "$env_dir/alice-req.mail"
if f=$(reply_of alice 'Subject: \[mailpunch\] reply'); then
	check "alice's reply opens with her key and lists no peers" \
		bash -c "'$MPTOOL' open '$env_dir/keys/alice.key' '$hostpub' '$f' | grep -qx 'peers 0'"
	req_id=$(grep -m1 '^Message-ID:' "$env_dir/alice-req.mail" | tr -d '\r' | cut -d' ' -f2)
	check "the reply answers the request (In-Reply-To)" grep -q "^In-Reply-To: $req_id" "$f"
	check "the reply's envelope sender is the rendezvous address" grep -q '^Return-Path: <rdv@lab.example>' "$f"
	check "no header of the request is left in the reply" \
		bash -c "! grep -Eq '^(Message-ID: $req_id|Subject: \[mailpunch\] request|From: alice@lab.example)' '$f'"
else
	not_ok "alice receives a reply"
fi

# 3. bob's request is answered with alice in it, and no address of hers.
"$MPTOOL" request "$env_dir/keys/bob.key" "$hostpub" bob@lab.example rdv@lab.example bob 198.51.100.2:5000 >"$env_dir/bob-req.mail"
check "bob sends a request over SMTP" mailenv_send "$env_dir" bob@lab.example rdv@lab.example "$env_dir/bob-req.mail"
if f=$(reply_of bob 'Subject: \[mailpunch\] reply'); then
	check "bob's reply lists alice" \
		bash -c "'$MPTOOL' open '$env_dir/keys/bob.key' '$hostpub' '$f' | grep -q '^peer $alice_uid alice'"
	check "bob's reply does not contain alice's address" bash -c "! grep -qi 'alice@lab.example' '$f'"
else
	not_ok "bob receives a reply"
fi
check "nothing is delivered to the rendezvous mailbox" test "$(mailenv_count_mail "$env_dir" rdv)" = 0

# 4. A garbled request: no mail to anyone, table unchanged.
n_before=$(entries)
printf 'From: carol@lab.example\r\nTo: rdv@lab.example\r\nSubject: [mailpunch] request\r\n\r\n-----BEGIN MAILPUNCH BLOCK-----\r\nTVABAQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n-----END MAILPUNCH BLOCK-----\r\n' >"$env_dir/garbage.mail"
carol_before=$(mailenv_count_mail "$env_dir" carol)
check "garbled request accepted by SMTP (no backscatter)" mailenv_send "$env_dir" carol@lab.example rdv@lab.example "$env_dir/garbage.mail"
mailenv_wait_queue_empty "$env_dir" 20 >/dev/null 2>&1
sleep 1
check "garbled request produces no mail" test "$(mailenv_count_mail "$env_dir" carol)" = "$carol_before"
check "garbled request leaves the table unchanged" test "$(entries)" = "$n_before"
check "garbled request counted as a bad block" \
	bash -c "'$CTL' -s '$env_dir/control.sock' --json stats | grep -q '\"drop_badblock\":1'"

# 5. bob reports that alice cannot be reached: her entry gets the flag.
"$MPTOOL" notice "$env_dir/keys/bob.key" "$hostpub" bob@lab.example rdv@lab.example "$alice_uid" >"$env_dir/notice.mail"
check "bob sends a failure notice" mailenv_send "$env_dir" bob@lab.example rdv@lab.example "$env_dir/notice.mail"
flagged=0
for _ in $(seq 50); do
	"$CTL" -s "$env_dir/control.sock" --json show "$alice_uid" | grep -q '"failed":true' && { flagged=1; break; }
	sleep 0.2
done
check "the notice flags alice's entry" test "$flagged" = 1

# 6. bob signals alice through the host: she gets it, without his address.
"$MPTOOL" relay "$env_dir/keys/bob.key" "$hostpub" bob@lab.example rdv@lab.example "$alice_pubid" "let's-talk" >"$env_dir/signal.mail"
check "bob sends a signal for alice" mailenv_send "$env_dir" bob@lab.example rdv@lab.example "$env_dir/signal.mail"
if f=$(reply_of alice 'Subject: \[mailpunch\] signal'); then
	check "alice opens bob's signal" \
		bash -c "'$MPTOOL' open '$env_dir/keys/alice.key' '$hostpub' '$f' | grep -qx \"signal-from $bob_uid payload=let's-talk\""
	check "the signal alice got does not contain bob's address" bash -c "! grep -qi 'bob@lab.example' '$f'"
else
	not_ok "alice receives the signal"
fi

# 7. kill -9 of the milter while Postfix is in a transaction with it:
#    the client gets a temporary failure; after a restart the retry is
#    answered, and the table kept everything.
"$MPTOOL" request "$env_dir/keys/carol.key" "$hostpub" carol@lab.example rdv@lab.example carol >"$env_dir/carol-req.mail"
n_before=$(entries)
# shellcheck disable=SC1091
. "$env_dir/env"
python3 - "$MAILENV_SMTP_PORT" "$env_dir/carol-req.mail" "$env_dir/ready" "$env_dir/go" >"$env_dir/kill9.code" <<'PY' &
import os, smtplib, sys, time
port, mail, ready, go = sys.argv[1:]
s = smtplib.SMTP("127.0.0.1", int(port), timeout=60)
s.ehlo("client.lab.example")
s.mail("carol@lab.example")
s.rcpt("rdv@lab.example")
code, _ = s.docmd("DATA")
assert code == 354, code
with open(mail, "rb") as f:
    data = f.read()
s.send(data if data.endswith(b"\r\n") else data + b"\r\n")
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.05)
s.send(b".\r\n")
code, _ = s.getreply()
print(code)
PY
client=$!
for _ in $(seq 100); do [ -e "$env_dir/ready" ] && break; sleep 0.1; done
kill -9 "$milter_pid"
wait "$milter_pid" 2>/dev/null
milter_pid=
touch "$env_dir/go"
wait "$client"
code=$(cat "$env_dir/kill9.code")
check "kill -9 mid-transaction makes Postfix answer 4xx (got $code)" bash -c "[[ '$code' == 4* ]]"
rm -f "$env_dir/control.sock"
check "milter restarts" start_milter
check "table intact after kill -9 ($n_before entries)" test "$(entries)" = "$n_before"
check "the retried request is accepted" mailenv_send "$env_dir" carol@lab.example rdv@lab.example "$env_dir/carol-req.mail"
if f=$(reply_of carol 'Subject: \[mailpunch\] reply'); then
	check "carol's retried request is answered with alice and bob" \
		bash -c "test \$('$MPTOOL' open '$env_dir/keys/carol.key' '$hostpub' '$f' | grep -c '^peer ') = 2"
else
	not_ok "carol receives a reply after the retry"
fi
if [ "${INJECT:-}" != smtp ]; then
	check "requests were rewritten into their replies (ReplyMethod rewrite)" \
		test "$(grep -c 'the request became the reply' "$env_dir/milter.log")" -ge 3
fi
if [ "${INJECT:-}" = smtp ]; then
	# the replies checked above arrived; none came through pickup, so
	# they entered over SMTP (InjectSocket), not by a sendmail process
	check "replies were injected over SMTP, no sendmail spawned (InjectSocket)" \
		bash -c "! grep -q 'postfix/pickup' '$MAILENV_POSTFIX_LOG'"
else
	check "replies leave through Postfix's own queue (pickup), where a signing milter sees them" \
		grep -q 'postfix/pickup' "$MAILENV_POSTFIX_LOG"
fi

# 7b. A milter listed after mailpunch (where a DKIM signer would sit)
#     sees the rewritten reply, not the request: tests/mailenv's
#     testmilter logs the headers it is shown and adds one of its own.
if [ "${INJECT:-}" != smtp ] && command -v cc >/dev/null &&
	cc -O1 -o "$env_dir/testmilter" "$src/mailenv/testmilter.c" -lmilter -pthread 2>/dev/null; then
	"$env_dir/testmilter" -p "unix:$env_dir/tm.sock" -l "$env_dir/tm.log" &
	tm_pid=$!
	for _ in $(seq 50); do [ -S "$env_dir/tm.sock" ] && break; sleep 0.1; done
	mailenv_set_milter "$env_dir" "unix:$env_dir/milter.sock, unix:$env_dir/tm.sock" >/dev/null
	"$MPTOOL" request "$env_dir/keys/bob.key" "$hostpub" bob@lab.example rdv@lab.example bob 198.51.100.2:5001 >"$env_dir/bob-req2.mail"
	check "a request through mailpunch and a second milter is accepted" \
		mailenv_send "$env_dir" bob@lab.example rdv@lab.example "$env_dir/bob-req2.mail"
	if f=$(mailenv_wait_mail "$env_dir" bob 'X-Mailenv-Milter: seen by testmilter' 20); then
		check "the second milter was shown the reply's headers (Auto-Submitted)" grep -q '^header Auto-Submitted' "$env_dir/tm.log"
		check "... and the reply it passed on still opens" \
			bash -c "'$MPTOOL' open '$env_dir/keys/bob.key' '$hostpub' '$f' | grep -q '^peer '"
	else
		not_ok "the reply passed the second milter"
	fi
	mailenv_set_milter "$env_dir" "unix:$env_dir/milter.sock" >/dev/null
	kill "$tm_pid" 2>/dev/null
fi

# 8. ClientRateLimit: the milter learns the client's address from
#    Postfix's {client_addr} macro (it skips the connect step), so a
#    second request from 127.0.0.1 within the hour is refused.
kill -9 "$milter_pid"
wait "$milter_pid" 2>/dev/null
rm -f "$env_dir/control.sock"
echo "ClientRateLimit     1/1h" >>"$env_dir/milter.conf"
check "milter restarts with ClientRateLimit 1/1h" start_milter
for i in 1 2; do
	"$MPTOOL" request "$env_dir/keys/alice.key" "$hostpub" alice@lab.example rdv@lab.example alice \
		198.51.100.1:4000 >"$env_dir/alice-again-$i.mail"
	mailenv_send "$env_dir" alice@lab.example rdv@lab.example "$env_dir/alice-again-$i.mail"
done
mailenv_wait_queue_empty "$env_dir" 20 >/dev/null 2>&1
check "the second request from the same client is rate-limited (client address from the macro)" \
	grep -q 'client 127.0.0.1 rate-limited' "$env_dir/milter.log"
check "... and counted" bash -c "'$CTL' -s '$env_dir/control.sock' --json stats | grep -q '\"ratelimited\":1'"

kill -TERM "$milter_pid" 2>/dev/null
for _ in $(seq 150); do kill -0 "$milter_pid" 2>/dev/null || break; sleep 0.1; done
check "milter stops on SIGTERM" bash -c "! kill -0 $milter_pid 2>/dev/null"
milter_pid=

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
