/*
 * Unit tests: SQLite store and /proc CPU accounting.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#include "pp-error.h"
#include "procstat.h"
#include "store.h"

static char *tmp_db(void)
{
    g_autofree char *dir = g_dir_make_tmp("pp-store-XXXXXX", NULL);

    assert_non_null(dir);
    return g_build_filename(dir, "pp.db", NULL);
}

/* Rows as "v,v,...;" with SQL NULL as nothing. */
static bool collect(int ncols, char **names, char **values, gpointer opaque)
{
    GString *out = opaque;

    for (int i = 0; i < ncols; i++) {
        g_string_append_printf(out, "%s%s", i ? "," : "",
                               values[i] ? values[i] : "");
    }
    g_string_append_c(out, ';');
    return true;
}

static void test_samples_and_averages(void **state)
{
    g_autofree char *path = tmp_db();
    g_autoptr(GError) err = NULL;
    g_autoptr(PpStore) s = pp_store_open(path, &err);
    double avg;
    guint n;

    assert_non_null(s);
    assert_true(pp_store_begin(s, &err));
    for (int t = 1; t <= 20; t++) {
        PpVmStats st;

        pp_vm_stats_init(&st);
        st.cpu = t;
        st.proc_cpu = t + 1;
        st.mem_mib = 2048;
        if (t % 2) {
            st.net_rx_bps = 1000 * t;
        }
        assert_true(pp_store_add_host_sample(s, t, "pm0", t <= 10 ? 10 : 90,
                                             NAN, 4096, &err));
        assert_true(pp_store_add_vm_sample(s, t, "vm0", "pm0", &st, &err));
    }
    assert_true(pp_store_commit(s, &err));
    /* Window (10, 20]: only the 90% samples. */
    assert_true(pp_store_host_avg(s, "pm0", 10, 20, &avg, &n, &err));
    assert_int_equal(n, 10);
    assert_true(fabs(avg - 90) < 1e-9);
    assert_true(pp_store_vm_avg(s, "vm0", 15, 20, &avg, &n, &err));
    assert_int_equal(n, 5);
    assert_true(fabs(avg - 18) < 1e-9);
    /* A gap: no samples at all is "no average", not zero. */
    assert_false(pp_store_vm_avg(s, "vm0", 100, 110, &avg, &n, &err));
    assert_null(err);
    assert_int_equal(n, 0);
    assert_false(pp_store_host_avg(s, "pm9", 0, 100, &avg, &n, &err));

    /* What was not measured is NULL, never 0. */
    g_autoptr(GString) got = g_string_new(NULL);
    assert_true(pp_store_query(s, "SELECT count(net_rx_bps), "
                               "count(*), max(net_rx_bps), count(disk_rd_bps) "
                               "FROM vm_samples", collect, got, &err));
    assert_string_equal(got->str, "10,20,19000.0,0;");
    g_string_truncate(got, 0);
    assert_true(pp_store_query(s, "SELECT count(mem_used_mib), "
                               "max(mem_total_mib) FROM host_samples",
                               collect, got, &err));
    assert_string_equal(got->str, "0,4096.0;");

    /* Retention. */
    assert_true(pp_store_prune(s, 15, &err));
    assert_true(pp_store_host_avg(s, "pm0", 0, 100, &avg, &n, &err));
    assert_int_equal(n, 6);
}

static bool count_row(int ncols, char **names, char **values,
                      gpointer opaque)
{
    GString *out = opaque;

    for (int i = 0; i < ncols; i++) {
        g_string_append_printf(out, "%s=%s;", names[i],
                               values[i] ? values[i] : "NULL");
    }
    g_string_append_c(out, '\n');
    return true;
}

/* Step means, oldest first; nothing before the first sample; a gap
 * repeats the step before. */
static void test_vm_history(void **state)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(PpStore) s = pp_store_open(":memory:", &err);
    PpVmStats st;
    float h[6];

    assert_non_null(s);
    pp_vm_stats_init(&st);
    /* steps of 10 s ending at 100: (40,50] ... (90,100] */
    double samples[][2] = { { 45, 10 }, { 48, 30 }, { 55, 40 },
                            { 75, 70 }, { 100, 90 } };
    for (size_t i = 0; i < G_N_ELEMENTS(samples); i++) {
        st.cpu = samples[i][1];
        assert_true(pp_store_add_vm_sample(s, samples[i][0], "vm0", "pm0",
                                           &st, &err));
    }
    assert_int_equal(pp_store_vm_history(s, "vm0", 100, 10, 6, h, &err), 6);
    float want[] = { 20, 40, 40, 70, 70, 90 };
    for (int i = 0; i < 6; i++) {
        assert_float_equal(h[i], want[i], 1e-6);
    }
    /* 8 steps: the two before 40 s have no samples and are left out */
    float h8[8];
    assert_int_equal(pp_store_vm_history(s, "vm0", 100, 10, 8, h8, &err), 6);
    assert_float_equal(h8[0], 20, 1e-6);
    assert_int_equal(pp_store_vm_history(s, "vm9", 100, 10, 6, h, &err), 0);
}

