#!/usr/bin/env bash
# The QUIC transport between two agents, end to end over a real Postfix
# (with mailpunch-milter) and Dovecot on loopback: a chat both ways
# (`echo hi | connect bob`, bob's `listen` prints and answers), a bulk
# transfer through `listen --exec cat` (echo, checked byte for byte), a
# peer presenting the wrong identity key rejected (either side), a dead
# peer detected within the idle-timeout bound, and a clean close seen by
# both sides.  Then the applications over it: a 100 MB file (SHA-256
# checked), the same cut by killing the sender and resumed, 10 parallel
# HTTP downloads through --forward, UDP datagrams through --forward-udp,
# destinations the listen side did not allow refused.
# Needs root and tests/mailenv/install-deps.  Run from the build tree.
# Prints ok/not ok lines and "N passed, N failed"; exit 77 = skipped.
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$PWD
MILTER=${MILTER:-$build/mailpunch-milter}
AGENT=${AGENT:-$build/mailpunch-agent}
AGENT_TESTHOOKS=${AGENT_TESTHOOKS:-$build/tests/agent/mailpunch-agent-testhooks}
KEYGEN=${KEYGEN:-$build/mailpunch-keygen}

if [ "$(id -u)" -ne 0 ] || ! command -v postfix >/dev/null || ! command -v dovecot >/dev/null; then
	echo "skipped: needs root, Postfix and Dovecot (tests/mailenv/install-deps)"
	exit 77
fi
# shellcheck source=../mailenv/mailenv.sh
. "$src/mailenv/mailenv.sh"
# shellcheck source=agentenv.sh
. "$src/integration/agentenv.sh"

dir=$(mktemp -d /tmp/mp-quic.XXXXXX)
chmod 755 "$dir"
AGENTENV_TABLE=/mp-quic-$$
pass=0
fail=0
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
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
	for f in "$dir"/*.err "$dir"/*/agent.log; do
		[ -f "$f" ] && tail -n 4 "$f" | sed "s|^|#   $(basename "$(dirname "$f")")/$(basename "$f"): |"
	done
}
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what"; fi; }

agentenv_up "$dir" "$MILTER" "$KEYGEN" "TableCapacity       1000" "LogLevel            debug" || exit 1
for u in alice bob; do
	agentenv_conf "$dir" "$u" "PollInterval        1s" "LogLevel            info" \
		"ReplyTimeout        30s" "PunchTimeout        5s"
	"$AGENT" -c "$dir/$u/agent.conf" id >"$dir/$u/id.out" 2>&1
done
alice_uid=$(awk '/^user-id/ {print $2}' "$dir/alice/id.out")
bob_uid=$(awk '/^user-id/ {print $2}' "$dir/bob/id.out")
timeout 60 "$AGENT" -c "$dir/alice/agent.conf" register >"$dir/register.out" 2>&1 </dev/null

# start_bob NAME [agent args...]: bob listens (binary $BOB_AGENT), stdin from $BOB_IN
start_bob() {
	local name=$1; shift
	"${BOB_AGENT:-$AGENT}" -c "$dir/bob/agent.conf" "$@" <"${BOB_IN:-/dev/null}" \
		>"$dir/$name.data" 2>"$dir/$name.err" &
	bob_pid=$!
	pids+=("$bob_pid")
	for _ in $(seq 200); do grep -q 'listening as' "$dir/$name.err" "$dir/$name.data" 2>/dev/null && break; sleep 0.1; done
}
stop_bob() { kill -CONT "$bob_pid" 2>/dev/null; kill "$bob_pid" 2>/dev/null; wait "$bob_pid" 2>/dev/null; }

# 1. a chat both ways: alice's stdin to bob's stdout and bob's stdin (a
# file) to alice's stdout; both directions end, alice exits 0
echo "hello from bob" >"$dir/bob.says"
BOB_IN="$dir/bob.says" start_bob chat listen
echo "hello from alice" | timeout 60 "$AGENT" -c "$dir/alice/agent.conf" connect bob \
	>"$dir/alice-chat.data" 2>"$dir/alice-chat.err"
