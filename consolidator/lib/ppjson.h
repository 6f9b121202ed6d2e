/*
 * Typed reads of JSON that comes from a peer we do not trust: QEMU's
 * monitor, libvirt's monitor pass-through, control-socket clients.
 *
 * json-c's own getters coerce: json_object_get_string() of an integer is
 * its decimal text, json_object_get_int64() of a string is 0 or a parse,
 * and of a JSON null (which json_object_object_get_ex() hands out as a
 * NULL pointer) is 0 or NULL.  Code that acts on such a value would act on
 * something the peer never said, or dereference NULL.  These accessors
 * say exactly one of: here is the value, of the type asked for; or the
 * peer broke the protocol (PP_ERROR_PROTOCOL, naming the member and what
 * was there instead).  A caller turns that error into a protocol error for
 * the one VM or client concerned.
 *
 * @path is a member name, or member names joined by '.' to reach into
 * nested objects ("ram.transferred").  QMP and our control protocol never
 * use '.' inside a member name.
 *
 *   pp_json_get_*  the member must be there, non-null, of the type;
 *   pp_json_opt_*  an absent member (or absent parent) is fine: true is
 *                  returned and *@out is left alone; null or another type
 *                  is still an error.
 *
 * Integers: a JSON integer in int64 range (json-c saturates larger ones,
 * which we refuse as out of range).  Numbers (_num): an integer or a
 * double, as a double.  Strings are borrowed from @o.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_PPJSON_H
#define PP_PPJSON_H

#include <glib.h>
#include <json-c/json.h>
#include <stdbool.h>

bool pp_json_get_str(json_object *o, const char *path, const char **out,
                     GError **errp);
bool pp_json_get_int(json_object *o, const char *path, gint64 *out,
                     GError **errp);
bool pp_json_get_bool(json_object *o, const char *path, bool *out,
                      GError **errp);
bool pp_json_get_num(json_object *o, const char *path, double *out,
                     GError **errp);
bool pp_json_get_obj(json_object *o, const char *path, json_object **out,
                     GError **errp);
bool pp_json_get_arr(json_object *o, const char *path, json_object **out,
                     GError **errp);

bool pp_json_opt_str(json_object *o, const char *path, const char **out,
                     GError **errp);
bool pp_json_opt_int(json_object *o, const char *path, gint64 *out,
                     GError **errp);
bool pp_json_opt_bool(json_object *o, const char *path, bool *out,
                      GError **errp);
bool pp_json_opt_num(json_object *o, const char *path, double *out,
                     GError **errp);
bool pp_json_opt_obj(json_object *o, const char *path, json_object **out,
                     GError **errp);
bool pp_json_opt_arr(json_object *o, const char *path, json_object **out,
                     GError **errp);

/*
 * Check a value itself (an array element, a reply's "return"): @what
 * names it in the message ("element 3 of 'vcpus'").  NULL is JSON null.
 */
bool pp_json_is(json_object *v, json_type type, const char *what,
                GError **errp);

/* "an integer", "a string", "null", ... for messages. */
const char *pp_json_type_desc(json_object *v);

#endif
