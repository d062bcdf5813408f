# shellcheck shell=bash
# agentenv.sh - the loopback mail system of the agent tests and benchmarks:
# Postfix with mailpunch-milter and Dovecot (tests/mailenv) on 127.0.0.1,
# the rendezvous host rdv@lab.example, and agent configurations for its
# users.  Source it from bash after tests/mailenv/mailenv.sh:
#
#   agentenv_up DIR MILTER KEYGEN [LINE...]   mail system + rendezvous host
#   agentenv_conf DIR USER [LINE...]          DIR/USER/agent.conf
#   agentenv_down DIR                         stops the milter, Postfix, Dovecot
#
# agentenv_up makes the mailboxes alice, bob, carol and rdv (password
# "pw-USER"), starts the mail system in DIR/env, a host key in
# DIR/host.key, and mailpunch-milter with DIR/milter.conf (LINEs added:
# log level, rate limits, table capacity), its log in DIR/milter.log and
# its stderr in DIR/milter.err.  It sets AGENTENV_HOST_PUB (the host's
# public key), AGENTENV_MILTER_PID, AGENTENV_TABLE (the milter's
# shared-memory table, /mp-agentenv-PID unless set before) and, through
# mailenv_start, the MAILENV_* variables of the environment.
# agentenv_conf writes the settings every user needs (mail over
# loopback, announced address 127.0.0.1, state and log under DIR/USER),
# then the LINEs, which may repeat a setting to override it; the
# password file DIR/USER/pw is written only when missing, so a test may
# change it.  Functions return non-zero with a message on stderr when
# they fail.

agentenv_up() {
	local dir=$1 milter=$2 keygen=$3 u line
	shift 3
	AGENTENV_TABLE=${AGENTENV_TABLE:-/mp-agentenv-$$}
	mkdir -p "$dir/env"
	for u in alice bob carol rdv; do
		mailenv_add_user "$dir/env" "$u" "pw-$u" >/dev/null || return 1
	done
	mailenv_start "$dir/env" --domain lab.example --milter "unix:$dir/milter.sock" >/dev/null || return 1
	"$keygen" host "$dir/host.key" >"$dir/host.pub" || return 1
	AGENTENV_HOST_PUB=$(awk '/^host-key/ {print $2}' "$dir/host.pub")
	{
		cat <<CONF
Socket              unix:$dir/milter.sock
SocketMode          0666
RendezvousAddress   rdv@lab.example
HostKey             $dir/host.key
Table               $AGENTENV_TABLE
ControlSocket       $dir/control.sock
LogDestination      $dir/milter.log
SendmailCommand     /usr/sbin/sendmail -C $MAILENV_POSTFIX_CONFIG_DIR -i
CONF
		for line in "$@"; do echo "$line"; done
	} >"$dir/milter.conf"
	"$milter" -f -c "$dir/milter.conf" 2>"$dir/milter.err" &
	AGENTENV_MILTER_PID=$!
	for _ in $(seq 50); do [ -S "$dir/control.sock" ] && return 0; sleep 0.1; done
	echo "agentenv: mailpunch-milter did not start: $(tail -n 3 "$dir/milter.err")" >&2
	return 1
}

agentenv_conf() {
	local dir=$1 u=$2 line
	shift 2
	mkdir -p "$dir/$u"
	[ -f "$dir/$u/pw" ] || { echo "pw-$u" >"$dir/$u/pw"; chmod 600 "$dir/$u/pw"; }
	{
		cat <<CONF
Identity            $dir/$u/identity.key
Name                $u
Address             $u@lab.example
Host                rdv@lab.example $AGENTENV_HOST_PUB
SubmissionHost      localhost
SubmissionPort      $MAILENV_SUBMISSION_PORT
MailPasswordFile    $dir/$u/pw
IMAPHost            localhost
IMAPPort            $MAILENV_IMAPS_PORT
CAFile              $MAILENV_CA_FILE
AnnounceAddress     127.0.0.1
StateDir            $dir/$u/state
LogDestination      $dir/$u/agent.log
CONF
		for line in "$@"; do echo "$line"; done
	} >"$dir/$u/agent.conf"
}

agentenv_down() {
	local dir=$1
	if [ -n "${AGENTENV_MILTER_PID:-}" ]; then
		kill "$AGENTENV_MILTER_PID" 2>/dev/null
		for _ in $(seq 20); do kill -0 "$AGENTENV_MILTER_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$AGENTENV_MILTER_PID" 2>/dev/null
	fi
	mailenv_stop "$dir/env" >/dev/null 2>&1
	rm -f "/dev/shm${AGENTENV_TABLE:-/mp-agentenv-$$}"
	return 0
}
