#!/usr/bin/env bash
# test_natlab.sh - the NAT lab's own test: does each NAT type of
# tests/natlab/lab.sh behave as its name says?
# Builds the lab (network namespaces; needs root, iproute2, nftables,
# python3), starts udpprobe.py echo servers in pub on NL_STUN1 and
# NL_STUN2 (three ports each), and measures from host a behind r1:
#   mapping    - external port toward S1:P1, S1:P2 and S2:P1
#   filtering  - does an answer from another port of the same address,
#                or from another address, get in after a sent to S1:P1?
#   allocation - preserved port / +1 / +2 / random
# for every natemu type and both kernel types; then the mapping timeout
# (refresh and expiry), background port consumption (natemu's phantoms
# and a real churning neighbour), an exhausted port range, wrong
# natlab_nat calls, TCP through natemu and kernel routers, hole punching
# between a and b (natemu and kernel port-restricted), preserved ports of
# two hosts, unsolicited inbound through a full cone, hairpinning, the
# second NAT, "none", coturn's RFC 5780 CHANGE-REQUEST through the NATs
# (when STUN_PROBE and turnserver exist), and natlab_down's cleanup.
# Environment: NATEMU (./tests/natlab/natemu), STUN_PROBE (optional),
# TURNSERVER (optional).  Prints ok/not ok lines and "N passed, N
# failed"; exits 0 if all passed, 77 when it cannot run.
set -u

here=$(cd "$(dirname "$0")" && pwd)
NATEMU=${NATEMU:-./tests/natlab/natemu}
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root (network namespaces)"
	exit 77
fi
if ! command -v nft >/dev/null || ! command -v python3 >/dev/null; then
	echo "SKIP: needs nft (nftables) and python3"
	exit 77
fi
if [ ! -x "$NATEMU" ]; then
	echo "SKIP: no natemu at $NATEMU (set NATEMU)"
	exit 77
fi
NATEMU=$(realpath "$NATEMU")
export NATEMU
NATLAB_PREFIX=nlt$$-
if ! ip netns add "${NATLAB_PREFIX}probe" 2>/dev/null; then
	echo "SKIP: cannot create network namespaces"
	exit 77
fi
ip netns del "${NATLAB_PREFIX}probe"
export NATLAB_PREFIX
# shellcheck source=lab.sh
. "$here/lab.sh"

pass=0
fail=0
trap natlab_down EXIT
ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $*"; }
not() { ! "$@" 2>/dev/null; }
check() { # NAME CMD...: a test that passes when CMD does
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name (${why:-})"; fi
}

if ! natlab_up || ! natlab_echo_up; then
	echo "not ok - the lab comes up"
	echo "0 passed, 1 failed"
	exit 1
fi
ok "the lab comes up (namespaces ${NATLAB_PREFIX}*, dir $NL_DIR)"
S1=$NL_STUN1 S2=$NL_STUN2 P1=$NL_ECHO_PORT1 P2=$NL_ECHO_PORT2 P3=$NL_ECHO_PORT3
out=$NL_DIR/probe.out

# probe NS ARGS...: runs udpprobe's client, output in $out
probe() {
	local ns=$1
	shift
	natlab_probe "$ns" client "$@" >"$out" 2>&1
}
# seen DEST: the external port the server DEST saw (empty if none)
seen() { awk -v d="$1" '$1 == "seen" && $2 == d {print $3; exit}' "$out" | sed -n 's/.*:\([0-9]*\)$/\1/p'; }
seen_addr() { awk -v d="$1" '$1 == "seen" && $2 == d {print $3; exit}' "$out"; }
got() { awk -v f="$1" '$1 == "from" && $2 == f {print $3; exit}' "$out"; }
summary() { tr '\n' ' ' <"$out"; }
has_both() { grep -q "$1" "$out" && grep -q "$2" "$out"; }

# ---------------------------------------------------------------- the matrix

