#!/usr/bin/env bash
# The agent's SMTP submission client (agent/smtp_client.c) against a real
# Postfix + Dovecot (tests/mailenv) on loopback: STARTTLS + AUTH and
# implicit TLS deliver the mail; wrong password, untrusted certificate,
# closed port and a refused recipient each give their own status; the
# insecure switch works; dot-stuffing delivers the body byte-identical;
# the password never reaches the log.  A scripted fake server (python3,
# loopback) adds what Postfix will not do: silence (timeout), 421, no
# STARTTLS, plaintext injected after STARTTLS, garbage, AUTH LOGIN only,
# no usable AUTH, 452 at RCPT, a
# dropped connection, a connect that hangs, a certificate for another
# address, and a DNS server that never answers or says NXDOMAIN.
# Needs root and tests/mailenv/install-deps.  Run from the build tree
# (make check does) or set SMTP_PROBE to the smtp_probe binary.
# Prints ok/not ok lines and "N passed, N failed"; exit 77 = skipped.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$PWD
PROBE=${SMTP_PROBE:-$build/tests/agent/smtp_probe}

if [ "$(id -u)" -ne 0 ] || ! command -v postfix >/dev/null || ! command -v dovecot >/dev/null ||
	! command -v python3 >/dev/null; then
	echo "skipped: needs root, Postfix, Dovecot and python3 (tests/mailenv/install-deps)"
	exit 77
fi
if [ ! -x "$PROBE" ]; then
	echo "skipped: no smtp_probe at $PROBE (set SMTP_PROBE)"
	exit 77
fi
# shellcheck source=../mailenv/mailenv.sh
. "$src/mailenv/mailenv.sh"

dir=$(mktemp -d /tmp/mp-smtp.XXXXXX)
pass=0
fail=0
fake_pid=