static void test_events_and_query(void **state)
{
    g_autofree char *path = tmp_db();
    g_autoptr(GError) err = NULL;
    g_autoptr(PpStore) s = pp_store_open(path, &err);
    g_autoptr(GString) out = g_string_new(NULL);

    assert_true(pp_store_add_event(s, 5, "move-start", "vm0", "pm0->pm1",
                                   &err));
    assert_true(pp_store_add_event(s, 6, "warning", NULL, "no idle host",
                                   &err));
    assert_true(pp_store_query(s, "SELECT kind, vm FROM events ORDER BY t",
                               count_row, out, &err));
    assert_string_equal(out->str, "kind=move-start;vm=vm0;\n"
                        "kind=warning;vm=NULL;\n");
    /* Writes are refused through the query interface. */
    assert_false(pp_store_query(s, "DELETE FROM events", count_row, out,
                                &err));
    assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_INVALID));
    g_clear_error(&err);
    assert_false(pp_store_query(s, "SELECT * FROM nope", count_row, out,
                                &err));
    assert_non_null(strstr(err->message, "nope"));
}

static void test_jobs_survive_reopen(void **state)
{
    g_autofree char *path = tmp_db();
    g_autoptr(GError) err = NULL;
    const char *final[] = { "completed", "failed", NULL };
    gint64 a, b;

    {
        g_autoptr(PpStore) s = pp_store_open(path, &err);
        a = pp_store_job_create(s, 1, "vm0", "pm0", "pm1", "postcopy",
                                "queued", &err);
        b = pp_store_job_create(s, 2, "vm1", "pm0", "pm1", "precopy",
                                "queued", &err);
        assert_true(a > 0 && b > a);
        assert_true(pp_store_job_update(s, a, 3, "postcopy-active", NULL,
                                        &err));
        assert_true(pp_store_job_update(s, b, 4, "completed", "ok", &err));
        assert_false(pp_store_job_update(s, 999, 4, "completed", NULL, &err));
        g_clear_error(&err);
    }
    g_autoptr(PpStore) s = pp_store_open(path, &err);
    g_autoptr(GPtrArray) open = pp_store_jobs(s, final, &err);
    assert_non_null(open);
    assert_int_equal(open->len, 1);
    PpJobRow *r = open->pdata[0];
    assert_int_equal(r->id, a);
    assert_string_equal(r->phase, "postcopy-active");
    assert_string_equal(r->mode, "postcopy");
    assert_true(fabs(r->updated - 3) < 1e-9);
}

/* A database of schema version 1 (before memory, network and disk) is
 * upgraded in place: old rows keep their values, the new columns read
 * NULL for them. */
static void test_schema_upgrade(void **state)
{
    g_autofree char *path = tmp_db();
    g_autoptr(GError) err = NULL;
    g_autoptr(GString) got = g_string_new(NULL);
    sqlite3 *db;
    PpVmStats st;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
        "CREATE TABLE host_samples (t REAL NOT NULL, host TEXT NOT NULL,"
        "  cpu REAL NOT NULL);"
        "CREATE TABLE vm_samples (t REAL NOT NULL, vm TEXT NOT NULL,"
        "  host TEXT NOT NULL, cpu REAL NOT NULL, proc_cpu REAL NOT NULL,"
        "  mem_mib INTEGER NOT NULL);"
        "CREATE TABLE events (t REAL NOT NULL, kind TEXT NOT NULL, vm TEXT,"
        "  detail TEXT);"
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY, vm TEXT NOT NULL,"
        "  src TEXT NOT NULL, dst TEXT NOT NULL, mode TEXT NOT NULL,"
        "  phase TEXT NOT NULL, detail TEXT, created REAL NOT NULL,"
        "  updated REAL NOT NULL);"
        "INSERT INTO vm_samples VALUES (1, 'vm0', 'pm0', 50, 55, 512);"
        "PRAGMA user_version = 1;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    g_autoptr(PpStore) s = pp_store_open(path, &err);
    assert_non_null(s);
    pp_vm_stats_init(&st);
    st.cpu = 20;
    st.mem_mib = 512;
    st.disk_wr_bps = 4096;
    assert_true(pp_store_add_vm_sample(s, 2, "vm0", "pm0", &st, &err));
    assert_true(pp_store_query(s, "SELECT t, cpu, mem_mib, disk_wr_bps "
                               "FROM vm_samples ORDER BY t", collect, got,
                               &err));
    assert_string_equal(got->str, "1.0,50.0,512,;2.0,20.0,512,4096.0;");
    g_autoptr(PpStore) r = pp_store_open_readonly(path, &err);
    assert_non_null(r);
}

