#!/usr/bin/env bash
# The agent's mailbox watcher (agent/mailbox.h: IMAP with IDLE, POP3)
# against a real Dovecot on loopback, through tests/agent/mailbox_probe:
# marker mails handed over and deleted or moved, every other mail left
# exactly as it was (maildir names, which carry Dovecot's flags, and the
# flags as Dovecot reports them), IDLE latency, kept mails not handed
# over twice, implicit TLS and STARTTLS/STLS, reconnection after the
# server drops the session, distinct errors (wrong password, untrusted
# certificate, wrong name, nothing listening), freeing the watcher from
# its callbacks, the max_mail limit, the fallbacks when the server lacks
# IDLE, MOVE, UIDPLUS or SASL-IR (Dovecot's announced capabilities cut
# down), and a scripted server for what Dovecot never does (plaintext
# injected after STARTTLS, LOGIN quoting, garbage, huge lines, BYE, no
# greeting).  Every probe log is checked for sanitizer reports and for
# the password.  Takes about 40 s.
# Needs root and tests/mailenv/install-deps.  Run from the build tree
# (make check does) or set MAILBOX_PROBE.
# Prints ok/not ok lines and "N passed, N failed"; exit 77 = skipped.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$PWD
PROBE=${MAILBOX_PROBE:-$build/tests/agent/mailbox_probe}

if [ "$(id -u)" -ne 0 ] || ! command -v postfix >/dev/null || ! command -v dovecot >/dev/null; then
	echo "skipped: needs root, Postfix and Dovecot (tests/mailenv/install-deps)"
	exit 77
fi
if [ ! -x "$PROBE" ]; then
	echo "skipped: no probe at $PROBE (set MAILBOX_PROBE)"
	exit 77
fi
# shellcheck source=../mailenv/mailenv.sh
. "$src/mailenv/mailenv.sh"

env_dir=$(mktemp -d /tmp/mp-mbx.XXXXXX)
pass=0
fail=0

cleanup() {
	mailenv_stop "$env_dir" >/dev/null 2>&1
	[ "$fail" -eq 0 ] && rm -rf "$env_dir"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() {
	fail=$((fail + 1))
	echo "not ok - $*"
	[ -f "$env_dir/probe.out" ] && sed 's/^/#   probe: /' "$env_dir/probe.out" | tail -n 8
	[ -f "$env_dir/probe.err" ] && sed 's/^/#   log: /' "$env_dir/probe.err" | tail -n 8
}
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what"; fi; }

mailenv_add_user "$env_dir" bob pw-bob || exit 1
mailenv_start "$env_dir" || exit 1
md=$(mailenv_maildir "$env_dir" bob)
doveadm_() { doveadm -c "$MAILENV_DOVECOT_CONFIG" "$@"; }

# probe ARGS...: runs the probe against bob's mailbox, output in
# probe.out (events) and probe.err (log; all.err collects every run's).
probe() {
	"$PROBE" --host "$MAILENV_HOST" --tls-name "$MAILENV_TLS_NAME" --user bob "$@" \
		>"$env_dir/probe.out" 2>"$env_dir/probe.err"
	local rc=$?
	cat "$env_dir/probe.err" >>"$env_dir/all.err"
	return $rc
}
wait_for() {   # wait_for ERE [TENTHS]: until probe.out has a matching line
	local i
	for ((i = 0; i < ${2:-100}; i++)); do
		grep -qE "$1" "$env_dir/probe.out" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
imaps() { probe --imap --port "$MAILENV_IMAPS_PORT" --ca-file "$MAILENV_CA_FILE" --password pw-bob "$@"; }
mails() { sed -n 's/^mail //p' "$env_dir/probe.out" | sort; }

# deliver ID SUBJECT [BODY]: one mail from carol to bob, Message-ID
# <ID@lab.example>; returns once it is in the maildir.
deliver() {
	printf 'From: carol@lab.example\r\nTo: bob@lab.example\r\nSubject: %s\r\nMessage-ID: <%s@lab.example>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\nX-Note: %s\r\n\r\n%s\r\n.a line with a leading dot\r\n' \
		"$2" "$1" "${3:-plain}" "${3:-hello}" >"$env_dir/$1.eml"
	mailenv_send "$env_dir" carol@lab.example bob@lab.example "$env_dir/$1.eml" >/dev/null &&
		mailenv_wait_mail "$env_dir" bob "^Message-ID: <$1@lab.example>" 20 >/dev/null
}

# "base flags" of every INBOX message file: the name before Dovecot's
# ":2," info, and the flag letters after it (none for new/).
maildir_state() {
	local f b
	for f in "$md"/new/* "$md"/cur/*; do
		[ -e "$f" ] || continue
		b=${f##*/}
		case $b in
		*:2,*) echo "${b%%:*} ${b##*:2,}" ;;
		*) echo "$b " ;;
		esac
	done | sort
}
file_of() {
	local f
	for f in "$md"/new/* "$md"/cur/*; do
		if [ -f "$f" ] && grep -q "^Message-ID: <$1@lab.example>" "$f"; then
			echo "$f"
			return 0
		fi
	done
	return 1
}
base_of() { local f; f=$(file_of "$1") && [ -n "$f" ] && f=${f##*/} && echo "${f%%:*}"; }
# Stored flags (\Recent is a session's view, not a flag on the mail).
flags_of() {
	doveadm_ fetch -u bob flags mailbox INBOX header Message-ID "<$1@lab.example>" 2>/dev/null |
		sed -n 's/^flags: *//p' | tr ' ' '\n' | grep -v -e '^\\Recent$' -e '^$' | sort | tr '\n' ' '
}
ordinary_state() { maildir_state | grep -e "$(base_of o1)" -e "$(base_of o2)"; }
in_inbox() { [ -n "$(file_of "$1")" ]; }
count_in() { doveadm_ search -u bob mailbox "$1" ALL 2>/dev/null | wc -l; }