# measure TYPE PORT: a on local PORT; sets e11 e12 e21 (external ports
# toward S1:P1, S1:P2, S2:P1), f_port f_addr (got/none: did an answer
# from S1:P3 / S2:P3 get in after a sent to S1:P1).  P3 is never sent
# to, so that the kernel's conntrack entries for the filtered answers
# cannot change the ports of the later flows.
measure() {
	natlab_nat r1 "$1" || { not_ok "natlab_nat r1 $1"; return 1; }
	probe "$NL_A" --bind "$NL_A_ADDR:$2" --timeout 700 "ask=$S1:$P1" \
		"via=$S1:$P1,$S1:$P3" "via=$S1:$P1,$S2:$P3" "ask=$S1:$P2" "ask=$S2:$P1"
	e11=$(seen "$S1:$P1") e12=$(seen "$S1:$P2") e21=$(seen "$S2:$P1")
	f_port=$(got "$S1:$P3") f_addr=$(got "$S2:$P3")
	why="$(summary)"
	[ -n "$e11" ] && [ -n "$e12" ] && [ -n "$e21" ] &&
		[ "$(seen_addr "$S1:$P1" | cut -d: -f1)" = "$NL_R1_WAN" ]
}

# expect TYPE PORT MAPPING FILTERING ALLOC
#   MAPPING ei|ad|apd, FILTERING ei|ad|apd, ALLOC preserve|seq1|seq2|random
expect() {
	local type=$1 port=$2 map=$3 filt=$4 alloc=$5 m f a d1 d2
	if ! measure "$type" "$port"; then
		not_ok "$type: a reaches the echo servers through r1's WAN address ($why)"
		return
	fi
	ok "$type: a reaches the echo servers through $NL_R1_WAN"
	if [ "$e11" = "$e12" ] && [ "$e12" = "$e21" ]; then m=ei
	elif [ "$e11" = "$e12" ] && [ "$e12" != "$e21" ]; then m=ad
	elif [ "$e11" != "$e12" ] && [ "$e12" != "$e21" ] && [ "$e11" != "$e21" ]; then m=apd
	else m="odd"; fi
	check "$type: mapping is $map (ports $e11 $e12 $e21 toward S1:P1 S1:P2 S2:P1)" test "$m" = "$map"
	if [ "$f_port" = got ] && [ "$f_addr" = got ]; then f=ei
	elif [ "$f_port" = got ] && [ "$f_addr" = none ]; then f=ad
	elif [ "$f_port" = none ] && [ "$f_addr" = none ]; then f=apd
	else f="odd"; fi
	check "$type: filtering is $filt (other port: $f_port, other address: $f_addr)" test "$f" = "$filt"
	d1=$(((e12 - e11 + 65536) % 65536))
	d2=$(((e21 - e12 + 65536) % 65536))
	case $alloc in
	preserve) a=$([ "$e11" = "$port" ] && echo preserve) ;;
	seq1) a=$([ "$d1" = 1 ] && [ "$d2" = 1 ] && echo seq1) ;;
	seq2) a=$([ "$d1" = 2 ] && [ "$d2" = 2 ] && echo seq2) ;;
	random)
		# a random pick lands within 16 of the previous one, or on the
		# local port, about once in a thousand runs
		a=random
		[ "$e11" = "$port" ] && a="preserved"
		[ "$d1" -le 16 ] || [ "$d1" -ge 65520 ] && a="close"
		[ "$d2" -le 16 ] || [ "$d2" -ge 65520 ] && a="close"
		;;
	esac
	check "$type: allocation is $alloc (local $port, external $e11 $e12 $e21)" test "${a:-no}" = "$alloc"
}

expect fullcone 20010 ei ei preserve
expect restricted 20020 ei ad preserve
expect portrestricted 20030 ei apd preserve
expect addrsym 20040 ad ad preserve
expect portsym-seq1 20050 apd apd seq1
expect portsym-seq2 20060 apd apd seq2
expect portsym-random 20070 apd apd random
expect kernel-masq 20080 ei apd preserve
expect kernel-random 20090 apd apd random

# ---------------------------------------------------------------- timeout

natlab_nat r1 emu --mapping ei --filtering ei --alloc seq:1 --timeout 2
probe "$NL_A" --bind "$NL_A_ADDR:21000" "ask=$S1:$P1" sleep=1.2 "ask=$S1:$P1" sleep=1.2 "ask=$S1:$P1"
t1=$(awk '$1 == "seen" {print $3}' "$out" | sort -u | wc -l)
first=$(seen "$S1:$P1")
why=$(summary)
check "timeout 2 s: traffic every 1.2 s keeps one mapping (2.4 s in all)" test "$t1" = 1 -a -n "$first"
sleep 2.6
probe "$NL_A" --bind "$NL_A_ADDR:21000" "ask=$S1:$P1"
second=$(seen "$S1:$P1")
why=$(summary)
check "timeout 2 s: after 2.6 s idle a new mapping ($first then $second)" \
	test -n "$second" -a "$second" != "$first"
