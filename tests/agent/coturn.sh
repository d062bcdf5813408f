# shellcheck shell=bash
# coturn.sh - coturn's turnserver as the STUN server of the agent's tests
# (test_stun.sh, test_nat.sh).  Source it from bash:
#
#   coturn_find                   sets TURNSERVER (default: turnserver on
#                                 PATH); fails when there is none
#   coturn_free_port              prints a port free on loopback (UDP and
#                                 TCP) whose next port is free too
#   coturn_start DIR NAME PORT [CMD... --] IP...
#                                 turnserver in the background, STUN only,
#                                 on IP...:PORT and the alternative port
#                                 PORT+1 (two IPs give RFC 5780
#                                 OTHER-ADDRESS and CHANGE-REQUEST), run
#                                 through CMD (e.g. ip netns exec NS)
#
# coturn_start keeps coturn's database, log, pid file and output in
# DIR/turn-NAME.* (DIR/turn-NAME.log says why it failed) and sets
# COTURN_PID; the caller waits until it answers and ends it.  Functions
# return non-zero when they fail; coturn_find prints the test's SKIP
# line.

coturn_find() {
	TURNSERVER=${TURNSERVER:-$(command -v turnserver || true)}
	if [ -z "$TURNSERVER" ] || [ ! -x "$TURNSERVER" ]; then
		echo "SKIP: coturn's turnserver not found (apt-get install coturn)"
		return 1
	fi
}

coturn_free_port() {
	local p used
	used=" $(ss -Htuan 2>/dev/null | awk '{print $5}' | sed -n 's/.*:\([0-9]*\)$/\1/p' | tr '\n' ' ') "
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 30000))
		case "$used" in
		*" $p "*|*" $((p + 1)) "*) continue ;;
		esac
		echo "$p"
		return 0
	done
	return 1
}

coturn_start() {
	local dir=$1 name=$2 port=$3 prefix=() ips=() ip
	shift 3
	if [[ " $* " == *" -- "* ]]; then
		while [ "$1" != "--" ]; do prefix+=("$1"); shift; done
		shift
	fi
	for ip in "$@"; do ips+=(--listening-ip "$ip"); done
	"${prefix[@]}" "$TURNSERVER" -n "${ips[@]}" --listening-port "$port" --alt-listening-port $((port + 1)) \
		--stun-only --no-cli --no-tls --no-dtls --log-file "$dir/turn-$name.log" --simple-log \
		--pidfile "$dir/turn-$name.pid" --userdb "$dir/turndb-$name" >"$dir/turn-$name.out" 2>&1 &
	COTURN_PID=$!
}
