# lab.sh - the NAT lab: network namespaces with NAT routers, for tests.
# Source it from bash (needs root, iproute2, nftables, python3):
#
#   . tests/natlab/lab.sh
#   trap natlab_down EXIT
#   natlab_up                      # namespaces, links, addresses
#   natlab_nat r1 portrestricted   # (re)configure one router's NAT
#   natlab_nat r2 portsym-seq1 --consume 5
#   natlab_coturn_up               # STUN (RFC 5780) on NL_STUN1/NL_STUN2
#   natlab_exec "$NL_A" CMD...     # run a command on host a
#   natlab_churn "$NL_A2" 10       # a2: 10 new flows a second, background
#   natlab_down                    # idempotent, safe from a trap
#
# Topology (all inside namespaces named ${NATLAB_PREFIX:-mpl}NAME):
#
#          pub: bridge br0  198.18.0.10 (mail), .20 and .21 (STUN)
#            |                                   |
#     wan 198.18.0.101                    wan 198.18.0.102
#          r1 (NAT)                            r2 (NAT)
#     lan 10.1.0.1/24 (bridge)            lan 10.2.0.1/24 (bridge)
#        |         |                          |
#   a 10.1.0.2   a2 10.1.0.3                b 10.2.0.2
#
# Nothing is ever configured in the root namespace: every link is created
# inside its namespaces (ip -n NS link add ... peer ... netns NS2).
# Routers have no default route and pub none at all, so nothing can leave
# the lab; pub reaches a LAN only when its router is in "none" mode.
#
# NAT types for natlab_nat ROUTER TYPE [NATEMU-OPTIONS...]:
#   none            routing, no NAT (pub and the other router get a route)
#   fullcone        natemu: mapping ei, filtering ei,  ports preserved
#   restricted      natemu: mapping ei, filtering ad,  ports preserved
#   portrestricted  natemu: mapping ei, filtering apd, ports preserved
#   addrsym         natemu: mapping ad, filtering ad, ports preserved (seed 003's
#                   address sensitive symmetric NAT: both rules by address)
#   portsym-seq1    natemu: mapping apd, filtering apd, ports seq:1
#   portsym-seq2    natemu: mapping apd, filtering apd, ports seq:2
#   portsym-random  natemu: mapping apd, filtering apd, random ports
#   kernel-masq     nftables masquerade (conntrack: EI mapping with the
#                   source port kept when free, APD filtering)
#   kernel-random   nftables masquerade fully-random (a random port per
#                   flow: APD mapping, APD filtering)
#   Both drop UDP from the WAN to the router itself silently, like home
#   routers (no ICMP port unreachable).  Conntrack quirk, real and kept: an
#   unsolicited inbound packet from R:r to WAN:p leaves a conntrack entry,
#   so a later LAN flow from port p toward R:r gets another external port.
#   emu OPTIONS...  natemu with exactly these options (see natemu.c)
# LAN-to-LAN traffic is switched, never filtered, as in a home router
# (with br_netfilter loaded, bridged frames would meet the forward chain).
# natemu handles UDP only: with every natemu type, TCP and ICMP from the
# LAN go through the kernel's masquerade (so mail works from the LANs).
# natemu types take the mapping timeout from NATLAB_TIMEOUT (30 s) and the
# background port consumption from NATLAB_CONSUME (0 per second); extra
# arguments after TYPE are appended to natemu's options (later wins).
#
# Environment read: NATLAB_PREFIX, NATLAB_DIR (lab directory; default a
# new mktemp -d, removed by natlab_down unless NATLAB_KEEP=1), NATEMU (the
# natemu binary; default ./tests/natlab/natemu, i.e. the build tree),
# TURNSERVER (coturn's turnserver), NATLAB_TIMEOUT, NATLAB_CONSUME.
# Functions return non-zero with a message on stderr when they fail, and
# are safe under set -euo pipefail.

NATLAB_SRC=${NATLAB_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}

# natlab_exec NS CMD...: runs CMD in namespace NS.
natlab_exec() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# natlab_spawn NS NAME CMD...: starts CMD in the background in NS, output
# in $NL_DIR/NAME.log; its pid is printed and killed by natlab_down.
natlab_spawn() {
	local ns=$1 name=$2 pid
	shift 2
	ip netns exec "$ns" "$@" >"$NL_DIR/$name.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >>"$NL_DIR/pids"
	echo "$pid"
}

