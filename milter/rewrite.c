/*
 * rewrite.c - the request becomes its reply, in place (see rewrite.h).
 */
#include <stdio.h>
#include <stdlib.h>
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

/* Index of the first incoming header called name, or -1. */
static long
first_named(char *const *names, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(names[i], name) == 0)
			return (long)i;
	return -1;
}

/*
 * The request's headers make way for the reply's.  A reply header whose
 * name the request has too (From, To, Subject, Date, ...) takes over the
 * request's first one with that name: one change instead of a deletion
 * and an addition, each a packet the MTA must read and apply; none at
 * all when the value is the same already (MIME-Version, Content-Type).
 */
static int
replace_headers(SMFICTX *ctx, const mp_mail *reply, char *const *names, char *const *values,
                size_t n, const char **failed_step)
{
	unsigned char *reused = calloc(n ? n : 1, 1);
	size_t i;
	int rc = MP_ERR_IO;

	if (!reused)
		return MP_ERR_NOMEM;
	*failed_step = "change a header of the request";
	for (i = 0; i < reply->nheaders; i++) {
		const mp_header *h = &reply->headers[i];
		long k = first_named(names, n, h->name);

		if (k >= 0 && !reused[k]) {
			reused[k] = 1;
			if (strcmp(values[k], h->value) != 0 &&
			    smfi_chgheader(ctx, names[k], 1, h->value) != MI_SUCCESS)
				goto out;
		} else if (smfi_addheader(ctx, h->name, h->value) != MI_SUCCESS) {
			*failed_step = "add a header of the reply";
			goto out;
		}
	}
	/* Last occurrence first, so that deleting one never renumbers the
	 * ones still to delete (MTAs differ on whether it would). */
	*failed_step = "remove a header of the request";
	for (i = n; i-- > 0;)
		if (!reused[i] &&
		    smfi_chgheader(ctx, names[i], occurrence(names, i), NULL) != MI_SUCCESS)
			goto out;
	rc = MP_OK;
out:
	free(reused);
	return rc;
}

int
milter_rewrite(SMFICTX *ctx, const char *from, const char *to, const mp_mail *reply,
               char *const *header_names, char *const *header_values, size_t nheaders,
               char *const *rdv_rcpts, size_t nrdv, const char **failed_step)
{
	char addr[MP_ADDR_MAX + 3];
	size_t i;
	int rc;

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
	if ((rc = replace_headers(ctx, reply, header_names, header_values, nheaders,
	                          failed_step)) != MP_OK)
		return rc;
	*failed_step = "replace the body";
	if (smfi_replacebody(ctx, (unsigned char *)reply->body, (int)reply->body_len) != MI_SUCCESS)
		return MP_ERR_IO;
	*failed_step = NULL;
	return MP_OK;
}
