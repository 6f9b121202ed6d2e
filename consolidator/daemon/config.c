/*
 * Consolidator configuration (see config.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "config.h"
#include "driver.h"
#include "guestlog.h"
#include "launcher.h"
#include "policy.h"
#include "pp-error.h"

#include <errno.h>
#include <math.h>
#include <string.h>

bool pp_mig_mode_parse(const char *s, PpMigMode *mode, GError **errp)
{
    if (strcmp(s, "precopy") == 0) {
        *mode = (PpMigMode){ PP_MIG_PRECOPY, 0 };
        return true;
    }
    if (strcmp(s, "postcopy") == 0) {
        *mode = (PpMigMode){ PP_MIG_POSTCOPY, 0 };
        return true;
    }
    if (strcmp(s, "postcopy-instant") == 0) {
        *mode = (PpMigMode){ PP_MIG_POSTCOPY_INSTANT, 0 };
        return true;
    }
    if (g_str_has_prefix(s, "postcopy-after=")) {
        const char *v = s + strlen("postcopy-after=");
        char *end;
        double d = g_ascii_strtod(v, &end);
        if (end != v && !*end && d >= 0 && d <= 3600) {
            *mode = (PpMigMode){ PP_MIG_POSTCOPY_AFTER, d };
            return true;
        }
    }
    g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                "invalid migration mode '%s' (expected precopy, postcopy, "
                "postcopy-after=SECONDS (at most 3600) or postcopy-instant)", s);
    return false;
}

char *pp_mig_mode_str(const PpMigMode *m)
{
    switch (m->kind) {
    case PP_MIG_PRECOPY:
        return g_strdup("precopy");
    case PP_MIG_POSTCOPY:
        return g_strdup("postcopy");
    case PP_MIG_POSTCOPY_INSTANT:
        return g_strdup("postcopy-instant");
    default:
        return g_strdup_printf("postcopy-after=%g", m->after_s);
    }
}

static void host_free(gpointer p)
{
    PpHostConfig *h = p;

    g_free(h->name);
    g_free(h->cpus);
    g_free(h->host_work_cpus);
    g_free(h->uri);
    g_free(h->peer_uri);
    g_free(h->migration_address);
    g_free(h->power_off);
    g_free(h->power_on);
    g_free(h);
}

static void vm_free(gpointer p)
{
    PpVmSpec *v = p;

    g_free(v->name);
    g_free(v->host);
    g_free(v->workload);
    g_free(v->address);
    g_free(v->mac);
    g_free(v);
}

void pp_config_free(PpConfig *c)
{
    if (!c) {
        return;
    }
    g_free(c->path);
    g_free(c->instance);
    g_free(c->driver);
    g_strfreev(c->domains);
    g_strfreev(c->no_relocate);
    g_free(c->metrics);
    g_free(c->state_dir);
    g_free(c->socket);
    g_free(c->query_socket);
    g_free(c->control_group);
    g_free(c->database);
    g_free(c->link_rate);
    g_free(c->qemu);
    g_free(c->kernel);
    g_free(c->initrd);
    g_free(c->accel);
    g_free(c->qemu_user);
    g_strfreev(c->firmware);
    g_free(c->policy_name);
    if (c->kf) {
        g_key_file_unref(c->kf);
    }
    if (c->hosts) {
        g_ptr_array_unref(c->hosts);
    }
    if (c->vms) {
        g_ptr_array_unref(c->vms);
    }
    g_free(c);
}

/* Parsing context: the raw text, to find line numbers for messages. */
typedef struct Parse {
    const char *path;
    const char *text;
    GKeyFile *kf;
    char *dir;
} Parse;

/* Line of "key =" inside [group] (or of [group] when key is NULL); 0 if
 * not found. */
static int line_of(const Parse *p, const char *group, const char *key)
{
    g_auto(GStrv) lines = g_strsplit(p->text, "\n", -1);
    g_autofree char *hdr = g_strdup_printf("[%s]", group);
    bool in = false;
    int found = 0;

    for (int i = 0; lines[i]; i++) {
        char *l = g_strstrip(lines[i]);
        if (*l == '[') {
            in = strcmp(l, hdr) == 0;
            if (in && !key) {
                return i + 1;
            }
            if (in) {
                found = found ? found : i + 1;
            }
            continue;
        }
        if (in && key) {
            size_t n = strlen(key);
            if (strncmp(l, key, n) == 0 &&
                (l[n] == '=' || l[n] == ' ' || l[n] == '\t')) {
                return i + 1;
            }
        }
    }
    return found;
}