rc=$?
check "echo hi | connect bob: exit 0 (got $rc)" test "$rc" = 0
check "alice got bob's line on stdout, and nothing else" \
	bash -c "[ \"\$(cat '$dir/alice-chat.data')\" = 'hello from bob' ]"
for _ in $(seq 50); do grep -q 'hello from alice' "$dir/chat.data" && break; sleep 0.1; done
check "bob's listen printed alice's line on stdout" \
	bash -c "[ \"\$(cat '$dir/chat.data')\" = 'hello from alice' ]"
check "alice: secure connection with bob, identity key pinned" \
	grep -q "secure connection with $bob_uid via 127.0.0.1:[0-9]* (QUIC, TLS 1.3, identity key pinned" "$dir/alice-chat.err"
check "bob: secure connection with alice" grep -q "secure connection with $alice_uid" "$dir/chat.err"
for _ in $(seq 50); do grep -q "connection with $alice_uid closed" "$dir/chat.err" && break; sleep 0.1; done
check "clean close on both sides: alice closed, bob saw the peer close" \
	bash -c "grep -q 'connection with $bob_uid closed: connection closed' '$dir/alice-chat.err' &&
	         grep -q 'connection with $alice_uid closed: peer closed the connection' '$dir/chat.err'"
check "bob keeps listening after the connection" kill -0 "$bob_pid"
stop_bob

# 2. listen --exec cat: 4 MB through the stream and back, byte for byte,
# with --json events (transport_ready carries the handshake time)
head -c 4000000 /dev/urandom >"$dir/bulk.in"
start_bob exec --json listen --exec cat
timeout 60 "$AGENT" -c "$dir/alice/agent.conf" --json connect bob <"$dir/bulk.in" \
	>"$dir/bulk.out" 2>"$dir/alice-exec.err"
rc=$?
check "connect to listen --exec cat: exit 0 (got $rc)" test "$rc" = 0
check "4 MB echoed back byte for byte" cmp "$dir/bulk.in" "$dir/bulk.out"
check "--json: transport_ready with handshake_ms, then transport_closed" \
	bash -c "grep -q '\"event\":\"transport_ready\".*\"handshake_ms\":[0-9]' '$dir/alice-exec.err' &&
	         grep -q '\"event\":\"transport_closed\"' '$dir/alice-exec.err'"
printf 'one\ntwo\n' | timeout 60 "$AGENT" -c "$dir/alice/agent.conf" connect bob >"$dir/exec2.out" 2>"$dir/alice-exec2.err"
check "a second connection to the same listen --exec (a fresh cat)" \
	bash -c "[ \"\$(cat '$dir/exec2.out')\" = \"\$(printf 'one\ntwo')\" ]"
# a file to a listen without --receive: refused as such, not "broken"
timeout 60 "$AGENT" -c "$dir/alice/agent.conf" connect bob --send "$dir/bulk.in" \
	>"$dir/nofiles.out" 2>"$dir/nofiles.err" </dev/null
rc=$?
check "--send to a listen without --receive: exit 1 (got $rc), 'takes no files'" \
	bash -c "[ $rc = 1 ] && grep -q 'bulk.in not sent: the peer takes no files' '$dir/nofiles.out'"
stop_bob
# a CMD that reads nothing and exits: alice is not left hanging
start_bob exectrue listen --exec true
seq 1 2000000 | timeout 60 "$AGENT" -c "$dir/alice/agent.conf" connect bob >"$dir/true.out" 2>"$dir/alice-true.err"
rc=${PIPESTATUS[1]}     # the agent's own status (seq dies of SIGPIPE)
check "listen --exec true: connect ends, 0 or 11 (exit $rc, not the timeout's 124)" bash -c "[ $rc = 0 ] || [ $rc = 11 ]"
stop_bob

# 3. the wrong identity key: bob's transport presents another key
# than the one his link proved; alice refuses with a clear error
BOB_AGENT=$AGENT_TESTHOOKS MAILPUNCH_TEST_WRONG_KEY=1 start_bob wrong1 listen
echo "secret" | timeout 60 "$AGENT" -c "$dir/alice/agent.conf" connect bob \
	>"$dir/wrong1.data" 2>"$dir/alice-wrong1.err"
