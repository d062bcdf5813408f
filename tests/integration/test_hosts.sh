#!/usr/bin/env bash
# Several hosts of one community (seed 001, second embodiment), each a
# real Postfix + Dovecot (tests/mailenv) with its own mailpunch-milter,
# all on loopback, routing mail to each other:
#  0. the settings for several hosts (Peer, Representative, Table
#     redis://) are checked with mailpunch-milter -t;
#  1. TABLE_SYNC: members registering at different hosts see each other
#     after a sync; pushes settle (no ping-pong); a host restarted with
#     an empty table fills it from its peer; with one host stopped, a
#     member still gets the whole community through the other;
#  2. a representative host spreads 30 requests evenly over two hosts,
#     and skips a host marked down or found down by a bounce;
#  3. an MX cluster: two milters sharing one table in a real redis-server
#     (started here, loopback) give the same answers to the same sequence
#     of requests as one milter with a shared-memory table; Redis stopped
#     mid-run gives tempfails, and the retried request is answered once
#     it is back.
# Needs root and tests/mailenv/install-deps (redis-server for part 3).
# Run from the build tree (make check does) or set MILTER, MAILPUNCHCTL,
# KEYGEN, MPTOOL.  Prints ok/not ok lines and "N passed, N failed";
# exit 77 = skipped.
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

top=$(mktemp -d /tmp/mp-hosts.XXXXXX) && chmod 755 "$top"
envs=(a b r m1 m2)
pass=0
fail=0
declare -A milter_pid=()
redis_pid=