check "timeout 2 s: the emulator counted the expiry" \
	grep -qx 'expired [1-9][0-9]*' "$NL_DIR/r1.stats"

# unsolicited inbound through a full cone, before and after expiry
natlab_nat r1 fullcone --timeout 2
probe "$NL_A" --bind "$NL_A_ADDR:21100" "ask=$S1:$P1"
natlab_spawn "$NL_A" listen1 python3 "$here/udpprobe.py" client --bind "$NL_A_ADDR:21100" listen=1200 >/dev/null
sleep 0.3
natlab_probe "$NL_PUB" client --bind "$NL_MAIL_ADDR:9999" "send=$NL_R1_WAN:21100" >/dev/null
sleep 1.1
why=$(cat "$NL_DIR/listen1.log")
check "fullcone: an unsolicited packet from a new remote reaches a" \
	grep -q "^recv $NL_MAIL_ADDR:9999 PING" "$NL_DIR/listen1.log"
sleep 1.2
natlab_spawn "$NL_A" listen2 python3 "$here/udpprobe.py" client --bind "$NL_A_ADDR:21100" listen=800 >/dev/null
sleep 0.3
natlab_probe "$NL_PUB" client --bind "$NL_MAIL_ADDR:9999" "send=$NL_R1_WAN:21100" >/dev/null
sleep 0.7
why=$(cat "$NL_DIR/listen2.log")
check "fullcone: after the (inbound-refreshed) mapping expired, it does not" \
	test -s "$NL_DIR/listen2.log" -a "$(grep -c '^recv' "$NL_DIR/listen2.log")" = 0

# ---------------------------------------------------------------- consume

# successive mappings (0.25 s apart) of a; prints the external ports
successive_ports() {
	probe "$NL_A" --bind "$NL_A_ADDR:$1" "ask=$S1:$P1" sleep=0.25 "ask=$S1:$P2" sleep=0.25 \
		"ask=$S2:$P1" sleep=0.25 "ask=$S2:$P2"
	awk '$1 == "seen" {print $3}' "$out" | sed 's/.*://' | tr '\n' ' '
}
# all_gaps LO HI PORTS...: 4 ports, each step (mod 65536) within [LO, HI]
all_gaps() {
	local lo=$1 hi=$2 prev='' p d n=0
	shift 2
	for p in "$@"; do
		n=$((n + 1))
		if [ -n "$prev" ]; then
			d=$(((p - prev + 65536) % 65536))
			[ "$d" -ge "$lo" ] && [ "$d" -le "$hi" ] || return 1
		fi
		prev=$p
	done
	[ "$n" = 4 ]
}

natlab_nat r1 portsym-seq1 --consume 20
ports=$(successive_ports 21200)
why=$(summary)
# shellcheck disable=SC2086
check "consume 20/s, seq:1: successive mappings skip ports ($ports)" all_gaps 2 40 $ports
check "consume: the emulator counted phantom mappings" \
	grep -qx 'phantoms [1-9][0-9]*' "$NL_DIR/r1.stats"

# a real busy neighbour instead of phantoms: a2 opens 20 flows a second
natlab_nat r1 portsym-seq1
churn=$(natlab_churn "$NL_A2" 20)
sleep 0.3
ports=$(successive_ports 21250)
why=$(summary)
# shellcheck disable=SC2086
check "a2 churning 20 flows/s, seq:1: a's successive mappings skip ports ($ports)" \
	all_gaps 2 40 $ports
kill "$churn" 2>/dev/null
check "natlab_nat refuses an unknown type" not natlab_nat r1 no-such-type
check "natlab_nat refuses natemu options for a kernel type" not natlab_nat r1 kernel-masq --timeout 2

# ---------------------------------------------------------------- port range

natlab_nat r1 emu --mapping apd --filtering apd --alloc seq:1 --port-range 30000-30002
probe "$NL_A" --bind "$NL_A_ADDR:21280" --timeout 500 "ask=$S1:$P1" "ask=$S1:$P2" "ask=$S2:$P1" "ask=$S2:$P2"
ports=$(awk '$1 == "seen" {print $3}' "$out" | sed 's/.*://' | sort -n | tr '\n' ' ')
why=$(summary)
check "port range 30000-30002: three mappings use it all, the fourth gets none ($ports)" \
	test "$ports" = "none 30000 30001 30002 "