# natlab_probe NS ARGS...: runs udpprobe.py ARGS in NS (see udpprobe.py).
natlab_probe() {
	local ns=$1
	shift
	ip netns exec "$ns" python3 "$NATLAB_SRC/udpprobe.py" "$@"
}

# natlab_echo_up: udpprobe servers in pub on NL_STUN1 and NL_STUN2, ports
# NL_ECHO_PORT1 (7000), NL_ECHO_PORT2 (7001) and NL_ECHO_PORT3 (7002)
# each; waits until they are ready.
natlab_echo_up() {
	NL_ECHO_PORT1=7000
	NL_ECHO_PORT2=7001
	NL_ECHO_PORT3=7002
	export NL_ECHO_PORT1 NL_ECHO_PORT2 NL_ECHO_PORT3
	natlab_spawn "$NL_PUB" echo python3 "$NATLAB_SRC/udpprobe.py" serve \
		"$NL_STUN1:$NL_ECHO_PORT1" "$NL_STUN1:$NL_ECHO_PORT2" "$NL_STUN1:$NL_ECHO_PORT3" \
		"$NL_STUN2:$NL_ECHO_PORT1" "$NL_STUN2:$NL_ECHO_PORT2" "$NL_STUN2:$NL_ECHO_PORT3" >/dev/null
	for _ in $(seq 50); do
		grep -q '^listening' "$NL_DIR/echo.log" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "natlab: echo servers did not start: $(cat "$NL_DIR/echo.log")" >&2
	return 1
}

# natlab_churn NS RATE [DEST]: a background LAN host: NS opens RATE new
# flows a second (new source port each) to DEST (NL_STUN1:NL_ECHO_PORT1),
# consuming real NAT mappings.  Prints the pid (natlab_down kills it).
natlab_churn() {
	local ns=$1 rate=$2 dest=${3:-$NL_STUN1:${NL_ECHO_PORT1:-7000}} pid
	pid=$(natlab_spawn "$ns" "churn.$ns" python3 "$NATLAB_SRC/udpprobe.py" churn "$rate" "$dest")
	for _ in $(seq 50); do
		grep -q '^churning' "$NL_DIR/churn.$ns.log" 2>/dev/null && break
		sleep 0.1
	done
	echo "$pid"
}

_natlab_names() {
	local P=${NATLAB_PREFIX:-mpl}
	NL_PUB=${P}pub NL_R1=${P}r1 NL_R2=${P}r2 NL_A=${P}a NL_A2=${P}a2 NL_B=${P}b
	export NL_PUB NL_R1 NL_R2 NL_A NL_A2 NL_B
}

# quiet sysctl inside a namespace
_natlab_sysctl() {
	ip netns exec "$1" sysctl -q -w "$2" >/dev/null
}

_natlab_ns_new() {
	ip netns add "$1" || return 1
	ip -n "$1" link set lo up
	# no IPv6 chatter (router solicitations, MLD) on the lab links
	_natlab_sysctl "$1" net.ipv6.conf.all.disable_ipv6=1
	_natlab_sysctl "$1" net.ipv6.conf.default.disable_ipv6=1
}

_natlab_bridge() { # NS NAME
	ip -n "$1" link add "$2" type bridge forward_delay 0 stp_state 0 &&
		ip -n "$1" link set "$2" up
}

# _natlab_host ROUTER-NS HOST-NS ADDR GATEWAY PORT: a LAN host on the
# router's bridge, its link called eth0 in the host and PORT in the router
_natlab_host() {
	local r=$1 h=$2
	_natlab_ns_new "$h" || return 1
	ip -n "$h" link add eth0 type veth peer name "$5" netns "$r" || return 1
	ip -n "$r" link set dev "$5" master lan up
	ip -n "$h" addr add "$3/24" dev eth0
	# UDP GSO batches (QUIC sends them) are cut into datagrams on the
	# host, as a real NIC would on the wire: natemu sees packets, never
	# one glued super-datagram
	ip -n "$h" link set dev eth0 gso_max_segs 1
	ip -n "$h" link set eth0 up
	ip -n "$h" route add default via "$4"
}

