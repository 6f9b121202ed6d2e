/*
 * Parser for the guest workloads' console records.
 *
 * Guest programs print "PP <prog> <event> t=<seconds> key=value ..." lines
 * (tools/guest/ppguest.h); everything else on the console is ignored.  The
 * text is untrusted: malformed records are skipped, never fatal.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_GUESTLOG_H
#define PP_GUESTLOG_H

#include <glib.h>
#include <stdbool.h>

typedef struct PpRecord {
    char *prog;
    char *event;
    double t;            /* guest monotonic seconds; NAN when absent */
    GHashTable *kv;      /* char * -> char *, both owned */
} PpRecord;

/* All records in @text, in order (a GPtrArray of PpRecord *, owning them). */
GPtrArray *pp_records_parse(const char *text);

/* Read @path and parse it; an unreadable file yields an empty array. */
GPtrArray *pp_records_load(const char *path);

/* Value of @key or NULL. */
const char *pp_record_get(const PpRecord *r, const char *key);

/* Integer value of @key, or @def when absent or not a number. */
gint64 pp_record_get_int(const PpRecord *r, const char *key, gint64 def);

/* First record at or after index @from matching @prog and @event (either
 * may be NULL for any); returns its index or -1. */
int pp_records_find(GPtrArray *records, guint from, const char *prog,
                    const char *event);

void pp_record_free(PpRecord *r);

/*
 * The kernel command line that makes our guest image run @workload
 * ("program --opt=v ..."; NULL: none) after filling @fill_mib MiB (0:
 * none), with its network interface at @net_addr ("A.B.C.D/P"; NULL: no
 * network): "console=ttyS0 quiet panic=-1 pp.wl=PROGRAM pp.args=A+B
 * pp.fill=N pp.net=A.B.C.D/P".  Fails on a workload the encoding cannot
 * carry ('+', quotes, control characters) or an address not of that form.
 */
char *pp_guest_cmdline(const char *workload, guint64 fill_mib,
                       const char *net_addr, GError **errp);

#endif
