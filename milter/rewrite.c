/*
 * rewrite.c - the request becomes its reply, in place (see rewrite.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mailpunch/block.h"
#include "mailpunch/error.h"
#include "rewrite.h"

int
milter_rewrite_granted(unsigned long actions)
{
	return (actions & MILTER_REWRITE_ACTIONS) == MILTER_REWRITE_ACTIONS;
}

/* 1-based position of names[i] among the headers of the same name. */
static int
occurrence(char *const *names, size_t i)
{
	int n = 0;
	size_t j;

	for (j = 0; j <= i; j++)
		if (strcasecmp(names[j], names[i]) == 0)
			n++;
	return n;
}

int
milter_rewrite(SMFICTX *ctx, const char *from, const char *to, const mp_mail *reply,
               char *const *header_names, size_t nheaders, char *const *rdv_rcpts,
               size_t nrdv, const char **failed_step)
{
	char addr[MP_ADDR_MAX + 3];
	size_t i;

	/* Envelope first: if the MTA refuses these, nothing else matters. */
	snprintf(addr, sizeof addr, "<%s>", from);
	*failed_step = "change the envelope sender";
	if (smfi_chgfrom(ctx, addr, NULL) != MI_SUCCESS)
		return MP_ERR_IO;
	snprintf(addr, sizeof addr, "<%s>", to);
	*failed_step = "add the member as recipient";
	if (smfi_addrcpt(ctx, addr) != MI_SUCCESS)
		return MP_ERR_IO;
	*failed_step = "remove the rendezvous recipient";
	for (i = 0; i < nrdv; i++)
		if (smfi_delrcpt(ctx, rdv_rcpts[i]) != MI_SUCCESS)
			return MP_ERR_IO;
	/* Last occurrence first, so that deleting one never renumbers the
	 * ones still to delete (MTAs differ on whether it would). */
	*failed_step = "remove a header of the request";
	for (i = nheaders; i-- > 0;)
		if (smfi_chgheader(ctx, header_names[i], occurrence(header_names, i), NULL) !=
		    MI_SUCCESS)
			return MP_ERR_IO;
	*failed_step = "add a header of the reply";
	for (i = 0; i < reply->nheaders; i++)
		if (smfi_addheader(ctx, reply->headers[i].name, reply->headers[i].value) != MI_SUCCESS)
			return MP_ERR_IO;
	*failed_step = "replace the body";
	if (smfi_replacebody(ctx, (unsigned char *)reply->body, (int)reply->body_len) != MI_SUCCESS)
		return MP_ERR_IO;
	*failed_step = NULL;
	return MP_OK;
}
