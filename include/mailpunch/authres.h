/*
 * authres.h - reading an upstream Authentication-Results header (RFC 8601).
 *
 * A host may require that the MTA (or a milter before ours) verified the
 * sender: SPF for the envelope sender's domain, or a DKIM signature of
 * that domain.  Only a header stamped with our own authserv-id counts,
 * since anyone can write an Authentication-Results header into a mail
 * (the MTA is expected to remove foreign ones with that ID).
 *
 * Interface: mp_authres_passes(value, authserv_id, domain) returns 1 when
 * the header value's authserv-id equals authserv_id and it reports
 * spf=pass (with smtp.mailfrom, when present, in domain) or dkim=pass
 * with header.d equal to domain; otherwise 0.  Comments in parentheses
 * are ignored.  Never reads past the string; never fails otherwise.
 */
#ifndef MAILPUNCH_AUTHRES_H
#define MAILPUNCH_AUTHRES_H

int mp_authres_passes(const char *value, const char *authserv_id, const char *domain);

#endif
