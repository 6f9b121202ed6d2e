/*
 * The sample and event store (see store.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "store.h"
#include "pp-error.h"

#include <math.h>
#include <sqlite3.h>
#include <string.h>

struct PpStore {
    sqlite3 *db;
};

/* Schema upgrades: entry N brings user_version N-1 to N. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE host_samples (t REAL NOT NULL, host TEXT NOT NULL,"
    "  cpu REAL NOT NULL);"
    "CREATE INDEX host_samples_ht ON host_samples (host, t);"
    "CREATE TABLE vm_samples (t REAL NOT NULL, vm TEXT NOT NULL,"
    "  host TEXT NOT NULL, cpu REAL NOT NULL, proc_cpu REAL NOT NULL,"
    "  mem_mib INTEGER NOT NULL);"
    "CREATE INDEX vm_samples_vt ON vm_samples (vm, t);"
    "CREATE TABLE events (t REAL NOT NULL, kind TEXT NOT NULL, vm TEXT,"
    "  detail TEXT);"
    "CREATE INDEX events_t ON events (t);"
    "CREATE TABLE jobs (id INTEGER PRIMARY KEY, vm TEXT NOT NULL,"
    "  src TEXT NOT NULL, dst TEXT NOT NULL, mode TEXT NOT NULL,"
    "  phase TEXT NOT NULL, detail TEXT, created REAL NOT NULL,"
    "  updated REAL NOT NULL);",
    /* 1 -> 2: memory, network and disk (NULL: not measured, never 0) */
    "ALTER TABLE host_samples ADD COLUMN mem_used_mib REAL;"
    "ALTER TABLE host_samples ADD COLUMN mem_total_mib REAL;"
    "ALTER TABLE vm_samples ADD COLUMN mem_used_mib REAL;"
    "ALTER TABLE vm_samples ADD COLUMN net_rx_bps REAL;"
    "ALTER TABLE vm_samples ADD COLUMN net_tx_bps REAL;"
    "ALTER TABLE vm_samples ADD COLUMN disk_rd_bps REAL;"
    "ALTER TABLE vm_samples ADD COLUMN disk_wr_bps REAL;",
};

static bool db_error(PpStore *s, GError **errp, const char *what)
{
    g_set_error(errp, PP_ERROR, PP_ERROR_IO, "%s: %s", what,
                sqlite3_errmsg(s->db));
    return false;
}

static bool exec(PpStore *s, const char *sql, GError **errp)
{
    char *msg = NULL;

    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO, "database: %s",
                    msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return false;
    }
    return true;
}

static int user_version(PpStore *s)
{
    sqlite3_stmt *st;
    int v = -1;

    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) ==
        SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

static PpStore *store_open(const char *path, int flags, GError **errp)
{
    g_autoptr(PpStore) s = g_new0(PpStore, 1);

    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        g_set_error(errp, PP_ERROR, PP_ERROR_IO,
                    "cannot open database '%s': %s", path,
                    s->db ? sqlite3_errmsg(s->db) : "out of memory");
        return NULL;
    }
    sqlite3_busy_timeout(s->db, 5000);
    return g_steal_pointer(&s);
}

PpStore *pp_store_open(const char *path, GError **errp)
{
    g_autoptr(PpStore) s = store_open(
        path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, errp);
    int v;

    if (!s) {
        return NULL;
    }
    if (!exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
              errp)) {
        return NULL;
    }
    v = user_version(s);
    if (v < 0) {
        db_error(s, errp, "cannot read the schema version");
        return NULL;
    }
    if (v > PP_STORE_SCHEMA_VERSION) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "database '%s' has schema version %d, newer than this "
                    "program's %d", path, v, PP_STORE_SCHEMA_VERSION);
        return NULL;
    }
    for (; v < PP_STORE_SCHEMA_VERSION; v++) {
        g_autofree char *sql = g_strdup_printf(
            "BEGIN; %s PRAGMA user_version = %d; COMMIT;", migrations[v],
            v + 1);
        if (!exec(s, sql, errp)) {
            exec(s, "ROLLBACK", NULL);
            return NULL;
        }
    }
    return g_steal_pointer(&s);
}

PpStore *pp_store_open_readonly(const char *path, GError **errp)
{
    g_autoptr(PpStore) s = store_open(path, SQLITE_OPEN_READONLY, errp);

    if (s && user_version(s) != PP_STORE_SCHEMA_VERSION) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "database '%s' has schema version %d, expected %d",
                    path, user_version(s), PP_STORE_SCHEMA_VERSION);
        return NULL;
    }
    return g_steal_pointer(&s);
}

void pp_store_close(PpStore *s)
{
    if (!s) {
        return;
    }
    sqlite3_close(s->db);
    g_free(s);
}

