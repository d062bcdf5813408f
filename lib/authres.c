/*
 * authres.c - does an Authentication-Results header vouch for a domain?
 * (see authres.h)
 *
 * The header is first copied without its comments, then split on ';'
 * into the authserv-id and the results; each result is split on blanks
 * into method=result and property=value words.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailpunch/authres.h"

#define AUTHRES_MAX 4096

/* Copies value without (comments), which may nest; NULL if too long. */
static char *
strip_comments(const char *value)
{
	size_t len = strlen(value), o = 0, i;
	int depth = 0;
	char *out;

	if (len > AUTHRES_MAX || !(out = malloc(len + 1)))
		return NULL;
	for (i = 0; i < len; i++) {
		char c = value[i];

		if (c == '\\' && depth > 0 && i + 1 < len) {
			i++;
			continue;
		}
		if (c == '(') {
			depth++;
			continue;
		}
		if (c == ')' && depth > 0) {
			depth--;
			continue;
		}
		if (depth == 0)
			out[o++] = (c == '\t' || c == '\r' || c == '\n') ? ' ' : c;
	}
	out[o] = '\0';
	return out;
}

/* Domain part of an address or the string itself, compared to domain. */
static int
same_domain(const char *value, const char *domain)
{
	const char *at = strrchr(value, '@');

	return strcasecmp(at ? at + 1 : value, domain) == 0;
}

/* One result such as "spf=pass smtp.mailfrom=a@b.example". */
static int
result_passes(char *res, const char *domain)
{
	char *save = NULL, *word, *method = NULL;
	int spf = 0, dkim = 0, prop_ok = -1;

	for (word = strtok_r(res, " ", &save); word; word = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(word, '=');

		if (!eq)
			continue;
		*eq = '\0';
		if (!method) {
			method = word;
			spf = !strcasecmp(word, "spf") && !strcasecmp(eq + 1, "pass");
			dkim = !strcasecmp(word, "dkim") && !strcasecmp(eq + 1, "pass");
			continue;
		}
		if (spf && !strcasecmp(word, "smtp.mailfrom"))
			prop_ok = same_domain(eq + 1, domain);
		if (dkim && !strcasecmp(word, "header.d"))
			prop_ok = same_domain(eq + 1, domain);
	}
	/* SPF without a mailfrom property vouches for the envelope sender it
	 * checked; a DKIM pass counts only for the signing domain we need. */
	return (spf && prop_ok != 0) || (dkim && prop_ok == 1);
}

int
mp_authres_passes(const char *value, const char *authserv_id, const char *domain)
{
	char *copy, *save = NULL, *part, *id;
	int first = 1, ok = 0;

	if (!value || !authserv_id || !*authserv_id || !domain || !*domain)
		return 0;
	if (!(copy = strip_comments(value)))
		return 0;
	for (part = strtok_r(copy, ";", &save); part && !ok; part = strtok_r(NULL, ";", &save)) {
		if (first) {
			/* "authserv-id [version]" */
			id = part + strspn(part, " ");
			id[strcspn(id, " ")] = '\0';
			if (strcasecmp(id, authserv_id) != 0)
				break;
			first = 0;
			continue;
		}
		ok = result_passes(part, domain);
	}
	free(copy);
	return ok;
}
