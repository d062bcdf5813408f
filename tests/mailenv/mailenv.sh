# shellcheck shell=bash
# tests/mailenv/mailenv.sh -- private Postfix + Dovecot test environments.
#
#   . tests/mailenv/mailenv.sh
#   mailenv_add_user "$dir" alice secret-a
#   mailenv_start "$dir" [--domain lab.example] [--milter unix:/path/sock]
#   ... mailenv_send / mailenv_submit / mailenv_wait_mail ...
#   mailenv_stop "$dir"
#
# Everything (configs, queue, maildirs, CA and certificates, sockets, logs)
# lives under DIR; the daemons listen on 127.0.0.1 only (or on the loopback
# address given with --host), on free high ports that DIR/env exports.
# Needs root and the packages of tests/mailenv/install-deps.  See
# tests/mailenv/README.md for the list of functions and variables.
#
# The functions never call exit, work under the caller's set -euo pipefail
# and do not change its shell options; they return non-zero on failure with
# a message on stderr.  Most run in subshells: only mailenv_start (sources
# DIR/env, exporting MAILENV_* of the environment last started) and
# mailenv_set_milter (MAILENV_MILTER) change the caller's variables.

_MAILENV_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${MAILENV_PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then MAILENV_PYTHON=/usr/bin/python3; else MAILENV_PYTHON=python3; fi
fi
_MAILENV_PORTLOCK=${MAILENV_PORTLOCK:-/tmp/mailenv-ports.lock}

_mailenv_err() { echo "mailenv: $*" >&2; }

# Called first in every subshell-bodied function: the caller may run with
# set -euo pipefail, which these functions are not written for.
_mailenv_sane() {
	set +e +u
	set +o pipefail
}

# Absolute, symlink-free form of a directory path (which must exist).
_mailenv_abs() {
	(cd "$1" 2>/dev/null && pwd -P) || { _mailenv_err "no such directory: $1"; return 1; }
}

# True when PID is a Postfix or Dovecot master process of DIR (its working
# directory, root, command line or MAIL_CONFIG points inside DIR).
_mailenv_pid_belongs() {
	local pid=$1 dir=$2 exe cwd root
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
	case $exe in
	/usr/lib/postfix/sbin/master | /usr/sbin/dovecot) ;;
	*) return 1 ;;
	esac
	cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null)
	root=$(readlink "/proc/$pid/root" 2>/dev/null)
	case $cwd/ in "$dir"/*) return 0 ;; esac
	case $root/ in "$dir"/*) return 0 ;; esac
	if tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/"; then
		return 0
	fi
	if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF -- "MAIL_CONFIG=$dir/postfix"; then
		return 0
	fi
	return 1
}

# Prints the pids of every Postfix/Dovecot process belonging to DIR.
_mailenv_pids() {
	"$MAILENV_PYTHON" "$_MAILENV_HOME/mailenv_client.py" pids "$1"
}

# Pid of a master process from its pid file, if alive and ours.
_mailenv_master_pid() {
	local file=$1 dir=$2 pid
	[ -r "$file" ] || return 1
	pid=$(head -n 1 "$file" 2>/dev/null | tr -dc '0-9')
	[ -n "$pid" ] || return 1
	_mailenv_pid_belongs "$pid" "$dir" || return 1
	echo "$pid"
}

_mailenv_postfix_pid() { _mailenv_master_pid "$1/spool/pid/master.pid" "$1"; }
_mailenv_dovecot_pid() { _mailenv_master_pid "$1/run/master.pid" "$1"; }

# _mailenv_listening HOST PORT... -- true when every port listens on HOST.
_mailenv_listening() {
	local host=$1 out p
	shift
	out=$(ss -Hltn 2>/dev/null) || return 1
	for p in "$@"; do
		grep -qF " $host:$p " <<<"$out" || return 1
	done
	return 0
}

# _mailenv_spawn LOGFILE CMD... -- runs a daemon-starting command with stdin
# from /dev/null, stdout/stderr to LOGFILE and no other inherited file
# descriptor, so the daemons never hold the caller's pipes (a test run as
# "out=$(...)" or under a harness would otherwise wait for them) or locks.
_mailenv_spawn() (
	local log=$1 fd
	shift
	for fd in "/proc/$BASHPID"/fd/*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"
	done
	exec "$@" </dev/null >"$log" 2>&1
)

# Sleeps in small steps until "$@" succeeds or TIMEOUT seconds pass.
_mailenv_poll() {
	local timeout=$1 deadline
	shift
	deadline=$((SECONDS + timeout))
	while :; do
		"$@" && return 0
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

_mailenv_sockets_exist() {
	local s
	for s in "$@"; do [ -S "$s" ] || return 1; done
	return 0
}

_mailenv_dump_logs() {
	local dir=$1 f
	for f in "$dir"/log/*; do
		[ -f "$f" ] || continue
		echo "---- last lines of $f" >&2
		tail -n 25 "$f" >&2
	done
}

# Writes DIR/postfix/recipients(.db) from the users file: the local parts
# that Postfix accepts at RCPT time.  The map is replaced by rename, so the
# running smtpd processes see the change at their next connection.
_mailenv_write_recipients() {
	local dir=$1 tmp
	[ -f "$dir/postfix/main.cf" ] || return 0
	tmp=$dir/postfix/recipients.tmp.$BASHPID
	{
		[ -f "$dir/dovecot/users" ] && cut -d: -f1 "$dir/dovecot/users" | sed '/^$/d; s/$/ OK/'
	} >"$tmp"
	postmap -c "$dir/postfix" "hash:$tmp" || { rm -f "$tmp" "$tmp.db"; return 1; }
	mv -f "$tmp" "$dir/postfix/recipients"
	mv -f "$tmp.db" "$dir/postfix/recipients.db"
}

_mailenv_make_certs() {
	local dir=$1 domain=$2 host=$3 t=$1/tls ips=IP:127.0.0.1
	[ "$host" != 127.0.0.1 ] && ips="$ips,IP:$host"
	[ -s "$t/ca.crt" ] && [ -s "$t/server.crt" ] && [ -s "$t/server.key" ] &&
		grep -qxF "$domain $host" "$t/names" 2>/dev/null && return 0
	mkdir -p "$t" && chmod 755 "$t" || return 1
	(
		cd "$t" || exit 1
		umask 077
		openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
			-keyout ca.key -out ca.crt -subj "/O=mailenv/CN=mailenv test CA" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null &&
			openssl req -newkey rsa:2048 -nodes -sha256 -keyout server.key \
				-out server.csr -subj "/O=mailenv/CN=localhost" 2>/dev/null &&
			printf '%s\n' \
				"basicConstraints=critical,CA:FALSE" \
				"keyUsage=critical,digitalSignature,keyEncipherment" \
				"extendedKeyUsage=serverAuth" \
				"subjectKeyIdentifier=hash" \
				"authorityKeyIdentifier=keyid,issuer" \
				"subjectAltName=DNS:localhost,DNS:mx.$domain,DNS:$domain,DNS:imap.$domain,DNS:smtp.$domain,$ips" \
				>server.ext &&
			openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key \
				-set_serial "0x$(openssl rand -hex 8)" -days 3650 -sha256 \
				-extfile server.ext -out server.crt 2>/dev/null &&
			cat server.crt ca.crt >server-chain.crt &&
			chmod 644 ca.crt server.crt server-chain.crt &&
			echo "$domain $host" >names && chmod 644 names
	) || { _mailenv_err "certificate generation failed"; return 1; }
}

# Postfix programs refuse to read a main.cf modified within the last second
# or so: they sleep in 0.3 s steps until it is older (up to ~2 s per
# command).  Freshly written configs are therefore dated a few seconds back.
_mailenv_backdate() {
	touch -d "@$(($(date +%s) - 5))" "$@"
}

_mailenv_write_postfix_conf() {
	local dir=$1 domain=$2 host=$3 milter=$4 smtp=$5 sub=$6 subs=$7 pf=$1/postfix
	cat >"$pf/main.cf" <<EOF
# Generated by tests/mailenv/mailenv.sh -- private test instance, loopback only.
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
maillog_file = $dir/log/postfix.log
maillog_file_prefixes = $dir/log
mail_owner = postfix
setgid_group = postdrop

myhostname = mx.$domain
mydomain = $domain
myorigin = \$mydomain
mydestination = \$mydomain, localhost
# Postfix only accepts interface addresses here (lo has 127.0.0.1/8); the
# listeners in master.cf bind to the chosen loopback address explicitly.
inet_interfaces = 127.0.0.1$([ "${host#127.}" = "$host" ] && echo ", $host")
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = \$myhostname ESMTP mailenv
biff = no
append_dot_mydomain = no
readme_directory = no
alias_maps =
alias_database =
recipient_delimiter = +
disable_vrfy_command = yes
# The MTA port acts like an inbound MX: mail from it is "remote" and left as
# sent (no added Date/Message-ID, no address rewriting), although the client
# is on 127.0.0.1.  Authenticated submissions get the usual MSA fix-ups.
local_header_rewrite_clients = permit_sasl_authenticated
message_size_limit = 52428800

# Nothing ever leaves: mail for other domains is refused (smtpd rejects
# recipients whose transport is "error"), except for domains routed to
# another loopback test environment with mailenv_route (transport map).
relayhost =
default_transport = error:mailenv test environment does not relay
relay_transport = error:mailenv test environment does not relay
transport_maps = hash:$pf/transport
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtp_tls_security_level = none
smtp_dns_support_level = disabled

# Local-domain mail goes to Dovecot over LMTP; unknown users are refused
# at RCPT time (map rewritten by mailenv_add_user).
local_transport = lmtp:unix:$dir/run/lmtp
local_recipient_maps = hash:$pf/recipients
lmtp_destination_recipient_limit = 50

# Short retry cycle for tests.
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 10s
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
delay_warning_time = 0h

# TLS (server certificate signed by the environment's own CA).
smtpd_tls_chain_files = $dir/tls/server.key, $dir/tls/server-chain.crt
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_protocols = >=TLSv1.2
tls_random_source = dev:/dev/urandom

# SASL through Dovecot's auth socket (enabled on the submission ports only).
smtpd_sasl_type = dovecot
smtpd_sasl_path = $dir/run/auth-postfix
smtpd_sasl_auth_enable = no
smtpd_sasl_authenticated_header = yes
smtpd_sasl_security_options = noanonymous
smtpd_tls_auth_only = yes

# Milters (mailenv_set_milter changes these).
smtpd_milters = $milter
non_smtpd_milters = $milter
milter_default_action = tempfail
milter_protocol = 6
milter_connect_timeout = 10s
milter_command_timeout = 20s
milter_content_timeout = 60s
milter_macro_daemon_name = \$myhostname
EOF
	cat >"$pf/master.cf" <<EOF
# Generated by tests/mailenv/mailenv.sh.  Nothing runs chrooted.
# service type  private unpriv  chroot  wakeup  maxproc command + args
$host:$smtp inet n  -       n       -       -       smtpd
  -o syslog_name=postfix/mta
$host:$sub inet n   -       n       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o milter_macro_daemon_name=ORIGINATING
$host:$subs inet n  -       n       -       -       smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o milter_macro_daemon_name=ORIGINATING
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	_mailenv_backdate "$pf/main.cf" "$pf/master.cf"
}

_mailenv_write_dovecot_conf() {
	local dir=$1 domain=$2 host=$3 imap=$4 imaps=$5 pop3=$6 pop3s=$7 dh=
	[ -r /usr/share/dovecot/dh.pem ] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
	cat >"$dir/dovecot/dovecot.conf" <<EOF
# Generated by tests/mailenv/mailenv.sh -- private test instance, loopback only.
instance_name = mailenv-$(basename "$dir")
base_dir = $dir/run
state_dir = $dir/dovecot/state
log_path = $dir/log/dovecot.log
info_log_path = $dir/log/dovecot.log
debug_log_path = $dir/log/dovecot.log
auth_verbose = yes
# Failed logins: a short fixed delay, and no per-IP "auth penalty" (every
# test client comes from 127.0.0.1: one wrong-password test would otherwise
# slow every later login of the run by up to 15 s).
auth_failure_delay = 1 secs
verbose_proctitle = yes

protocols = imap pop3 lmtp
listen = $host
shutdown_clients = yes

ssl = required
ssl_cert = <$dir/tls/server-chain.crt
ssl_key = <$dir/tls/server.key
ssl_min_protocol = TLSv1.2
$dh
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_username_format = %Lu
recipient_delimiter = +

first_valid_uid = 1
first_valid_gid = 1
mail_uid = mail
mail_gid = mail
mail_location = maildir:~/Maildir
postmaster_address = postmaster@$domain
hostname = mx.$domain

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Ln $dir/dovecot/users
}
userdb {
  driver = passwd-file
  args = username_format=%Ln $dir/dovecot/users
  override_fields = uid=mail gid=mail home=$dir/mail/%Ln
}

namespace inbox {
  inbox = yes
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
}

service imap-login {
  inet_listener imap {
    address = $host
    port = $imap
  }
  inet_listener imaps {
    address = $host
    port = $imaps
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    address = $host
    port = $pop3
  }
  inet_listener pop3s {
    address = $host
    port = $pop3s
    ssl = yes
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}
protocol lmtp {
  mail_plugins =
}
protocol imap {
  imap_idle_notify_interval = 2 mins
}
EOF
}

# Writes DIR/env from the values given as NAME=VALUE arguments.
_mailenv_write_env() {
	local dir=$1 kv
	shift
	{
		echo "# Generated by tests/mailenv/mailenv.sh; source it."
		for kv in "$@"; do
			printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
		done
	} >"$dir/env.tmp" && mv -f "$dir/env.tmp" "$dir/env"
}

_mailenv_start_impl() (
	_mailenv_sane
	umask 022
	local dir='' domain=lab.example milter='' host=127.0.0.1 a
	while [ $# -gt 0 ]; do
		case $1 in
		--milter) milter=${2?--milter needs a value}; shift 2 ;;
		--milter=*) milter=${1#*=}; shift ;;
		--domain) domain=${2?--domain needs a value}; shift 2 ;;
		--domain=*) domain=${1#*=}; shift ;;
		--host) host=${2?--host needs a value}; shift 2 ;;
		--host=*) host=${1#*=}; shift ;;
		-*) _mailenv_err "mailenv_start: unknown option $1"; return 2 ;;
		*)
			[ -z "$dir" ] || { _mailenv_err "mailenv_start: extra argument $1"; return 2; }
			dir=$1; shift ;;
		esac
	done
	[ -n "$dir" ] || { _mailenv_err "usage: mailenv_start DIR [--domain D] [--host 127.X.Y.Z|198.18.X.Y] [--milter SOCKSPEC]"; return 2; }
	# 198.18.0.0/15 (RFC 2544 test labs): only inside a network namespace
	# of a test's own, like the NAT lab's public network (tests/natlab)
	if ! [[ $host =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ || $host =~ ^198\.1[89]\.[0-9]{1,3}\.[0-9]{1,3}$ ]]; then
		_mailenv_err "--host must be a loopback address 127.x.y.z (or a lab address 198.18-19.x.y in a namespace): $host"
		return 2
	fi
	[ "$(id -u)" -eq 0 ] || { _mailenv_err "must run as root"; return 1; }
	for a in postfix postconf postmap postqueue dovecot openssl ss "$MAILENV_PYTHON"; do
		command -v "$a" >/dev/null 2>&1 || { _mailenv_err "$a not found: run tests/mailenv/install-deps"; return 1; }
	done
	[ -x /usr/lib/dovecot/lmtp ] || { _mailenv_err "dovecot-lmtpd missing: run tests/mailenv/install-deps"; return 1; }
	case $domain in *[!A-Za-z0-9.-]* | '' | .* | *.) _mailenv_err "bad domain: $domain"; return 2 ;; esac

	mkdir -p "$dir" || return 1
	dir=$(_mailenv_abs "$dir") || return 1
	case $dir in / | *[[:space:]]* | *[,=\"\'\\]*) _mailenv_err "unusable directory name: $dir"; return 1 ;; esac
	# Unix socket paths (sun_path) hold 107 bytes; Dovecot nests a few levels.
	if [ ${#dir} -gt 70 ]; then
		_mailenv_err "directory path too long for unix sockets (${#dir} > 70): $dir"
		return 1
	fi
	# The postfix, dovecot and mail users must be able to reach DIR.
	chmod 755 "$dir" || return 1
	a=$dir
	while [ "$a" != / ]; do
		a=$(dirname "$a")
		if [ "$(( 0$(stat -c %a "$a") & 1 ))" -eq 0 ]; then
			_mailenv_err "$a is not searchable by other users (mode $(stat -c %a "$a")): choose a DIR elsewhere (e.g. under /tmp)"
			return 1
		fi
	done

	# A previous run's leftovers: stop whatever still runs there.
	_mailenv_stop_impl "$dir" || return 1

	mkdir -p "$dir/postfix" "$dir/spool" "$dir/data" "$dir/dovecot/state" \
		"$dir/run" "$dir/mail" "$dir/log" || return 1
	chown root:root "$dir/spool" && chmod 755 "$dir/spool" || return 1
	chown postfix:postfix "$dir/data" || return 1
	chown mail:mail "$dir/mail" && chmod 755 "$dir/mail" || return 1
	chmod 755 "$dir/log" "$dir/run" "$dir/postfix" "$dir/dovecot" || return 1
	[ -e "$dir/dovecot/users" ] || : >"$dir/dovecot/users"
	chown root:dovecot "$dir/dovecot/users" && chmod 640 "$dir/dovecot/users" || return 1
	rm -f "$dir/env" "$dir/run/master.pid"

	_mailenv_make_certs "$dir" "$domain" "$host" || return 1

	# Ports: chosen and bound under one machine-wide lock, so that concurrent
	# mailenv_start calls cannot pick the same ones.
	local lockfd
	exec {lockfd}>>"$_MAILENV_PORTLOCK" || return 1
	flock -w 120 "$lockfd" || { _mailenv_err "cannot lock $_MAILENV_PORTLOCK"; return 1; }
	local ports
	ports=$("$MAILENV_PYTHON" "$_MAILENV_HOME/mailenv_client.py" ports 7 "$host") || return 1
	# shellcheck disable=SC2086
	set -- $ports
	local smtp=$1 sub=$2 subs=$3 imap=$4 imaps=$5 pop3=$6 pop3s=$7

	_mailenv_write_postfix_conf "$dir" "$domain" "$host" "$milter" "$smtp" "$sub" "$subs" || return 1
	_mailenv_write_dovecot_conf "$dir" "$domain" "$host" "$imap" "$imaps" "$pop3" "$pop3s" || return 1
	_mailenv_write_recipients "$dir" || return 1
	[ -f "$dir/postfix/transport" ] || : >"$dir/postfix/transport"
	postmap -c "$dir/postfix" "hash:$dir/postfix/transport" || return 1

	# Dovecot first: Postfix needs its LMTP and auth sockets.
	if ! _mailenv_spawn "$dir/log/dovecot-start.out" dovecot -c "$dir/dovecot/dovecot.conf"; then
		_mailenv_err "dovecot failed to start:"
		cat "$dir/log/dovecot-start.out" >&2
		_mailenv_dump_logs "$dir"
		_mailenv_stop_impl "$dir"
		return 1
	fi
	if ! _mailenv_poll 20 _mailenv_listening "$host" "$imap" "$imaps" "$pop3" "$pop3s" ||
		! _mailenv_poll 20 _mailenv_sockets_exist "$dir/run/lmtp" "$dir/run/auth-postfix"; then
		_mailenv_err "dovecot did not come up"
		_mailenv_dump_logs "$dir"
		_mailenv_stop_impl "$dir"
		return 1
	fi

	if ! _mailenv_spawn "$dir/log/postfix-start.out" postfix -c "$dir/postfix" start; then
		_mailenv_err "postfix failed to start:"
		cat "$dir/log/postfix-start.out" >&2
		_mailenv_dump_logs "$dir"
		_mailenv_stop_impl "$dir"
		return 1
	fi
	if ! _mailenv_poll 20 _mailenv_listening "$host" "$smtp" "$sub" "$subs"; then
		_mailenv_err "postfix did not come up"
		_mailenv_dump_logs "$dir"
		_mailenv_stop_impl "$dir"
		return 1
	fi
	flock -u "$lockfd"
	exec {lockfd}>&-

	_mailenv_write_env "$dir" \
		MAILENV_DIR="$dir" \
		MAILENV_DOMAIN="$domain" \
		MAILENV_HOST="$host" \
		MAILENV_TLS_NAME=localhost \
		MAILENV_SMTP_PORT="$smtp" \
		MAILENV_SUBMISSION_PORT="$sub" \
		MAILENV_SUBMISSIONS_PORT="$subs" \
		MAILENV_IMAP_PORT="$imap" \
		MAILENV_IMAPS_PORT="$imaps" \
		MAILENV_POP3_PORT="$pop3" \
		MAILENV_POP3S_PORT="$pop3s" \
		MAILENV_CA_FILE="$dir/tls/ca.crt" \
		MAILENV_CA_KEY="$dir/tls/ca.key" \
		MAILENV_SERVER_CERT="$dir/tls/server.crt" \
		MAILENV_SERVER_KEY="$dir/tls/server.key" \
		MAILENV_POSTFIX_CONFIG_DIR="$dir/postfix" \
		MAILENV_POSTFIX_QUEUE_DIR="$dir/spool" \
		MAILENV_POSTFIX_LOG="$dir/log/postfix.log" \
		MAILENV_DOVECOT_CONFIG="$dir/dovecot/dovecot.conf" \
		MAILENV_DOVECOT_LOG="$dir/log/dovecot.log" \
		MAILENV_USERS_FILE="$dir/dovecot/users" \
		MAILENV_MAIL_ROOT="$dir/mail" \
		MAILENV_LMTP_SOCKET="$dir/run/lmtp" \
		MAILENV_AUTH_SOCKET="$dir/run/auth-postfix" \
		MAILENV_MILTER="$milter"
)

# mailenv_start DIR [--domain D] [--host 127.X.Y.Z] [--milter SOCKSPEC]
# Creates (or re-creates) the environment under DIR and starts it; also
# sources DIR/env into the calling shell.  Users and mail already under DIR
# are kept; configs and ports are new on every start.
mailenv_start() {
	local _me_dir='' _me_skip=''
	_mailenv_start_impl "$@" || return 1
	for _me_dir in "$@"; do
		if [ -n "$_me_skip" ]; then _me_skip=''; continue; fi
		case $_me_dir in
		--milter | --domain | --host) _me_skip=1 ;;
		-*) ;;
		*)
			# shellcheck disable=SC1091
			. "$_me_dir/env" || return 1
			return 0
			;;
		esac
	done
	return 0
}

_mailenv_stop_impl() (
	_mailenv_sane
	local dir=$1 pid masters='' pids i
	[ -d "$dir" ] || return 0
	dir=$(_mailenv_abs "$dir") || return 1
	pid=$(_mailenv_postfix_pid "$dir") && masters="$masters $pid"
	pid=$(_mailenv_dovecot_pid "$dir") && masters="$masters $pid"
	if [ -n "$masters" ]; then
		# What "postfix stop" and "dovecot stop" do, without their 1 s sleeps:
		# SIGTERM to each master, which takes its children along.
		# shellcheck disable=SC2086
		kill -TERM $masters 2>/dev/null
		for i in $(seq 1 100); do
			pids=
			for pid in $masters; do
				[ -e "/proc/$pid/exe" ] && [ -n "$(readlink "/proc/$pid/exe" 2>/dev/null)" ] && pids="$pids $pid"
			done
			[ -z "$pids" ] && break
			sleep 0.05
		done
	fi
	# Children and anything left by an earlier run: up to 10 s, TERM after
	# 1 s, KILL after 5 s.
	for i in $(seq 1 50); do
		pids=$(_mailenv_pids "$dir")
		[ -z "$pids" ] && break
		# shellcheck disable=SC2086
		case $i in
		6) kill -TERM $pids 2>/dev/null ;;
		26) kill -KILL $pids 2>/dev/null ;;
		esac
		sleep 0.2
	done
	pids=$(_mailenv_pids "$dir")
	if [ -n "$pids" ]; then
		_mailenv_err "processes of $dir still running: $pids"
		return 1
	fi
	rm -f "$dir/run/master.pid"
	return 0
)

# mailenv_stop DIR -- stops both daemons and any leftover process of DIR.
# Idempotent; returns non-zero only if something could not be stopped.
mailenv_stop() (
	_mailenv_sane
	[ $# -eq 1 ] || { _mailenv_err "usage: mailenv_stop DIR"; return 2; }
	_mailenv_stop_impl "$1"
)

# mailenv_running DIR -- true when both Postfix and Dovecot of DIR run.
mailenv_running() (
	_mailenv_sane
	local dir
	dir=$(_mailenv_abs "$1" 2>/dev/null) || return 1
	_mailenv_postfix_pid "$dir" >/dev/null && _mailenv_dovecot_pid "$dir" >/dev/null
)

# mailenv_pids DIR -- prints the pids of all processes of the environment.
mailenv_pids() (
	_mailenv_sane
	local dir
	dir=$(_mailenv_abs "$1" 2>/dev/null) || return 0
	_mailenv_pids "$dir"
)

# mailenv_add_user DIR NAME PASSWORD -- adds or updates a mailbox user
# (NAME@domain); usable before or after mailenv_start.
mailenv_add_user() (
	_mailenv_sane
	local dir=$1 name=$2 pw=$3 users tmp old now
	[ $# -eq 3 ] || { _mailenv_err "usage: mailenv_add_user DIR NAME PASSWORD"; return 2; }
	case $name in '' | *[!a-z0-9._-]*) _mailenv_err "bad user name (use [a-z0-9._-]): $name"; return 2 ;; esac
	case $pw in '' | *:* | *$'\n'*) _mailenv_err "password must be non-empty, without ':' or newline"; return 2 ;; esac
	umask 022
	mkdir -p "$dir/dovecot" || return 1
	dir=$(_mailenv_abs "$dir") || return 1
	users=$dir/dovecot/users
	tmp=$users.tmp.$BASHPID
	{
		[ -f "$users" ] && awk -F: -v n="$name" '$1 != n' "$users"
		printf '%s:{PLAIN}%s::::::\n' "$name" "$pw"
	} >"$tmp" || return 1
	chown root:dovecot "$tmp" 2>/dev/null
	chmod 640 "$tmp"
	# Dovecot re-reads the file when its mtime/size change: make sure the
	# mtime moves even within the same second.
	now=$(date +%s)
	old=$(stat -c %Y "$users" 2>/dev/null || echo 0)
	[ "$old" -ge "$now" ] && touch -d "@$((old + 1))" "$tmp"
	mv -f "$tmp" "$users" || return 1
	_mailenv_write_recipients "$dir"
)

# mailenv_send DIR FROM TO FILE -- plain SMTP to the MTA port (like port 25).
# Prints the DATA reply ("250 2.0.0 Ok: queued as ID").  Exit 0 accepted,
# 4 on a 4xx reply (e.g. milter tempfail), 5 on 5xx, 1 on other failures.
mailenv_send() (
	_mailenv_sane
	[ $# -eq 4 ] || { _mailenv_err "usage: mailenv_send DIR FROM TO FILE"; return 2; }
	# shellcheck disable=SC1091
	. "$1/env" || return 1
	"$MAILENV_PYTHON" "$_MAILENV_HOME/mailenv_client.py" send "$MAILENV_SMTP_PORT" "$2" "$3" "$4"
)

# mailenv_submit DIR USER PASSWORD FROM TO FILE [starttls|tls]
# Authenticated submission (AUTH PLAIN) on the submission port with STARTTLS
# (default) or on the implicit-TLS port ("tls"); certificate verified
# against the environment's CA.  Same output and status as mailenv_send.
mailenv_submit() (
	_mailenv_sane
	[ $# -eq 6 ] || [ $# -eq 7 ] || {
		_mailenv_err "usage: mailenv_submit DIR USER PASSWORD FROM TO FILE [starttls|tls]"
		return 2
	}
	local mode=${7:-starttls} port
	# shellcheck disable=SC1091
	. "$1/env" || return 1
	case $mode in
	starttls) port=$MAILENV_SUBMISSION_PORT ;;
	tls) port=$MAILENV_SUBMISSIONS_PORT ;;
	*) _mailenv_err "mode must be starttls or tls"; return 2 ;;
	esac
	"$MAILENV_PYTHON" "$_MAILENV_HOME/mailenv_client.py" submit "$mode" "$port" \
		"$2" "$3" "$MAILENV_CA_FILE" "$4" "$5" "$6"
)

# mailenv_sendmail DIR FROM TO FILE -- local (non-SMTP) submission with
# Postfix's sendmail command (postdrop -> pickup -> cleanup), the path that
# non_smtpd_milters see.  TO may hold several addresses separated by commas.
mailenv_sendmail() (
	_mailenv_sane
	[ $# -eq 4 ] || { _mailenv_err "usage: mailenv_sendmail DIR FROM TO FILE"; return 2; }
	local rcpts
	IFS=', ' read -r -a rcpts <<<"$3"
	sendmail -C "$1/postfix" -i -f "$2" -- "${rcpts[@]}" <"$4"
)

# mailenv_maildir DIR USER -- prints the path of USER's Maildir.
mailenv_maildir() (
	_mailenv_sane
	echo "$1/mail/$2/Maildir"
)

# mailenv_wait_mail DIR USER PATTERN TIMEOUT -- waits until a message in
# USER's INBOX (Maildir new/ or cur/) matches the extended regular
# expression PATTERN (grep -E); prints the path of the first (oldest) match.
# Returns 1 after TIMEOUT seconds without a match.
mailenv_wait_mail() (
	_mailenv_sane
	[ $# -eq 4 ] || { _mailenv_err "usage: mailenv_wait_mail DIR USER PATTERN TIMEOUT"; return 2; }
	local md=$1/mail/$2/Maildir pattern=$3 deadline f
	deadline=$((SECONDS + $4))
	while :; do
		if [ -d "$md" ]; then
			# oldest first (delivery time; moving new/ -> cur/ keeps the mtime)
			while IFS= read -r f; do
				# a message may move from new/ to cur/ under us: re-check existence
				if grep -qE -- "$pattern" "$f" 2>/dev/null; then
					[ -e "$f" ] && { echo "$f"; return 0; }
				fi
			done < <(find "$md/new" "$md/cur" -maxdepth 1 -type f -printf '%T@ %f\t%p\n' 2>/dev/null |
				sort -n | cut -f2-)
		fi
		[ "$SECONDS" -ge "$deadline" ] && break
		sleep 0.2
	done
	_mailenv_err "no message matching /$pattern/ for $2 within $4 s"
	return 1
)

# mailenv_count_mail DIR USER -- number of messages in USER's INBOX.
mailenv_count_mail() (
	_mailenv_sane
	local md=$1/mail/$2/Maildir
	find "$md/new" "$md/cur" -maxdepth 1 -type f 2>/dev/null | wc -l
)

# mailenv_flush DIR -- asks Postfix to retry deferred mail now.
mailenv_flush() (
	_mailenv_sane
	postqueue -c "$1/postfix" -f
)

# mailenv_queue_count DIR -- messages in Postfix's queues (incl. hold).
mailenv_queue_count() (
	_mailenv_sane
	local q=$1/spool
	find "$q/maildrop" "$q/incoming" "$q/active" "$q/deferred" "$q/hold" \
		-type f 2>/dev/null | wc -l
)

# mailenv_queue_empty DIR -- true when no message is queued.
mailenv_queue_empty() (
	_mailenv_sane
	[ "$(mailenv_queue_count "$1")" -eq 0 ]
)

# mailenv_wait_queue_empty DIR TIMEOUT
mailenv_wait_queue_empty() (
	_mailenv_sane
	[ $# -eq 2 ] || { _mailenv_err "usage: mailenv_wait_queue_empty DIR TIMEOUT"; return 2; }
	_mailenv_poll "$2" mailenv_queue_empty "$1" && return 0
	_mailenv_err "queue of $1 not empty after $2 s:"
	postqueue -c "$1/postfix" -p >&2 2>/dev/null
	return 1
)

# mailenv_reload_postfix DIR -- "postfix reload", then waits until every
# Postfix process that predates the reload has gone, so that the next
# connection is served with the new configuration.
mailenv_reload_postfix() (
	_mailenv_sane
	local dir master old p i
	dir=$(_mailenv_abs "$1") || return 1
	master=$(_mailenv_postfix_pid "$dir") || { _mailenv_err "postfix of $dir is not running"; return 1; }
	old=$(ps -o pid= --ppid "$master" 2>/dev/null)
	_mailenv_spawn "$dir/log/postfix-reload.out" postfix -c "$dir/postfix" reload || {
		_mailenv_err "postfix reload failed"; tail -n 5 "$dir/log/postfix-reload.out" >&2; return 1; }
	for i in $(seq 1 100); do
		local alive=
		for p in $old; do
			[ -d "/proc/$p" ] && [ "$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')" = "$master" ] && alive="$alive $p"
		done
		[ -z "$alive" ] && return 0
		sleep 0.1
	done
	_mailenv_err "warning: postfix processes$alive still busy after reload"
	return 0
)

# mailenv_postconf DIR 'name = value' ... -- changes main.cf settings
# (postconf -e) and reloads a running Postfix.
mailenv_postconf() (
	_mailenv_sane
	local dir=$1
	shift
	postconf -c "$dir/postfix" -e "$@" || return 1
	_mailenv_backdate "$dir/postfix/main.cf"
	if mailenv_running "$dir"; then mailenv_reload_postfix "$dir" || return 1; fi
	return 0
)

# mailenv_set_milter DIR SOCKSPEC -- sets smtpd_milters and non_smtpd_milters
# to SOCKSPEC (Postfix syntax: unix:/path or inet:127.0.0.1:PORT; "" removes
# the milter) and reloads a running Postfix.
mailenv_set_milter() {
	[ $# -eq 2 ] || { _mailenv_err "usage: mailenv_set_milter DIR SOCKSPEC"; return 2; }
	mailenv_postconf "$1" "smtpd_milters = $2" "non_smtpd_milters = $2" \
		"milter_default_action = tempfail" || return 1
	if [ -f "$1/env" ]; then
		sed -i "/^export MAILENV_MILTER=/d" "$1/env" &&
			printf 'export MAILENV_MILTER=%q\n' "$2" >>"$1/env"
	fi
	[ "${MAILENV_DIR:-}" = "$(_mailenv_abs "$1")" ] && export MAILENV_MILTER="$2"
	return 0
}

# mailenv_route DIR DOMAIN HOST PORT -- mail that DIR's Postfix accepts for
# DOMAIN (from authenticated users, or sendmail) is relayed with plain SMTP
# to HOST:PORT, which must be a loopback address: typically the MTA port of
# a second environment.  An empty HOST removes the route.  Reloads Postfix.
mailenv_route() (
	_mailenv_sane
	[ $# -eq 4 ] || [ $# -eq 2 ] || { _mailenv_err "usage: mailenv_route DIR DOMAIN HOST PORT"; return 2; }
	local dir=$1 domain=$2 host=${3:-} port=${4:-} map tmp
	case $domain in '' | *[!A-Za-z0-9.-]*) _mailenv_err "bad domain: $domain"; return 2 ;; esac
	if [ -n "$host" ] && ! [[ $host =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ && $port =~ ^[0-9]+$ ]]; then
		_mailenv_err "route target must be a loopback address and a port: $host $port"
		return 2
	fi
	map=$dir/postfix/transport
	tmp=$map.tmp.$BASHPID
	{
		[ -f "$map" ] && awk -v d="$domain" '$1 != d' "$map"
		[ -n "$host" ] && printf '%s smtp:[%s]:%s\n' "$domain" "$host" "$port"
	} >"$tmp"
	postmap -c "$dir/postfix" "hash:$tmp" || { rm -f "$tmp" "$tmp.db"; return 1; }
	mv -f "$tmp" "$map" && mv -f "$tmp.db" "$map.db" || return 1
	if mailenv_running "$dir"; then mailenv_reload_postfix "$dir" || return 1; fi
	return 0
)

# mailenv_logs DIR -- prints the tail of every log of the environment.
mailenv_logs() (
	_mailenv_sane
	_mailenv_dump_logs "$1" 2>&1
)
