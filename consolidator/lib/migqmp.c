/*
 * Helpers for the QMP side of a migration (see migqmp.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stddef.h>
#include <string.h>

#include "migqmp.h"
#include "pp-error.h"
#include "ppjson.h"

json_object *pp_mig_caps_args(const PpMigCap *caps, size_t n)
{
    json_object *list = json_object_new_array();
    json_object *args = json_object_new_object();

    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_new_object();
        json_object_object_add(c, "capability",
                               json_object_new_string(caps[i].name));
        json_object_object_add(c, "state", json_object_new_boolean(caps[i].on));
        json_object_array_add(list, c);
    }
    json_object_object_add(args, "capabilities", list);
    return args;
}

gint64 pp_json_int(json_object *o, const char *a, const char *b)
{
    g_autofree char *path = b ? g_strdup_printf("%s.%s", a, b) : g_strdup(a);
    gint64 v;

    return pp_json_get_int(o, path, &v, NULL) ? v : -1;
}

void pp_postcopy_stats_init(PpPostcopyStats *st)
{
    st->remote_faults = st->prefetched_pages = -1;
    st->fault_p50_us = st->fault_p99_us = st->fault_max_us = -1;
    st->last_fault_ms = -1;
    st->hot_pages = st->hot_pushed = st->hot_pushed_ms = -1;
    st->hot_tracked_ms = st->hot_read_only = st->dst_loaded_us = -1;
    st->hot_faulted = -1;
    st->hot_bytes = st->hot_samples = st->hot_sample_max_us = -1;
    st->hot_sample_mean_us = st->fault_record_bytes = -1;
}

bool pp_postcopy_stats_update(PpPostcopyStats *st, json_object *query_migrate,
                              GError **errp)
{
    static const struct {
        const char *key;
        size_t off;
    } members[] = {
#define M(k, f) { "x-postcopy." k, offsetof(PpPostcopyStats, f) }
        M("remote-faults", remote_faults),
        M("prefetched-pages", prefetched_pages),
        M("fault-latency-p50-us", fault_p50_us),
        M("fault-latency-p99-us", fault_p99_us),
        M("fault-latency-max-us", fault_max_us),
        M("last-fault-ms", last_fault_ms),
        M("hot-pages", hot_pages),
        M("hot-pages-read-only", hot_read_only),
        M("hot-pages-faulted", hot_faulted),
        M("hot-pages-pushed", hot_pushed),
        M("hot-pushed-ms", hot_pushed_ms),
        M("hot-tracked-ms", hot_tracked_ms),
        M("dst-loaded-us", dst_loaded_us),
        M("hot-bytes", hot_bytes),
        M("hot-samples", hot_samples),
        M("hot-sample-max-us", hot_sample_max_us),
        M("hot-sample-mean-us", hot_sample_mean_us),
        M("fault-record-bytes", fault_record_bytes),
#undef M
    };
    PpPostcopyStats n = *st;

    /* All or nothing: a reply with one bad member changes no counter. */
    for (size_t i = 0; i < G_N_ELEMENTS(members); i++) {
        gint64 v = -1;

        if (!pp_json_opt_int(query_migrate, members[i].key, &v, errp)) {
            return false;
        }
        if (v >= 0) {
            *(gint64 *)((char *)&n + members[i].off) = v;
        }
    }
    *st = n;
    return true;
}

const char *pp_mig_listen_port(json_object *query_migrate, GError **errp)
{
    json_object *addrs = NULL, *a;
    const char *port;

    if (!pp_json_get_arr(query_migrate, "socket-address", &addrs, errp)) {
        return NULL;
    }
    if (json_object_array_length(addrs) < 1) {
        g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                    "destination did not report its listening port");
        return NULL;
    }
    a = json_object_array_get_idx(addrs, 0);
    if (!pp_json_get_str(a, "port", &port, errp)) {
        return NULL;
    }
    return port;
}

