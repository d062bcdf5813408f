/*
 * smtp_probe.c - command-line wrapper around agent/smtp_client.c for
 * tests/agent/test_smtp.sh.
 *
 * Usage: smtp_probe --host H --port P --starttls|--tls
 *                   [--user U --password-file F] [--ca FILE] [--insecure]
 *                   [--helo NAME] [--timeout S] [--dns] [--dns-server A:P]
 *                   [--cancel-after MS] --from A --to B [--to C ...] MAILFILE
 * Sends MAILFILE as one mail and prints "STATUS detail" (STATUS as
 * agent_smtp_status_name() spells it); the exit code is the status
 * (0 = delivered to the server), 64 for a usage error, 70 when the job
 * could not even start.  The password is read from a file (first line)
 * so it never shows in ps.  --dns resolves host names with evdns
 * (/etc/hosts, then the name server --dns-server names, none by
 * default, so no query ever leaves loopback) instead of the blocking
 * system resolver.  --cancel-after cancels the job after MS ms, prints
 * "CANCELLED" and exits 10.  Log lines (debug level, the protocol
 * transcript without credentials) go to stderr.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "mailpunch/error.h"
#include "mailpunch/log.h"
#include "smtp_client.h"

#define EX_CANCELLED 10
#define EX_USAGE_ 64
#define EX_SOFTWARE_ 70
#define MAIL_FILE_MAX (AGENT_SMTP_MAIL_MAX + 1)

static int result = -1;
static agent_smtp_job *job;

/* An evdns base keeps a socket event, so the loop must be told to end. */
static void
done(agent_smtp_status st, const char *detail, void *arg)
{
	event_base_loopexit(arg, NULL);
	job = NULL;
	printf("%s %s\n", agent_smtp_status_name(st), detail);
	fflush(stdout);
	result = (int)st;
}

/* One more loop pass lets a cancelled DNS query release the job. */
static void
cancel_now(evutil_socket_t fd, short what, void *arg)
{
	struct timeval settle = { 0, 200000 };

	(void)fd;
	(void)what;
	if (!job)
		return;
	agent_smtp_cancel(job);
	job = NULL;
	printf("CANCELLED\n");
	result = EX_CANCELLED;
	event_base_loopexit(arg, &settle);
}

static char *
read_file(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	if (!(buf = malloc(max + 1))) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max, f);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void
usage(void)
{
	fprintf(stderr, "usage: smtp_probe --host H --port P --starttls|--tls "
	        "[--user U --password-file F] [--ca FILE] [--insecure] [--helo NAME] "
	        "[--timeout S] [--dns] [--dns-server A:P] [--cancel-after MS] --from A --to B [--to C ...] MAILFILE\n");
	exit(EX_USAGE_);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "starttls", no_argument, NULL, 's' },
		{ "tls", no_argument, NULL, 't' },
		{ "user", required_argument, NULL, 'u' },
		{ "password-file", required_argument, NULL, 'P' },
		{ "ca", required_argument, NULL, 'c' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "helo", required_argument, NULL, 'e' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "dns", no_argument, NULL, 'd' },
		{ "dns-server", required_argument, NULL, 'D' },
		{ "cancel-after", required_argument, NULL, 'C' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	agent_smtp_account acct;
	const char *rcpts[AGENT_SMTP_RCPT_MAX + 1];
	const char *from = NULL, *pwfile = NULL, *dns_server = NULL;
	struct event *canceller = NULL;
	long cancel_ms = -1;
	char *password = NULL, *mail;
	size_t nrcpts = 0, len, pwlen;
	struct event_base *base;
	struct evdns_base *dns = NULL;
	int c, mode = -1, use_dns = 0, rc;

	memset(&acct, 0, sizeof acct);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'h': acct.host = optarg; break;
		case 'p': acct.port = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': mode = AGENT_SMTP_STARTTLS; break;
		case 't': mode = AGENT_SMTP_TLS; break;
		case 'u': acct.user = optarg; break;
		case 'P': pwfile = optarg; break;
		case 'c': acct.ca_file = optarg; break;
		case 'k': acct.tls_insecure_skip_verify = 1; break;
		case 'e': acct.helo_name = optarg; break;
		case 'T': acct.timeout_s = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'd': use_dns = 1; break;
		case 'D': use_dns = 1; dns_server = optarg; break;
		case 'C': cancel_ms = strtol(optarg, NULL, 10); break;
		case 'f': from = optarg; break;
		case 'r':
			if (nrcpts == AGENT_SMTP_RCPT_MAX + 1)
				usage();
			rcpts[nrcpts++] = optarg;
			break;
		default: usage();
		}
	}
	if (optind != argc - 1 || !acct.host || mode < 0 || !from || nrcpts == 0 ||
	    (acct.user && !pwfile))
		usage();
	acct.security = (agent_smtp_security)mode;
	if (pwfile) {
		if (!(password = read_file(pwfile, 1024, &pwlen))) {
			perror(pwfile);
			return EX_USAGE_;
		}
		password[strcspn(password, "\r\n")] = '\0';
		acct.password = password;
	}
	if (!(mail = read_file(argv[optind], MAIL_FILE_MAX, &len))) {
		perror(argv[optind]);
		return EX_USAGE_;
	}
	signal(SIGPIPE, SIG_IGN);
	mp_log_open("stderr", "smtp_probe", MP_LOG_DEBUG);
	if (!(base = event_base_new()))
		return EX_SOFTWARE_;
	if (use_dns) {
		if (!(dns = evdns_base_new(base, 0)) || evdns_base_load_hosts(dns, NULL) != 0 ||
		    (dns_server && evdns_base_nameserver_ip_add(dns, dns_server) != 0))
			return EX_SOFTWARE_;
	}
	rc = agent_smtp_send(base, dns, &acct, from, rcpts, nrcpts, mail, len, done, base, &job);
	if (rc == MP_OK && cancel_ms >= 0) {
		struct timeval tv = { cancel_ms / 1000, (cancel_ms % 1000) * 1000 };

		if (!(canceller = evtimer_new(base, cancel_now, base)) || evtimer_add(canceller, &tv) != 0)
			return EX_SOFTWARE_;
	}
	free(mail);
	if (password) {
		memset(password, 0, strlen(password));
		free(password);
	}
	if (rc != MP_OK) {
		printf("NOT_STARTED %s\n", mp_strerror(rc));
		result = EX_SOFTWARE_;
	} else {
		event_base_dispatch(base);
	}
	if (canceller)
		event_free(canceller);
	if (dns)
		evdns_base_free(dns, 0);
	event_base_free(base);
	mp_log_close();
	if (result < 0) {
		printf("NO_CALLBACK event loop ended without a result\n");
		return EX_SOFTWARE_;
	}
	return result;
}