cleanup() {
	[ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null
	mailenv_stop "$dir" >/dev/null 2>&1
	[ "$fail" -eq 0 ] && rm -rf "$dir"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() {
	fail=$((fail + 1))
	echo "not ok - $*"
	[ -s "$dir/out" ] && sed 's/^/#   probe: /' "$dir/out"
	[ -s "$dir/err" ] && grep -v ': DEBUG: ' "$dir/err" | tail -n 8 | sed 's/^/#   log: /'
}
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what"; fi; }

# probe ARGS...: runs the probe; $dir/out holds "STATUS detail", $dir/err
# its log (appended to $dir/all.err for the password check); sets $code.
probe() {
	"$PROBE" "$@" >"$dir/out" 2>"$dir/err"
	code=$?
	cat "$dir/err" >>"$dir/all.err"
	return 0
}
# expect NAME STATUS CODE [DETAIL-ERE]: judges the last probe run.
expect() {
	local what=$1 st=$2 want_code=$3 ere=${4:-}
	if [ "$code" -eq "$want_code" ] && grep -qE "^$st( |\$)" "$dir/out" &&
		{ [ -z "$ere" ] || grep -qE -- "$ere" "$dir/out"; } &&
		! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$dir/err"; then
		ok "$what ($(cut -c1-90 "$dir/out"))"
	else
		not_ok "$what (exit $code, want $want_code $st)"
	fi
}

# mail FILE SUBJECT: a small message with a unique Message-ID.
mail() {
	printf 'From: alice@lab.example\nTo: bob@lab.example\nSubject: %s\nMessage-ID: <%s.%s@lab.example>\nDate: Sun, 22 Nov 2026 10:00:00 +0000\n\nHello Bob.\n' \
		"$2" "$2" "$$" >"$1"
}
body_of() { awk 'body {print} /^$/ && !body {body=1}' "$1"; }

mailenv_add_user "$dir" alice 'alice-secret-pw' || exit 1
mailenv_add_user "$dir" bob 'bob-pw' || exit 1
mailenv_start "$dir" || exit 1
printf 'alice-secret-pw\n' >"$dir/pw"
printf 'not-the-password\n' >"$dir/badpw"
sub=(--host "$MAILENV_HOST" --port "$MAILENV_SUBMISSION_PORT" --starttls)
subs=(--host "$MAILENV_HOST" --port "$MAILENV_SUBMISSIONS_PORT" --tls)
auth=(--user alice --password-file "$dir/pw" --from alice@lab.example --to bob@lab.example)

# 1. STARTTLS + AUTH PLAIN, CA-verified: accepted and delivered.
mail "$dir/m1" starttls
probe "${sub[@]}" --ca "$MAILENV_CA_FILE" "${auth[@]}" "$dir/m1"
expect "submission with STARTTLS + AUTH" OK 0 '^OK 250 '
check "STARTTLS mail delivered" mailenv_wait_mail "$dir" bob "^Message-ID: <starttls\\.$$@" 20

# 2. Implicit TLS port.
mail "$dir/m2" implicit
probe "${subs[@]}" --ca "$MAILENV_CA_FILE" "${auth[@]}" "$dir/m2"
expect "submission with implicit TLS + AUTH" OK 0 '^OK 250 '
check "implicit-TLS mail delivered" mailenv_wait_mail "$dir" bob "^Message-ID: <implicit\\.$$@" 20

# 3. Wrong password.
probe "${sub[@]}" --ca "$MAILENV_CA_FILE" --user alice --password-file "$dir/badpw" \
	--from alice@lab.example --to bob@lab.example "$dir/m1"
expect "wrong password is ERR_AUTH" ERR_AUTH 3 '535'

# 4. No CA file: the system store does not know the test CA.
probe "${sub[@]}" "${auth[@]}" "$dir/m1"
expect "untrusted certificate (STARTTLS) is ERR_TLS" ERR_TLS 2 'certificate verify failed: .+'
probe "${subs[@]}" "${auth[@]}" "$dir/m1"
expect "untrusted certificate (implicit TLS) is ERR_TLS" ERR_TLS 2 'certificate verify failed: .+'

# 5. ... unless verification is switched off.
mail "$dir/m5" insecure
probe "${sub[@]}" --insecure "${auth[@]}" "$dir/m5"
expect "--insecure without CA is OK" OK 0
check "insecure mode is logged as a warning" grep -q 'WARNING: .*NOT verified' "$dir/err"

# 6. A closed port.
closed=$(python3 "$src/mailenv/mailenv_client.py" ports 1 "$MAILENV_HOST")
probe --host "$MAILENV_HOST" --port "$closed" --starttls --ca "$MAILENV_CA_FILE" "${auth[@]}" "$dir/m1"
expect "closed port is ERR_CONNECT" ERR_CONNECT 1 'refused'

# 7. A recipient in a domain mailenv does not serve: refused at RCPT.
probe "${sub[@]}" --ca "$MAILENV_CA_FILE" --user alice --password-file "$dir/pw" \
	--from alice@lab.example --to bob@lab.example --to carol@elsewhere.test "$dir/m1"
expect "foreign recipient is ERR_RECIPIENT naming it" ERR_RECIPIENT 4 '<carol@elsewhere\.test>.* 5[0-9][0-9] '

# 8. Dot-stuffing: lines that start with '.' arrive intact.
{
	printf 'From: alice@lab.example\nTo: bob@lab.example\nSubject: dots\nMessage-ID: <dots.%s@lab.example>\nDate: Sun, 22 Nov 2026 10:00:00 +0000\n\n' "$$"
	printf '.\n..\n...\n.leading dot\n..two dots\n. space\nmiddle . dot\n.\r\nlast line .\n'
} >"$dir/m8"
probe "${sub[@]}" --ca "$MAILENV_CA_FILE" "${auth[@]}" "$dir/m8"
expect "message with dot lines accepted" OK 0
if got=$(mailenv_wait_mail "$dir" bob "^Message-ID: <dots\\.$$@" 20); then
	body_of "$dir/m8" | tr -d '\r' >"$dir/m8.want"
	body_of "$got" >"$dir/m8.got"
	check "dot-stuffed body delivered byte-identical" cmp "$dir/m8.want" "$dir/m8.got"
else
	not_ok "dot-stuffed message delivered"
fi

# 9. A host name (the certificate's DNS name), resolved by the system
#    and by evdns; and two recipients.
mail "$dir/m9" byname
probe --host "$MAILENV_TLS_NAME" --port "$MAILENV_SUBMISSION_PORT" --starttls --ca "$MAILENV_CA_FILE" \
	"${auth[@]}" --to alice@lab.example "$dir/m9"
expect "host name resolved by getaddrinfo, two recipients" OK 0
check "second recipient got it too" mailenv_wait_mail "$dir" alice "^Message-ID: <byname\\.$$@" 20
probe --dns --host "$MAILENV_TLS_NAME" --port "$MAILENV_SUBMISSIONS_PORT" --tls --ca "$MAILENV_CA_FILE" \
	"${auth[@]}" "$dir/m9"
expect "host name resolved by evdns" OK 0

# 10. With a private /etc/hosts (mount namespace; skipped where unshare
#     is not allowed): a name with ::1 first, where nothing listens, then
#     127.0.0.1 (the client must try the next address), and a name the
#     certificate does not carry.
printf '::1 localhost\n127.0.0.1 localhost\n127.0.0.1 wrongname.test\n' >"$dir/hosts"
# shellcheck disable=SC2016 # $0 and $@ belong to the inner sh
with_hosts() { unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$dir/hosts" "$@"; }
if with_hosts getent hosts wrongname.test >/dev/null 2>&1; then
	mail "$dir/m10" fallback
	probe_hosts() { with_hosts "$PROBE" "$@" >"$dir/out" 2>"$dir/err"; code=$?; cat "$dir/err" >>"$dir/all.err"; }
	probe_hosts --host localhost --port "$MAILENV_SUBMISSION_PORT" --starttls --ca "$MAILENV_CA_FILE" \
		"${auth[@]}" "$dir/m10"
	expect "falls back from ::1 (refused) to 127.0.0.1" OK 0
	check "the ::1 attempt was made first" grep -q 'connect to \[::1\]:.*refused' "$dir/err"
	probe_hosts --host wrongname.test --port "$MAILENV_SUBMISSION_PORT" --starttls --ca "$MAILENV_CA_FILE" \
		"${auth[@]}" "$dir/m10"
	expect "certificate for another name is ERR_TLS" ERR_TLS 2 'mismatch.*not for wrongname\.test'
else
	echo "# skipped: private /etc/hosts (unshare -m not permitted here)"
fi

# 11. The password, in clear or base64, never reached the log.
b64plain=$(printf '\0alice\0alice-secret-pw' | base64 -w0)
b64pass=$(printf 'alice-secret-pw' | base64 -w0)
check "password not logged" bash -c "! grep -qF -e 'alice-secret-pw' -e '$b64plain' -e '$b64pass' '$dir/all.err'"
check "AUTH step is logged without its data" grep -q 'C: AUTH PLAIN <credentials not logged>' "$dir/all.err"

# ---------------------------------------------------------------- fake server
cat >"$dir/fake.py" <<'PY'
# fake.py MODE HOST PORT CERT KEY READYFILE: one connection, scripted.
import socket, ssl, sys, time
mode, host, port, cert, key, ready = sys.argv[1:]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
if mode in ("udpsilent", "udpnx"):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((host, int(port)))
    open(ready, "w").close()
    while mode == "udpnx":
        q, peer = u.recvfrom(512)
        if len(q) > 12:   # same ID and question, QR=1 RD RA, RCODE=3 (NXDOMAIN)
            u.sendto(q[:2] + b"\x81\x83" + q[4:6] + b"\x00" * 6 + q[12:], peer)
    time.sleep(60); sys.exit(0)
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((host, int(port)))
if mode == "backlog":
    # a full accept queue: Linux drops further SYNs, so connect hangs
    ls.listen(0)
    fill = []
    for i in range(4):
        x = socket.socket(); x.setblocking(False)
        try: x.connect((host, int(port)))
        except BlockingIOError: pass
        fill.append(x)
    open(ready, "w").close()
    time.sleep(60); sys.exit(0)
ls.listen(1)
open(ready, "w").close()
c, _ = ls.accept()
if mode == "tlsmismatch":
    try:
        ctx.wrap_socket(c, server_side=True)
    except Exception:
        pass
    sys.exit(0)
f = c.makefile("rb")
def say(s):
    c.sendall(s.encode())
def cmd():
    l = f.readline()
    if not l:
        sys.exit(0)
    return l.decode(errors="replace").strip().upper()
def starttls():
    global c, f
    c = ctx.wrap_socket(c, server_side=True)
    f = c.makefile("rb")
if mode == "silent":
    time.sleep(30); sys.exit(0)
if mode == "greet421":
    say("421 4.3.2 Service shutting down\r\n"); cmd(); sys.exit(0)
say("220 fake ESMTP\r\n")
cmd()
if mode == "garbage":
    say("250-fake\r\n550 codes differ\r\n"); time.sleep(2); sys.exit(0)
if mode == "nostarttls":
    say("250-fake\r\n250 PIPELINING\r\n")
    if cmd() == "QUIT": say("221 bye\r\n")
    sys.exit(0)
say("250-fake\r\n250 STARTTLS\r\n")
cmd()
if mode == "inject":
    say("220 go ahead\r\n250-fake\r\n250 AUTH PLAIN\r\n"); time.sleep(2); sys.exit(0)
say("220 go ahead\r\n")
starttls()
cmd()
say({"toobig": "250-fake\r\n250 SIZE 100\r\n",
     "authlogin": "250-fake\r\n250 AUTH LOGIN CRAM-MD5\r\n",
     "authcram": "250-fake\r\n250 AUTH CRAM-MD5\r\n"}.get(mode, "250-fake\r\n250 8BITMIME\r\n"))
if mode in ("toobig", "noauth", "authcram"):
    if cmd() == "QUIT": say("221 bye\r\n")
    sys.exit(0)
if mode == "authlogin":
    import base64
    if cmd() != "AUTH LOGIN": sys.exit(1)
    say("334 VXNlcm5hbWU6\r\n"); u = base64.b64decode(f.readline().strip())
    say("334 UGFzc3dvcmQ6\r\n"); p = base64.b64decode(f.readline().strip())
    if (u, p) != (b"alice", b"alice-secret-pw"):
        say("535 5.7.8 bad credentials\r\n")
        if cmd() == "QUIT": say("221 bye\r\n")
        sys.exit(0)
    say("235 2.7.0 ok\r\n")
    cmd(); say("250 2.1.0 ok\r\n")
    cmd(); say("250 2.1.5 ok\r\n")
    cmd(); say("354 go ahead\r\n")
    while f.readline() not in (b".\r\n", b""): pass
    say("250 2.0.0 Ok: queued as FAKE\r\n")
    if cmd() == "QUIT": say("221 bye\r\n")
    sys.exit(0)
cmd(); say("250 2.1.0 ok\r\n")
if mode == "drop":
    c.close(); sys.exit(0)
cmd(); say("452 4.5.3 Too many recipients\r\n")
if cmd() == "QUIT": say("221 2.0.0 bye\r\n")
PY

# fake_start MODE HOST: starts the fake server; sets $fake_port.
fake_start() {
	fake_port=$(python3 "$src/mailenv/mailenv_client.py" ports 1 "$2")
	rm -f "$dir/ready"
	python3 "$dir/fake.py" "$1" "$2" "$fake_port" "$MAILENV_SERVER_CERT" "$MAILENV_SERVER_KEY" \
		"$dir/ready" 2>"$dir/fake.err" &
	fake_pid=$!
	for _ in $(seq 50); do [ -e "$dir/ready" ] && break; sleep 0.1; done
}
fake_stop() {
	kill "$fake_pid" 2>/dev/null
	wait "$fake_pid" 2>/dev/null
	fake_pid=
}
# fake_run MODE HOST PROBE-ARGS...: one fake connection and one probe run.
fake_run() {
	local mode=$1 host=$2
	shift 2
	fake_start "$mode" "$host"
	probe --host "$host" --port "$fake_port" --ca "$MAILENV_CA_FILE" --timeout 2 \
		--from a@lab.example --to b@lab.example "$@" "$dir/m1"
	fake_stop
}

fake_run silent 127.0.0.1 --starttls
expect "silent server is ERR_TIMEOUT" ERR_TIMEOUT 7 'timeout'
fake_run backlog 127.0.0.1 --starttls
expect "connect that never completes is ERR_TIMEOUT" ERR_TIMEOUT 7 'connect to .*timed out'
fake_run silent 127.0.0.1 --tls
expect "server silent in the TLS handshake is ERR_TIMEOUT" ERR_TIMEOUT 7 'TLS handshake'
fake_run silent 127.0.0.1 --starttls --cancel-after 300
expect "cancel while waiting for the greeting" CANCELLED 10
fake_run greet421 127.0.0.1 --starttls
expect "421 greeting is ERR_TEMPORARY" ERR_TEMPORARY 6 '421 4\.3\.2'
fake_run nostarttls 127.0.0.1 --starttls
expect "no STARTTLS offered is ERR_TLS" ERR_TLS 2 'does not offer STARTTLS'
fake_run inject 127.0.0.1 --starttls
expect "plaintext injected after STARTTLS is ERR_PROTOCOL" ERR_PROTOCOL 8 'STARTTLS'
fake_run garbage 127.0.0.1 --starttls
expect "inconsistent multi-line reply is ERR_PROTOCOL" ERR_PROTOCOL 8 'malformed'
fake_run toobig 127.0.0.1 --starttls
expect "message over the announced SIZE is ERR_REJECTED" ERR_REJECTED 5 'limit of 100$'
fake_run authlogin 127.0.0.1 --starttls --user alice --password-file "$dir/pw"
expect "AUTH LOGIN when PLAIN is not offered" OK 0 'queued as FAKE'
fake_run authlogin 127.0.0.1 --starttls --user alice --password-file "$dir/badpw"
expect "AUTH LOGIN with a wrong password is ERR_AUTH" ERR_AUTH 3 '535'
fake_run authcram 127.0.0.1 --starttls --user alice --password-file "$dir/pw"
expect "no usable AUTH mechanism is ERR_AUTH" ERR_AUTH 3 'no AUTH mechanism we support'
fake_run noauth 127.0.0.1 --starttls --user alice --password-file "$dir/pw"
expect "no AUTH offered is ERR_AUTH" ERR_AUTH 3 'offers no AUTH'
fake_run rcpt452 127.0.0.1 --starttls
expect "452 at RCPT is ERR_TEMPORARY" ERR_TEMPORARY 6 '<b@lab\.example>.*452'
fake_run drop 127.0.0.1 --starttls
expect "connection dropped mid-session is ERR_CONNECT" ERR_CONNECT 1 'closed|reset'
fake_run tlsmismatch 127.0.0.2 --tls
expect "certificate not for the address is ERR_TLS" ERR_TLS 2 'certificate verify failed: .*mismatch'

# evdns against a loopback name server that never answers: the session
# deadline ((8 + 1) * 1 s) ends the job, or a cancel does; either way the
# query in flight is cancelled and the job freed (ASan would see a leak
# or a use after free).
fake_start udpsilent 127.0.0.1
probe --dns-server "127.0.0.1:$fake_port" --host nowhere.test --port 25 --starttls --timeout 1 \
	--from a@lab.example --to b@lab.example "$dir/m1"
expect "unanswered DNS ends at the session deadline" ERR_TIMEOUT 7 'session took longer than 9 s \(resolve\)'
probe --dns-server "127.0.0.1:$fake_port" --host nowhere.test --port 25 --starttls --cancel-after 300 \
	--from a@lab.example --to b@lab.example "$dir/m1"
expect "cancel during DNS resolution" CANCELLED 10
fake_stop
fake_start udpnx 127.0.0.1
probe --dns-server "127.0.0.1:$fake_port" --host nowhere.test --port 25 --starttls --timeout 5 \
	--from a@lab.example --to b@lab.example "$dir/m1"
expect "name that does not exist (NXDOMAIN) is ERR_CONNECT" ERR_CONNECT 1 'cannot resolve nowhere\.test'
fake_stop

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
