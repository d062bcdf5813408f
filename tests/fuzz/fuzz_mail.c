/*
 * fuzz_mail.c - libFuzzer target for the mail parser.
 *
 * Interface: LLVMFuzzerTestOneInput() parses the input as a whole mail
 * with a 256 KiB size limit.  When a block is found it checks the
 * invariants a caller relies on (1..MP_MAIL_BLOCK_MAX bytes) and that the
 * block survives base64 in both alphabets and a compose/parse round trip;
 * otherwise that the error is one the parser documents.  The first line
 * of the input also goes through the header helpers.  Any broken
 * invariant aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailpunch/error.h"
#include "mailpunch/mail.h"
#include "base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_base64(const uint8_t *blk, size_t len, int url, size_t wrap)
{
	char *enc;
	uint8_t *dec;
	size_t enclen, declen;

	if (mp_base64_encode(blk, len, url, wrap, &enc, &enclen) != MP_OK)
		abort();
	if (mp_base64_decode(enc, enclen, url, len, &dec, &declen) != MP_OK ||
	    declen != len || memcmp(dec, blk, len) != 0)
		abort();
	free(enc);
	free(dec);
}

static void
check_compose(const uint8_t *blk, size_t len)
{
	mp_mail_draft d;
	mp_mail *m;
	mp_parsed_mail pm;
	char *s;
	size_t slen;

	memset(&d, 0, sizeof(d));
	d.from = "a@example.org";
	d.to = "b@example.net";
	d.subject = "[mailpunch] fuzz";
	d.date = 1;
	d.block = blk;
	d.block_len = len;
	if (mp_mail_compose(&d, &m) != MP_OK)
		abort();
	if (mp_mail_serialize(m, &s, &slen) != MP_OK)
		abort();
	if (mp_mail_parse(s, slen, NULL, &pm) != MP_OK ||
	    pm.block_len != len || memcmp(pm.block, blk, len) != 0)
		abort();
	mp_parsed_mail_free(&pm);
	free(s);
	mp_mail_free(m);
}

static void
check_helpers(const uint8_t *data, size_t size)
{
	char line[512], addr[256];
	size_t n = 0;

	while (n < size && n < sizeof(line) - 1 && data[n] != '\n' &&
	       data[n] != '\0')
		n++;
	memcpy(line, data, n);
	line[n] = '\0';
	if (mp_mail_extract_addr(line, addr, sizeof(addr)) == MP_OK &&
	    strchr(addr, '@') == NULL)
		abort();
	(void)mp_mail_header_is_auto("Content-Type", line);
	(void)mp_mail_header_is_auto("Auto-Submitted", line);
	(void)mp_mail_subject_has_marker(line, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mp_mail_limits lim = { 256 * 1024, 0, 0 };
	mp_parsed_mail pm;
	int rc;

	rc = mp_mail_parse((const char *)data, size, &lim, &pm);
	if (rc == MP_OK) {
		if (pm.block == NULL || pm.block_len == 0 ||
		    pm.block_len > MP_MAIL_BLOCK_MAX)
			abort();
		check_base64(pm.block, pm.block_len, 0, 64);
		check_base64(pm.block, pm.block_len, 1, 0);
		check_compose(pm.block, pm.block_len);
	} else {
		if (pm.block != NULL)
			abort();
		if (rc != MP_ERR_NOBLOCK && rc != MP_ERR_BASE64 &&
		    rc != MP_ERR_MIME && rc != MP_ERR_TOOBIG)
			abort();
	}
	mp_parsed_mail_free(&pm);
	check_helpers(data, size);
	return 0;
}
