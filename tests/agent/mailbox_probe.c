/*
 * mailbox_probe.c - a command-line watcher around agent/mailbox.h, for
 * tests/agent/test_mailbox.sh.
 *
 *   mailbox_probe --imap|--pop3 --host H --port P --user U
 *                 (--password PW | --password-file F) [--starttls]
 *                 [--ca-file F | --insecure] [--tls-name N] [--folder F]
 *                 [--move-to F] [--marker M] [--keep] [--seconds N]
 *                 [--mails N] [--poll N] [--timeout N] [--max-mail N]
 *                 [--exit-on-error] [--free-in-callback] [--verbose]
 *
 * Watches the mailbox for --seconds (default 10), or until --mails mails
 * were handed over (plus one second, for their deletion to complete), or
 * (--exit-on-error) until the first error.  --free-in-callback frees the
 * watcher from inside the callback that ends the run (the last mail, or
 * the error), as an agent may, and exits at once: a mail handed over
 * then is neither deleted nor moved.  Prints
 * one line per event on stdout:
 *   ready <detail>            the watcher is logged in and watching
 *   mail <subject>            a mail was handed over (consumed, unless
 *                             --keep), followed by
 *   time <unix seconds.ms>    when it was handed over
 *   error <status> <detail>   status: connect, tls, auth, protocol,
 *                             timeout, closed
 * Exit: 0, or 2 after an error with --exit-on-error, 1 on bad usage or
 * when the watcher cannot start.  Logs go to stderr.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "mailpunch/error.h"
#include "mailpunch/log.h"

#include "mime.h"

#include "mailbox.h"

typedef struct probe {
	struct event_base *base;
	agent_mailbox *mb;
	int free_in_cb;
	int keep;
	long mails_left;          /* < 0: no limit */
	int exit_on_error;
	int errored;
} probe;

