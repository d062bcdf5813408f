#!/usr/bin/env bash
# The QUIC transport survives a NAT rebinding of either side, in the NAT
# lab (tests/natlab/lab.sh) with the mail system on its public network:
# alice (behind r1, the QUIC client) is connected to bob's `listen --exec
# cat` (behind r2, the server); each router in turn is restarted with
# random port allocation, so that side's mapping gets a new external
# port mid-connection, and the lines alice sends after each rebinding
# still come back through the same connection.
# Needs root, netns, nftables, Postfix, Dovecot, coturn; exit 77 if not.
# Prints ok/not ok lines and "N passed, N failed".
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$PWD
MILTER=${MILTER:-$build/mailpunch-milter}
AGENT=${AGENT:-$build/mailpunch-agent}
KEYGEN=${KEYGEN:-$build/mailpunch-keygen}
export NATEMU=${NATEMU:-$build/tests/natlab/natemu}


if [ "$(id -u)" -ne 0 ] || ! ip netns list >/dev/null 2>&1 || ! command -v nft >/dev/null ||
	! command -v postfix >/dev/null || ! command -v turnserver >/dev/null; then
	echo "skipped: needs root, ip netns, nftables, Postfix, Dovecot and coturn"
	exit 77
fi
# shellcheck source=lab.sh
. "$src/natlab/lab.sh"
# shellcheck source=../mailenv/mailenv.sh
. "$src/mailenv/mailenv.sh"
# shellcheck source=labmail.sh
. "$src/natlab/labmail.sh"

dir=$(mktemp -d /tmp/mp-rebind.XXXXXX)
chmod 755 "$dir"
pass=0
fail=0

cleanup() {
	labmail_down "$dir"
	natlab_down
	[ "$fail" -eq 0 ] && [ "${REBIND_KEEP:-0}" != 1 ] && rm -rf "$dir"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $*"; }

# ---------------------------------------------------------------- the lab
export NATLAB_PREFIX=${NATLAB_PREFIX:-rb$$}     # never collides with another lab
export NATLAB_DIR=$dir/lab
mkdir -p "$NATLAB_DIR"
natlab_up || { echo "not ok - the NAT lab did not come up"; echo "0 passed, 1 failed"; exit 1; }
natlab_coturn_up || { echo "not ok - coturn did not start"; echo "0 passed, 1 failed"; exit 1; }

if ! labmail_up "$dir" "$MILTER" "$KEYGEN" alice bob; then
	echo "not ok - the mail system did not start in the lab"
	echo "0 passed, 1 failed"
	exit 1
fi

for u in alice bob; do
	labmail_agent_conf "$dir" "$u" "PunchTimeout        30s"
	"$AGENT" -c "$dir/$u/agent.conf" id >/dev/null || exit 1
done
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what"; fi; }
# a cone NAT (any inside flow keeps its mapping, anyone may send in) that
# allocates its external ports at random: restarting it is a rebinding
cone_random() { natlab_nat "$1" emu --mapping ei --filtering ei --alloc random; }
# wait_for FILE TEXT SECONDS
wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
# natemu reads packets with AF_PACKET, which sees a UDP GSO batch as one
# big packet (a NIC on a wire would have cut it): it would forward the
# batch as one datagram.  The hosts' interfaces cut it themselves here.
for ns in "$NL_A" "$NL_B"; do ip -n "$ns" link set dev eth0 gso_max_segs 1; done
cone_random r1 && cone_random r2 || { not_ok "configuring the routers"; echo "$pass passed, $fail failed"; exit 1; }

# (a 12 s idle timeout: keepalives every 4 s, so a side whose peer's
# mapping changed hears from the new one soon)
ip netns exec "$NL_B" "$AGENT" -c "$dir/bob/agent.conf" --idle-timeout 12 listen --exec cat >"$dir/bob.out" 2>&1 &
bob_pid=$!
disown "$bob_pid"
wait_for "$dir/bob.out" 'listening as' 30
mkfifo "$dir/alice.in"
exec 7<>"$dir/alice.in"      # held open: alice's input ends when we close it
timeout 120 ip netns exec "$NL_A" env ${REBIND_DEBUG:+MAILPUNCH_QUIC_DEBUG=1} "$AGENT" -c "$dir/alice/agent.conf" --idle-timeout 12 connect bob <"$dir/alice.in" \
	>"$dir/alice.data" 2>"$dir/alice.err" 7>&- &
alice_pid=$!
check "alice's QUIC connection to bob (through two cone NATs)" wait_for "$dir/alice.err" 'secure connection' 60
echo "before any rebinding" >&7
check "a line goes to bob's cat and back" wait_for "$dir/alice.data" 'before any rebinding' 10

cone_random r1 7>&-       # (natemu must not hold alice's input open)
echo "after alice's NAT rebound" >&7
check "alice's NAT (the client's) rebinds: the connection goes on" \
	wait_for "$dir/alice.data" "after alice's NAT rebound" 15

cone_random r2 7>&-
echo "after bob's NAT rebound" >&7
check "bob's NAT (the server's) rebinds: the connection goes on" \
	wait_for "$dir/alice.data" "after bob's NAT rebound" 30
check "... alice followed bob's new address" grep -q "address changed to $NL_R2_WAN:" "$dir/alice/agent.log"

exec 7>&-
wait "$alice_pid"
rc=$?
check "alice ends cleanly when her input ends (exit $rc)" test "$rc" = 0
check "one connection all along" test "$(grep -c 'secure connection' "$dir/alice.err")" = 1
kill "$bob_pid" 2>/dev/null

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