# ---------------------------------------------------------------- 1. IMAP, implicit TLS
# Two ordinary mails (one already \Flagged, one with the marker in its
# body and in an X- header only) and two marker mails.
deliver o1 "lunch on friday" || exit 1
deliver o2 "notes" "Body mentions [mailpunch] but the Subject does not." || exit 1
deliver m1 "[mailpunch] reply one" || exit 1
deliver m2 "Re: [MailPunch] reply two" || exit 1
doveadm_ flags add -u bob '\Flagged' mailbox INBOX header Message-ID "<o1@lab.example>"
if [ -z "$(base_of o1)" ] || [ -z "$(base_of o2)" ]; then
	fail=1
	echo "Bail out! ordinary mails not found"
	exit 1
fi
before=$(ordinary_state)
flags1=$(flags_of o1)
flags2=$(flags_of o2)

imaps --mails 2 --seconds 15
check "IMAP: both marker mails handed over" \
	test "$(mails)" = "$(printf '%s\n' 'Re: [MailPunch] reply two' '[mailpunch] reply one' | sort)"
check "IMAP: watcher reported ready" grep -q '^ready watching INBOX' "$env_dir/probe.out"
check "IMAP: marker mails deleted" bash -c "! grep -rqs -e '<m1@' -e '<m2@' '$md/new' '$md/cur'"
check "IMAP: ordinary mails still there" bash -c "[ -n \"\$(grep -l '<o1@' '$md'/new/* '$md'/cur/* 2>/dev/null)\" ] && [ -n \"\$(grep -l '<o2@' '$md'/new/* '$md'/cur/* 2>/dev/null)\" ]"
after=$(ordinary_state)
if [ -n "$before" ] && [ "$before" = "$after" ]; then
	ok "IMAP: ordinary mails' maildir names (flags) unchanged"
else
	not_ok "IMAP: ordinary mails' maildir names (flags) unchanged"
	printf '#   before: %s\n' "$before"
	printf '#   after:  %s\n' "$after"
fi
check "IMAP: ordinary mails' flags unchanged (\\Flagged kept, no \\Seen)" \
	test "$(flags_of o1)|$(flags_of o2)" = "$flags1|$flags2"