bool pp_store_begin(PpStore *s, GError **errp)
{
    return exec(s, "BEGIN", errp);
}

bool pp_store_commit(PpStore *s, GError **errp)
{
    return exec(s, "COMMIT", errp);
}

/*
 * Bind and run one statement.  @types: one char per parameter: 'd'
 * double, 's' string (NULL binds SQL NULL), 'i' gint64.
 */
static bool run(PpStore *s, const char *sql, const char *types,
                GError **errp, ...)
{
    sqlite3_stmt *st;
    va_list ap;
    int rc;

    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return db_error(s, errp, "database");
    }
    va_start(ap, errp);
    for (int i = 0; types[i]; i++) {
        switch (types[i]) {
        case 'd':
            sqlite3_bind_double(st, i + 1, va_arg(ap, double));
            break;
        case 'n': {
            /* a double, NULL when it is NAN (not measured) */
            double v = va_arg(ap, double);
            if (isnan(v)) {
                sqlite3_bind_null(st, i + 1);
            } else {
                sqlite3_bind_double(st, i + 1, v);
            }
            break;
        }
        case 's':
            sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1,
                              SQLITE_TRANSIENT);
            break;
        case 'i':
            sqlite3_bind_int64(st, i + 1, va_arg(ap, gint64));
            break;
        }
    }
    va_end(ap);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        return db_error(s, errp, "database");
    }
    return true;
}

void pp_vm_stats_init(PpVmStats *st)
{
    *st = (PpVmStats) {
        .mem_used_mib = NAN, .net_rx_bps = NAN, .net_tx_bps = NAN,
        .disk_rd_bps = NAN, .disk_wr_bps = NAN,
    };
}

bool pp_store_add_host_sample(PpStore *s, double t, const char *host,
                              double cpu, double mem_used_mib,
                              double mem_total_mib, GError **errp)
{
    return run(s, "INSERT INTO host_samples VALUES (?, ?, ?, ?, ?)", "dsdnn",
               errp, t, host, cpu, mem_used_mib, mem_total_mib);
}

bool pp_store_add_vm_sample(PpStore *s, double t, const char *vm,
                            const char *host, const PpVmStats *st,
                            GError **errp)
{
    return run(s, "INSERT INTO vm_samples VALUES "
               "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "dssddinnnnn", errp,
               t, vm, host, st->cpu, st->proc_cpu, (gint64)st->mem_mib,
               st->mem_used_mib, st->net_rx_bps, st->net_tx_bps,
               st->disk_rd_bps, st->disk_wr_bps);
}

bool pp_store_add_event(PpStore *s, double t, const char *kind,
                        const char *vm, const char *detail, GError **errp)
{
    return run(s, "INSERT INTO events VALUES (?, ?, ?, ?)", "dsss", errp,
               t, kind, vm, detail);
}

static bool avg(PpStore *s, const char *sql, const char *key, double since,
                double until, double *out, guint *n, GError **errp)
{
    sqlite3_stmt *st;
    bool ok = false;

    *n = 0;
    *out = 0;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return db_error(s, errp, "database");
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 2, since);
    sqlite3_bind_double(st, 3, until);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *n = (guint)sqlite3_column_int(st, 1);
        *out = *n ? sqlite3_column_double(st, 0) : 0;
        ok = *n > 0;
    } else {
        db_error(s, errp, "database");
    }
    sqlite3_finalize(st);
    return ok;
}

bool pp_store_host_avg(PpStore *s, const char *host, double since,
                       double until, double *out, guint *n, GError **errp)
{
    return avg(s, "SELECT avg(cpu), count(*) FROM host_samples "
               "WHERE host = ? AND t > ? AND t <= ?", host, since, until,
               out, n, errp);
}

bool pp_store_vm_avg(PpStore *s, const char *vm, double since, double until,
                     double *out, guint *n, GError **errp)
{
    return avg(s, "SELECT avg(cpu), count(*) FROM vm_samples "
               "WHERE vm = ? AND t > ? AND t <= ?", vm, since, until, out, n,
               errp);
}