check "port range: the emulator counted the exhaustion" \
	grep -qx 'exhausted [1-9][0-9]*' "$NL_DIR/r1.stats"

# ---------------------------------------------------------------- two hosts, hairpin

natlab_nat r1 fullcone
probe "$NL_A" --bind "$NL_A_ADDR:21300" "ask=$S1:$P1"
ea=$(seen "$S1:$P1")
probe "$NL_A2" --bind "$NL_A2_ADDR:21300" "ask=$S1:$P1"
ea2=$(seen "$S1:$P1")
why=$(summary)
check "preserve: a keeps 21300, a2 (same local port) gets the next free one ($ea, $ea2)" \
	test "$ea" = 21300 -a "$ea2" = 21301
natlab_spawn "$NL_A2" a2serve python3 "$here/udpprobe.py" serve "$NL_A2_ADDR:21300" >/dev/null
for _ in $(seq 30); do grep -q listening "$NL_DIR/a2serve.log" 2>/dev/null && break; sleep 0.1; done
probe "$NL_A" --bind "$NL_A_ADDR:21300" "ask=$NL_R1_WAN:$ea2"
why=$(summary)
check "hairpin: a reaches a2 at $NL_R1_WAN:$ea2 and a2 sees a's external endpoint" \
	test "$(seen_addr "$NL_R1_WAN:$ea2")" = "$NL_R1_WAN:$ea"

# ---------------------------------------------------------------- punching

# punch TYPE PORT: both routers TYPE, a and b on PORT (preserved), each
# sends twice to the other's WAN address and listens: does each hear the other?
punch() {
	natlab_nat r1 "$1" && natlab_nat r2 "$1" || return 1
	natlab_spawn "$NL_B" "punch-b-$1" python3 "$here/udpprobe.py" client --bind "$NL_B_ADDR:$2" \
		"send=$NL_R1_WAN:$2" sleep=0.6 "send=$NL_R1_WAN:$2" listen=900 >/dev/null
	sleep 0.3
	probe "$NL_A" --bind "$NL_A_ADDR:$2" "send=$NL_R2_WAN:$2" sleep=0.6 "send=$NL_R2_WAN:$2" listen=600
	sleep 0.4
	why="a: $(summary) b: $(tr '\n' ' ' <"$NL_DIR/punch-b-$1.log")"
	grep -q "^recv $NL_R2_WAN:$2 PING" "$out" && grep -q "^recv $NL_R1_WAN:$2 PING" "$NL_DIR/punch-b-$1.log"
}
check "punching: a and b behind two port-restricted natemu NATs hear each other" punch portrestricted 21700
check "punching: a and b behind two kernel masquerade NATs hear each other" punch kernel-masq 21710
natlab_nat r2 none

# ---------------------------------------------------------------- TCP

natlab_spawn "$NL_PUB" tcpserve python3 "$here/udpprobe.py" tcp-serve "$NL_MAIL_ADDR:2525" >/dev/null
for _ in $(seq 30); do grep -q listening "$NL_DIR/tcpserve.log" 2>/dev/null && break; sleep 0.1; done
for t in portsym-random kernel-random; do
	natlab_nat r1 "$t"
	probe "$NL_A" "tcp=$NL_MAIL_ADDR:2525"
	why=$(summary)
	check "$t: TCP from a reaches the mail address, from $NL_R1_WAN" \
		test "$(awk '$1 == "tcpseen" {print $3}' "$out" | cut -d: -f1)" = "$NL_R1_WAN"
done

# ---------------------------------------------------------------- r2, none