check "IMAP: \\Flagged really was set" bash -c "echo '$flags1' | grep -q Flagged"
check "IMAP: INBOX holds exactly the 2 ordinary mails" test "$(count_in INBOX)" -eq 2

# ---------------------------------------------------------------- 2. IDLE, keep
# k1 is in the mailbox before; k2 arrives while the watcher idles.  Both
# are kept: each handed over once, flags untouched.
deliver k1 "[mailpunch] kept before" || exit 1
imaps --keep --seconds 8 &
probe_pid=$!
for _ in $(seq 100); do grep -q '^mail \[mailpunch\] kept before' "$env_dir/probe.out" 2>/dev/null && break; sleep 0.1; done
sleep 0.5   # into IDLE
t_send=$(date +%s.%N)
deliver k2 "[mailpunch] arrives during IDLE" || exit 1
for _ in $(seq 50); do grep -q '^mail \[mailpunch\] arrives' "$env_dir/probe.out" 2>/dev/null && break; sleep 0.1; done
t_file=0
for _ in 1 2 3; do   # Dovecot may rename the file (new/ to cur/) meanwhile
	t_file=$(date -r "$(file_of k2)" +%s.%N 2>/dev/null) && break
	t_file=0
done
wait "$probe_pid"
t_mail=$(awk '/^mail \[mailpunch\] arrives/ {getline; print $2}' "$env_dir/probe.out")
if [ -n "$t_mail" ] && [ "$t_file" != 0 ]; then
	lat=$(awk -v a="$t_mail" -v b="$t_file" 'BEGIN { printf "%.3f", a - b }')
	lat_send=$(awk -v a="$t_mail" -v b="$t_send" 'BEGIN { printf "%.3f", a - b }')
	echo "# IDLE latency: $lat s after delivery ($lat_send s after sending)"
	check "IDLE: new marker mail handed over within 2 s of delivery" \
		awk -v l="$lat" 'BEGIN { exit !(l < 2 && l > -1) }'
else
	not_ok "IDLE: new marker mail handed over"
fi
check "IDLE: the watcher idled" grep -q '^ready .*(IDLE)' "$env_dir/probe.out"
check "keep: each kept mail handed over exactly once" \
	test "$(grep -c '^mail ' "$env_dir/probe.out")" -eq 2
check "keep: kept mails stay, without \\Seen" \
	test "$(in_inbox k1 && in_inbox k2 && echo yes)|$(flags_of k1)$(flags_of k2)" = "yes|"

# ---------------------------------------------------------------- 3. move_to
deliver m3 "[mailpunch] to be moved" || exit 1
before=$(ordinary_state)
imaps --move-to Punched --mails 3 --seconds 15
check "move_to: three marker mails handed over" test "$(grep -c '^mail ' "$env_dir/probe.out")" -eq 3
check "move_to: marker mails are in Punched (created)" test "$(count_in Punched)" -eq 3
check "move_to: marker mails left INBOX" bash -c "! grep -rqs -e '<k1@' -e '<k2@' -e '<m3@' '$md/new' '$md/cur'"
check "move_to: INBOX holds exactly the 2 ordinary mails, unchanged" \
	test "$(count_in INBOX)|$(ordinary_state)" = "2|$before"

# ---------------------------------------------------------------- 4. STARTTLS
deliver m4 "[mailpunch] over STARTTLS" || exit 1
probe --imap --port "$MAILENV_IMAP_PORT" --starttls --ca-file "$MAILENV_CA_FILE" \
	--password pw-bob --mails 1 --seconds 15 --verbose
check "STARTTLS: marker mail handed over and deleted" \
	bash -c "grep -qx 'mail \[mailpunch\] over STARTTLS' '$env_dir/probe.out' && ! grep -rqs '<m4@' '$md/new' '$md/cur'"
check "STARTTLS: STARTTLS came before the login" \
	bash -c "grep -o 'C: M[0-9]* \(STARTTLS\|AUTHENTICATE\|LOGIN\)' '$env_dir/probe.err' | head -n 1 | grep -q STARTTLS"

