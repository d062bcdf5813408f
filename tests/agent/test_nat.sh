#!/usr/bin/env bash
# test_nat.sh - `mailpunch-agent nat`: RFC 5780 behaviour discovery and
# the port allocation test (agent/nat_discovery.c, lib/natclass.c)
# against a real coturn.
#
# 1. Loopback: coturn on 127.0.0.1 and 127.0.0.2 (RFC 5780 through its
#    two addresses and the alternative port).  No NAT: mapping and
#    filtering "no-nat", allocation port-preserving, all mapping tests
#    showing our own address.  A coturn on one address only (no
#    OTHER-ADDRESS): mapping still "no-nat" from test I, filtering
#    unknown, allocation measured.  Errors: no STUNServer (exit 3), a
#    dead server (exit 1, within the bound).
# 2. When root with `ip netns`: a lab of namespaces (prefix mpd<pid>):
#    coturn in a "public" namespace on 198.18.1.2 and 198.18.1.3, a
#    router namespace (198.18.1.1 outside, 10.77.0.1 inside) with kernel
#    nftables NAT, a client namespace 10.77.0.2 behind it running the
#    agent.  `masquerade` must come out as endpoint-independent mapping,
#    address-and-port-dependent filtering, port-preserving allocation,
#    public address 198.18.1.1 (a port-restricted cone); masquerade
#    with every unsolicited datagram passed to the client (a "DMZ host")
#    as endpoint-independent filtering (full cone); masquerade with
#    datagrams passed only from addresses the inside port has sent to
#    (an nft dynamic set) as address-dependent filtering (restricted
#    cone); `snat ... fully-random` as address-and-port-dependent
#    mapping and random allocation (symmetric).
#    Two coturns on one address each (no RFC 5780) must still tell the
#    mapping apart (test I to both), with the filtering unknown.
#    Sequential allocation has no kernel NAT to show it: lib/natclass.c's
#    unit tests cover it.  Everything is removed in a trap.
#
# Environment: AGENT (default ./mailpunch-agent), TURNSERVER (default
# turnserver on PATH).  Prints ok/not ok lines and "N passed, N failed";
# exit 77 when coturn is missing (the lab alone is skipped, with a
# note, when not root or without netns/nft).
set -u

# shellcheck source=coturn.sh
. "$(dirname "$0")/coturn.sh"

AGENT=${AGENT:-./mailpunch-agent}
if [ ! -x "$AGENT" ]; then
	echo "SKIP: no mailpunch-agent at $AGENT (set AGENT)"
	exit 77
fi
coturn_find || exit 77
AGENT=$(realpath "$AGENT")

pass=0
fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nat-test.XXXXXX")
chmod 755 "$tmp"
pids=()
ns=mpd$$
namespaces=()

cleanup() {
	local p n
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	for n in "${namespaces[@]}"; do
		ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$n" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $*"; }
show() { head -c 700 "$tmp/out"; echo " / $(head -c 300 "$tmp/err")"; }
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name ($(show))"; fi
}
# has KEY VALUE: the JSON object in $tmp/out has "KEY":"VALUE"
has() { grep -q "\"$1\":\"$2\"" "$tmp/out"; }
# num KEY: a numeric field of the JSON object
num() { sed -n "s/.*\"$1\":\(-\{0,1\}[0-9]*\).*/\1/p" "$tmp/out" | head -n 1; }

# conf NAME STUNSERVER...: an agent configuration (nat needs no mail)
conf() {
	local name=$1 s
	shift
	echo "pw" >"$tmp/pw"
	chmod 600 "$tmp/pw"
	{
		echo "Address         nat@lab.example"
		echo "SubmissionHost  127.0.0.1"
		echo "MailPasswordFile $tmp/pw"
		echo "StateDir        $tmp/state-$name"
		echo "LogDestination  $tmp/agent-$name.log"
		echo "LogLevel        debug"
		for s in "$@"; do echo "STUNServer      $s"; done
	} >"$tmp/$name.conf"
}

