/*
 * null_milter - the floor of what any libmilter filter costs the MTA
 * for mail it does not want: bench/postfix_milter.sh runs it beside
 * mailpunch-milter so that the ordinary-mail benchmark can tell
 * libmilter's price (a packet per step, handed from libmilter's poller
 * to a worker thread) from mailpunch's own.
 *
 *   null_milter unix:/path/to/socket
 *
 * It negotiates what mailpunch-milter negotiates (no connect, HELO,
 * MAIL, unknown-command or end-of-header steps, no-reply RCPT, the same
 * macro lists) and accepts every message at DATA.  Runs in the
 * foreground until killed.  Not part of mailpunch.
 */
#include <stdio.h>
#include <stdlib.h>

#include <libmilter/mfapi.h>

static sfsistat
null_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
               unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
               unsigned long *pf3)
{
	(void)f2;
	(void)f3;
	*pf0 = f0 & SMFIF_SETSYMLIST;
	*pf1 = f1 & (SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NOEOH | SMFIP_NR_HDR | SMFIP_NR_BODY |
	             SMFIP_NR_RCPT);
	if (*pf0 & SMFIF_SETSYMLIST &&
	    smfi_setsymlist(ctx, SMFIM_CONNECT, "") == MI_SUCCESS &&
	    smfi_setsymlist(ctx, SMFIM_ENVFROM, "i") == MI_SUCCESS &&
	    smfi_setsymlist(ctx, SMFIM_ENVRCPT, "") == MI_SUCCESS &&
	    smfi_setsymlist(ctx, SMFIM_DATA, "i {client_addr} {mail_addr}") == MI_SUCCESS &&
	    smfi_setsymlist(ctx, SMFIM_EOH, "") == MI_SUCCESS &&
	    smfi_setsymlist(ctx, SMFIM_EOM, "i") == MI_SUCCESS)
		*pf1 |= f1 & (SMFIP_NOCONNECT | SMFIP_NOMAIL);
	*pf2 = 0;
	*pf3 = 0;
	return SMFIS_CONTINUE;
}

static sfsistat
null_rcpt(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_NOREPLY;
}

static sfsistat
null_data(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_ACCEPT;
}

int
main(int argc, char **argv)
{
	struct smfiDesc desc = {
		.xxfi_name = (char *)"null_milter",
		.xxfi_version = SMFI_VERSION,
		.xxfi_envrcpt = null_rcpt,
		.xxfi_data = null_data,
		.xxfi_negotiate = null_negotiate,
	};

	if (argc != 2) {
		fprintf(stderr, "usage: null_milter unix:/path/to/socket\n");
		return 2;
	}
	if (smfi_setconn(argv[1]) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS ||
	    smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "null_milter: cannot listen on %s\n", argv[1]);
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