# natlab_up: builds the lab and exports NL_* (see the top of this file).
natlab_up() {
	local n a
	_natlab_names
	NL_MAIL_ADDR=198.18.0.10
	NL_STUN1=198.18.0.20
	NL_STUN2=198.18.0.21
	NL_R1_WAN=198.18.0.101
	NL_R2_WAN=198.18.0.102
	NL_R1_LAN=10.1.0.1
	NL_R2_LAN=10.2.0.1
	NL_A_ADDR=10.1.0.2
	NL_A2_ADDR=10.1.0.3
	NL_B_ADDR=10.2.0.2
	export NL_MAIL_ADDR NL_STUN1 NL_STUN2 NL_R1_WAN NL_R2_WAN NL_R1_LAN NL_R2_LAN \
		NL_A_ADDR NL_A2_ADDR NL_B_ADDR
	if ip netns list | awk '{print $1}' | grep -qx "$NL_PUB"; then
		echo "natlab: namespace $NL_PUB exists (another lab with prefix ${NATLAB_PREFIX:-mpl}?)" >&2
		return 1
	fi
	if [ -n "${NATLAB_DIR:-}" ]; then
		NL_DIR=$NATLAB_DIR
		mkdir -p "$NL_DIR" || return 1
	else
		NL_DIR=$(mktemp -d "${TMPDIR:-/tmp}/natlab.XXXXXX") || return 1
	fi
	export NL_DIR
	: >"$NL_DIR/pids"

	_natlab_ns_new "$NL_PUB" || return 1
	_natlab_bridge "$NL_PUB" br0 || return 1
	for a in "$NL_MAIL_ADDR" "$NL_STUN1" "$NL_STUN2"; do
		ip -n "$NL_PUB" addr add "$a/24" dev br0 || return 1
	done
	for n in 1 2; do
		local r wan
		if [ "$n" = 1 ]; then r=$NL_R1 wan=$NL_R1_WAN; else r=$NL_R2 wan=$NL_R2_WAN; fi
		_natlab_ns_new "$r" || return 1
		ip -n "$r" link add wan type veth peer name "r$n" netns "$NL_PUB" || return 1
		ip -n "$NL_PUB" link set dev "r$n" master br0 up
		ip -n "$r" addr add "$wan/24" dev wan
		ip -n "$r" link set wan up
		_natlab_bridge "$r" lan || return 1
		ip -n "$r" addr add "10.$n.0.1/24" dev lan
		_natlab_sysctl "$r" net.ipv4.ip_forward=0
	done
	_natlab_host "$NL_R1" "$NL_A" "$NL_A_ADDR" "$NL_R1_LAN" a || return 1
	_natlab_host "$NL_R1" "$NL_A2" "$NL_A2_ADDR" "$NL_R1_LAN" a2 || return 1
	_natlab_host "$NL_R2" "$NL_B" "$NL_B_ADDR" "$NL_R2_LAN" b || return 1
	# a router's bridge has no carrier until a port is up: now it has
	ip -n "$NL_R1" link set lan up
	ip -n "$NL_R2" link set lan up
	natlab_nat r1 none && natlab_nat r2 none
}

# _natlab_router r1|r2: sets ns, wan, lan_net, other (the other router's ns)
_natlab_router() {
	case $1 in
	r1) ns=$NL_R1 wan=$NL_R1_WAN lan_net=10.1.0.0/24 other=$NL_R2 ;;
	r2) ns=$NL_R2 wan=$NL_R2_WAN lan_net=10.2.0.0/24 other=$NL_R1 ;;
	*) echo "natlab: no router '$1' (r1 or r2)" >&2; return 1 ;;
	esac
}

# _natlab_kill PIDFILE: ends the process named by a pid file and waits
_natlab_kill() {
	local pid
	[ -f "$1" ] || return 0
	pid=$(cat "$1")
	rm -f "$1"
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null || true
}

