/*
 * CPU accounting from /proc.
 *
 * VM CPU comes from the scheduler's per-thread run time in nanoseconds
 * (/proc/PID/task/TID/schedstat, first field); host CPU from the per-CPU
 * lines of /proc/stat over the host's CPU set.  Callers turn two readings
 * into a percentage with pp_cpu_percent().
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_PROCSTAT_H
#define PP_PROCSTAT_H

#include <glib.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/types.h>

/* Run time of one thread, from its schedstat text ("ns wait slices"). */
bool pp_schedstat_parse(const char *text, guint64 *ns);

/* Run time of thread @tid of process @pid. */
bool pp_thread_cpu_ns(pid_t pid, pid_t tid, guint64 *ns, GError **errp);

/* Run time of every current thread of @pid, summed. */
bool pp_process_cpu_ns(pid_t pid, guint64 *ns, GError **errp);

/*
 * Busy and total time (USER_HZ ticks) of the CPUs in @set from /proc/stat
 * text.  Busy = user + nice + system + irq + softirq + steal; total adds
 * idle and iowait.  False when no CPU of @set appears.
 */
bool pp_cpustat_parse(const char *text, const cpu_set_t *set,
                      guint64 *busy, guint64 *total);
bool pp_cpustat_read(const cpu_set_t *set, guint64 *busy, guint64 *total,
                     GError **errp);

/* 100 * dbusy / dtotal, clamped to [0, 100 * scale]; 0 when dtotal is 0. */
double pp_cpu_percent(guint64 busy0, guint64 busy1, guint64 total0,
                      guint64 total1, double scale);

#endif