# run_nat [PREFIX...] -- CONF [--json]: runs the agent's nat command
# (`-c CONF [--json] nat`; with ARGS starting with "nat", `-c CONF ARGS`)
run_nat() {
	local prefix=()
	while [ "$1" != "--" ]; do prefix+=("$1"); shift; done
	shift
	local c=$1
	shift
	local t0=$(date +%s%N)
	local args=("$@" nat)
	[ "${1:-}" = nat ] && args=("$@")
	timeout 20 "${prefix[@]}" "$AGENT" -c "$tmp/$c.conf" "${args[@]}" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	took=$((($(date +%s%N) - t0) / 1000000))
	if grep -q 'Sanitizer' "$tmp/err"; then
		not_ok "sanitizer report from the agent ($(grep -m 3 -E 'ERROR|SUMMARY' "$tmp/err" | tr '\n' ' '))"
	fi
}

# start_coturn PREFIX... -- IP...: coturn on the IPs, port in $P; waits
# until it answers a Binding request (by the agent itself)
start_coturn() {
	local prefix=() name=$1
	shift
	while [ "$1" != "--" ]; do prefix+=("$1"); shift; done
	shift
	P=$(coturn_free_port) || return 1
	coturn_start "$tmp" "$name" "$P" "${prefix[@]}" -- "$@"
	pids+=("$COTURN_PID")
	conf "probe-$name" "$1:$P"
	for _ in $(seq 50); do
		run_nat "${prefix[@]}" -- "probe-$name" --json
		[ "$rc" -eq 0 ] && return 0
		sleep 0.2
	done
	return 1
}

# ---------------------------------------------------------------- loopback

if ! start_coturn lo -- 127.0.0.1 127.0.0.2; then
	not_ok "coturn did not start on 127.0.0.1 ($(tail -n 3 "$tmp"/turn-lo.log 2>/dev/null))"
	echo "$pass passed, $fail failed"
	exit 1
fi
ok "coturn answers on 127.0.0.1:$P and 127.0.0.2:$P"
LP=$P

conf lo "127.0.0.1:$LP"
run_nat -- lo --json
check "nat --json exits 0 and prints one JSON object" \
	test "$rc" -eq 0 -a "$(wc -l <"$tmp/out")" -eq 1 -a "$(head -c 1 "$tmp/out")" = "{"
check "loopback: RFC 5780 server, other address 127.0.0.2:$((LP + 1))" \
	grep -q "\"rfc5780\":true,\"other_address\":\"127.0.0.2:$((LP + 1))\"" "$tmp/out"
check "loopback: mapping no-nat" has mapping no-nat
check "loopback: filtering no-nat (both CHANGE-REQUESTs answered)" \
	eval 'has filtering no-nat && has change_ip_port answered && has change_port answered'
lport=$(num local_port)
check "loopback: public address is our own socket (127.0.0.1:$lport)" has public "127.0.0.1:$lport"
check "loopback: mapping tests II and III saw the same mapping" \
	eval 'has II 127.0.0.1:$lport && has III 127.0.0.1:$lport'
check "loopback: allocation port-preserving, delta 0" \
	eval 'has allocation port-preserving && test "$(num delta)" = 0'
check "loopback: six bindings, each external port its local port" \
	test "$(grep -o '"local":[0-9]*,"external":[0-9]*' "$tmp/out" | awk -F'[:,]' '$2 == $4' | wc -l)" -eq 6