static void test_schema_version(void **state)
{
    g_autofree char *path = tmp_db();
    g_autoptr(GError) err = NULL;
    sqlite3 *db;

    {
        g_autoptr(PpStore) s = pp_store_open(path, &err);
        assert_non_null(s);
    }
    /* Reopening an up-to-date database changes nothing. */
    {
        g_autoptr(PpStore) s = pp_store_open(path, &err);
        assert_non_null(s);
        g_autoptr(PpStore) r = pp_store_open_readonly(path, &err);
        assert_non_null(r);
    }
    /* A database from a newer program is refused, not clobbered. */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL,
                                  NULL), SQLITE_OK);
    sqlite3_close(db);
    g_autoptr(PpStore) s = pp_store_open(path, &err);
    assert_null(s);
    assert_non_null(strstr(err->message, "newer"));
    g_clear_error(&err);
    g_autoptr(PpStore) bad = pp_store_open("/nonexistent/dir/pp.db", &err);
    assert_null(bad);
    assert_non_null(strstr(err->message, "/nonexistent/dir/pp.db"));
}

static void test_cpustat(void **state)
{
    const char *a = "cpu  100 0 100 800 0 0 0 0 0 0\n"
                    "cpu0 50 0 50 400 0 0 0 0 0 0\n"
                    "cpu1 50 0 50 400 0 0 0 0 0 0\n"
                    "intr 1 2 3\n";
    const char *b = "cpu  300 0 100 1000 0 0 0 0 0 0\n"
                    "cpu0 150 0 50 400 0 0 0 0 0 0\n"
                    "cpu1 150 0 50 600 0 0 0 0 0 0\n";
    cpu_set_t s0, s01, s7;
    guint64 b0, t0, b1, t1;

    CPU_ZERO(&s0);
    CPU_SET(0, &s0);
    CPU_ZERO(&s01);
    CPU_SET(0, &s01);
    CPU_SET(1, &s01);
    CPU_ZERO(&s7);
    CPU_SET(7, &s7);
    assert_true(pp_cpustat_parse(a, &s0, &b0, &t0));
    assert_true(pp_cpustat_parse(b, &s0, &b1, &t1));
    assert_true(fabs(pp_cpu_percent(b0, b1, t0, t1, 1) - 100) < 1e-9);
    assert_true(pp_cpustat_parse(a, &s01, &b0, &t0));
    assert_true(pp_cpustat_parse(b, &s01, &b1, &t1));
    assert_true(fabs(pp_cpu_percent(b0, b1, t0, t1, 1) - 50) < 1e-9);
    assert_false(pp_cpustat_parse(a, &s7, &b0, &t0));
    /* No time passed, or counters went backwards: 0, not garbage. */
    assert_true(pp_cpu_percent(5, 5, 10, 10, 1) == 0);
    assert_true(pp_cpu_percent(9, 5, 10, 20, 1) == 0);
}

static void test_schedstat(void **state)
{
    guint64 ns, before, after;
    g_autoptr(GError) err = NULL;

    assert_true(pp_schedstat_parse("123456 789 10\n", &ns));
    assert_int_equal(ns, 123456);
    assert_false(pp_schedstat_parse("x 1 2", &ns));
    assert_false(pp_schedstat_parse("12x 1 2", &ns));
    assert_false(pp_schedstat_parse(NULL, &ns));

    /* Our own process accumulates run time while it computes. */
    assert_true(pp_process_cpu_ns(getpid(), &before, &err));
    volatile double x = 0;
    for (int i = 0; i < 20000000; i++) {
        x += i * 0.5;
    }
    assert_true(pp_process_cpu_ns(getpid(), &after, &err));
    assert_true(after > before);
    assert_true(pp_thread_cpu_ns(getpid(), getpid(), &ns, &err));
    assert_false(pp_process_cpu_ns(999999999, &ns, &err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples_and_averages),
        cmocka_unit_test(test_vm_history),
        cmocka_unit_test(test_events_and_query),
        cmocka_unit_test(test_jobs_survive_reopen),
        cmocka_unit_test(test_schema_version),
        cmocka_unit_test(test_schema_upgrade),
        cmocka_unit_test(test_cpustat),
        cmocka_unit_test(test_schedstat),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