rc=$?
check "bob presents a wrong key: alice exits 10 (got $rc)" test "$rc" = 10
check "... saying: peer presented the wrong identity key" \
	grep -q "peer presented the wrong identity key" "$dir/alice-wrong1.err"
check "... and nothing was delivered to bob" test ! -s "$dir/wrong1.data"
stop_bob
# and the other way round: alice presents a wrong key; bob refuses her
start_bob wrong2 listen
echo "secret" | MAILPUNCH_TEST_WRONG_KEY=1 timeout 60 "$AGENT_TESTHOOKS" -c "$dir/alice/agent.conf" connect bob \
	>"$dir/wrong2.out" 2>"$dir/alice-wrong2.err"
rc=$?
check "alice presents a wrong key: she exits 10 (got $rc)" test "$rc" = 10
for _ in $(seq 30); do grep -q "wrong identity key" "$dir/wrong2.err" && break; sleep 0.1; done
check "... bob says: peer presented the wrong identity key" grep -q "peer presented the wrong identity key" "$dir/wrong2.err"
check "... and got no data" test ! -s "$dir/wrong2.data"
stop_bob

# 4. a dead peer: bob freezes (SIGSTOP) mid-connection; alice, with a 4 s
# idle timeout, reports it within the bound (plus one second of slack)
start_bob dead listen --exec cat
mkfifo "$dir/alice.fifo"
sleep 30 >"$dir/alice.fifo" &
holder=$!
pids+=("$holder")
timeout 60 "$AGENT" -c "$dir/alice/agent.conf" --idle-timeout 4 connect bob <"$dir/alice.fifo" \
	>"$dir/dead.out" 2>"$dir/alice-dead.err" &
alice_pid=$!
pids+=("$alice_pid")
for _ in $(seq 300); do grep -q "secure connection" "$dir/alice-dead.err" && break; sleep 0.1; done
sleep 1
kill -STOP "$bob_pid"
t0=$(date +%s.%N)
wait "$alice_pid"
rc=$?
took=$(echo "$(date +%s.%N) - $t0" | bc)
check "dead peer: alice exits 11 (got $rc)" test "$rc" = 11
check "... within the 4 s bound + 1 s (took ${took}s)" bash -c "[ \$(echo '$took < 5.0 && $took > 1.0' | bc) = 1 ]"
check "... saying the peer is dead" grep -q "nothing heard from the peer for 4s: peer dead or path lost" "$dir/alice-dead.err"
kill "$holder" 2>/dev/null
stop_bob

# 5. the listener stops (SIGTERM): it says so, and alice knows at once
start_bob stop listen --exec cat
mkfifo "$dir/alice2.fifo"
sleep 30 >"$dir/alice2.fifo" &
holder=$!
pids+=("$holder")
timeout 60 "$AGENT" -c "$dir/alice/agent.conf" connect bob <"$dir/alice2.fifo" \
	>"$dir/stop.out" 2>"$dir/alice-stop.err" &
alice_pid=$!
pids+=("$alice_pid")
for _ in $(seq 300); do grep -q "secure connection" "$dir/alice-stop.err" && break; sleep 0.1; done
t0=$(date +%s.%N)
kill -TERM "$bob_pid"
wait "$alice_pid"
rc=$?
took=$(echo "$(date +%s.%N) - $t0" | bc)
check "listener stopped: alice exits 11 (got $rc) at once (${took}s, idle timeout 30 s)" \
	bash -c "[ '$rc' = 11 ] && [ \$(echo '$took < 2.0' | bc) = 1 ]"
check "... saying the peer went away" grep -q "peer went away" "$dir/alice-stop.err"
kill "$holder" 2>/dev/null
wait "$bob_pid" 2>/dev/null