check "loopback: the bindings went to all four server endpoints" \
	test "$(grep -o '"server":"127[^"]*"' "$tmp/out" | sort -u | wc -l)" -eq 4
check "loopback: named open internet" has nat_type "open internet"
check "loopback: done in well under a second (${took} ms)" test "$took" -lt 1000

run_nat -- lo
check "nat for people: mapping, filtering, allocation, NAT type lines" \
	eval 'test "$rc" -eq 0 && grep -q "^mapping *no-nat" "$tmp/out" && grep -q "^filtering *no-nat" "$tmp/out" \
	&& grep -q "^allocation *port-preserving" "$tmp/out" && grep -q "^NAT type *open internet" "$tmp/out" \
	&& grep -q "^external ports" "$tmp/out" && grep -q "^public address *127.0.0.1:" "$tmp/out"'

# a server on one address: no RFC 5780
if start_coturn one -- 127.0.0.1; then
	conf one "127.0.0.1:$P"
	run_nat -- one --json
	check "one-address server: rfc5780 false, mapping no-nat from test I alone" \
		eval 'test "$rc" -eq 0 && grep -q "\"rfc5780\":false" "$tmp/out" && has mapping no-nat'
	check "one-address server: filtering unknown, allocation still measured" \
		eval 'has filtering unknown && has allocation port-preserving'
	# the RFC 5780 server is preferred when listed second
	conf both "127.0.0.1:$P" "127.0.0.1:$LP"
	run_nat -- both --json
	check "two servers: the RFC 5780 one is used for the tests" \
		eval 'test "$rc" -eq 0 && has server "127.0.0.1:$LP" && grep -q "\"rfc5780\":true" "$tmp/out"'
else
	not_ok "second coturn did not start"
fi

conf none
run_nat -- none --json
check "no STUNServer: exit 3 with a message" \
	eval 'test "$rc" -eq 3 && grep -q "no STUNServer" "$tmp/err"'
D=$(coturn_free_port)
conf dead "127.0.0.1:$D"
run_nat -- dead --json
check "a dead server: exit 1, said so, within the bound (${took} ms)" \
	eval 'test "$rc" -eq 1 && grep -q "no STUN server answered" "$tmp/err" && test "$took" -lt 2500'

# ---------------------------------------------------------------- netns lab

lab_ok=1
if [ "$(id -u)" -ne 0 ]; then
	echo "# not root: the NAT lab is skipped"
	lab_ok=0
elif ! command -v nft >/dev/null; then
	echo "# no nft: the NAT lab is skipped"
	lab_ok=0
elif ! ip netns add "$ns-probe" 2>/dev/null; then
	echo "# ip netns does not work here: the NAT lab is skipped"
	lab_ok=0
else
	ip netns del "$ns-probe"
fi

# lab_up: pub (coturn) -- rtr (NAT) -- cli (agent)
lab_up() {
	local n
	for n in pub rtr cli; do
		ip netns add "$ns-$n" || return 1
		namespaces+=("$ns-$n")
		ip -n "$ns-$n" link set lo up
	done
	ip -n "$ns-rtr" link add wan type veth peer name eth0 netns "$ns-pub" || return 1
	ip -n "$ns-rtr" link add lan type veth peer name eth0 netns "$ns-cli" || return 1
	ip -n "$ns-pub" addr add 198.18.1.2/24 dev eth0
	ip -n "$ns-pub" addr add 198.18.1.3/24 dev eth0
	ip -n "$ns-rtr" addr add 198.18.1.1/24 dev wan
	ip -n "$ns-rtr" addr add 10.77.0.1/24 dev lan
	ip -n "$ns-cli" addr add 10.77.0.2/24 dev eth0
	for n in pub rtr cli; do
		ip -n "$ns-$n" link set eth0 up 2>/dev/null
	done
	ip -n "$ns-rtr" link set wan up
	ip -n "$ns-rtr" link set lan up
	ip -n "$ns-cli" route add default via 10.77.0.1
	ip netns exec "$ns-rtr" sysctl -qw net.ipv4.ip_forward=1
	# short-lived UDP mappings, so that the next NAT rule starts afresh
	# (existing conntrack entries keep the old rule's translation)
	ip netns exec "$ns-rtr" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=2 \
		net.netfilter.nf_conntrack_udp_timeout_stream=2 2>/dev/null
	return 0
}

# nat_rule RULE [INBOUND]: the router's NAT rule, e.g. "masquerade", and
# optionally one for what arrives from outside without a mapping
nat_rule() {
	ip netns exec "$ns-rtr" nft -f - <<NFT
flush ruleset
table ip mpdnat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" $1
	}
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		${2:-}
	}
}
NFT
}

