#!/usr/bin/env bash
# The NAT traversal matrix: two agents behind two NAT routers of the lab
# (tests/natlab/lab.sh), the mail system (Postfix + mailpunch-milter +
# Dovecot) and coturn on the lab's public network.  For each pair of
# router types bob listens behind r2, alice connects to him from behind
# r1 through the mail rendezvous, and the table says: connected or not,
# time from the start of punching to the path, packets alice sent, and
# the plan the two sides chose (agent/traverse.c).
#
# Asserts (issue: NAT traversal): every pair seed 003 calls connectable
# connects (all but port-sensitive symmetric on both sides), sequential
# port-sensitive symmetric on both sides connects, random symmetric
# against every cone type connects; two peers behind the same NAT connect.
#
#   MATRIX_TYPES="fullcone portsym-seq1"   only these types (default: all)
#   MATRIX_ATTEMPTS=N                      attempts per pair (default 1;
#                                          bench/natlab_matrix.sh uses 20)
#   MATRIX_CONSUME=N                       background flows/s on each NAT
#   MATRIX_ALL=1                           also the pairs no method can join
#   MATRIX_RETRY=0|1                       a failed attempt is tried once more
#                                          (default: 1 with one attempt per pair)
#   MATRIX_SHARD=K/N                       only every N-th pair from the K-th
#                                          (0-based): N labs side by side
#   MATRIX_PLAIN=1                         baseline: plain simultaneous
#                                          punching, no prediction
# Needs root, netns, nftables, Postfix, Dovecot, coturn; exit 77 if not.
# Prints ok/not ok lines, the table, and "N passed, N failed".
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$PWD
MILTER=${MILTER:-$build/mailpunch-milter}
AGENT=${AGENT:-$build/mailpunch-agent}
KEYGEN=${KEYGEN:-$build/mailpunch-keygen}
export NATEMU=${NATEMU:-$build/tests/natlab/natemu}

ALL_TYPES="none fullcone restricted portrestricted addrsym portsym-seq1 portsym-seq2 portsym-random kernel-masq kernel-random"
TYPES=${MATRIX_TYPES:-$ALL_TYPES}
ATTEMPTS=${MATRIX_ATTEMPTS:-1}
# one second chance per pair in the single-attempt matrix (see the loop)
RETRY=${MATRIX_RETRY:-$([ "$ATTEMPTS" = 1 ] && echo 1 || echo 0)}

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

dir=$(mktemp -d /tmp/mp-matrix.XXXXXX)
chmod 755 "$dir"
pass=0
fail=0

cleanup() {
	labmail_down "$dir"
	natlab_down
	[ "$fail" -eq 0 ] && [ "${MATRIX_KEEP:-0}" != 1 ] && rm -rf "$dir"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $*"; }

# ---------------------------------------------------------------- the lab
export NATLAB_PREFIX=${NATLAB_PREFIX:-mx$$}     # never collides with another lab
export NATLAB_DIR=$dir/lab
mkdir -p "$NATLAB_DIR"
natlab_up || { echo "not ok - the NAT lab did not come up"; echo "0 passed, 1 failed"; exit 1; }
natlab_coturn_up || { echo "not ok - coturn did not start"; echo "0 passed, 1 failed"; exit 1; }

if ! labmail_up "$dir" "$MILTER" "$KEYGEN" alice bob carol; then
	echo "not ok - the mail system did not start in the lab"
	echo "0 passed, 1 failed"
	exit 1
fi

write_conf() {
	local extra=("PunchTimeout        ${MATRIX_PUNCH_TIMEOUT:-30s}")
	[ "${MATRIX_PLAIN:-0}" = 1 ] && extra+=("PortPrediction      no")
	labmail_agent_conf "$dir" "$1" "${extra[@]}"
}
for u in alice bob carol; do
	write_conf "$u"
	"$AGENT" -c "$dir/$u/agent.conf" id >/dev/null || exit 1
done
bob_uid=$("$AGENT" -c "$dir/bob/agent.conf" id | awk '/^user-id/ {print $2}')

# connectable PAIR-TYPE-X PAIR-TYPE-Y: 1 when the issue requires success
is_ps() { case $1 in portsym-*|kernel-random) return 0 ;; esac; return 1; }
is_random() { case $1 in portsym-random|kernel-random) return 0 ;; esac; return 1; }
required() {
	if is_ps "$1" && is_ps "$2"; then
		# beyond the seed: both sequential must connect; random cannot
		! is_random "$1" && ! is_random "$2"
		return
	fi
	return 0
}