static void
print_subject(const char *raw, size_t len)
{
	mp_mime_field f;
	size_t pos = 0;
	char *subject = NULL, *p;

	while (mp_mime_header_next(raw, len, &pos, &f)) {
		if (mp_mime_field_is(&f, "Subject")) {
			if (mp_mime_unfold(f.value, f.value_len, &subject) != MP_OK)
				subject = NULL;
			break;
		}
	}
	for (p = subject; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	printf("mail %s\n", subject ? subject : "");
	free(subject);
}

static agent_mail_verdict
on_mail(const char *raw, size_t len, void *arg)
{
	probe *pr = arg;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	print_subject(raw, len);
	printf("time %lld.%03ld\n", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	fflush(stdout);
	if (pr->mails_left > 0 && --pr->mails_left == 0) {
		/* time for the delete or move of this mail to go through */
		struct timeval tv = { 1, 0 };

		if (pr->free_in_cb) {
			agent_mailbox_free(pr->mb);
			pr->mb = NULL;
			event_base_loopexit(pr->base, NULL);
		} else {
			event_base_loopexit(pr->base, &tv);
		}
	}
	return pr->keep ? AGENT_MAIL_KEEP : AGENT_MAIL_CONSUME;
}

static void
on_error(int status, const char *detail, void *arg)
{
	probe *pr = arg;

	if (status == AGENT_MAILBOX_WATCHING) {
		printf("ready %s\n", detail);
	} else {
		printf("error %s %s\n", agent_mailbox_status_name(status), detail);
		if (pr->exit_on_error) {
			pr->errored = 1;
			if (pr->free_in_cb) {
				agent_mailbox_free(pr->mb);
				pr->mb = NULL;
			}
			event_base_loopexit(pr->base, NULL);
		}
	}
	fflush(stdout);
}

static char *
read_password(const char *path)
{
	char buf[512];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

static void
usage(void)
{
	fprintf(stderr, "usage: mailbox_probe --imap|--pop3 --host H --port P --user U "
	        "(--password PW | --password-file F) [--starttls] [--ca-file F | --insecure] "
	        "[--tls-name N] [--folder F] [--move-to F] [--marker M] [--keep] "
	        "[--seconds N] [--mails N] [--poll N] [--timeout N] [--max-mail N] "
	        "[--exit-on-error] [--free-in-callback] [--verbose]\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "imap", no_argument, NULL, 'I' },
		{ "pop3", no_argument, NULL, 'P' },
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "starttls", no_argument, NULL, 'S' },
		{ "tls-name", required_argument, NULL, 'n' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'w' },
		{ "password-file", required_argument, NULL, 'W' },
		{ "ca-file", required_argument, NULL, 'c' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "folder", required_argument, NULL, 'f' },
		{ "move-to", required_argument, NULL, 'm' },
		{ "marker", required_argument, NULL, 'M' },
		{ "keep", no_argument, NULL, 'K' },
		{ "seconds", required_argument, NULL, 's' },
		{ "mails", required_argument, NULL, 'N' },
		{ "poll", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 't' },
		{ "max-mail", required_argument, NULL, 'x' },
		{ "exit-on-error", no_argument, NULL, 'e' },
		{ "free-in-callback", no_argument, NULL, 'F' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	agent_mailbox_account acct;
	probe pr;
	char *password = NULL;
	double seconds = 10;
	int c, rc, verbose = 0;

	memset(&acct, 0, sizeof acct);
	memset(&pr, 0, sizeof pr);
	pr.mails_left = -1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'I': acct.kind = AGENT_MAILBOX_IMAP; break;
		case 'P': acct.kind = AGENT_MAILBOX_POP3; break;
		case 'h': acct.host = optarg; break;
		case 'p': acct.port = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'S': acct.starttls = 1; break;
		case 'n': acct.tls_name = optarg; break;
		case 'u': acct.user = optarg; break;
		case 'w':
			free(password);
			password = strdup(optarg);
			break;
		case 'W':
			free(password);
			if (!(password = read_password(optarg))) {
				fprintf(stderr, "mailbox_probe: cannot read %s\n", optarg);
				return 1;
			}
			break;
		case 'c': acct.ca_file = optarg; break;
		case 'k': acct.tls_insecure_skip_verify = 1; break;
		case 'f': acct.folder = optarg; break;
		case 'm': acct.move_to = optarg; break;
		case 'M': acct.subject_marker = optarg; break;
		case 'K': pr.keep = 1; break;
		case 's': seconds = strtod(optarg, NULL); break;
		case 'N': pr.mails_left = strtol(optarg, NULL, 10); break;
		case 'o': acct.poll_interval_s = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': acct.timeout_s = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'x': acct.max_mail = strtoul(optarg, NULL, 10); break;
		case 'e': pr.exit_on_error = 1; break;
		case 'F': pr.free_in_cb = 1; break;
		case 'v': verbose = 1; break;
		default:
			usage();
			free(password);
			return 1;
		}
	}
	if (!acct.kind || !acct.host || !acct.user || !password || optind != argc) {
		usage();
		free(password);
		return 1;
	}
	acct.password = password;
	mp_log_open("stderr", "mailbox_probe", verbose ? MP_LOG_DEBUG : MP_LOG_INFO);
	if (!(pr.base = event_base_new())) {
		free(password);
		return 1;
	}
	rc = agent_mailbox_start(pr.base, &acct, on_mail, on_error, &pr, &pr.mb);
	free(password);       /* the watcher keeps its own copy */
	if (rc != MP_OK) {
		fprintf(stderr, "mailbox_probe: cannot start: %s\n", mp_strerror(rc));
		event_base_free(pr.base);
		return 1;
	}
	{
		struct timeval tv = { (time_t)seconds,
		                      (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6) };

		event_base_loopexit(pr.base, &tv);
	}
	event_base_dispatch(pr.base);
	agent_mailbox_free(pr.mb);
	event_base_free(pr.base);
	mp_log_close();
	return pr.errored ? 2 : 0;
}
