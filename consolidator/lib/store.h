/*
 * The sample and event store (SQLite).
 *
 * One database file holds everything the consolidator records: per-second
 * samples of hosts and VMs, events (moves, decisions, warnings) and
 * migration jobs with their current phase, so a restarted daemon knows
 * what was in flight.  WAL journal, so CLI readers never block the daemon.
 * The schema is versioned with PRAGMA user_version and upgraded in place.
 *
 * Times are seconds since the Unix epoch (double).  The store owns no
 * policy: windowed averages are plain queries over the samples.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_STORE_H
#define PP_STORE_H

#include <glib.h>
#include <stdbool.h>

#define PP_STORE_SCHEMA_VERSION 2

typedef struct PpStore PpStore;

/* Open (creating if needed) the database at @path; ":memory:" works. */
PpStore *pp_store_open(const char *path, GError **errp);
/* Open an existing database read-only (CLI queries). */
PpStore *pp_store_open_readonly(const char *path, GError **errp);
void pp_store_close(PpStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PpStore, pp_store_close)

/* Group many writes into one transaction (one fsync per second). */
bool pp_store_begin(PpStore *store, GError **errp);
bool pp_store_commit(PpStore *store, GError **errp);

/* A VM's sample.  NAN: not measured (stored as NULL, never as 0). */
typedef struct PpVmStats {
    double cpu;             /* vCPU threads, % of one core */
    double proc_cpu;        /* every thread of its QEMU (migration and I/O
                             * threads too), % of one core */
    guint64 mem_mib;        /* memory it was given */
    double mem_used_mib;    /* what it holds on the host (balloon/RSS) */
    double net_rx_bps, net_tx_bps;      /* bytes/s, all interfaces */
    double disk_rd_bps, disk_wr_bps;    /* bytes/s, all disks */
} PpVmStats;

/* Every optional measure NAN, the rest 0. */
void pp_vm_stats_init(PpVmStats *st);

/* @cpu: % of the host's CPUs; memory NAN when not measured. */
bool pp_store_add_host_sample(PpStore *store, double t, const char *host,
                              double cpu, double mem_used_mib,
                              double mem_total_mib, GError **errp);
bool pp_store_add_vm_sample(PpStore *store, double t, const char *vm,
                            const char *host, const PpVmStats *st,
                            GError **errp);
bool pp_store_add_event(PpStore *store, double t, const char *kind,
                        const char *vm, const char *detail, GError **errp);

/*
 * Mean CPU over samples with time in (since, until]; false with *n = 0
 * when there is none.  A gap in sampling just means fewer samples.
 */
bool pp_store_host_avg(PpStore *store, const char *host, double since,
                       double until, double *avg, guint *n, GError **errp);
bool pp_store_vm_avg(PpStore *store, const char *vm, double since,
                     double until, double *avg, guint *n, GError **errp);

/*
 * A VM's CPU history: the mean of each of the @n steps of @step seconds
 * that end at @until, oldest first, into @out.  Steps before the first
 * sample are left out (the history is shorter: the return value); a step
 * without samples after that repeats the one before.  -1 on error.
 */
int pp_store_vm_history(PpStore *store, const char *vm, double until,
                        double step, guint n, float *out, GError **errp);

/* Delete samples older than @before; events and jobs are kept. */
bool pp_store_prune(PpStore *store, double before, GError **errp);

/* Migration jobs. */
typedef struct PpJobRow {
    gint64 id;
    char *vm, *from, *to, *mode, *phase, *detail;
    double created, updated;
} PpJobRow;

gint64 pp_store_job_create(PpStore *store, double t, const char *vm,
                           const char *from, const char *to,
                           const char *mode, const char *phase,
                           GError **errp);
bool pp_store_job_update(PpStore *store, gint64 id, double t,
                         const char *phase, const char *detail,
                         GError **errp);
/* Jobs whose phase is not in @final (NULL-terminated); GPtrArray of
 * PpJobRow *, owning them. */
GPtrArray *pp_store_jobs(PpStore *store, const char *const *exclude_phases,
                         GError **errp);
void pp_job_row_free(PpJobRow *row);

/*
 * Run a read-only SQL query and call @row for each result row with
 * column names and text values (NULL for SQL NULL).  For the CLI's
 * history and export commands.
 */
typedef bool (*PpStoreRowFunc)(int ncols, char **names, char **values,
                               gpointer opaque);
bool pp_store_query(PpStore *store, const char *sql, PpStoreRowFunc row,
                    gpointer opaque, GError **errp);

#endif
