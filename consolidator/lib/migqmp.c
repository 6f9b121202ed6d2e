/*
 * Helpers for the QMP side of a migration (see migqmp.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stddef.h>
#include <string.h>

#include "migqmp.h"
#include "pp-error.h"

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
    json_object *x;

    if (!json_object_object_get_ex(o, a, &x) ||
        (b && !json_object_object_get_ex(x, b, &x))) {
        return -1;
    }
    return json_object_get_int64(x);
}

void pp_postcopy_stats_init(PpPostcopyStats *st)
{
    st->remote_faults = st->prefetched_pages = -1;
    st->fault_p50_us = st->fault_p99_us = st->fault_max_us = -1;
    st->last_fault_ms = -1;
    st->hot_pages = st->hot_pushed = st->hot_pushed_ms = -1;
    st->hot_tracked_ms = st->hot_read_only = st->dst_loaded_us = -1;
}

void pp_postcopy_stats_update(PpPostcopyStats *st, json_object *query_migrate)
{
    static const struct {
        const char *key;
        size_t off;
    } members[] = {
#define M(k, f) { k, offsetof(PpPostcopyStats, f) }
        M("remote-faults", remote_faults),
        M("prefetched-pages", prefetched_pages),
        M("fault-latency-p50-us", fault_p50_us),
        M("fault-latency-p99-us", fault_p99_us),
        M("fault-latency-max-us", fault_max_us),
        M("last-fault-ms", last_fault_ms),
        M("hot-pages", hot_pages),
        M("hot-pages-read-only", hot_read_only),
        M("hot-pages-pushed", hot_pushed),
        M("hot-pushed-ms", hot_pushed_ms),
        M("hot-tracked-ms", hot_tracked_ms),
        M("dst-loaded-us", dst_loaded_us),
#undef M
    };

    for (size_t i = 0; i < G_N_ELEMENTS(members); i++) {
        gint64 v = pp_json_int(query_migrate, "x-postcopy", members[i].key);

        if (v >= 0) {
            *(gint64 *)((char *)st + members[i].off) = v;
        }
    }
}

const char *pp_mig_listen_port(json_object *query_migrate, GError **errp)
{
    json_object *addrs, *a, *port;

    if (!json_object_object_get_ex(query_migrate, "socket-address", &addrs) ||
        !json_object_is_type(addrs, json_type_array) ||
        json_object_array_length(addrs) < 1 ||
        !(a = json_object_array_get_idx(addrs, 0)) ||
        !json_object_object_get_ex(a, "port", &port)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                    "destination did not report its listening port");
        return NULL;
    }
    return json_object_get_string(port);
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
            const char *v = json_object_get_string(
                json_object_array_get_idx(vals, k));
            if (v && strcmp(v, value) == 0) {
                return true;
            }
        }
    }
    return false;
}