# ---------------------------------------------------------------- 4b. reconnect
# The server drops the connection (BYE) while the watcher idles: it
# reports it, comes back, and still hands over the next mail.
imaps --seconds 12 --mails 1 &
probe_pid=$!
wait_for '^ready' 100
for _ in 1 2 3 4 5 6; do   # Dovecot registers the session for kick a moment late
	doveadm_ kick bob >/dev/null 2>&1
	wait_for '^error closed' 10 && break
done
wait_for '^ready.*' 50 && sleep 0.3
deliver m5 "[mailpunch] after reconnect" || exit 1
wait "$probe_pid"
check "reconnect: the dropped connection is reported as closed" grep -q '^error closed ' "$env_dir/probe.out"
check "reconnect: watching again after the drop" test "$(grep -c '^ready' "$env_dir/probe.out")" -ge 2
check "reconnect: the next marker mail handed over and deleted" \
	bash -c "grep -qx 'mail \[mailpunch\] after reconnect' '$env_dir/probe.out' && ! grep -rqs '<m5@' '$md/new' '$md/cur'"

# ---------------------------------------------------------------- 5. errors
probe --imap --port "$MAILENV_IMAPS_PORT" --ca-file "$MAILENV_CA_FILE" --password wrong-pw \
	--exit-on-error --seconds 15
check "wrong password (IMAP): auth error" grep -q '^error auth ' "$env_dir/probe.out"
probe --pop3 --port "$MAILENV_POP3S_PORT" --ca-file "$MAILENV_CA_FILE" --password wrong-pw \
	--exit-on-error --seconds 15
check "wrong password (POP3): auth error" grep -q '^error auth ' "$env_dir/probe.out"
probe --imap --port "$MAILENV_IMAPS_PORT" --password pw-bob --exit-on-error --seconds 15
check "untrusted certificate (IMAP, no CA): TLS error" grep -q '^error tls certificate verify failed' "$env_dir/probe.out"
probe --pop3 --port "$MAILENV_POP3S_PORT" --password pw-bob --exit-on-error --seconds 15
check "untrusted certificate (POP3, no CA): TLS error" grep -q '^error tls certificate verify failed' "$env_dir/probe.out"
probe --imap --port "$MAILENV_IMAPS_PORT" --ca-file "$MAILENV_CA_FILE" --password pw-bob \
	--tls-name imap.wrong.example --exit-on-error --seconds 15
check "certificate for another name: TLS error" grep -q '^error tls .*hostname mismatch' "$env_dir/probe.out"
probe --imap --port 1 --ca-file "$MAILENV_CA_FILE" --password pw-bob --exit-on-error --seconds 15
check "nothing listening: connect error" grep -q '^error connect ' "$env_dir/probe.out"

# ---------------------------------------------------------------- 5b. free from callbacks
# The agent may free the watcher inside either callback.
probe --imap --port "$MAILENV_IMAPS_PORT" --ca-file "$MAILENV_CA_FILE" --password wrong-pw \
	--exit-on-error --free-in-callback --seconds 15
check "freed inside on_error (IMAP): clean exit" test "$?|$(grep -c '^error auth' "$env_dir/probe.out")" = "2|1"
probe --pop3 --port "$MAILENV_POP3S_PORT" --ca-file "$MAILENV_CA_FILE" --password wrong-pw \
	--exit-on-error --free-in-callback --seconds 15
check "freed inside on_error (POP3): clean exit" test "$?|$(grep -c '^error auth' "$env_dir/probe.out")" = "2|1"
deliver c1 "[mailpunch] free inside on_mail" || exit 1
imaps --mails 1 --free-in-callback --seconds 15
check "freed inside on_mail (IMAP): clean exit, the mail stays" \
	test "$?|$(mails)|$(in_inbox c1 && echo there)" = "0|[mailpunch] free inside on_mail|there"
probe --pop3 --port "$MAILENV_POP3S_PORT" --ca-file "$MAILENV_CA_FILE" --password pw-bob \
	--mails 1 --free-in-callback --seconds 15