static bool fail(const Parse *p, GError **errp, const char *group,
                 const char *key, const char *fmt, ...) G_GNUC_PRINTF(5, 6);
static bool fail(const Parse *p, GError **errp, const char *group,
                 const char *key, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;
    int line = line_of(p, group, key);

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (key) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "%s:%d: [%s] %s: %s",
                    p->path, line, group, key, msg);
    } else {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "%s:%d: [%s]: %s",
                    p->path, line, group, msg);
    }
    return false;
}

static char *get_str(const Parse *p, const char *group, const char *key,
                     const char *def)
{
    char *v = g_key_file_get_string(p->kf, group, key, NULL);

    if (!v) {
        return g_strdup(def);
    }
    g_strstrip(v);
    return v;
}

static char *get_path(const Parse *p, const char *group, const char *key,
                      const char *def)
{
    g_autofree char *v = get_str(p, group, key, def);

    if (!v || g_path_is_absolute(v)) {
        return g_steal_pointer(&v);
    }
    return g_canonicalize_filename(v, p->dir);
}

static bool get_double(const Parse *p, const char *group, const char *key,
                       double def, double min, double max, double *out,
                       GError **errp)
{
    g_autofree char *v = get_str(p, group, key, NULL);
    char *end;

    if (!v) {
        *out = def;
        return true;
    }
    *out = g_ascii_strtod(v, &end);
    if (end == v || *end || !isfinite(*out) || *out < min || *out > max) {
        return fail(p, errp, group, key, "'%s' is not a number from %g to %g",
                    v, min, max);
    }
    return true;
}

static bool get_u64(const Parse *p, const char *group, const char *key,
                    guint64 def, guint64 min, guint64 max, guint64 *out,
                    GError **errp)
{
    g_autofree char *v = get_str(p, group, key, NULL);
    char *end;

    if (!v) {
        *out = def;
        return true;
    }
    errno = 0;
    *out = g_ascii_strtoull(v, &end, 10);
    if (end == v || *end || errno || *v == '-' || *out < min || *out > max) {
        return fail(p, errp, group, key,
                    "'%s' is not an integer from %" G_GUINT64_FORMAT " to %"
                    G_GUINT64_FORMAT, v, min, max);
    }
    return true;
}

static bool get_bool(const Parse *p, const char *group, const char *key,
                     bool def, bool *out, GError **errp)
{
    g_autofree char *v = get_str(p, group, key, NULL);

    if (!v) {
        *out = def;
    } else if (!g_ascii_strcasecmp(v, "true") || !strcmp(v, "1") ||
               !g_ascii_strcasecmp(v, "yes")) {
        *out = true;
    } else if (!g_ascii_strcasecmp(v, "false") || !strcmp(v, "0") ||
               !g_ascii_strcasecmp(v, "no")) {
        *out = false;
    } else {
        return fail(p, errp, group, key, "'%s' is not true or false", v);
    }
    return true;
}

/* Every key of @group must be in @known. */
static bool check_keys(const Parse *p, const char *group,
                       const char *const *known, GError **errp)
{
    g_auto(GStrv) keys = g_key_file_get_keys(p->kf, group, NULL, NULL);

    for (char **k = keys; k && *k; k++) {
        if (!g_strv_contains(known, *k)) {
            return fail(p, errp, group, *k, "unknown key");
        }
    }
    return true;
}

static bool valid_name(const char *s, size_t max)
{
    if (!*s || strlen(s) > max) {
        return false;
    }
    for (const char *c = s; *c; c++) {
        if (!g_ascii_isalnum(*c) && *c != '-' && *c != '_') {
            return false;
        }
    }
    return true;
}

