/*
 * inject.h - hand a mail to the MTA through its sendmail command.
 *
 * Why injection and not rewriting the request in place: the reply must
 * leave through the MTA's normal outbound path (so a DKIM-signing milter
 * in non_smtpd_milters signs it), other recipients of the request must
 * still get the request, and the reply must be safely queued before we
 * acknowledge the request.  Postfix's and Sendmail's `sendmail -i` exit
 * 0 only once the message is in the queue, so "exit 0" is our durable
 * hand-over; anything else makes the caller tempfail.
 *
 * Interface: milter_inject() runs `COMMAND -f FROM -- TO` (COMMAND split
 * on blanks, no shell), writes the mail with LF line ends, and waits at
 * most timeout seconds.
 * Errors: MP_ERR_IO with a reason in err (spawn failure, non-zero exit,
 * signal, timeout), MP_ERR_INVAL for an unusable command.
 */
#ifndef MAILPUNCH_MILTER_INJECT_H
#define MAILPUNCH_MILTER_INJECT_H

#include <stddef.h>

int milter_inject(const char *command, const char *from, const char *to,
                  const char *mail, size_t len, unsigned timeout, char *err, size_t errlen);

/*
 * The same over SMTP (inject_smtp.c), to InjectSocket (a sockspec such as
 * inet:25@127.0.0.1), on connections kept open between mails: much
 * cheaper than a process per reply.  "250" after the data is the
 * MTA's promise that the mail is queued.  milter_inject_smtp_close()
 * closes the idle connections at shutdown.
 */
int milter_inject_smtp(const char *sockspec, const char *from, const char *to,
                       const char *mail, size_t len, unsigned timeout, char *err, size_t errlen);
void milter_inject_smtp_close(void);

/* Whichever of the two the settings ask for (InjectSocket or not). */
struct milter_settings;
int milter_send(const struct milter_settings *s, const char *from, const char *to,
                const char *mail, size_t len, char *err, size_t errlen);

#endif