_natlab_emu() { # ROUTER OPTIONS...
	local r=$1 pid
	shift
	local NATEMU=${NATEMU:-./tests/natlab/natemu}
	if [ ! -x "$NATEMU" ]; then
		echo "natlab: no natemu at $NATEMU (set NATEMU)" >&2
		return 1
	fi
	# natemu translates UDP; TCP and ICMP (mail, pings) go through the
	# kernel's masquerade, so that LAN hosts reach the mail system whatever
	# the type.  UDP never crosses the kernel's forwarding, and UDP to the
	# WAN address is dropped silently (no ICMP port unreachable).
	_natlab_sysctl "$ns" net.ipv4.ip_forward=1
	ip netns exec "$ns" nft -f - <<EOF || return 1
table ip natlab {
	chain input {
		type filter hook input priority 0;
		ip daddr $wan meta l4proto udp drop
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		ip saddr $lan_net ip daddr $lan_net accept
		meta l4proto udp drop
		ct state established,related accept
		iifname "lan" oifname "wan" accept
	}
	chain postrouting {
		type nat hook postrouting priority srcnat;
		oifname "wan" meta l4proto != udp masquerade
	}
}
EOF
	rm -f "$NL_DIR/$r.natemu.pid"
	ip netns exec "$ns" "$NATEMU" --lan lan --wan wan --wan-addr "$wan" \
		--timeout "${NATLAB_TIMEOUT:-30}" --consume "${NATLAB_CONSUME:-0}" \
		--stats-file "$NL_DIR/$r.stats" --pid-file "$NL_DIR/$r.natemu.pid" \
		-v "$@" 2>>"$NL_DIR/$r.natemu.log" </dev/null &
	pid=$!
	echo "$pid" >>"$NL_DIR/pids"
	for _ in $(seq 100); do
		[ -s "$NL_DIR/$r.natemu.pid" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	echo "natlab: natemu on $r did not start: $(tail -n 3 "$NL_DIR/$r.natemu.log")" >&2
	return 1
}

_natlab_kernel_nat() { # ROUTER MASQUERADE-STATEMENT
	_natlab_sysctl "$ns" net.ipv4.ip_forward=1
	ip netns exec "$ns" nft -f - <<EOF
table ip natlab {
	chain postrouting {
		type nat hook postrouting priority srcnat;
		oifname "wan" $2
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		ip saddr $lan_net ip daddr $lan_net accept
		ct state established,related accept
		iifname "lan" oifname "wan" accept
	}
	chain input {
		type filter hook input priority 0;
		iifname "wan" meta l4proto udp drop
	}
}
EOF
}

# natlab_nat ROUTER TYPE [NATEMU-OPTIONS...]: (re)configures one router.
natlab_nat() {
	local ns wan lan_net other r=$1 type=$2
	_natlab_router "$r" || return 1
	shift 2
	case $type in
	none | kernel-masq | kernel-random)
		if [ $# -gt 0 ]; then
			echo "natlab: NAT type $type takes no natemu options ($*)" >&2
			return 1
		fi
		;;
	fullcone | restricted | portrestricted | addrsym | portsym-seq1 | portsym-seq2 | \
		portsym-random | emu) ;;
	*)
		echo "natlab: unknown NAT type '$type'" >&2
		return 1
		;;
	esac
	# undo whatever was there: emulator, rules, forwarding, routes, conntrack
	_natlab_kill "$NL_DIR/$r.natemu.pid"
	ip netns exec "$ns" nft flush ruleset
	_natlab_sysctl "$ns" net.ipv4.ip_forward=0
	ip -n "$NL_PUB" route del "$lan_net" 2>/dev/null || true
	ip -n "$other" route del "$lan_net" 2>/dev/null || true
	# the kernel types' flows must not outlive them (conntrack from the
	# "conntrack" package; without it old entries stay until they time out)
	ip netns exec "$ns" sh -c 'command -v conntrack >/dev/null && conntrack -F' >/dev/null 2>&1 || true
	case $type in
	none)
		_natlab_sysctl "$ns" net.ipv4.ip_forward=1
		ip -n "$NL_PUB" route add "$lan_net" via "$wan" &&
			ip -n "$other" route add "$lan_net" via "$wan"
		;;
	fullcone) _natlab_emu "$r" --mapping ei --filtering ei --alloc preserve "$@" ;;
	restricted) _natlab_emu "$r" --mapping ei --filtering ad --alloc preserve "$@" ;;
	portrestricted) _natlab_emu "$r" --mapping ei --filtering apd --alloc preserve "$@" ;;
	addrsym) _natlab_emu "$r" --mapping ad --filtering ad --alloc preserve "$@" ;;
	portsym-seq1) _natlab_emu "$r" --mapping apd --filtering apd --alloc seq:1 "$@" ;;
	portsym-seq2) _natlab_emu "$r" --mapping apd --filtering apd --alloc seq:2 "$@" ;;
	portsym-random) _natlab_emu "$r" --mapping apd --filtering apd --alloc random "$@" ;;
	emu) _natlab_emu "$r" "$@" ;;
	kernel-masq) _natlab_kernel_nat "$r" "masquerade" ;;
	kernel-random) _natlab_kernel_nat "$r" "masquerade fully-random" ;;
	esac
}