bool pp_qmp_schema_has(json_object *schema, const char *value)
{
    if (!json_object_is_type(schema, json_type_array)) {
        return false;
    }
    for (size_t i = 0; i < json_object_array_length(schema); i++) {
        json_object *e = json_object_array_get_idx(schema, i), *vals;
        if (!json_object_object_get_ex(e, "values", &vals) ||
            !json_object_is_type(vals, json_type_array)) {
            continue;
        }
        for (size_t k = 0; k < json_object_array_length(vals); k++) {
            json_object *v = json_object_array_get_idx(vals, k);
            if (json_object_is_type(v, json_type_string) &&
                strcmp(json_object_get_string(v), value) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* Decoded length of strict base64 (RFC 4648, padded), or -1. */
static gssize base64_len(const char *s, size_t n)
{
    size_t pad = 0;

    if (n % 4) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '=') {
            /* only as the last one or two characters */
            if (i < n - 2 || (i == n - 2 && s[n - 1] != '=')) {
                return -1;
            }
            pad++;
        } else if (!g_ascii_isalnum(c) && c != '+' && c != '/') {
            return -1;
        }
    }
    return (gssize)(n / 4 * 3 - pad);
}

void pp_hot_set_strip_faults(json_object *blocks)
{
    for (size_t i = 0; i < json_object_array_length(blocks); i++) {
        json_object_object_del(json_object_array_get_idx(blocks, i),
                               "fault-order");
    }
}

bool pp_hot_set_check(json_object *blocks, guint64 *hot_pages, GError **errp)
{
    g_autoptr(GHashTable) ids = g_hash_table_new(g_str_hash, g_str_equal);
    guint64 hot = 0;

    if (!pp_json_is(blocks, json_type_array, "hot set", errp)) {
        return false;
    }
    for (size_t i = 0; i < json_object_array_length(blocks); i++) {
        json_object *b = json_object_array_get_idx(blocks, i);
        g_autoptr(GError) err = NULL;
        const char *id, *bitmap;
        gint64 pages, psize;
        gssize len;

        if (!pp_json_get_str(b, "id", &id, &err) ||
            !pp_json_get_int(b, "pages", &pages, &err) ||
            !pp_json_get_int(b, "page-size", &psize, &err) ||
            !pp_json_get_str(b, "bitmap", &bitmap, &err)) {
            g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                        "hot set block %zu: %s", i, err->message);
            return false;
        }
        if (!*id || strlen(id) > 255) {
            g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                        "hot set block %zu: bad id", i);
            return false;
        }
        if (!g_hash_table_add(ids, (gpointer)id)) {
            g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                        "hot set: block '%s' listed twice", id);
            return false;
        }
        if (pages < 1 || pages > (G_GINT64_CONSTANT(1) << 40) ||
            psize < 512 || psize > (1 << 30) || (psize & (psize - 1))) {
            g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                        "hot set block '%s': %" G_GINT64_FORMAT " pages of %"
                        G_GINT64_FORMAT " bytes is not a RAM block", id,
                        pages, psize);
            return false;
        }
        len = base64_len(bitmap, strlen(bitmap));
        if (len != (pages + 7) / 8) {
            g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                        "hot set block '%s': the bitmap is not base64 of %"
                        G_GINT64_FORMAT " bytes", id, (pages + 7) / 8);
            return false;
        }
        /* fault-order (optional): at most 65536 page numbers below pages */
        json_object *order = NULL;
        if (json_object_object_get_ex(b, "fault-order", &order)) {
            if (!json_object_is_type(order, json_type_array) ||
                json_object_array_length(order) > 65536) {
                g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                            "hot set block '%s': fault-order is not an array "
                            "of at most 65536 pages", id);
                return false;
            }
            for (size_t k = 0; k < json_object_array_length(order); k++) {
                json_object *p = json_object_array_get_idx(order, k);
                gint64 v;

                if (!json_object_is_type(p, json_type_int) ||
                    (v = json_object_get_int64(p)) < 0 || v >= pages) {
                    g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                                "hot set block '%s': fault-order entry %zu "
                                "is not a page of the block", id, k);
                    return false;
                }
            }
        }
        if (hot_pages) {
            gsize n;
            g_autofree guchar *bits = g_base64_decode(bitmap, &n);

            for (gsize k = 0; k < n; k++) {
                unsigned v = bits[k];
                /* bits past the last page do not count */
                if (k == n - 1 && pages % 8) {
                    v &= (1u << (pages % 8)) - 1;
                }
                hot += (guint64)__builtin_popcount(v);
            }
        }
    }
    if (hot_pages) {
        *hot_pages = hot;
    }
    return true;
}
