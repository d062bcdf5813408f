/*
 * tls.c - TLS client contexts for the agent's mail clients (see tls.h).
 *
 * Verification is SSL_VERIFY_PEER with OpenSSL's chain check plus its
 * built-in host check (SSL_set1_host, or the IP address for a literal),
 * so a failed check aborts the handshake inside OpenSSL and no caller
 * can forget it.  A CA file replaces the system store rather than adding
 * to it: whoever configures one means "this CA and no other".
 * Errors are values (NULL) with the reason in the caller's buffer; the
 * insecure mode is announced at warning level on every context made.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "mailpunch/log.h"
#include "tls.h"

/* Reason text of the oldest queued OpenSSL error, the queue cleared. */
static void
queued_error(const char *what, char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	if (buf && len > 0)
		snprintf(buf, len, "%s: %s", what, reason ? reason : "OpenSSL error");
}

SSL_CTX *
agent_tls_ctx_new(const char *ca_file, int insecure_skip_verify, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if (err && errlen > 0)
		err[0] = '\0';
	if (!(ctx = SSL_CTX_new(TLS_client_method()))) {
		queued_error("cannot create TLS context", err, errlen);
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		queued_error("cannot require TLS 1.2", err, errlen);
		goto fail;
	}
	if (ca_file && *ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			char what[300];

			snprintf(what, sizeof what, "cannot load CA file %.256s", ca_file);
			queued_error(what, err, errlen);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		queued_error("cannot load the system CA store", err, errlen);
		goto fail;
	}
	if (insecure_skip_verify) {
		mp_log(MP_LOG_WARNING, "tls_insecure_skip_verify is set: server certificates "
		       "are NOT verified, anyone on the path can read the mail and password");
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static int
is_ip_literal(const char *host)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

SSL *
agent_tls_ssl_new(SSL_CTX *ctx, const char *host)
{
	SSL *ssl;
	int ok;

	if (!ctx || !host || !*host)
		return NULL;
	if (!(ssl = SSL_new(ctx)))
		return NULL;
	if (is_ip_literal(host)) {
		/* RFC 6066: no SNI for addresses; match an iPAddress SAN */
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
	} else {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
	}
	if (!ok) {
		ERR_clear_error();
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

void
agent_tls_error(SSL *ssl, unsigned long ossl_err, char *buf, size_t len)
{
	long vr;

	if (!buf || len == 0)
		return;
	if (ssl && (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) &&
	    (vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
		const char *host = X509_VERIFY_PARAM_get0_host(vp, 0);
		char *ip = NULL;

		if (vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
			host = ip = X509_VERIFY_PARAM_get1_ip_asc(vp);
		if ((vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH) && host)
			snprintf(buf, len, "certificate verify failed: %s (certificate is not for %.255s)",
			         X509_verify_cert_error_string(vr), host);
		else
			snprintf(buf, len, "certificate verify failed: %s",
			         X509_verify_cert_error_string(vr));
		OPENSSL_free(ip);
		return;
	}
	if (ossl_err == 0) {
		ossl_err = ERR_get_error();
		ERR_clear_error();
	}
	if (ossl_err != 0) {
		const char *reason = ERR_reason_error_string(ossl_err);

		if (reason)
			snprintf(buf, len, "TLS handshake failed: %s", reason);
		else
			snprintf(buf, len, "TLS handshake failed: OpenSSL error %lx", ossl_err);
		return;
	}
	snprintf(buf, len, "TLS handshake failed");
}