static bool parse_main(Parse *p, PpConfig *c, GError **errp)
{
    static const char *const known[] = {
        "name", "state_dir", "socket", "database", "sample_interval",
        "decide_interval", "decide_after", "retention", "max_concurrent_moves", "mode",
        "downtime_limit", "max_bandwidth", "autopilot", "link_rate", "qemu",
        "kernel", "initrd", "accel", "firmware", "hot_first", "hot_track_ms",
        "send_buffer", "fault_window", "pacing", "driver", "domains",
        "require_metadata", "peer_to_peer", "metrics", "recover_timeout",
        "query_socket", "control_group", "sandbox", "qemu_user", "guest_net",
        "no_relocate", NULL
    };
    const char *g = "consolidator";
    g_autofree char *mode = NULL;
    guint64 u;

    if (!g_key_file_has_group(p->kf, g)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "%s: no [consolidator] section", p->path);
        return false;
    }
    if (!check_keys(p, g, known, errp)) {
        return false;
    }
    c->driver = get_str(p, g, "driver", "local");
    g_autoptr(GError) derr = NULL;
    if (!pp_driver_find(c->driver, &derr)) {
        return fail(p, errp, g, "driver", "%s", derr->message);
    }
    g_autofree char *domains = get_str(p, g, "domains", "*");
    c->domains = g_strsplit_set(domains, ", ", -1);
    g_autofree char *fixed = get_str(p, g, "no_relocate", NULL);
    if (fixed) {
        g_auto(GStrv) parts = g_strsplit_set(fixed, ", ", -1);
        g_autoptr(GPtrArray) pats = g_ptr_array_new();
        for (char **f = parts; *f; f++) {
            if (**f) {
                g_ptr_array_add(pats, g_strdup(*f));
            }
        }
        g_ptr_array_add(pats, NULL);
        c->no_relocate = (char **)g_ptr_array_free(g_steal_pointer(&pats),
                                                   FALSE);
    }
    if (!get_bool(p, g, "require_metadata", false, &c->require_metadata,
                  errp) ||
        !get_bool(p, g, "peer_to_peer", true, &c->peer_to_peer, errp)) {
        return false;
    }
    c->metrics = get_str(p, g, "metrics", NULL);
    if (c->metrics && !g_regex_match_simple("^(\\[[0-9a-fA-F:.]+\\]|"
                                            "[0-9.]+):[0-9]{1,5}$",
                                            c->metrics, 0, 0)) {
        return fail(p, errp, g, "metrics", "'%s' is not ADDRESS:PORT, e.g. "
                    "127.0.0.1:9477", c->metrics);
    }
    c->instance = get_str(p, g, "name", "pp");
    for (const char *s = c->instance; *s; s++) {
        if (!g_ascii_isdigit(*s) && !g_ascii_islower(*s)) {
            return fail(p, errp, g, "name", "'%s' must be lower-case letters "
                        "and digits", c->instance);
        }
    }
    if (!*c->instance || strlen(c->instance) > 8) {
        return fail(p, errp, g, "name", "'%s' must have 1 to 8 characters",
                    c->instance);
    }
    g_autofree char *def_state = g_strdup_printf("/var/lib/postpack/%s",
                                                 c->instance);
    c->state_dir = get_path(p, g, "state_dir", def_state);
    g_autofree char *def_sock = g_build_filename(c->state_dir, "control.sock",
                                                 NULL);
    g_autofree char *def_db = g_build_filename(c->state_dir, "postpack.db",
                                               NULL);
    c->socket = get_path(p, g, "socket", def_sock);
    g_autofree char *def_qsock = g_build_filename(c->state_dir, "query.sock",
                                                  NULL);
    g_autofree char *qs = get_str(p, g, "query_socket", NULL);
    if (!qs || strcmp(qs, "none") != 0) {
        c->query_socket = get_path(p, g, "query_socket", def_qsock);
        if (strcmp(c->query_socket, c->socket) == 0) {
            return fail(p, errp, g, "query_socket", "'%s' is also the control "
                        "socket", c->query_socket);
        }
    }
    c->control_group = get_str(p, g, "control_group", NULL);
    if (c->control_group && !*c->control_group) {
        g_clear_pointer(&c->control_group, g_free);
    }
    c->database = get_path(p, g, "database", def_db);
    if (!get_double(p, g, "sample_interval", 1, 0.1, 60, &c->sample_interval,
                    errp) ||
        !get_double(p, g, "decide_interval", 1, 0.1, 3600,
                    &c->decide_interval, errp) ||
        !get_double(p, g, "decide_after", -1, 0, 86400, &c->decide_after,
                    errp) ||
        !get_double(p, g, "retention", 86400, 60, 1e9, &c->retention, errp) ||
        !get_u64(p, g, "max_concurrent_moves", 1, 1, 64, &u, errp) ||
        !get_u64(p, g, "downtime_limit", 300, 1, 600000, &c->downtime_ms,
                 errp) ||
        !get_u64(p, g, "max_bandwidth", 0, 0, 1 << 20, &c->max_bandwidth,
                 errp) ||
        !get_u64(p, g, "recover_timeout", 600, 0, 86400 * 7,
                 &c->recover_timeout_s, errp) ||
        !get_bool(p, g, "autopilot", true, &c->autopilot, errp) ||
        !get_bool(p, g, "guest_net", false, &c->guest_net, errp) ||
        !get_bool(p, g, "sandbox", true, &c->sandbox, errp) ||
        !get_bool(p, g, "hot_first", true, &c->hot_first, errp) ||
        !get_u64(p, g, "hot_track_ms", 300, 0, 60000, &c->hot_track_ms,
                 errp) ||
        !get_u64(p, g, "send_buffer", 98304, 0, 64 << 20, &c->send_buffer,
                 errp) ||
        !get_u64(p, g, "fault_window", 64, 1, 512, &c->fault_window, errp) ||
        !get_u64(p, g, "pacing", 96, 0, 100, &c->pacing_pct, errp)) {
        return false;
    }
    c->max_moves = (guint)u;
    if (c->guest_net && strcmp(c->driver, "local") != 0) {
        return fail(p, errp, g, "guest_net", "the %s driver's VMs have the "
                    "networks their hosts give them; guest_net is the local "
                    "driver's guest LAN", c->driver);
    }
    mode = get_str(p, g, "mode", "postcopy");
    g_autoptr(GError) merr = NULL;
    if (!pp_mig_mode_parse(mode, &c->mode, &merr)) {
        return fail(p, errp, g, "mode", "%s", merr->message);
    }
    c->link_rate = get_str(p, g, "link_rate", "1gbit");
    if (strcmp(c->link_rate, "none") != 0 &&
        !g_regex_match_simple("^[0-9]+(\\.[0-9]+)?[kmg]?bit$", c->link_rate,
                              0, 0)) {
        return fail(p, errp, g, "link_rate", "'%s' is not a tc rate like "
                    "1gbit or 100mbit, or none", c->link_rate);
    }
    if (strcmp(c->link_rate, "none") != 0) {
        /* tc's units: kbit = 1000 bit/s, and so on. */
        char *end = NULL;
        double bits = g_ascii_strtod(c->link_rate, &end);

        bits *= *end == 'k' ? 1e3 : *end == 'm' ? 1e6 : *end == 'g' ? 1e9 : 1;
        if (!(bits >= 1e3 && bits <= 1e12)) {
            return fail(p, errp, g, "link_rate", "'%s' is not a rate from "
                        "1kbit to 1000gbit", c->link_rate);
        }
        c->pacing_rate = (guint64)(bits / 8 * c->pacing_pct / 100);
        c->link_bytes = bits / 8;
    }
    c->qemu = get_path(p, g, "qemu", "build/qemu/qemu-system-x86_64");
    c->kernel = get_path(p, g, "kernel", "build/guest/vmlinuz");
    c->initrd = get_path(p, g, "initrd", "build/guest/initrd.img");
    c->qemu_user = get_str(p, g, "qemu_user", NULL);
    if (c->qemu_user && strcmp(c->driver, "local") != 0) {
        return fail(p, errp, g, "qemu_user", "is for the local driver (libvirt "
                    "runs QEMU as its qemu.conf says)");
    }
    c->accel = get_str(p, g, "accel", "tcg");
    if (strcmp(c->accel, "tcg") != 0 && strcmp(c->accel, "kvm") != 0) {
        return fail(p, errp, g, "accel", "'%s' is not tcg or kvm", c->accel);
    }
    g_autofree char *fw = get_str(p, g, "firmware",
                                  "/usr/share/seabios;/usr/share/qemu;"
                                  "/usr/lib/ipxe/qemu");
    c->firmware = g_strsplit(fw, ";", -1);
    return true;
}

