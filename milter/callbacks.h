/*
 * callbacks.h - the filter description handed to smfi_register().
 */
#ifndef MAILPUNCH_MILTER_CALLBACKS_H
#define MAILPUNCH_MILTER_CALLBACKS_H

#include <libmilter/mfapi.h>

extern struct smfiDesc milter_desc;

#endif
