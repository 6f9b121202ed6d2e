/*
 * Helpers for the QMP side of a migration, shared by the consolidator's
 * migration jobs and ppmig.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_MIGQMP_H
#define PP_MIGQMP_H

#include <glib.h>
#include <json-c/json.h>
#include <stdbool.h>

typedef struct PpMigCap {
    const char *name;
    bool on;
} PpMigCap;

/* Arguments of migrate-set-capabilities for @caps[0..n) (new reference). */
json_object *pp_mig_caps_args(const PpMigCap *caps, size_t n);

/* Does a query-qmp-schema reply list @value in an enum?  Our extensions
 * (x-postcopy-instant, x-postcopy-hot-first) are detected this way, never
 * from version strings. */
bool pp_qmp_schema_has(json_object *schema, const char *value);

/* Integer member @a (or @a.@b when @b is not NULL) of @o; -1 if absent
 * or not an integer (for reports; decisions use ppjson.h). */
gint64 pp_json_int(json_object *o, const char *a, const char *b);

/*
 * The port a destination listening on "tcp:ADDR:0" got, from its
 * query-migrate reply (borrowed string), or NULL with an error.
 */
const char *pp_mig_listen_port(json_object *query_migrate, GError **errp);

/*
 * Our QEMU's post-copy counters: query-migrate's x-postcopy member
 * (docs/qmp-extensions.md).  The source reports the hot-* ones, the
 * destination the fault ones; -1 means not reported.
 */
typedef struct PpPostcopyStats {
    gint64 remote_faults, prefetched_pages;
    gint64 fault_p50_us, fault_p99_us, fault_max_us, last_fault_ms;
    gint64 hot_pages, hot_pushed, hot_pushed_ms, hot_tracked_ms;
    gint64 hot_read_only, dst_loaded_us;
    gint64 hot_faulted;         /* list head from the last arrival's faults */
    gint64 hot_bytes;           /* source: peak bytes of our structures */
    gint64 hot_samples, hot_sample_max_us, hot_sample_mean_us; /* BQL held */
    gint64 fault_record_bytes;  /* destination: what stays for the next move */
} PpPostcopyStats;

/* All counters not reported. */
void pp_postcopy_stats_init(PpPostcopyStats *st);
/* Take the counters @query_migrate reports, keep the others.  A counter
 * that is null or not an integer is a protocol error and changes none. */
bool pp_postcopy_stats_update(PpPostcopyStats *st, json_object *query_migrate,
                              GError **errp);

/*
 * Check a hot set as x-query-hot-set returns it and x-set-hot-set takes
 * it (docs/qmp-extensions.md): an array of blocks, each with a non-empty
 * string "id" (no two alike), "pages" (1 .. 2^40), "page-size" (a power
 * of two from 512 to 1 GiB) and "bitmap" (strict base64 of exactly
 * ceil(pages / 8) bytes), and optionally "fault-order" (at most 65536
 * page numbers below "pages").  A set that fails is never stored or
 * handed on.
 * *@hot_pages (may be NULL) gets the number of pages set.
 */
bool pp_hot_set_check(json_object *blocks, guint64 *hot_pages, GError **errp);

/*
 * Drop the "fault-order" of every block of a (checked) hot set read from
 * a source after a move: that record describes the source's own arrival,
 * and the VM's new QEMU keeps a fresher one (the faults of this move),
 * which x-set-hot-set leaves alone when a block gives none.
 */
void pp_hot_set_strip_faults(json_object *blocks);

#endif