check "freed inside on_mail (POP3): clean exit, the mail stays" \
	test "$?|$(mails)|$(in_inbox c1 && echo there)" = "0|[mailpunch] free inside on_mail|there"
doveadm_ expunge -u bob mailbox INBOX header Message-ID "<c1@lab.example>"

# ---------------------------------------------------------------- 6. max_mail
big=$(head -c 3000 /dev/zero | tr '\0' 'x' | fold -w 70)
deliver b1 "[mailpunch] too big" "$big" || exit 1
deliver b2 "[mailpunch] small enough" || exit 1
imaps --max-mail 1500 --mails 1 --seconds 15
check "max_mail (IMAP): the small marker mail handed over, the big one not" \
	test "$(mails)" = "[mailpunch] small enough"
check "max_mail (IMAP): the big mail skipped, logged, left unflagged" \
	test "$(grep -c 'skipping mail UID' "$env_dir/probe.err")|$(in_inbox b1 && echo there)|$(flags_of b1)" = "1|there|"
probe --pop3 --port "$MAILENV_POP3S_PORT" --ca-file "$MAILENV_CA_FILE" --password pw-bob \
	--max-mail 1500 --seconds 2
check "max_mail (POP3): the big mail skipped, logged, left" \
	test "$(grep -c '^mail ' "$env_dir/probe.out")|$(grep -c 'skipping message' "$env_dir/probe.err")|$(in_inbox b1 && echo there)" = "0|1|there"
doveadm_ expunge -u bob mailbox INBOX header Message-ID "<b1@lab.example>"

# ---------------------------------------------------------------- 7. POP3
deliver p1 "[mailpunch] by POP3" || exit 1
deliver p2 "Fwd: [MAILPUNCH] by POP3 too" || exit 1
before=$(ordinary_state)
flags_before="$(flags_of o1)|$(flags_of o2)"
probe --pop3 --port "$MAILENV_POP3S_PORT" --ca-file "$MAILENV_CA_FILE" --password pw-bob \
	--mails 2 --seconds 15
check "POP3: both marker mails handed over" \
	test "$(mails)" = "$(printf '%s\n' 'Fwd: [MAILPUNCH] by POP3 too' '[mailpunch] by POP3' | sort)"
check "POP3: marker mails deleted" bash -c "! grep -rqs -e '<p1@' -e '<p2@' '$md/new' '$md/cur'"
check "POP3: only the 2 ordinary mails remain, maildir names unchanged" \
	test "$(count_in INBOX)|$(ordinary_state)" = "2|$before"
check "POP3: ordinary mails' flags unchanged" test "$(flags_of o1)|$(flags_of o2)" = "$flags_before"

deliver p3 "[mailpunch] POP3 keep" || exit 1
probe --pop3 --port "$MAILENV_POP3_PORT" --starttls --ca-file "$MAILENV_CA_FILE" --password pw-bob \
	--keep --poll 1 --seconds 3.5 --verbose
check "POP3 STLS + keep: handed over once over three polls" \
	bash -c "[ \$(grep -c '^mail ' '$env_dir/probe.out') -eq 1 ] && [ \$(grep -c 'C: UIDL' '$env_dir/probe.err') -ge 3 ]"
check "POP3 STLS: STLS came before USER" \
	bash -c "grep -o 'C: \(STLS\|USER\)' '$env_dir/probe.err' | head -n 1 | grep -q STLS"
check "POP3 keep: the kept mail stays" in_inbox p3