static bool parse_policy(Parse *p, PpConfig *c, GError **errp)
{
    g_autoptr(GError) err = NULL;
    const PpPolicyOps *ops;
    void *state;

    c->policy_name = get_str(p, "policy", "name", "threshold");
    ops = pp_policy_find(c->policy_name, &err);
    if (!ops) {
        return fail(p, errp, "policy", "name", "%s", err->message);
    }
    /* Validate the policy's settings now, so a bad one stops the start. */
    g_autofree char *key = NULL;
    state = pp_policy_create(ops, p->kf, "policy", &key, &err);
    if (!state) {
        /* The policy says which key is at fault; add file and line (the
         * group's line when no single key is). */
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "%s:%d: %s", p->path,
                    line_of(p, "policy", key), err->message);
        return false;
    }
    ops->destroy(state);
    return true;
}

static bool parse_host(Parse *p, PpConfig *c, const char *group,
                       const char *name, GError **errp)
{
    static const char *const local_keys[] = {
        "cpus", "host_work_cpus", "memory", "power_off", "power_on",
        "wake_delay", "min_awake", "watts", NULL
    };
    static const char *const libvirt_keys[] = {
        "uri", "peer_uri", "migration_address", "cpus", "memory",
        "power_off", "power_on", "wake_delay", "min_awake", "watts", NULL
    };
    bool lv = strcmp(c->driver, "libvirt") == 0;
    g_autoptr(GError) err = NULL;
    PpHostConfig *h;
    cpu_set_t set;

    if (!valid_name(name, 12)) {
        return fail(p, errp, group, NULL, "host name '%s' must be 1 to 12 "
                    "letters, digits, - or _", name);
    }
    if (pp_config_host(c, name)) {
        return fail(p, errp, group, NULL, "host '%s' is defined twice", name);
    }
    if (!lv && (strcmp(name, "sw") == 0 || strcmp(name, "client") == 0)) {
        return fail(p, errp, group, NULL, "host name '%s' is taken by the "
                    "emulated network (its switch and client namespaces)",
                    name);
    }
    if (lv && g_key_file_has_key(p->kf, group, "host_work_cpus", NULL)) {
        return fail(p, errp, group, "host_work_cpus", "the libvirt driver "
                    "leaves QEMU's threads to libvirt (a domain's "
                    "<emulatorpin>): only the local driver places them");
    }
    if (!check_keys(p, group, lv ? libvirt_keys : local_keys, errp)) {
        return false;
    }
    h = g_new0(PpHostConfig, 1);
    g_ptr_array_add(c->hosts, h);
    h->name = g_strdup(name);
    h->cpus = get_str(p, group, "cpus", NULL);
    if (!h->cpus && !lv) {
        return fail(p, errp, group, NULL, "missing key 'cpus'");
    }
    if (h->cpus) {
        if (!pp_cpuset_parse(h->cpus, &set, &err)) {
            return fail(p, errp, group, "cpus", "%s", err->message);
        }
        h->ncpus = (guint)CPU_COUNT(&set);
    }
    h->host_work_cpus = get_str(p, group, "host_work_cpus", NULL);
    if (h->host_work_cpus &&
        !pp_cpuset_parse(h->host_work_cpus, &set, &err)) {
        return fail(p, errp, group, "host_work_cpus", "%s", err->message);
    }
    if (lv) {
        h->uri = get_str(p, group, "uri", NULL);
        if (!h->uri || !*h->uri) {
            return fail(p, errp, group, NULL, "missing key 'uri' (a libvirt "
                        "URI such as qemu+ssh://root@%s/system)", name);
        }
        h->peer_uri = get_str(p, group, "peer_uri", h->uri);
        h->migration_address = get_str(p, group, "migration_address", NULL);
        if (h->migration_address &&
            !g_regex_match_simple("^[A-Za-z0-9.:_\\[\\]-]+$",
                                  h->migration_address, 0, 0)) {
            return fail(p, errp, group, "migration_address", "'%s' is not "
                        "a host name or address", h->migration_address);
        }
    }
    h->power_off = get_str(p, group, "power_off", NULL);
    h->power_on = get_str(p, group, "power_on", NULL);
    if ((h->power_off && !*h->power_off) || (h->power_on && !*h->power_on)) {
        return fail(p, errp, group, h->power_off && !*h->power_off ?
                    "power_off" : "power_on", "an empty command");
    }
    if (!h->power_off != !h->power_on) {
        return fail(p, errp, group, h->power_off ? "power_on" : "power_off",
                    "power_off and power_on go together");
    }
    g_autofree char *watts = get_str(p, group, "watts", NULL);
    if (watts) {
        g_auto(GStrv) w = g_strsplit(watts, ",", -1);
        double prev = 0;
        if (g_strv_length(w) != 11) {
            return fail(p, errp, group, "watts", "expected 11 numbers (watts "
                        "at 0, 10, ..., 100 %% CPU), comma-separated");
        }
        for (int i = 0; i < 11; i++) {
            char *end;
            double v = g_ascii_strtod(g_strstrip(w[i]), &end);
            if (end == w[i] || *end || !(v >= prev && v <= 1e5)) {
                return fail(p, errp, group, "watts", "'%s' is not a number "
                            "of watts, at least the one before", w[i]);
            }
            h->power.watts[i] = prev = v;
        }
        h->power.name = h->name;
        h->has_power = true;
    }
    return get_double(p, group, "wake_delay", 30, 0, 3600, &h->wake_delay,
                      errp) &&
           get_double(p, group, "min_awake", 300, 0, 86400, &h->min_awake,
                      errp) &&
           get_u64(p, group, "memory", 0, 0, G_MAXUINT32, &h->mem_mib, errp);
}

