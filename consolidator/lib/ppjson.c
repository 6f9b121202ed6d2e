/*
 * Typed reads of untrusted JSON (see ppjson.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "pp-error.h"
#include "ppjson.h"

const char *pp_json_type_desc(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "a boolean";
    case json_type_double:
        return "a number";
    case json_type_int:
        return "an integer";
    case json_type_object:
        return "an object";
    case json_type_array:
        return "an array";
    case json_type_string:
        return "a string";
    }
    return "a value of unknown type";
}

static bool type_ok(json_object *v, json_type want)
{
    json_type t = json_object_get_type(v);

    if (want == json_type_double) {
        return t == json_type_double || t == json_type_int;
    }
    return t == want;
}

static const char *want_desc(json_type want)
{
    switch (want) {
    case json_type_double:
        return "a number";
    case json_type_null:
        return "null";
    default: {
        /* reuse the same wording as pp_json_type_desc */
        static const char *const d[] = {
            [json_type_boolean] = "a boolean", [json_type_int] = "an integer",
            [json_type_object] = "an object", [json_type_array] = "an array",
            [json_type_string] = "a string",
        };
        return (size_t)want < G_N_ELEMENTS(d) && d[want] ? d[want] : "?";
    }
    }
}

bool pp_json_is(json_object *v, json_type type, const char *what,
                GError **errp)
{
    if (!type_ok(v, type)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                    "%s is %s, expected %s", what, pp_json_type_desc(v),
                    want_desc(type));
        return false;
    }
    return true;
}

/*
 * Find @path in @o.  Returns 1 with *@out set (possibly to NULL for a JSON
 * null), 0 when a member on the way is absent, -1 with @errp set when
 * something on the way is not an object.
 */
static int lookup(json_object *o, const char *path, json_object **out,
                  GError **errp)
{
    const char *p = path;

    for (;;) {
        const char *dot = strchr(p, '.');
        g_autofree char *name = dot ? g_strndup(p, dot - p) : g_strdup(p);
        json_object *v;

        if (!json_object_is_type(o, json_type_object)) {
            if (p == path) {
                g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                            "expected an object holding '%s', got %s", path,
                            pp_json_type_desc(o));
            } else {
                g_autofree char *parent = g_strndup(path, p - 1 - path);
                g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                            "member '%s' is %s, expected an object", parent,
                            pp_json_type_desc(o));
            }
            return -1;
        }
        if (!json_object_object_get_ex(o, name, &v)) {
            return 0;
        }
        if (!dot) {
            *out = v;
            return 1;
        }
        o = v;
        p = dot + 1;
    }
}

static bool get(json_object *o, const char *path, json_type type,
                bool optional, json_object **out, GError **errp)
{
    json_object *v = NULL;
    int r = lookup(o, path, &v, errp);

    if (r < 0) {
        return false;
    }
    if (r == 0) {
        if (optional) {
            *out = NULL;
            return true;
        }
        g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                    "member '%s' is missing", path);
        return false;
    }
    if (!type_ok(v, type)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                    "member '%s' is %s, expected %s", path,
                    pp_json_type_desc(v), want_desc(type));
        return false;
    }
    *out = v;
    return true;
}

static bool int_of(json_object *v, const char *path, gint64 *out,
                   GError **errp)
{
    gint64 x = json_object_get_int64(v);

    /* json-c keeps integers above INT64_MAX as unsigned and saturates
     * the signed read. */
    if (x == G_MAXINT64 && json_object_get_uint64(v) > (guint64)G_MAXINT64) {
        g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                    "member '%s' is out of range", path);
        return false;
    }
    *out = x;
    return true;
}

#define DEFINE_PAIR(suffix, ctype, jtype, convert)                          \
    bool pp_json_get_##suffix(json_object *o, const char *path,             \
                              ctype *out, GError **errp)                    \
    {                                                                       \
        json_object *v;                                                     \
        if (!get(o, path, jtype, false, &v, errp)) {                        \
            return false;                                                   \
        }                                                                   \
        convert;                                                            \
    }                                                                       \
    bool pp_json_opt_##suffix(json_object *o, const char *path,             \
                              ctype *out, GError **errp)                    \
    {                                                                       \
        json_object *v;                                                     \
        if (!get(o, path, jtype, true, &v, errp)) {                         \
            return false;                                                   \
        }                                                                   \
        if (!v) {                                                           \
            return true;                                                    \
        }                                                                   \
        convert;                                                            \
    }

DEFINE_PAIR(str, const char *, json_type_string,
            *out = json_object_get_string(v); return true)
DEFINE_PAIR(int, gint64, json_type_int, return int_of(v, path, out, errp))
DEFINE_PAIR(bool, bool, json_type_boolean,
            *out = json_object_get_boolean(v); return true)
DEFINE_PAIR(num, double, json_type_double,
            *out = json_object_get_double(v); return true)
DEFINE_PAIR(obj, json_object *, json_type_object, *out = v; return true)
DEFINE_PAIR(arr, json_object *, json_type_array, *out = v; return true)