# natlab_stats ROUTER: prints the router's natemu stats file (see natemu.c)
natlab_stats() {
	cat "$NL_DIR/$1.stats" 2>/dev/null
}

# natlab_coturn_up [PORT]: coturn in pub, STUN only, listening on NL_STUN1
# and NL_STUN2, port PORT (3478) and PORT+1 (the RFC 5780 alternative port):
# two addresses and --alt-listening-port are what makes coturn answer
# CHANGE-REQUEST and send OTHER-ADDRESS.  Exports NL_STUN_PORT and
# NL_STUN_ALT_PORT; log in $NL_DIR/turn.log.
natlab_coturn_up() {
	local port=${1:-3478}
	local TURNSERVER=${TURNSERVER:-$(command -v turnserver)}
	if [ -z "$TURNSERVER" ]; then
		echo "natlab: coturn's turnserver not found" >&2
		return 1
	fi
	NL_STUN_PORT=$port
	NL_STUN_ALT_PORT=$((port + 1))
	export NL_STUN_PORT NL_STUN_ALT_PORT
	natlab_spawn "$NL_PUB" turn.out "$TURNSERVER" -n \
		--listening-ip "$NL_STUN1" --listening-ip "$NL_STUN2" \
		--listening-port "$port" --alt-listening-port "$NL_STUN_ALT_PORT" \
		--stun-only --no-cli --no-tls --no-dtls \
		--log-file "$NL_DIR/turn.log" --simple-log \
		--pidfile "$NL_DIR/turn.pid" --userdb "$NL_DIR/turndb" >/dev/null
	for _ in $(seq 100); do
		if ip netns exec "$NL_PUB" ss -Hlun 2>/dev/null |
			awk '{print $4}' | grep -qx "$NL_STUN2:$NL_STUN_ALT_PORT"; then
			return 0
		fi
		sleep 0.05
	done
	echo "natlab: coturn did not start: $(tail -n 3 "$NL_DIR/turn.log" 2>/dev/null)" >&2
	return 1
}

# natlab_down: kills what the lab started, deletes its namespaces and
# (unless NATLAB_KEEP=1) its directory.  Idempotent; fine from a trap.
natlab_down() {
	local ns pid pids=()
	_natlab_names
	if [ -n "${NL_DIR:-}" ] && [ -f "$NL_DIR/pids" ]; then
		while read -r pid; do
			[ -n "$pid" ] && pids+=("$pid")
		done <"$NL_DIR/pids"
	fi
	# plus whatever else runs in our namespaces (a test's own helpers)
	for ns in "$NL_PUB" "$NL_R1" "$NL_R2" "$NL_A" "$NL_A2" "$NL_B"; do
		[ -e "/run/netns/$ns" ] || continue
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			pids+=("$pid")
		done
	done
	if [ ${#pids[@]} -gt 0 ]; then
		kill "${pids[@]}" 2>/dev/null || true
		for _ in $(seq 40); do
			local alive=0
			for pid in "${pids[@]}"; do
				kill -0 "$pid" 2>/dev/null && alive=1
			done
			[ "$alive" = 0 ] && break
			sleep 0.05
		done
		kill -9 "${pids[@]}" 2>/dev/null || true
	fi
	for ns in "$NL_A" "$NL_A2" "$NL_B" "$NL_R1" "$NL_R2" "$NL_PUB"; do
		[ -e "/run/netns/$ns" ] && ip netns del "$ns" 2>/dev/null
	done
	if [ -n "${NL_DIR:-}" ] && [ "${NATLAB_KEEP:-0}" != 1 ] && [ -z "${NATLAB_DIR:-}" ]; then
		rm -rf "$NL_DIR"
	fi
	return 0
}