static bool valid_address(const char *a);

static bool parse_vm(Parse *p, PpConfig *c, const char *group,
                     const char *name, GError **errp)
{
    static const char *const known[] = { "memory", "vcpus", "host",
                                         "workload", "fill", "address",
                                         "mac", NULL };
    guint64 vcpus;
    PpVmSpec *v;

    if (!valid_name(name, 32)) {
        return fail(p, errp, group, NULL, "VM name '%s' must be 1 to 32 "
                    "letters, digits, - or _", name);
    }
    if (pp_config_vm(c, name)) {
        return fail(p, errp, group, NULL, "VM '%s' is defined twice", name);
    }
    if (!check_keys(p, group, known, errp)) {
        return false;
    }
    v = g_new0(PpVmSpec, 1);
    g_ptr_array_add(c->vms, v);
    v->name = g_strdup(name);
    if (!get_u64(p, group, "memory", 512, 64, 1 << 20, &v->mem_mib, errp) ||
        !get_u64(p, group, "vcpus", 1, 1, 64, &vcpus, errp) ||
        !get_u64(p, group, "fill", 0, 0, 1 << 20, &v->fill_mib, errp)) {
        return false;
    }
    v->vcpus = (guint)vcpus;
    if (v->fill_mib >= v->mem_mib) {
        return fail(p, errp, group, "fill", "%" G_GUINT64_FORMAT " MiB does "
                    "not fit in the VM's %" G_GUINT64_FORMAT " MiB",
                    v->fill_mib, v->mem_mib);
    }
    v->host = get_str(p, group, "host", NULL);
    if (!v->host) {
        return fail(p, errp, group, NULL, "missing key 'host'");
    }
    v->workload = get_str(p, group, "workload", NULL);
    g_autoptr(GError) err = NULL;
    g_autofree char *cmdline = pp_guest_cmdline(v->workload, v->fill_mib,
                                                NULL, &err);
    if (!cmdline) {
        return fail(p, errp, group, "workload", "%s", err->message);
    }
    v->address = get_str(p, group, "address", NULL);
    v->mac = get_str(p, group, "mac", NULL);
    if ((v->address || v->mac) && !c->guest_net) {
        return fail(p, errp, group, v->address ? "address" : "mac",
                    "a VM has a network interface only with guest_net = true "
                    "in [consolidator]");
    }
    if (v->address && !valid_address(v->address)) {
        return fail(p, errp, group, "address", "'%s' is not an IPv4 address "
                    "with a prefix length in 10.78.0.0/24, the guest LAN "
                    "(e.g. 10.78.0.11/24)", v->address);
    }
    if (v->mac && !g_regex_match_simple("^[0-9a-f]{2}(:[0-9a-f]{2}){5}$",
                                        v->mac, G_REGEX_CASELESS, 0)) {
        return fail(p, errp, group, "mac", "'%s' is not a MAC address "
                    "(xx:xx:xx:xx:xx:xx)", v->mac);
    }
    if (v->mac && (g_ascii_xdigit_value(v->mac[1]) & 1)) {
        return fail(p, errp, group, "mac", "'%s' is a multicast address",
                    v->mac);
    }
    return true;
}

