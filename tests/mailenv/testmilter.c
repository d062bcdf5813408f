/*
 * testmilter -- a tiny libmilter filter used by tests/mailenv/selftest to
 * check the Postfix milter plumbing of the test environment (socket
 * permissions, reload, macros, tempfail on a dead milter).  Not part of
 * mailpunch.
 *
 *   testmilter -p SOCKSPEC -l LOGFILE [-m accept|tempfail|reject]
 *
 * SOCKSPEC is libmilter syntax: unix:/path or inet:PORT@127.0.0.1.  Every
 * callback appends one line to LOGFILE; at end of message the filter adds
 * "X-Mailenv-Milter: seen by testmilter" (mode accept) or answers 4xx/5xx.
 *
 * Build: cc -o testmilter testmilter.c -lmilter -pthread
 */
#include <errno.h>
#include <libmilter/mfapi.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *logpath;
static const char *mode = "accept";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void logf_(const char *fmt, ...)
{
	va_list ap;
	FILE *f;

	pthread_mutex_lock(&log_lock);
	f = fopen(logpath, "a");
	if (f != NULL) {
		va_start(ap, fmt);
		vfprintf(f, fmt, ap);
		va_end(ap);
		fputc('\n', f);
		fclose(f);
	}
	pthread_mutex_unlock(&log_lock);
}

static const char *mac(SMFICTX *ctx, const char *name)
{
	const char *v = smfi_getsymval(ctx, (char *)name);
	return v != NULL ? v : "(unset)";
}

static sfsistat t_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	(void)sa;
	logf_("connect host=%s daemon_name=%s", host, mac(ctx, "{daemon_name}"));
	return SMFIS_CONTINUE;
}

static sfsistat t_helo(SMFICTX *ctx, char *helo)
{
	(void)ctx;
	logf_("helo %s", helo);
	return SMFIS_CONTINUE;
}

static sfsistat t_envfrom(SMFICTX *ctx, char **argv)
{
	logf_("envfrom %s auth_authen=%s", argv[0], mac(ctx, "{auth_authen}"));
	return SMFIS_CONTINUE;
}

static sfsistat t_envrcpt(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	logf_("envrcpt %s", argv[0]);
	return SMFIS_CONTINUE;
}

static sfsistat t_header(SMFICTX *ctx, char *name, char *value)
{
	(void)ctx;
	(void)value;
	logf_("header %s", name);
	return SMFIS_CONTINUE;
}

static sfsistat t_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	(void)ctx;
	(void)chunk;
	logf_("body %zu", len);
	return SMFIS_CONTINUE;
}

static sfsistat t_eom(SMFICTX *ctx)
{
	logf_("eom queue_id=%s", mac(ctx, "i"));
	if (strcmp(mode, "tempfail") == 0) {
		smfi_setreply(ctx, "451", "4.7.1", "testmilter says try later");
		return SMFIS_TEMPFAIL;
	}
	if (strcmp(mode, "reject") == 0) {
		smfi_setreply(ctx, "550", "5.7.1", "testmilter says no");
		return SMFIS_REJECT;
	}
	smfi_addheader(ctx, "X-Mailenv-Milter", "seen by testmilter");
	return SMFIS_CONTINUE;
}

static sfsistat t_close(SMFICTX *ctx)
{
	(void)ctx;
	logf_("close");
	return SMFIS_CONTINUE;
}

int main(int argc, char **argv)
{
	struct smfiDesc desc = {
		.xxfi_name = "mailenv-testmilter",
		.xxfi_version = SMFI_VERSION,
		.xxfi_flags = SMFIF_ADDHDRS,
		.xxfi_connect = t_connect,
		.xxfi_helo = t_helo,
		.xxfi_envfrom = t_envfrom,
		.xxfi_envrcpt = t_envrcpt,
		.xxfi_header = t_header,
		.xxfi_body = t_body,
		.xxfi_eom = t_eom,
		.xxfi_close = t_close,
	};
	const char *spec = NULL;
	int c;

	while ((c = getopt(argc, argv, "p:l:m:")) != -1) {
		switch (c) {
		case 'p': spec = optarg; break;
		case 'l': logpath = optarg; break;
		case 'm': mode = optarg; break;
		default: goto usage;
		}
	}
	if (spec == NULL || logpath == NULL)
		goto usage;
	if (smfi_setconn((char *)spec) == MI_FAILURE ||
	    smfi_register(desc) == MI_FAILURE) {
		fprintf(stderr, "testmilter: setconn/register failed\n");
		return 1;
	}
	/* Postfix connects as user "postfix": a unix socket created under
	 * root's umask 022 (mode 0755) would refuse it ("Permission denied",
	 * then milter_default_action).  Create it now and open it up. */
	if (smfi_opensocket(1) == MI_FAILURE) {
		fprintf(stderr, "testmilter: cannot open %s\n", spec);
		return 1;
	}
	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0)
		chmod(strchr(spec, ':') + 1, 0666);
	logf_("ready %s", spec);
	return smfi_main() == MI_SUCCESS ? 0 : 1;
usage:
	fprintf(stderr, "usage: testmilter -p SOCKSPEC -l LOGFILE [-m accept|tempfail|reject]\n");
	return 2;
}