if [ "$lab_ok" -eq 1 ]; then
	if ! lab_up; then
		not_ok "the namespace lab could not be built"
	elif ! nat_rule masquerade; then
		not_ok "nft masquerade rule refused"
	elif ! start_coturn pub ip netns exec "$ns-pub" -- 198.18.1.2 198.18.1.3; then
		not_ok "coturn in the lab did not answer ($(tail -n 3 "$tmp"/turn-pub.log 2>/dev/null))"
	else
		ok "lab: coturn on 198.18.1.2:$P and 198.18.1.3:$P, client 10.77.0.2 behind 198.18.1.1"
		conf lab "198.18.1.2:$P"
		# two plain servers, one per address (no RFC 5780)
		plain=()
		if start_coturn pa ip netns exec "$ns-pub" -- 198.18.1.2; then plain+=("198.18.1.2:$P"); fi
		if start_coturn pb ip netns exec "$ns-pub" -- 198.18.1.3; then plain+=("198.18.1.3:$P"); fi
		conf plain "${plain[@]}"
		check "lab: two more coturns on one address each" test "${#plain[@]}" -eq 2

		run_nat ip netns exec "$ns-cli" -- lab --json
		check "masquerade: nat exits 0, RFC 5780 server" \
			eval 'test "$rc" -eq 0 && grep -q "\"rfc5780\":true" "$tmp/out"'
		check "masquerade: public address on the router (198.18.1.1)" grep -q '"public":"198\.18\.1\.1:' "$tmp/out"
		check "masquerade: endpoint-independent mapping" has mapping endpoint-independent
		check "masquerade: address-and-port-dependent filtering (no CHANGE-REQUEST answer)" \
			eval 'has filtering address-and-port-dependent && has change_ip_port "no answer" && has change_port "no answer"'
		check "masquerade: port-preserving allocation" has allocation port-preserving
		check "masquerade: a port-restricted cone" has nat_type "port-restricted cone"
		check "masquerade: bounded time (${took} ms)" test "$took" -lt 3000
		run_nat ip netns exec "$ns-cli" -- plain --json
		check "masquerade, two plain servers: mapping endpoint-independent, filtering unknown" \
			eval 'test "$rc" -eq 0 && grep -q "\"rfc5780\":false" "$tmp/out" && has second_server "${plain[1]:-x}" \
			&& has mapping endpoint-independent && has filtering unknown && has allocation port-preserving'

		# masquerade, and every unsolicited datagram passed to the client
		# on the same port (a "DMZ host"): endpoint-independent filtering
		sleep 2.5       # the masquerade mappings expire
		nat_rule masquerade 'iifname "wan" udp dport 1024-65535 dnat to 10.77.0.2'
		run_nat ip netns exec "$ns-cli" -- lab nat --json
		check "masquerade + DMZ: endpoint-independent mapping and filtering" \
			eval 'test "$rc" -eq 0 && has mapping endpoint-independent && has filtering endpoint-independent'
		check "masquerade + DMZ: the CHANGE-REQUEST answers came through, a full cone" \
			eval 'has change_ip_port answered && has nat_type "full cone"'

		# masquerade, and unsolicited datagrams passed on only from an
		# address the client's port has sent to: address-dependent
		# filtering (the set is keyed by the inside port, which
		# masquerade keeps here)
		sleep 2.5
		ip netns exec "$ns-rtr" nft -f - <<NFT
flush ruleset
table ip mpdnat {
	set seen {
		type ipv4_addr . inet_service
		flags dynamic,timeout
		timeout 30s
	}
	chain remember {
		type filter hook forward priority filter; policy accept;
		oifname "wan" meta l4proto udp update @seen { ip daddr . udp sport }
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" masquerade
	}
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan" ip saddr . udp dport @seen dnat to 10.77.0.2
	}
}
NFT
		run_nat ip netns exec "$ns-cli" -- lab --json
		check "masquerade + per-address pass: endpoint-independent mapping, address-dependent filtering" \
			eval 'test "$rc" -eq 0 && has mapping endpoint-independent && has filtering address-dependent'
		check "masquerade + per-address pass: only the port-changed answer came, a restricted cone" \
			eval 'has change_ip_port "no answer" && has change_port answered && has nat_type "restricted cone"'

		sleep 2.5
		nat_rule "snat to 198.18.1.1 fully-random"
		run_nat ip netns exec "$ns-cli" -- lab --json
		check "fully-random: nat exits 0, public address 198.18.1.1" \
			eval 'test "$rc" -eq 0 && grep -q "\"public\":\"198\.18\.1\.1:" "$tmp/out"'
		check "fully-random: address-and-port-dependent mapping" has mapping address-and-port-dependent
		check "fully-random: random allocation" eval 'has allocation random && test "$(num delta)" = 0'
		check "fully-random: external ports differ from the local ones" \
			test "$(grep -o '"local":[0-9]*,"external":[0-9]*' "$tmp/out" | awk -F'[:,]' '$2 != $4' | wc -l)" -ge 5
		check "fully-random: symmetric" has nat_type symmetric
		run_nat ip netns exec "$ns-cli" -- plain --json
		check "fully-random, two plain servers: a dependent mapping, random allocation" \
			eval 'test "$rc" -eq 0 && has mapping address-and-port-dependent && has allocation random'
		run_nat ip netns exec "$ns-cli" -- lab
		check "fully-random, for people: symmetric, random" \
			eval 'test "$rc" -eq 0 && grep -q "^NAT type *symmetric" "$tmp/out" && grep -q "^allocation *random" "$tmp/out"'
	fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
