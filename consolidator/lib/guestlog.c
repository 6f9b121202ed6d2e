/*
 * Parser for the guest workloads' console records (see guestlog.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "guestlog.h"
#include "pp-error.h"

#include <math.h>
#include <string.h>

void pp_record_free(PpRecord *r)
{
    if (!r) {
        return;
    }
    g_free(r->prog);
    g_free(r->event);
    if (r->kv) {
        g_hash_table_unref(r->kv);
    }
    g_free(r);
}

static PpRecord *parse_line(const char *line)
{
    g_auto(GStrv) tok = NULL;
    PpRecord *r;
    guint n;

    /* The record may follow other console output on the same line. */
    const char *p = strstr(line, "PP ");
    if (!p || (p != line && p[-1] != ' ' && p[-1] != '\r')) {
        return NULL;
    }
    tok = g_strsplit_set(p, " \t\r", -1);
    n = g_strv_length(tok);
    if (n < 3 || !*tok[1] || !*tok[2] || strchr(tok[1], '=') ||
        strchr(tok[2], '=')) {
        return NULL;
    }
    r = g_new0(PpRecord, 1);
    r->prog = g_strdup(tok[1]);
    r->event = g_strdup(tok[2]);
    r->t = NAN;
    r->kv = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (guint i = 3; i < n; i++) {
        char *eq = strchr(tok[i], '=');
        if (!eq || eq == tok[i]) {
            continue;
        }
        g_hash_table_replace(r->kv, g_strndup(tok[i], eq - tok[i]),
                             g_strdup(eq + 1));
    }
    const char *t = g_hash_table_lookup(r->kv, "t");
    if (t) {
        char *end;
        double v = g_ascii_strtod(t, &end);
        if (end != t && !*end) {
            r->t = v;
        }
    }
    return r;
}

GPtrArray *pp_records_parse(const char *text)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(
        (GDestroyNotify)pp_record_free);
    g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);

    for (char **l = lines; *l; l++) {
        PpRecord *r = parse_line(*l);
        if (r) {
            g_ptr_array_add(out, r);
        }
    }
    return out;
}

GPtrArray *pp_records_load(const char *path)
{
    g_autofree char *data = NULL;

    g_file_get_contents(path, &data, NULL, NULL);
    return pp_records_parse(data);
}

const char *pp_record_get(const PpRecord *r, const char *key)
{
    return g_hash_table_lookup(r->kv, key);
}

gint64 pp_record_get_int(const PpRecord *r, const char *key, gint64 def)
{
    const char *v = pp_record_get(r, key);
    char *end;
    gint64 x;

    if (!v) {
        return def;
    }
    x = g_ascii_strtoll(v, &end, 0);
    return (end == v || *end) ? def : x;
}

int pp_records_find(GPtrArray *records, guint from, const char *prog,
                    const char *event)
{
    for (guint i = from; i < records->len; i++) {
        PpRecord *r = records->pdata[i];
        if ((!prog || strcmp(r->prog, prog) == 0) &&
            (!event || strcmp(r->event, event) == 0)) {
            return (int)i;
        }
    }
    return -1;
}

char *pp_guest_cmdline(const char *workload, guint64 fill_mib,
                       const char *net_addr, GError **errp)
{
    g_autoptr(GString) s = g_string_new("console=ttyS0 quiet panic=-1");

    if (net_addr && !g_regex_match_simple(
            "^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$", net_addr, 0, 0)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "guest address '%s' "
                    "is not an IPv4 address with a prefix length "
                    "(A.B.C.D/P)", net_addr);
        return NULL;
    }

    if (workload) {
        g_auto(GStrv) w = NULL;
        for (const char *c = workload; *c; c++) {
            if (*c == '+' || *c == '"' || *c == '\'' || *c == '\\' ||
                g_ascii_iscntrl(*c)) {
                g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                            "workload '%s' contains '%c', which the guest's "
                            "command line cannot carry", workload, *c);
                return NULL;
            }
        }
        w = g_strsplit_set(workload, " \t", -1);
        GPtrArray *args = g_ptr_array_new();
        for (char **a = w; *a; a++) {
            if (**a) {
                g_ptr_array_add(args, *a);
            }
        }
        if (args->len == 0) {
            g_ptr_array_unref(args);
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "empty workload");
            return NULL;
        }
        g_string_append_printf(s, " pp.wl=%s", (char *)args->pdata[0]);
        if (args->len > 1) {
            g_ptr_array_add(args, NULL);
            g_autofree char *joined = g_strjoinv("+",
                                                 (char **)args->pdata + 1);
            g_string_append_printf(s, " pp.args=%s", joined);
        }
        g_ptr_array_unref(args);
    }
    if (fill_mib) {
        g_string_append_printf(s, " pp.fill=%" G_GUINT64_FORMAT, fill_mib);
    }
    if (net_addr) {
        g_string_append_printf(s, " pp.net=%s", net_addr);
    }
    return g_string_free(g_steal_pointer(&s), FALSE);
}
