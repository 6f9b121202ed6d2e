/*
 * Helpers for the QMP side of a migration (see migqmp.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
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