# attempt RTYPE1 RTYPE2 INITIATOR_NS RESPONDER_NS INITIATOR RESPONDER: one
# connection; sets ok_conn, punch_ms, packets, plan
attempt() {
	local ns_i=$3 ns_r=$4 who=$5 peer=$6 out=$dir/$5.connect.json listen=$dir/$6.listen.out lp
	ok_conn=0 punch_ms=- packets=- plan=-
	ip netns exec "$ns_r" "$AGENT" -c "$dir/$peer/agent.conf" listen >"$listen" 2>&1 &
	lp=$!
	for _ in $(seq 150); do grep -q 'listening as' "$listen" && break; sleep 0.1; done
	if ! grep -q 'listening as' "$listen"; then
		kill "$lp" 2>/dev/null; wait "$lp" 2>/dev/null
		return
	fi
	timeout 90 ip netns exec "$ns_i" "$AGENT" --json -c "$dir/$who/agent.conf" connect "$peer" >"$out" 2>&1
	if [ $? -eq 0 ] && grep -q '"event":"established"' "$out"; then
		ok_conn=1
	fi
	local ev
	ev=$(grep '"event":"established"' "$out" | head -n 1)
	if [ -n "$ev" ]; then
		punch_ms=$(echo "$ev" | grep -o '"punch_ms":-\?[0-9]*' | cut -d: -f2)
		packets=$(echo "$ev" | grep -o '"packets":[0-9]*' | cut -d: -f2)
		plan=$(echo "$ev" | sed -n 's/.*"plan":"\([^"]*\)".*/\1/p')
	fi
	kill "$lp" 2>/dev/null
	wait "$lp" 2>/dev/null
}

# ---------------------------------------------------------------- the matrix
export NATLAB_CONSUME=${MATRIX_CONSUME:-0}
printf '%-15s %-15s %-9s %8s %8s  %s\n' "alice (r1)" "bob (r2)" connected ms packets plan >"$dir/table"
set -- $TYPES
types=("$@")
shard=${MATRIX_SHARD:-0/1}
shard_k=${shard%/*} shard_n=${shard#*/}
pair_no=-1
mine() { pair_no=$((pair_no + 1)); [ $((pair_no % shard_n)) -eq "$shard_k" ]; }
for ((i = 0; i < ${#types[@]}; i++)); do
	for ((j = i; j < ${#types[@]}; j++)); do
		x=${types[i]} y=${types[j]}
		mine || continue
		if ! required "$x" "$y" && [ "${MATRIX_ALL:-0}" != 1 ]; then
			echo "# $x <-> $y: not run (both port-sensitive symmetric, one random: MATRIX_ALL=1 runs it)"
			continue
		fi
		if ! natlab_nat r1 "$x" || ! natlab_nat r2 "$y"; then
			not_ok "configuring $x / $y"
			continue
		fi
		wins=0 times=()
		for ((k = 0; k < ATTEMPTS; k++)); do
			attempt "$x" "$y" "$NL_A" "$NL_B" alice bob
			if [ "$ok_conn" != 1 ] && [ "$RETRY" = 1 ]; then
				# a user whose attempt failed simply connects again; the
				# first try stays in the table, marked (bench/ measures
				# the real rates, with no second chance)
				printf '%-15s %-15s %-9s %8s %8s  %s\n' "$x" "$y" "NO,retry" "-" "-" "-" >>"$dir/table"
				echo "# $x <-> $y: first attempt failed, trying again"
				attempt "$x" "$y" "$NL_A" "$NL_B" alice bob
			fi
			if [ "$ok_conn" = 1 ]; then
				wins=$((wins + 1))
				times+=("$punch_ms")
			fi
			printf '%-15s %-15s %-9s %8s %8s  %s\n' "$x" "$y" "$([ "$ok_conn" = 1 ] && echo yes || echo NO)" \
				"$punch_ms" "$packets" "$plan" >>"$dir/table"
			tail -n 1 "$dir/table"
		done
		if required "$x" "$y"; then
			if [ "$wins" -eq "$ATTEMPTS" ]; then
				ok "$x <-> $y connects ($wins/$ATTEMPTS)"
			else
				not_ok "$x <-> $y connects ($wins/$ATTEMPTS)"
				tail -n 5 "$dir/alice/agent.log" "$dir/bob/agent.log" | sed 's/^/#   /'
			fi
		else
			echo "# $x <-> $y: $wins/$ATTEMPTS (not required: port-sensitive symmetric with random ports on a side)"
		fi
	done
done

# two peers behind the same NAT (r1): the local candidates meet on the LAN
for t in portsym-seq1 kernel-masq; do
	case " $TYPES " in *" $t "*) ;; *) continue ;; esac
	mine || continue
	natlab_nat r1 "$t" || continue
	attempt "$t" "$t" "$NL_A" "$NL_A2" alice carol
	printf '%-15s %-15s %-9s %8s %8s  %s\n' "$t" "same-NAT" "$([ "$ok_conn" = 1 ] && echo yes || echo NO)" \
		"$punch_ms" "$packets" "$plan" >>"$dir/table"
	if [ "$ok_conn" = 1 ]; then ok "two peers behind the same $t NAT connect"; else not_ok "two peers behind the same $t NAT connect"; fi
done

echo "#"
sed 's/^/# /' "$dir/table"
cp "$dir/table" "${MATRIX_TABLE:-/dev/null}" 2>/dev/null
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