natlab_nat r2 portrestricted
probe "$NL_B" --bind "$NL_B_ADDR:21400" "ask=$S1:$P1"
why=$(summary)
check "r2 portrestricted: b is seen as $NL_R2_WAN:21400" test "$(seen_addr "$S1:$P1")" = "$NL_R2_WAN:21400"
natlab_nat r1 none
probe "$NL_A" --bind "$NL_A_ADDR:21500" "ask=$S1:$P1"
why=$(summary)
check "r1 none: a is seen as itself" test "$(seen_addr "$S1:$P1")" = "$NL_A_ADDR:21500"
natlab_spawn "$NL_A" aserve python3 "$here/udpprobe.py" serve "$NL_A_ADDR:21501" >/dev/null
for _ in $(seq 30); do grep -q listening "$NL_DIR/aserve.log" 2>/dev/null && break; sleep 0.1; done
probe "$NL_B" --bind "$NL_B_ADDR:21501" "ask=$NL_A_ADDR:21501"
why=$(summary)
check "r1 none: b (behind r2's NAT) reaches a's own address" \
	test "$(seen_addr "$NL_A_ADDR:21501")" = "$NL_R2_WAN:21501"
natlab_nat r1 fullcone
probe "$NL_PUB" --timeout 500 "ask=$NL_A_ADDR:21501"
why=$(summary)
check "leaving none removes pub's route to the LAN" test "$(seen "$NL_A_ADDR:21501")" = ""

# ---------------------------------------------------------------- coturn, RFC 5780

STUN_PROBE=${STUN_PROBE:-./tests/agent/stun_probe}
if [ -x "$STUN_PROBE" ] && command -v "${TURNSERVER:-turnserver}" >/dev/null; then
	STUN_PROBE=$(realpath "$STUN_PROBE")
	if natlab_coturn_up 3478; then
		ok "coturn listens on $S1 and $S2, ports $NL_STUN_PORT and $NL_STUN_ALT_PORT"
		SS="$S1:$NL_STUN_PORT"
		natlab_exec "$NL_A" "$STUN_PROBE" --bind "$NL_A_ADDR:21600" "$SS" >"$out" 2>&1
		why=$(summary)
		check "STUN through fullcone: srflx $NL_R1_WAN:21600, OTHER-ADDRESS $S2:$NL_STUN_ALT_PORT" \
			has_both "^srflx $NL_R1_WAN:21600 " "^other $S2:$NL_STUN_ALT_PORT "
		natlab_exec "$NL_A" "$STUN_PROBE" --bind "$NL_A_ADDR:21600" --change both "$SS" >"$out" 2>&1
		why=$(summary)
		check "CHANGE-REQUEST ip+port through fullcone: answered from $S2:$NL_STUN_ALT_PORT" \
			grep -q "^from $S2:$NL_STUN_ALT_PORT " "$out"
		natlab_nat r1 portrestricted
		natlab_exec "$NL_A" "$STUN_PROBE" --bind "$NL_A_ADDR:21601" --timeout 800 --change port "$SS" >"$out" 2>&1
		why=$(summary)
		check "CHANGE-REQUEST port through portrestricted: filtered (timeout)" \
			grep -q "status timeout" "$out"
		natlab_nat r1 restricted
		natlab_exec "$NL_A" "$STUN_PROBE" --bind "$NL_A_ADDR:21602" --change port "$SS" >"$out" 2>&1
		why=$(summary)
		check "CHANGE-REQUEST port through restricted: answered from $S1:$NL_STUN_ALT_PORT" \
			grep -q "^from $S1:$NL_STUN_ALT_PORT " "$out"
	else
		not_ok "coturn comes up in pub"
	fi
else
	echo "# no stun_probe or turnserver: RFC 5780 checks skipped"
fi

# ---------------------------------------------------------------- cleanup

why=$(ip -4 -o addr show | awk '{print $4}' | grep -E '^(198\.1[89]\.|10\.[12]\.0\.)' | tr '\n' ' ')
check "the root namespace has no lab address" test -z "$why"

# stop the emulators first: a sanitizer build reports leaks at exit
natlab_nat r1 none
natlab_nat r2 none
why=$(grep -h -m 3 -E 'Sanitizer|runtime error' "$NL_DIR"/*.natemu.log 2>/dev/null | tr '\n' ' ')
check "no sanitizer report from natemu" test -z "$why"
pids_before=$(cat "$NL_DIR/pids")
natlab_down
left=$(ip netns list | awk '{print $1}' | grep -c "^$NATLAB_PREFIX")
alive=0
for p in $pids_before; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
why="namespaces left: $left, processes alive: $alive"
check "natlab_down removes every namespace and process" test "$left" = 0 -a "$alive" = 0
natlab_down
check "natlab_down is idempotent" test $? = 0

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