# ---------------------------------------------------------------- 8. fallbacks
# The same Dovecot, announcing only IMAP4rev1 LITERAL+ after login and
# no SASL-IR before: the watcher polls, authenticates with a separate
# continuation, moves by COPY + \Deleted, and (no UIDPLUS) expunges
# nothing, so a mail the user flagged \Deleted stays.
printf 'protocol imap {\n  imap_capability = IMAP4rev1 LITERAL+\n}\n' >>"$MAILENV_DOVECOT_CONFIG"
doveadm_ reload && sleep 1
doveadm_ flags add -u bob '\Deleted' mailbox INBOX header Message-ID "<o2@lab.example>"
deliver f1 "[mailpunch] fallback before" || exit 1
flags_before="$(flags_of o1)|$(flags_of o2)"
imaps --move-to Archive --poll 1 --mails 3 --seconds 15 --verbose &
probe_pid=$!
wait_for '^mail \[mailpunch\] fallback before' 100 && sleep 0.5
deliver f2 "[mailpunch] fallback while polling" || exit 1
t_file=$(date -r "$(file_of f2)" +%s.%N 2>/dev/null || echo 0)
wait "$probe_pid"
t_mail=$(awk '/^mail \[mailpunch\] fallback while/ {getline; print $2}' "$env_dir/probe.out")
check "fallback: polling without IDLE" grep -q '^ready .*(polling)' "$env_dir/probe.out"
check "fallback: AUTHENTICATE PLAIN with a continuation (no SASL-IR)" \
	bash -c "grep -q 'C: M1 AUTHENTICATE PLAIN\$' '$env_dir/probe.err' && grep -q 'C: <credentials>' '$env_dir/probe.err'"
check "fallback: three marker mails handed over (one kept earlier by POP3)" \
	test "$(mails)" = "$(printf '%s\n' '[mailpunch] POP3 keep' '[mailpunch] fallback before' '[mailpunch] fallback while polling' | sort)"
check "fallback: a mail arriving while polling handed over within 3 s" \
	awk -v a="${t_mail:-0}" -v b="$t_file" 'BEGIN { exit !(a > 0 && b > 0 && a - b < 3) }'
check "fallback: UID COPY, no MOVE, no EXPUNGE" \
	bash -c "grep -q 'C: M[0-9]* UID COPY' '$env_dir/probe.err' && ! grep -q -e 'UID MOVE' -e 'EXPUNGE' '$env_dir/probe.err'"
check "fallback: copies in Archive" test "$(count_in Archive)" -eq 3
# (p3 also has \Seen: Dovecot sets it when POP3 RETRieves a mail)
all_deleted() { local m; for m; do [[ $(flags_of "$m") == *'\Deleted'* ]] || return 1; done; }
check "fallback: originals flagged \\Deleted, not expunged" all_deleted p3 f1 f2
check "fallback: the user's \\Deleted mail and the \\Flagged one untouched" \
	test "$(in_inbox o1 && in_inbox o2 && echo both)|$(flags_of o1)|$(flags_of o2)" = "both|$flags_before"

deliver f3 "[mailpunch] plain delete" || exit 1
imaps --mails 1 --seconds 15 --verbose
check "fallback: delete without UIDPLUS flags \\Deleted, expunges nothing" \
	test "$(mails)|$(flags_of f3)|$(grep -c EXPUNGE "$env_dir/probe.err")" = '[mailpunch] plain delete|\Deleted |0'
check "fallback: \\Deleted marker mails are not handed over again" \
	test "$(grep -c '^mail ' "$env_dir/probe.out")" -eq 1

# Without the PLAIN mechanism Dovecot announces LOGINDISABLED and no
# AUTH=PLAIN: nothing the watcher may use, an auth error at once.
sed -i 's/^auth_mechanisms = .*/auth_mechanisms = login/' "$MAILENV_DOVECOT_CONFIG"
doveadm_ reload && sleep 1
imaps --exit-on-error --seconds 15
check "no usable login method: auth error" \
	grep -q '^error auth server disables LOGIN and offers no AUTH=PLAIN' "$env_dir/probe.out"