/*
 * The guest LAN (pp-net guestnet) is 10.78.0.0/24; its .254 is the client
 * namespace's.  A VM's address is one of .1 to .253 there.
 */
static bool valid_address(const char *a)
{
    g_autoptr(GMatchInfo) m = NULL;
    g_autoptr(GRegex) re = g_regex_new("^10\\.78\\.0\\.([0-9]{1,3})/24$", 0,
                                       0, NULL);

    if (!g_regex_match(re, a, 0, &m)) {
        return false;
    }
    g_autofree char *n = g_match_info_fetch(m, 1);
    guint64 v = g_ascii_strtoull(n, NULL, 10);
    return v >= 1 && v <= 253;
}

/* guest_net: every VM's address and MAC, given or derived, and unique. */
static bool assign_guest_net(Parse *p, PpConfig *c, GError **errp)
{
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash,
                                                       g_str_equal, g_free,
                                                       NULL);

    for (guint i = 0; i < c->vms->len; i++) {
        PpVmSpec *v = c->vms->pdata[i];
        g_autofree char *group = g_strdup_printf("vm %s", v->name);
        if (!v->address) {
            if (10 + i > 253) {
                return fail(p, errp, group, NULL, "no address left for it "
                            "on the guest LAN: give it one (address =)");
            }
            v->address = g_strdup_printf("10.78.0.%u/24", 10 + i);
        }
        if (!v->mac) {
            g_autofree char *key = g_strdup_printf("%s/%s", c->instance,
                                                   v->name);
            guint h = g_str_hash(key);
            v->mac = g_strdup_printf("52:54:00:%02x:%02x:%02x",
                                     (h >> 16) & 0xff, (h >> 8) & 0xff,
                                     h & 0xff);
        }
        g_autofree char *ip = g_strndup(v->address,
                                        strcspn(v->address, "/"));
        g_autofree char *mac = g_ascii_strdown(v->mac, -1);
        if (!g_hash_table_add(seen, g_steal_pointer(&ip))) {
            return fail(p, errp, group, "address", "%s is another VM's too",
                        v->address);
        }
        if (!g_hash_table_add(seen, g_steal_pointer(&mac))) {
            return fail(p, errp, group, "mac", "%s is another VM's too",
                        v->mac);
        }
    }
    return true;
}