int pp_store_vm_history(PpStore *s, const char *vm, double until,
                        double step, guint n, float *out, GError **errp)
{
    g_autofree double *sum = g_new0(double, n + 1);
    g_autofree guint *cnt = g_new0(guint, n + 1);
    sqlite3_stmt *st;
    int rc;

    if (sqlite3_prepare_v2(s->db, "SELECT CAST((?1 - t) / ?2 AS INTEGER), "
                           "sum(cpu), count(cpu) FROM vm_samples WHERE "
                           "vm = ?3 AND t > ?1 - ?2 * ?4 AND t <= ?1 "
                           "GROUP BY 1", -1, &st, NULL) != SQLITE_OK) {
        db_error(s, errp, "database");
        return -1;
    }
    sqlite3_bind_double(st, 1, until);
    sqlite3_bind_double(st, 2, step);
    sqlite3_bind_text(st, 3, vm, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, (int)n);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gint64 b = sqlite3_column_int64(st, 0);
        if (b >= 0 && b < (gint64)n) {      /* b = 0: the newest step */
            sum[n - 1 - b] += sqlite3_column_double(st, 1);
            cnt[n - 1 - b] += (guint)sqlite3_column_int(st, 2);
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_error(s, errp, "database");
        return -1;
    }
    guint first = 0, len = 0;
    while (first < n && cnt[first] == 0) {
        first++;
    }
    for (guint i = first; i < n; i++) {
        out[len] = cnt[i] ? (float)(sum[i] / cnt[i]) : out[len - 1];
        len++;
    }
    return (int)len;
}

bool pp_store_prune(PpStore *s, double before, GError **errp)
{
    return run(s, "DELETE FROM host_samples WHERE t < ?", "d", errp,
               before) &&
           run(s, "DELETE FROM vm_samples WHERE t < ?", "d", errp, before);
}

gint64 pp_store_job_create(PpStore *s, double t, const char *vm,
                           const char *from, const char *to,
                           const char *mode, const char *phase,
                           GError **errp)
{
    if (!run(s, "INSERT INTO jobs (vm, src, dst, mode, phase, created, "
             "updated) VALUES (?, ?, ?, ?, ?, ?, ?)", "sssssdd", errp, vm,
             from, to, mode, phase, t, t)) {
        return -1;
    }
    return sqlite3_last_insert_rowid(s->db);
}

bool pp_store_job_update(PpStore *s, gint64 id, double t, const char *phase,
                         const char *detail, GError **errp)
{
    if (!run(s, "UPDATE jobs SET phase = ?, detail = ?, updated = ? "
             "WHERE id = ?", "ssdi", errp, phase, detail, t, id)) {
        return false;
    }
    if (sqlite3_changes(s->db) != 1) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID, "no job %" G_GINT64_FORMAT,
                    id);
        return false;
    }
    return true;
}

void pp_job_row_free(PpJobRow *r)
{
    if (!r) {
        return;
    }
    g_free(r->vm);
    g_free(r->from);
    g_free(r->to);
    g_free(r->mode);
    g_free(r->phase);
    g_free(r->detail);
    g_free(r);
}

GPtrArray *pp_store_jobs(PpStore *s, const char *const *exclude,
                         GError **errp)
{
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(
        (GDestroyNotify)pp_job_row_free);
    sqlite3_stmt *st;
    int rc;

    if (sqlite3_prepare_v2(s->db, "SELECT id, vm, src, dst, mode, phase, "
                           "detail, created, updated FROM jobs ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK) {
        db_error(s, errp, "database");
        return NULL;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *phase = (const char *)sqlite3_column_text(st, 5);
        if (exclude && g_strv_contains(exclude, phase)) {
            continue;
        }
        PpJobRow *r = g_new0(PpJobRow, 1);
        r->id = sqlite3_column_int64(st, 0);
        r->vm = g_strdup((const char *)sqlite3_column_text(st, 1));
        r->from = g_strdup((const char *)sqlite3_column_text(st, 2));
        r->to = g_strdup((const char *)sqlite3_column_text(st, 3));
        r->mode = g_strdup((const char *)sqlite3_column_text(st, 4));
        r->phase = g_strdup(phase);
        r->detail = g_strdup((const char *)sqlite3_column_text(st, 6));
        r->created = sqlite3_column_double(st, 7);
        r->updated = sqlite3_column_double(st, 8);
        g_ptr_array_add(out, r);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_error(s, errp, "database");
        return NULL;
    }
    return g_steal_pointer(&out);
}

bool pp_store_query(PpStore *s, const char *sql, PpStoreRowFunc row,
                    gpointer opaque, GError **errp)
{
    sqlite3_stmt *st;
    int rc, n;

    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return db_error(s, errp, "database");
    }
    if (!sqlite3_stmt_readonly(st)) {
        sqlite3_finalize(st);
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "only read-only queries are allowed");
        return false;
    }
    n = sqlite3_column_count(st);
    g_autofree char **names = g_new0(char *, n + 1);
    g_autofree char **values = g_new0(char *, n + 1);
    for (int i = 0; i < n; i++) {
        names[i] = (char *)sqlite3_column_name(st, i);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < n; i++) {
            values[i] = (char *)sqlite3_column_text(st, i);
        }
        if (!row(n, names, values, opaque)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return db_error(s, errp, "database");
    }
    return true;
}