# 6. the applications over the transport (one listen serves them all;
# a 3 s idle timeout lets it notice a killed sender quickly)
free_port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
http_port=$(free_port SOCK_STREAM) deny_port=$(free_port SOCK_STREAM)
echo_port=$(free_port SOCK_DGRAM) udeny_port=$(free_port SOCK_DGRAM)
fw_port=$(free_port SOCK_STREAM) fwdeny_port=$(free_port SOCK_STREAM)
fu_port=$(free_port SOCK_DGRAM) fudeny_port=$(free_port SOCK_DGRAM)
mkdir -p "$dir/recv" "$dir/www" "$dir/send"
head -c 100000000 /dev/urandom >"$dir/send/big.bin"
start_bob apps listen --idle-timeout 3 --receive "$dir/recv" \
	--allow-forward "127.0.0.1:$http_port" --allow-forward-udp "127.0.0.1:$echo_port"

# 6a. a 100 MB file arrives whole
t0=$(date +%s.%N)
timeout 60 "$AGENT" -c "$dir/alice/agent.conf" connect bob --send "$dir/send/big.bin" \
	>"$dir/send1.out" 2>"$dir/send1.err" </dev/null
rc=$?
took=$(echo "$(date +%s.%N) - $t0" | bc)
check "connect --send 100 MB: exit 0 (got $rc, ${took}s with the rendezvous)" test "$rc" = 0
check "... says: sent big.bin" grep -qx "sent big.bin" "$dir/send1.out"
check "... arrived with the same SHA-256" \
	bash -c "[ \"\$(sha256sum <'$dir/send/big.bin')\" = \"\$(sha256sum <'$dir/recv/big.bin')\" ]"
check "... bob says (on stderr: stdout is for pipes): received big.bin" grep -qx "received big.bin" "$dir/apps.err"
check "... and no part file is left" bash -c "! ls -A '$dir/recv' | grep -q mailpunch-part"

# 6b. cut halfway: the sender is killed (no close reaches bob), bob's
# transport times out, the same --send again resumes at the part file
mv "$dir/send/big.bin" "$dir/send/again.bin"
closed_before=$(grep -c "connection with $alice_uid closed" "$dir/apps.err")
"$AGENT" -c "$dir/alice/agent.conf" connect bob --send "$dir/send/again.bin" \
	>"$dir/send2.out" 2>"$dir/send2.err" </dev/null &
sender=$!     # the agent itself: killing a `timeout` would leave it running
pids+=("$sender")
part=$dir/recv/.again.bin.mailpunch-part
for _ in $(seq 600); do
	[ "$(stat -c %s "$part" 2>/dev/null || echo 0)" -ge 30000000 ] && break
	sleep 0.05
done
kill -9 "$sender" 2>/dev/null
wait "$sender" 2>/dev/null
cut_at=$(stat -c %s "$part" 2>/dev/null || echo 0)
check "sender killed mid-transfer (part file at $cut_at of 100000000 bytes)" \
	bash -c "[ $cut_at -gt 0 ] && [ $cut_at -lt 100000000 ] && [ ! -e '$dir/recv/again.bin' ]"
for _ in $(seq 100); do
	[ "$(grep -c "connection with $alice_uid closed" "$dir/apps.err")" -gt "$closed_before" ] && break
	sleep 0.1
done
check "... bob gives the dead connection up (idle timeout)" \
	bash -c "[ \$(grep -c 'connection with $alice_uid closed' '$dir/apps.err') -gt $closed_before ]"
timeout 60 "$AGENT" -c "$dir/alice/agent.conf" --json connect bob --send "$dir/send/again.bin" \
	>"$dir/send3.out" 2>"$dir/send3.err" </dev/null
rc=$?
check "the same --send again: exit 0 (got $rc)" test "$rc" = 0
check "... resumed, not from 0 (send_start offset > 0)" \
	grep -q '"event":"send_start","size":100000000,"offset":[1-9]' "$dir/send3.out"
check "... the file is whole: same SHA-256" \
	bash -c "[ \"\$(sha256sum <'$dir/send/again.bin')\" = \"\$(sha256sum <'$dir/recv/again.bin')\" ]"
check "... --json: file_sent ok" grep -q '"event":"file_sent","name":"again.bin","status":"ok"' "$dir/send3.out"

