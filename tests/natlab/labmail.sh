# labmail.sh - the mail system of the NAT lab: Postfix with
# mailpunch-milter and Dovecot on the lab's public network (lab.sh must be
# up), and agent configurations for users behind the lab's routers.
# Source it from bash after lab.sh and tests/mailenv/mailenv.sh:
#
#   labmail_up DIR MILTER KEYGEN [USERS...]   mail system + rendezvous host
#   labmail_agent_conf DIR USER [LINE...]     DIR/USER/agent.conf
#   labmail_down DIR                          stops Postfix, Dovecot, milter
#
# labmail_up sets LABMAIL_HOST_LINE ("rdv@lab.example mph1...") and
# exports the MAILENV_* variables of the environment (DIR/env/env).  The
# milter runs in the public namespace too: its sendmail reads Postfix's
# main.cf, which names the public address.  Rate limits are off: a test
# run mails far more than one user would.  Functions return non-zero with
# a message on stderr when they fail.

labmail_up() {
	local dir=$1 milter=$2 keygen=$3 u src users
	shift 3
	users=${*:-alice bob carol}
	src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	mkdir -p "$dir/env"
	for u in $users rdv; do
		mailenv_add_user "$dir/env" "$u" "pw-$u" >/dev/null || return 1
	done
	if ! ip netns exec "$NL_PUB" bash -c ". '$src/mailenv/mailenv.sh' && mailenv_start '$dir/env' \
		--domain lab.example --host '$NL_MAIL_ADDR' --milter 'unix:$dir/milter.sock'" >"$dir/mailenv.out" 2>&1; then
		cat "$dir/mailenv.out" >&2
		echo "labmail: the mail system did not start in the lab" >&2
		return 1
	fi
	# shellcheck disable=SC1091
	. "$dir/env/env"
	"$keygen" host "$dir/host.key" >"$dir/host.pub" || return 1
	LABMAIL_HOST_LINE="rdv@lab.example $(awk '/^host-key/ {print $2}' "$dir/host.pub")"
	cat >"$dir/milter.conf" <<CONF
Socket              unix:$dir/milter.sock
SocketMode          0666
RendezvousAddress   rdv@lab.example
HostKey             $dir/host.key
Table               /mp-labmail-$$
ControlSocket       $dir/control.sock
ReplyRateLimit      0
ClientRateLimit     0
LogDestination      $dir/milter.log
LogLevel            info
SendmailCommand     /usr/sbin/sendmail -C $MAILENV_POSTFIX_CONFIG_DIR -i
CONF
	ip netns exec "$NL_PUB" "$milter" -f -c "$dir/milter.conf" 2>"$dir/milter.err" &
	echo $! >"$dir/milter.pid"
	disown "$(cat "$dir/milter.pid")"   # labmail_down ends it; no job-control chatter
	for _ in $(seq 50); do [ -S "$dir/control.sock" ] && return 0; sleep 0.1; done
	echo "labmail: mailpunch-milter did not start: $(tail -n 3 "$dir/milter.err")" >&2
	return 1
}

labmail_agent_conf() {
	local dir=$1 u=$2 line
	shift 2
	mkdir -p "$dir/$u"
	echo "pw-$u" >"$dir/$u/pw"
	chmod 600 "$dir/$u/pw"
	{
		cat <<CONF
Identity            $dir/$u/identity.key
Name                $u
Address             $u@lab.example
Host                $LABMAIL_HOST_LINE
SubmissionHost      $NL_MAIL_ADDR
SubmissionPort      $MAILENV_SUBMISSION_PORT
MailPasswordFile    $dir/$u/pw
IMAPHost            $NL_MAIL_ADDR
IMAPPort            $MAILENV_IMAPS_PORT
PollInterval        1s
CAFile              $MAILENV_CA_FILE
STUNServer          $NL_STUN1:$NL_STUN_PORT
StateDir            $dir/$u/state
LogDestination      $dir/$u/agent.log
LogLevel            info
ReplyTimeout        30s
CONF
		for line in "$@"; do echo "$line"; done
	} >"$dir/$u/agent.conf"
}

labmail_down() {
	local dir=$1 src
	src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	[ -f "$dir/milter.pid" ] && kill "$(cat "$dir/milter.pid")" 2>/dev/null
	ip netns exec "$NL_PUB" bash -c ". '$src/mailenv/mailenv.sh'; mailenv_stop '$dir/env'" >/dev/null 2>&1
	rm -f "/dev/shm/mp-labmail-$$"
	return 0
}