# ---------------------------------------------------------------- 9. odd servers
# A scripted IMAP server (Python, TLS with the environment's certificate)
# for what Dovecot never does.  MODE: inject (plaintext after the STARTTLS
# answer), login (no AUTH=PLAIN: LOGIN with quoting, refused), garbage,
# huge (a 70 KB line), bye (BYE greeting), mute (no greeting).
cat >"$env_dir/fake_imap.py" <<'PY'
import socket, ssl, sys
mode, cert, key, portfile, logfile = sys.argv[1:6]
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(4)
ls.settimeout(20)
with open(portfile + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
import os
os.rename(portfile + ".tmp", portfile)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
log = open(logfile, "a", buffering=1)
def serve(c):
    if mode == "inject":
        f = c.makefile("rb")
        c.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] hi\r\n")
        line = f.readline()
        log.write("C: " + line.decode("latin-1"))
        tag = line.split(b" ")[0]
        c.sendall(tag + b" OK Begin TLS now\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n")
        c.settimeout(3)
        try:
            rest = c.recv(4096)
        except OSError:
            rest = b""
        log.write("after: %r\n" % rest)
        return
    s = ctx.wrap_socket(c, server_side=True)
    f = s.makefile("rb")
    if mode == "mute":
        s.settimeout(10)
        s.recv(1)
        return
    if mode == "bye":
        s.sendall(b"* BYE [UNAVAILABLE] too busy\r\n")
        return
    s.sendall(b"* OK [CAPABILITY IMAP4rev1 IDLE] hi\r\n")
    line = f.readline()
    log.write("C: " + line.decode("latin-1"))
    tag = line.split(b" ")[0]
    if mode == "login":
        s.sendall(tag + b" NO [AUTHENTICATIONFAILED] nope\r\n")
    elif mode == "garbage":
        s.sendall(b"* 1 FETCH (((\r\n")
    elif mode == "huge":
        s.sendall(b"* OK " + b"x" * 70000 + b"\r\n")
    f.readline()
while True:
    try:
        c, _ = ls.accept()
    except socket.timeout:
        break
    try:
        serve(c)
    except Exception as e:
        log.write("exception %r\n" % e)
    finally:
        c.close()
PY
fake() {   # fake MODE PROBE-ARGS...: one probe run against the fake server
	local mode=$1 pid port
	shift
	rm -f "$env_dir/fake.port" "$env_dir/fake.log"
	python3 "$env_dir/fake_imap.py" "$mode" "$MAILENV_SERVER_CERT" "$MAILENV_SERVER_KEY" \
		"$env_dir/fake.port" "$env_dir/fake.log" &
	pid=$!
	for _ in $(seq 50); do [ -s "$env_dir/fake.port" ] && break; sleep 0.1; done
	port=$(cat "$env_dir/fake.port" 2>/dev/null)
	probe --imap --port "${port:-1}" --ca-file "$MAILENV_CA_FILE" --exit-on-error --timeout 2 \
		--seconds 15 "$@"
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}
if command -v python3 >/dev/null; then
	fake inject --starttls --password pw-bob
	check "STARTTLS answer with data glued on: TLS error, no credentials sent" \
		bash -c "grep -q '^error tls data after STARTTLS' '$env_dir/probe.out' && ! grep -qi -e AUTHENTICATE -e LOGIN -e 'cHctYm9i' '$env_dir/fake.log'"
	fake login --password 'p"w\x y'
	printf '%s\n' 'LOGIN "bob" "p\"w\\x y"' >"$env_dir/login.want"
	check "LOGIN without AUTH=PLAIN, arguments quoted; refusal is an auth error" \
		bash -c "grep -qFf '$env_dir/login.want' '$env_dir/fake.log' && grep -q '^error auth ' '$env_dir/probe.out'"
	fake garbage --password pw-bob
	check "unbalanced response: protocol error" grep -q '^error protocol unreadable answer' "$env_dir/probe.out"
	fake huge --password pw-bob
	check "70 KB response line: protocol error" grep -q '^error protocol unreadable answer from server: input or output too large' "$env_dir/probe.out"
	fake bye --password pw-bob
	check "BYE greeting: closed error" grep -q '^error closed server said BYE' "$env_dir/probe.out"
	fake mute --password pw-bob
	check "no greeting: timeout error" grep -q '^error timeout ' "$env_dir/probe.out"
else
	echo "# skipped: odd servers (no python3)"
fi

check "no sanitizer report and no password in any log" \
	bash -c "! grep -q -e 'Sanitizer' -e 'runtime error' -e 'pw-bob' '$env_dir/all.err'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