PpConfig *pp_config_parse(const char *text, const char *path, GError **errp)
{
    g_autoptr(PpConfig) c = g_new0(PpConfig, 1);
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) groups = NULL;
    Parse p = { .path = path, .text = text };

    c->path = g_strdup(path);
    c->kf = g_key_file_new();
    c->hosts = g_ptr_array_new_with_free_func(host_free);
    c->vms = g_ptr_array_new_with_free_func(vm_free);
    p.kf = c->kf;
    if (!g_key_file_load_from_data(c->kf, text, (gsize)-1, G_KEY_FILE_NONE,
                                   &err)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "%s: %s", path,
                    err->message);
        return NULL;
    }
    g_autofree char *abs = g_canonicalize_filename(path, NULL);
    g_autofree char *dir = g_path_get_dirname(abs);
    p.dir = dir;

    if (!parse_main(&p, c, errp) || !parse_policy(&p, c, errp)) {
        return NULL;
    }
    /* GKeyFile merges repeated sections silently; refuse them instead. */
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash,
                                                       g_str_equal, g_free,
                                                       NULL);
    for (int i = 0; lines[i]; i++) {
        char *l = g_strstrip(lines[i]);
        if (*l == '[' && !g_hash_table_add(seen, g_strdup(l))) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "%s:%d: %s: section is defined twice", path, i + 1, l);
            return NULL;
        }
    }
    groups = g_key_file_get_groups(c->kf, NULL);
    for (char **g = groups; *g; g++) {
        if (strcmp(*g, "consolidator") == 0 || strcmp(*g, "policy") == 0) {
            continue;
        }
        if (g_str_has_prefix(*g, "host ")) {
            if (!parse_host(&p, c, *g, *g + 5, errp)) {
                return NULL;
            }
        } else if (g_str_has_prefix(*g, "vm ")) {
            if (strcmp(c->driver, "local") != 0) {
                fail(&p, errp, *g, NULL, "the %s driver finds its VMs on the "
                     "hosts; [vm NAME] sections are for the local driver",
                     c->driver);
                return NULL;
            }
            if (!parse_vm(&p, c, *g, *g + 3, errp)) {
                return NULL;
            }
        } else {
            fail(&p, errp, *g, NULL, "unknown section (expected consolidator, "
                 "policy, 'host NAME' or 'vm NAME')");
            return NULL;
        }
    }
    if (c->hosts->len == 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "%s: no [host NAME] section", path);
        return NULL;
    }
    for (guint i = 0; i < c->vms->len; i++) {
        PpVmSpec *v = c->vms->pdata[i];
        g_autofree char *group = g_strdup_printf("vm %s", v->name);
        if (!pp_config_host(c, v->host)) {
            fail(&p, errp, group, "host", "no host '%s'", v->host);
            return NULL;
        }
    }
    if (c->guest_net && !assign_guest_net(&p, c, errp)) {
        return NULL;
    }
    return g_steal_pointer(&c);
}

PpConfig *pp_config_load(const char *path, GError **errp)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;

    if (!g_file_get_contents(path, &text, NULL, &err)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "cannot read '%s': %s", path,
                    err->message);
        return NULL;
    }
    return pp_config_parse(text, path, errp);
}

const PpHostConfig *pp_config_host(const PpConfig *c, const char *name)
{
    for (guint i = 0; i < c->hosts->len; i++) {
        PpHostConfig *h = c->hosts->pdata[i];
        if (strcmp(h->name, name) == 0) {
            return h;
        }
    }
    return NULL;
}

bool pp_name_matches(char *const *patterns, const char *name)
{
    for (char *const *p = patterns; p && *p; p++) {
        if (**p && g_pattern_match_simple(*p, name)) {
            return true;
        }
    }
    return false;
}

