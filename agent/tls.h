/*
 * tls.h - TLS client contexts for the agent's mail clients (SMTP, IMAP,
 * POP3), all through OpenSSL and libevent's bufferevent_openssl.
 *
 * Interface: agent_tls_ctx_new() makes a client SSL_CTX: TLS 1.2 or
 * newer, peer verification on, trusting the system store or, when
 * ca_file is given, that file only.  insecure_skip_verify turns
 * verification off (for test setups only; logged as a warning every
 * time).  agent_tls_ssl_new() makes one connection's SSL: SNI (for a
 * host name, not an IP literal) and the name or address the
 * certificate must match.  The SSL holds its own reference to the
 * context, so the caller may free the context right after.
 * agent_tls_error() explains why a handshake failed, e.g.
 * "certificate verify failed: self-signed certificate in certificate
 * chain (localhost)", from the SSL's verify result or an OpenSSL error
 * code such as bufferevent_get_openssl_error() returns.
 *
 * Errors: agent_tls_ctx_new() returns NULL and writes the reason to err
 * (unreadable CA file, OpenSSL failure); agent_tls_ssl_new() returns
 * NULL when OpenSSL fails or host is empty.
 */
#ifndef MAILPUNCH_AGENT_TLS_H
#define MAILPUNCH_AGENT_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

SSL_CTX *agent_tls_ctx_new(const char *ca_file, int insecure_skip_verify,
                           char *err, size_t errlen);
SSL *agent_tls_ssl_new(SSL_CTX *ctx, const char *host);

/*
 * Writes a one-line reason for a failed handshake on ssl (may be NULL)
 * to buf: the certificate verification error when there is one, else
 * the OpenSSL error ossl_err (0: the oldest one queued in this thread,
 * which is then cleared), else "handshake failed".
 */
void agent_tls_error(SSL *ssl, unsigned long ossl_err, char *buf, size_t len);

#endif