cleanup() {
	local e
	for e in "${!milter_pid[@]}"; do
		[ -n "${milter_pid[$e]}" ] && kill -9 "${milter_pid[$e]}" 2>/dev/null
	done
	[ -n "$redis_pid" ] && kill -9 "$redis_pid" 2>/dev/null
	for e in "${envs[@]}"; do
		[ -d "$top/$e" ] && mailenv_stop "$top/$e" >/dev/null 2>&1
	done
	rm -f /dev/shm/mp-hosts-$$-*
	[ "$fail" -eq 0 ] && rm -rf "$top"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() {
	fail=$((fail + 1))
	echo "not ok - $*"
	local e
	for e in "${envs[@]}"; do
		tail -n 3 "$top/$e/milter.log" 2>/dev/null | sed "s/^/#   milter $e: /"
	done
}
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what"; fi; }

env_var() { (. "$top/$1/env" && eval "echo \$$2"); }
ctl() { local e=$1; shift; "$CTL" -s "$top/$e/control.sock" "$@"; }
stat_of() { ctl "$1" --json stats | grep -o "\"$2\":[0-9]*" | cut -d: -f2; }
knows() { ctl "$1" show "$2" >/dev/null 2>&1; }
wait_for() { # SECONDS COMMAND...: polls until COMMAND succeeds
	local t=$1 i
	shift
	for ((i = 0; i < t * 5; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
	return 1
}
peers_in() { "$MPTOOL" open "$1" "$2" "$3" | awk '/^peer / {print $2}' | tr '\n' ' '; }

# keys: one per host, and R's key shared by the hosts behind it; members
mkdir -p "$top/keys"
for h in a b r m; do
	"$KEYGEN" host "$top/keys/$h.key" >"$top/keys/$h.pub" || exit 1
	declare "pub_$h=$(awk '/^host-key/ {print $2}' "$top/keys/$h.pub")"
done
for u in alice bob carol dave erin frank gina hank; do
	"$KEYGEN" user -n "$u" "$top/keys/$u.key" >/dev/null || exit 1
	declare "uid_$u=$("$MPTOOL" pubid "$top/keys/$u.key" | awk '/^uid/ {print $2}')"
done

# environments: a.example, b.example, r.example, and m.example twice
start_env() { # NAME DOMAIN USERS...
	local e=$1 d=$2 u
	shift 2
	mkdir -p "$top/$e"
	for u in rdv "$@"; do mailenv_add_user "$top/$e" "$u" "pw-$u" || return 1; done
	mailenv_start "$top/$e" --domain "$d" --milter "unix:$top/$e/milter.sock" >/dev/null
}
start_env a a.example alice carol || exit 1
start_env b b.example bob || exit 1
start_env r r.example dave || exit 1
start_env m1 m.example erin frank gina hank || exit 1
start_env m2 m.example erin frank gina hank || exit 1
for e in a b r; do
	for d in a b r; do
		[ "$e" = "$d" ] || mailenv_route "$top/$e" "$d.example" 127.0.0.1 "$(env_var "$d" MAILENV_SMTP_PORT)" || exit 1
	done
done

# write_conf ENV KEY TABLE [extra lines...]
write_conf() {
	local e=$1 key=$2 table=$3 domain
	shift 3
	domain=$(env_var "$e" MAILENV_DOMAIN)
	{
		cat <<CONF
Socket              unix:$top/$e/milter.sock
SocketMode          0666
RendezvousAddress   rdv@$domain
HostKey             $top/keys/$key.key
Table               $table
TableCapacity       1000
ControlSocket       $top/$e/control.sock
LogDestination      $top/$e/milter.log
LogLevel            debug
SendmailCommand     /usr/sbin/sendmail -C $(env_var "$e" MAILENV_POSTFIX_CONFIG_DIR) -i
CONF
		printf '%s\n' "$@"
	} >"$top/$e/milter.conf"
}
start_milter() {
	local e=$1
	rm -f "$top/$e/control.sock"
	"$MILTER" -f -c "$top/$e/milter.conf" 2>>"$top/$e/milter.stderr" &
	milter_pid[$e]=$!
	wait_for 10 test -S "$top/$e/milter.sock" -a -S "$top/$e/control.sock"
}
stop_milter() {
	local e=$1
	[ -n "${milter_pid[$e]:-}" ] || return 0
	kill -TERM "${milter_pid[$e]}" 2>/dev/null
	wait "${milter_pid[$e]}" 2>/dev/null
	milter_pid[$e]=
}
# request ENV USER [TO]: USER@ENV's domain asks its host; prints the reply file
n_req=0
request() {
	local e=$1 u=$2 to=${3:-} key domain f
	domain=$(env_var "$e" MAILENV_DOMAIN)
	to=${to:-rdv@$domain}
	key=$(eval "echo \$pub_${4:-${e:0:1}}")
	n_req=$((n_req + 1))
	"$MPTOOL" request "$top/keys/$u.key" "$key" "$u@$domain" "$to" "$u" "198.18.0.$((n_req % 250)):4000" \
		>"$top/req-$n_req.mail" || return 1
	grep -m1 -i '^Message-ID:' "$top/req-$n_req.mail" | cut -d' ' -f2 | tr -d '\r' >"$top/req-$n_req.mid"
	mailenv_send "$top/$e" "$u@$domain" "$to" "$top/req-$n_req.mail" >/dev/null 2>&1 || return $?
}
replies() { grep -l '^Subject: \[mailpunch\] reply' "$(mailenv_maildir "$top/$1" "$2")"/new/* 2>/dev/null | wc -l; }
has_replies() { test "$(replies "$1" "$2")" -ge "$3"; }
wait_replies() { wait_for "${4:-20}" has_replies "$1" "$2" "$3"; }
# the reply to the last request (by its In-Reply-To), once it is there
reply_to_last() { # ENV USER: prints the file
	local mid
	mid=$(cat "$top/req-$n_req.mid")
	grep -lF "In-Reply-To: $mid" "$(mailenv_maildir "$top/$1" "$2")"/new/* 2>/dev/null | head -n 1
}
has_reply() { test -n "$(reply_to_last "$1" "$2")"; }
wait_reply() { wait_for "${3:-20}" has_reply "$1" "$2"; }
newest_reply() { reply_to_last "$@"; }

# ---------------------------------------------------------------- 0. settings
check_conf() { # WANT(ok|bad) LINES...: mailpunch-milter -t on a configuration
	local want=$1
	shift
	printf '%s\n' "RendezvousAddress rdv@a.example" "HostKey $top/keys/a.key" "$@" >"$top/t.conf"
	if "$MILTER" -t -c "$top/t.conf" >/dev/null 2>&1; then test "$want" = ok; else test "$want" = bad; fi
}
check "Peer with an mph1 key accepted" check_conf ok "Peer rdv@b.example $pub_b" "SyncInterval 30s"
check "Peer with a host key file accepted" check_conf ok "Peer rdv@b.example $top/keys/b.key"
check "Peer with a bad key refused" check_conf bad "Peer rdv@b.example mph1.nonsense"
check "Peer without an address refused" check_conf bad "Peer $pub_b"
check "Representative without peers refused" check_conf bad "Representative yes"
check "a redis:// Table accepted" check_conf ok "Table redis://:pw@127.0.0.1:6380/2?prefix=mx"
check "a malformed redis:// Table refused" check_conf bad "Table redis://127.0.0.1:0"

# ---------------------------------------------------------------- 1. sync
echo "# part 1: two hosts synchronise their tables"
write_conf a a /mp-hosts-$$-a "Peer rdv@b.example $pub_b" "SyncInterval 1s"
write_conf b b /mp-hosts-$$-b "Peer rdv@a.example $top/keys/a.pub.txt" "SyncInterval 1s"
echo "$pub_a" >"$top/keys/a.pub.txt"
check "host A's milter starts (Peer B by its key)" start_milter a
check "host B's milter starts (Peer A by a key file)" start_milter b
check "empty hosts ask each other for their tables" \
	wait_for 20 grep -q 'table empty: asked peer rdv@a.example' "$top/b/milter.log"

check "alice registers at host A" request a alice
check "alice gets a reply from A" wait_reply a alice
check "A pushes alice to B" wait_for 20 knows b "$uid_alice"
check "bob registers at host B" request b bob
if wait_reply b bob; then
	check "bob's reply from B lists alice (learnt by sync)" \
		test "$(peers_in "$top/keys/bob.key" "$pub_b" "$(newest_reply b bob)")" = "$uid_alice "
else
	not_ok "bob gets a reply from B"
fi
check "B pushes bob to A" wait_for 20 knows a "$uid_bob"
check "alice asks A again" request a alice
if wait_reply a alice; then
	check "alice's reply from A lists bob (learnt by sync)" \
		test "$(peers_in "$top/keys/alice.key" "$pub_a" "$(newest_reply a alice)")" = "$uid_bob "
else
	not_ok "alice gets a second reply"
fi
check "A's news of alice reaches B" wait_for 20 bash -c "test \$('$CTL' -s '$top/b/control.sock' --json stats | grep -o '\"sync_merged\":[0-9]*' | cut -d: -f2) -ge 2"
merged_a=$(stat_of a sync_merged)
merged_b=$(stat_of b sync_merged)
syncs_a=$(stat_of a syncs)
sleep 4
check "pushes settle: nothing merged again ($merged_a/$merged_b, $syncs_a syncs at A)" \
	test "$(stat_of a sync_merged)/$(stat_of b sync_merged)" = "$merged_a/$merged_b"
check "sync mail is consumed by the milters, never delivered" \
	test "$(mailenv_count_mail "$top/a" rdv)/$(mailenv_count_mail "$top/b" rdv)" = "0/0"

# a host restarted with an empty table fills it from its peer
stop_milter b
rm -f /dev/shm/mp-hosts-$$-b
check "B restarts with an empty table" start_milter b
check "B asks A and gets its table (alice and bob)" \
	wait_for 30 bash -c "'$CTL' -s '$top/b/control.sock' show '$uid_alice' && '$CTL' -s '$top/b/control.sock' show '$uid_bob'"

# one host stopped: a member still finds everyone through the other
stop_milter b
"$MPTOOL" request "$top/keys/bob.key" "$pub_b" bob@b.example rdv@b.example bob >"$top/bob-down.mail"
mailenv_send "$top/b" bob@b.example rdv@b.example "$top/bob-down.mail" >/dev/null 2>&1
code=$?
check "with B's milter stopped, B tempfails rendezvous mail (status $code)" test "$code" = 4
check "carol asks A while B is down" request a carol
if wait_reply a carol; then
	check "carol's reply from A lists alice and bob (bob registered at B)" bash -c "
		p=\$('$MPTOOL' open '$top/keys/carol.key' '$pub_a' '$(newest_reply a carol)' | awk '/^peer / {print \$2}' | sort | tr '\n' ' ')
		w=\$(printf '%s\n' '$uid_alice' '$uid_bob' | sort | tr '\n' ' ')
		test \"\$p\" = \"\$w\""
else
	not_ok "carol gets a reply from A"
fi

# ---------------------------------------------------------------- 2. representative
echo "# part 2: a representative host spreads requests over two hosts"
stop_milter a
# behind a representative the hosts answer with its key: members know one host
write_conf a r /mp-hosts-$$-a2 "Peer rdv@r.example $pub_r" "SyncInterval 0"
write_conf b r /mp-hosts-$$-b2 "Peer rdv@r.example $pub_r" "SyncInterval 0"
# R probes its peers every second (an unreachable one bounces)
write_conf r r /mp-hosts-$$-r "Representative yes" "Peer rdv@a.example $pub_r" \
	"Peer rdv@b.example $pub_r" "SyncInterval 1s" "PeerRetry 1h"
start_milter a || not_ok "A restarts"
start_milter b || not_ok "B restarts"
check "representative R starts (Peers A and B)" start_milter r
req_a=$(stat_of a requests)
req_b=$(stat_of b requests)
sent_ok=1
for i in $(seq 30); do request r dave "" r || sent_ok=0; done
check "R accepts 30 requests" test "$sent_ok" = 1
check "dave gets 30 replies (answered by A and B)" wait_replies r dave 30 60
da=$(($(stat_of a requests) - req_a))
db=$(($(stat_of b requests) - req_b))
check "the 30 requests were spread evenly: A answered $da, B $db" test "$da/$db" = "15/15"
check "R counted 30 forwarded and answered none itself" \
	test "$(stat_of r forwarded)/$(stat_of r requests)" = "30/0"
check "forwarded requests kept dave's envelope sender (none refused for it)" \
	test "$(stat_of a drop_sender)/$(stat_of b drop_sender)" = "0/0"
# one request addressed to R and to A at once: R passes it on to B only,
# A answers its own copy: answered once per host, twice in all
req_a=$(stat_of a requests)
req_b=$(stat_of b requests)
"$MPTOOL" request "$top/keys/dave.key" "$pub_r" dave@r.example rdv@r.example dave >"$top/dave-both.mail"
check "dave submits one request to rdv@r.example and rdv@a.example" \
	mailenv_submit "$top/r" dave pw-dave dave@r.example rdv@r.example,rdv@a.example "$top/dave-both.mail"
check "dave gets two replies for it" wait_replies r dave 32 30
check "one from A and one from B (R did not send A a second copy)" \
	test "$(($(stat_of a requests) - req_a))/$(($(stat_of b requests) - req_b))" = "1/1"
# B marked down: everything goes to A
echo "PeerDown rdv@b.example" >>"$top/r/milter.conf"
kill -USR1 "${milter_pid[r]}"
wait_for 10 grep -q 'configuration reloaded' "$top/r/milter.log"
req_a=$(stat_of a requests)
req_b=$(stat_of b requests)
for i in $(seq 4); do request r dave "" r || true; done
check "with B marked down, R sends all 4 to A" wait_replies r dave 36 30
check "A answered 4, B none" test "$(($(stat_of a requests) - req_a))/$(($(stat_of b requests) - req_b))" = "4/0"
# A's MTA goes away (B is no longer marked down): R's probe to A bounces
# back (tried once only here), and R stops sending to A on its own
sed -i '/^PeerDown/d' "$top/r/milter.conf"
kill -USR1 "${milter_pid[r]}"
# (Postfix shows its own bounces to milters only if asked to)
mailenv_postconf "$top/r" 'maximal_queue_lifetime = 0' 'bounce_queue_lifetime = 0' \
	'internal_mail_filter_classes = bounce' >/dev/null 2>&1
mailenv_stop "$top/a" >/dev/null 2>&1
check "R learns from a bounce that A is down" \
	wait_for 30 grep -q 'peer rdv@a.example marked down' "$top/r/milter.log"
req_a=$(stat_of a requests)
req_b=$(stat_of b requests)
for i in $(seq 4); do request r dave "" r || true; done
check "with A's MTA down, R sends all 4 to B" wait_replies r dave 40 30
check "B answered 4, A none" test "$(($(stat_of a requests) - req_a))/$(($(stat_of b requests) - req_b))" = "0/4"
stop_milter r
stop_milter a
stop_milter b

# ---------------------------------------------------------------- 3. Redis
echo "# part 3: an MX cluster sharing a table in Redis"
if ! command -v redis-server >/dev/null; then
	echo "# redis-server not installed: part 3 skipped"
else
	rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	start_redis() {
		redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
			--dir "$top" >"$top/redis.log" 2>&1 &
		redis_pid=$!
		wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$rport"
	}
	check "redis-server starts on 127.0.0.1:$rport" start_redis
	url="redis://127.0.0.1:$rport/0?prefix=mp-hosts-$$"
	write_conf m1 m "$url"
	write_conf m2 m "$url"
	check "MX 1 starts on Redis" start_milter m1
	check "MX 2 starts on Redis" start_milter m2
	# the sequence: who asks, at which MX
	seq_users=(erin frank erin gina hank frank gina erin hank frank)
	run_sequence() { # OUT MX1 MX2: sends the sequence alternately, records peers
		local out=$1 i u e n
		: >"$out"
		for i in "${!seq_users[@]}"; do
			u=${seq_users[$i]}
			if [ $((i % 2)) = 0 ]; then e=$2; else e=$3; fi
			request "$e" "$u" "" m || { echo "send failed" >>"$out"; continue; }
			if wait_reply "$e" "$u"; then
				echo "$u: $(peers_in "$top/keys/$u.key" "$pub_m" "$(newest_reply "$e" "$u")")" >>"$out"
			else
				echo "$u: no reply" >>"$out"
			fi
		done
	}
	run_sequence "$top/answers-redis" m1 m2
	check "every request of the sequence answered through Redis" bash -c "! grep -q 'no reply\|send failed' '$top/answers-redis'"
	check "both MX milters answered some" test "$(stat_of m1 replies)" -gt 0 -a "$(stat_of m2 replies)" -gt 0
	# one milter with a shared-memory table, the same sequence
	stop_milter m2
	stop_milter m1
	write_conf m1 m /mp-hosts-$$-m
	start_milter m1 || not_ok "m1 restarts on shared memory"
	run_sequence "$top/answers-shm" m1 m1
	check "Redis cluster and single shm milter give identical answers" \
		cmp "$top/answers-redis" "$top/answers-shm"
	stop_milter m1

	# Redis goes away mid-run: tempfail, then the retry is answered
	write_conf m1 m "$url"
	write_conf m2 m "$url"
	start_milter m1 || not_ok "m1 restarts on Redis"
	start_milter m2 || not_ok "m2 restarts on Redis"
	kill -9 "$redis_pid"
	wait "$redis_pid" 2>/dev/null
	redis_pid=
	n=$(replies m1 erin)
	"$MPTOOL" request "$top/keys/erin.key" "$pub_m" erin@m.example rdv@m.example erin >"$top/erin-down.mail"
	mailenv_send "$top/m1" erin@m.example rdv@m.example "$top/erin-down.mail" >/dev/null 2>&1
	code=$?
	check "with Redis down the request is tempfailed (status $code)" test "$code" = 4
	check "the milter says why" grep -q 'temporary failure: .*unavailable' "$top/m1/milter.log"
	sleep 1
	check "no reply was sent from a table it could not read" test "$(replies m1 erin)" = "$n"
	check "redis-server back (empty)" start_redis
	sleep 1
	check "the same request, retried, is accepted" \
		mailenv_send "$top/m1" erin@m.example rdv@m.example "$top/erin-down.mail"
	check "and answered" wait_replies m1 erin $((n + 1)) 20
	check "the other MX sees erin in the shared table" wait_for 10 knows m2 "$uid_erin"
	stop_milter m1
	stop_milter m2
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