bool pp_config_no_relocate(const PpConfig *c, const char *vm)
{
    return pp_name_matches(c->no_relocate, vm);
}

const PpVmSpec *pp_config_vm(const PpConfig *c, const char *name)
{
    for (guint i = 0; i < c->vms->len; i++) {
        PpVmSpec *v = c->vms->pdata[i];
        if (strcmp(v->name, name) == 0) {
            return v;
        }
    }
    return NULL;
}

static bool same_str(const char *a, const char *b)
{
    return g_strcmp0(a, b) == 0;
}

static bool same_strv(char **a, char **b)
{
    if (!a || !b) {
        return a == b;
    }
    return g_strv_equal((const char *const *)a, (const char *const *)b);
}

bool pp_config_reloadable(const PpConfig *o, const PpConfig *n, GError **errp)
{
    const char *what = NULL;

#define S(f) (!what && !same_str(o->f, n->f) ? (what = #f) : NULL)
#define V(f) (!what && o->f != n->f ? (what = #f) : NULL)
    S(driver); S(instance); S(state_dir); S(socket); S(query_socket);
    S(control_group); S(database); S(metrics); S(link_rate); S(qemu);
    S(kernel); S(initrd); S(accel); S(qemu_user);
    V(require_metadata); V(peer_to_peer); V(sandbox); V(guest_net);
    if (!what && !same_strv(o->domains, n->domains)) {
        what = "domains";
    }
    if (!what && !same_strv(o->firmware, n->firmware)) {
        what = "firmware";
    }
    if (!what && o->hosts->len != n->hosts->len) {
        what = "the [host] sections";
    }
    for (guint i = 0; !what && i < o->hosts->len; i++) {
        const PpHostConfig *a = o->hosts->pdata[i], *b = n->hosts->pdata[i];
        if (!same_str(a->name, b->name) || !same_str(a->cpus, b->cpus) ||
            !same_str(a->host_work_cpus, b->host_work_cpus) ||
            a->mem_mib != b->mem_mib || !same_str(a->uri, b->uri) ||
            !same_str(a->peer_uri, b->peer_uri) ||
            !same_str(a->migration_address, b->migration_address) ||
            !same_str(a->power_off, b->power_off) ||
            !same_str(a->power_on, b->power_on) ||
            a->wake_delay != b->wake_delay || a->min_awake != b->min_awake ||
            a->has_power != b->has_power ||
            memcmp(a->power.watts, b->power.watts, sizeof(a->power.watts))) {
            what = "the [host] sections";
        }
    }
    if (!what && o->vms->len != n->vms->len) {
        what = "the [vm] sections";
    }
    for (guint i = 0; !what && i < o->vms->len; i++) {
        const PpVmSpec *a = o->vms->pdata[i], *b = n->vms->pdata[i];
        if (!same_str(a->name, b->name) || !same_str(a->host, b->host) ||
            a->mem_mib != b->mem_mib || a->vcpus != b->vcpus ||
            !same_str(a->workload, b->workload) || a->fill_mib != b->fill_mib ||
            !same_str(a->address, b->address) || !same_str(a->mac, b->mac)) {
            what = "the [vm] sections";
        }
    }
#undef S
#undef V
    if (what) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "%s: %s changed, which needs a restart; nothing was "
                    "applied", n->path, what);
        return false;
    }
    return true;
}

void pp_config_take_reloadable(PpConfig *o, PpConfig *n)
{
    GKeyFile *kf = o->kf;
    char *policy = o->policy_name;

    o->sample_interval = n->sample_interval;
    o->decide_interval = n->decide_interval;
    o->decide_after = n->decide_after;
    o->retention = n->retention;
    o->max_moves = n->max_moves;
    o->mode = n->mode;
    o->downtime_ms = n->downtime_ms;
    o->max_bandwidth = n->max_bandwidth;
    o->recover_timeout_s = n->recover_timeout_s;
    o->hot_first = n->hot_first;
    o->hot_track_ms = n->hot_track_ms;
    o->send_buffer = n->send_buffer;
    o->fault_window = n->fault_window;
    o->pacing_pct = n->pacing_pct;
    o->pacing_rate = n->pacing_rate;
    o->autopilot = n->autopilot;
    g_strfreev(o->no_relocate);
    o->no_relocate = g_steal_pointer(&n->no_relocate);
    o->policy_name = n->policy_name;
    o->kf = n->kf;
    n->policy_name = policy;
    n->kf = kf;
}