# 6c. forwarding: an HTTP server and a UDP echo on bob's side; alice
# forwards to them, and to a TCP and a UDP destination bob did not allow
head -c 3000000 /dev/urandom >"$dir/www/blob"
(cd "$dir/www" && exec python3 -m http.server --bind 127.0.0.1 "$http_port") >/dev/null 2>&1 &
pids+=($!)
python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    d, a = s.recvfrom(65535)
    s.sendto(b"echo:" + d, a)
' "$echo_port" &
pids+=($!)
"$AGENT" -c "$dir/alice/agent.conf" connect bob --forward "$fw_port:127.0.0.1:$http_port" \
	--forward "$fwdeny_port:127.0.0.1:$deny_port" --forward-udp "$fu_port:127.0.0.1:$echo_port" \
	--forward-udp "$fudeny_port:127.0.0.1:$udeny_port" >"$dir/fwd.out" 2>"$dir/fwd.err" </dev/null &
fwd_pid=$!
pids+=("$fwd_pid")
for _ in $(seq 300); do grep -q "secure connection" "$dir/fwd.out" && break; sleep 0.1; done
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$http_port/" && break; sleep 0.1; done
curls=()
for i in $(seq 10); do
	curl -s --max-time 30 -o "$dir/www.$i" "http://127.0.0.1:$fw_port/blob" &
	curls+=($!)
done
wait "${curls[@]}"
good=0
for i in $(seq 10); do cmp -s "$dir/www/blob" "$dir/www.$i" && good=$((good + 1)); done
check "--forward: 10 parallel HTTP downloads of 3 MB through the tunnel, all correct ($good/10)" test "$good" = 10
python3 - "$fu_port" >"$dir/udp.out" 2>&1 <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.3)
got = set()
for round in range(5):
    for i in range(20):
        if i not in got:
            s.sendto(b"dgram %d " % i + b"x" * (1000 if i % 2 else 10), ("127.0.0.1", int(sys.argv[1])))
    end = time.time() + 0.5
    while time.time() < end and len(got) < 20:
        try:
            d, _ = s.recvfrom(65535)
        except socket.timeout:
            continue
        if d.startswith(b"echo:dgram "):
            i = int(d.split()[1])
            if d == b"echo:dgram %d " % i + b"x" * (1000 if i % 2 else 10):
                got.add(i)
    if len(got) == 20:
        break
print(len(got))
PY
check "--forward-udp: 20 datagrams (up to 1000 bytes) echoed through the tunnel ($(cat "$dir/udp.out")/20)" \
	grep -qx 20 "$dir/udp.out"
denied=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$fwdeny_port/" 2>/dev/null)
check "a TCP destination bob did not allow: no connection through (curl: ${denied:-none})" test "${denied:-000}" = 000
for _ in $(seq 30); do grep -q "forward to 127.0.0.1:$deny_port refused by peer" "$dir/alice/agent.log" && break; sleep 0.1; done
check "... alice logs: refused by peer; bob logs: not allowed" \
	bash -c "grep -q 'forward to 127.0.0.1:$deny_port refused by peer' '$dir/alice/agent.log' &&
	         grep -q 'forward to 127.0.0.1:$deny_port refused: not allowed' '$dir/bob/agent.log'"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"anyone?", ("127.0.0.1", int(sys.argv[1])))
' "$fudeny_port"
for _ in $(seq 30); do grep -q "forward-udp to 127.0.0.1:$udeny_port refused by peer" "$dir/alice/agent.log" && break; sleep 0.1; done
check "a UDP destination bob did not allow: refused by peer" \
	grep -q "forward-udp to 127.0.0.1:$udeny_port refused by peer" "$dir/alice/agent.log"
kill "$fwd_pid" 2>/dev/null
wait "$fwd_pid"
rc=$?
check "the forwarding connect ends on SIGTERM with exit 0 (got $rc)" test "$rc" = 0
kill "$bob_pid" 2>/dev/null
wait "$bob_pid"
rc=$?
check "bob's listen (files, forwards served) ends on SIGTERM with exit 0 (got $rc)" test "$rc" = 0

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
