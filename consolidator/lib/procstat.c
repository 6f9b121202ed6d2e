/*
 * CPU accounting from /proc (see procstat.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "procstat.h"
#include "pp-error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

bool pp_schedstat_parse(const char *text, guint64 *ns)
{
    char *end;

    if (!text || !g_ascii_isdigit(*text)) {
        return false;
    }
    *ns = g_ascii_strtoull(text, &end, 10);
    return *end == ' ' || *end == '\n' || *end == '\0';
}

bool pp_thread_cpu_ns(pid_t pid, pid_t tid, guint64 *ns, GError **errp)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/task/%d/schedstat",
                                            (int)pid, (int)tid);
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;

    if (!g_file_get_contents(path, &text, NULL, &err)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "cannot read '%s': %s",
                    path, err->message);
        return false;
    }
    if (!pp_schedstat_parse(text, ns)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_PROTOCOL,
                    "unexpected contents of '%s'", path);
        return false;
    }
    return true;
}

bool pp_process_cpu_ns(pid_t pid, guint64 *ns, GError **errp)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/task", (int)pid);
    g_autoptr(GError) err = NULL;
    g_autoptr(GDir) d = g_dir_open(dir, 0, &err);
    const char *name;

    *ns = 0;
    if (!d) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "cannot read '%s': %s", dir,
                    err->message);
        return false;
    }
    while ((name = g_dir_read_name(d))) {
        guint64 t;
        /* A thread may exit between readdir and read: skip it. */
        if (pp_thread_cpu_ns(pid, (pid_t)atoi(name), &t, NULL)) {
            *ns += t;
        }
    }
    return true;
}

bool pp_cpustat_parse(const char *text, const cpu_set_t *set,
                      guint64 *busy, guint64 *total)
{
    g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
    bool any = false;

    *busy = *total = 0;
    for (char **l = lines; *l; l++) {
        unsigned cpu;
        unsigned long long v[8] = { 0 };
        if (strncmp(*l, "cpu", 3) != 0 || !g_ascii_isdigit((*l)[3])) {
            continue;
        }
        if (sscanf(*l, "cpu%u %llu %llu %llu %llu %llu %llu %llu %llu", &cpu,
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]) < 5 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, set)) {
            continue;
        }
        /* user nice system idle iowait irq softirq steal */
        guint64 b = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        *busy += b;
        *total += b + v[3] + v[4];
        any = true;
    }
    return any;
}

bool pp_cpustat_read(const cpu_set_t *set, guint64 *busy, guint64 *total,
                     GError **errp)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;

    if (!g_file_get_contents("/proc/stat", &text, NULL, &err)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "cannot read /proc/stat: %s",
                    err->message);
        return false;
    }
    if (!pp_cpustat_parse(text, set, busy, total)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "/proc/stat lists none of the host's CPUs");
        return false;
    }
    return true;
}

double pp_cpu_percent(guint64 busy0, guint64 busy1, guint64 total0,
                      guint64 total1, double scale)
{
    double p;

    if (total1 <= total0 || busy1 < busy0) {
        return 0;
    }
    p = 100.0 * (double)(busy1 - busy0) / (double)(total1 - total0);
    return CLAMP(p, 0, 100 * scale);
}
