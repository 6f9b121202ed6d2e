/*
 * Unit tests: the simulator on a hand-computed scenario, the trace
 * loader on the shared PlanetLab day, the synthetic generator.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "policy.h"
#include "pp-error.h"
#include "sim.h"
#include "trace.h"

static const PpSimHostType one_core = {
    "test host", 1, 1000, 1000, 100,
    { "linear", { 100, 110, 120, 130, 140, 150, 160, 170, 180, 190, 200 } },
};
static const PpSimVmType one_vm = { 1000, 100 };

static PpTrace *two_vms(void)
{
    PpTrace *t = g_new0(PpTrace, 1);

    t->nvms = 2;
    t->nsamples = 4;
    t->step = 100;
    t->names = g_new0(char *, 3);
    t->names[0] = g_strdup("vm0");
    t->names[1] = g_strdup("vm1");
    t->util = g_new(float, 8);
    for (int k = 0; k < 4; k++) {
        t->util[k] = 0.5f;
        t->util[4 + k] = 0.25f;
    }
    return t;
}

static void small_config(PpSimConfig *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host_types = &one_core;
    cfg->nhost_types = 1;
    cfg->nhosts = 2;
    cfg->vm_types = &one_vm;
    cfg->nvm_types = 1;
    cfg->model = PP_MIG_CLOUDSIM;
}

static void simulate_with(const char *policy, const char *settings,
                          bool power_actions, PpSimResult *r)
{
    g_autoptr(PpTrace) t = two_vms();
    g_autoptr(GError) err = NULL;
    g_autoptr(GKeyFile) kf = g_key_file_new();
    const PpPolicyOps *ops = pp_policy_find(policy, &err);
    PpSimConfig cfg;

    small_config(&cfg);
    cfg.power_actions = power_actions;
    cfg.suspended_watts = 5;
    cfg.wake_delay = 30;
    if (settings) {
        g_autofree char *text = g_strdup_printf("[policy]\n%s\n", settings);
        assert_true(g_key_file_load_from_data(kf, text, -1, 0, NULL));
    }
    assert_non_null(ops);
    void *st = pp_policy_create(ops, kf, "policy", NULL, &err);
    assert_non_null(st);
    assert_true(pp_sim_run(&cfg, t, ops, st, r, &err));
    ops->destroy(st);
}

static void simulate(const char *policy, PpSimResult *r)
{
    simulate_with(policy, NULL, false, r);
}

/*
 * vm0 (500 MIPS) starts on h0, vm1 (250) on h1 (h0 is full at the start,
 * when VMs ask for their whole size).  No move: 200 s of h0 at 150 W and
 * h1 at 125 W (nothing counts before the first decision, at 100 s).
 */
static void test_sim_no_moves(void **state)
{
    PpSimResult r;

    simulate("none", &r);
    assert_float_equal(r.energy_kwh * 3.6e6, 200 * 150 + 200 * 125, 1e-6);
    assert_int_equal(r.migrations, 0);
    assert_int_equal(r.shutdowns, 0);
    assert_float_equal(r.slatah, 0, 1e-12);
}

/*
 * thr-mmt drains h1 at 100 s: vm1 moves to h0 in 100 MB / 50 MB/s = 2 s,
 * during which h0 runs vm0 and reserves 10 % of vm1 (525 of 750 asked:
 * short of CPU, as CloudSim counts it) and h1 gives vm1 90 %.  Then h0
 * runs both (75 %, 175 W) and h1 is off.
 */
static void test_sim_one_move(void **state)
{
    PpSimResult r;

    simulate("thr-mmt", &r);
    double e = 2 * 152.5      /* h0 at 52.5 % for 2 s */
             + 2 * 125        /* h1 at 25 % for 2 s */
             + 98 * 175       /* h0 at 75 % until 200 s */
             + 100 * 175;     /* and until 300 s */
    assert_float_equal(r.energy_kwh * 3.6e6, e, 1e-6);
    assert_int_equal(r.migrations, 1);
    assert_int_equal(r.shutdowns, 1);
    assert_float_equal(r.slatah, 2.0 / 202, 1e-9);
    /* vm1 short of 10 % of 250 MIPS for 2 s, of 500 x 200 + 250 x 200 */
    assert_float_equal(r.pdm, 25.0 * 2 / (500 * 200 + 250 * 200), 1e-9);
    assert_float_equal(r.mean_migration_time, 2, 1e-9);
    assert_int_equal(r.decisions, 3);
}

/* The same move with power actions: h1, emptied at 102 s, suspends
 * (the plan says so) and draws 5 W instead of CloudSim's free 0 W. */
static void test_sim_power_actions(void **state)
{
    PpSimResult r;

    simulate_with("thr-mmt", "power_actions = on", true, &r);
    double e = 2 * 152.5 + 98 * 175 + 100 * 175   /* h0 as before */
             + 2 * 125                           /* h1 until 102 s */
             + 198 * 5;                          /* then suspended */
    assert_float_equal(r.energy_kwh * 3.6e6, e, 1e-6);
    assert_int_equal(r.migrations, 1);
    assert_int_equal(r.suspends, 1);
    assert_int_equal(r.wakes, 0);

    /* without the plan's suspend, h1 stays awake at idle power */
    simulate_with("thr-mmt", NULL, true, &r);
    e = 2 * 152.5 + 98 * 175 + 100 * 175 + 2 * 125 + 198 * 100;
    assert_float_equal(r.energy_kwh * 3.6e6, e, 1e-6);
    assert_int_equal(r.suspends, 0);
}

static void test_sim_bad_input(void **state)
{
    g_autoptr(PpTrace) t = two_vms();
    g_autoptr(GError) err = NULL;
    const PpPolicyOps *ops = pp_policy_find("none", NULL);
    void *st = pp_policy_create(ops, NULL, "policy", NULL, NULL);
    PpSimConfig cfg;
    PpSimResult r;

    small_config(&cfg);
    cfg.nhosts = 1;             /* vm1 fits nowhere at the start */
    assert_false(pp_sim_run(&cfg, t, ops, st, &r, &err));
    assert_non_null(strstr(err->message, "fits no host"));
    ops->destroy(st);
}

static void test_planetlab_day(void **state)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(PpTrace) t = pp_trace_load_planetlab(PLANETLAB_DAY, 0, 300,
                                                   &err);
    bool spaces = false;
    double sum = 0, sq = 0;
    gsize n;

    if (!t) {
        fail_msg("%s", err->message);
    }
    assert_int_equal(t->nvms, 1052);
    assert_int_equal(t->nsamples, 288);
    for (guint i = 0; i < t->nvms; i++) {
        spaces |= strchr(t->names[i], ' ') != NULL;
        if (i) {
            assert_true(strcmp(t->names[i - 1], t->names[i]) < 0);
        }
    }
    assert_true(spaces);
    n = (gsize)t->nvms * t->nsamples;
    for (gsize i = 0; i < n; i++) {
        sum += t->util[i];
        sq += (double)t->util[i] * t->util[i];
    }
    /* the day's mean and standard deviation, sim-reference.md */
    double mean = sum / n, sd = sqrt(sq / n - mean * mean);
    assert_float_equal(mean * 100, 12.31, 0.01);
    assert_float_equal(sd * 100, 17.09, 0.01);

    /* the same order after a shuffle with the same seed, and a
     * different one with another */
    g_autoptr(PpTrace) a = pp_trace_load_planetlab(PLANETLAB_DAY, 288, 300,
                                                   NULL);
    g_autoptr(PpTrace) b = pp_trace_load_planetlab(PLANETLAB_DAY, 288, 300,
                                                   NULL);
    pp_trace_shuffle(a, 3);
    pp_trace_shuffle(b, 3);
    assert_string_equal(a->names[0], b->names[0]);
    assert_memory_equal(a->util, b->util, 288 * sizeof(float));
    pp_trace_shuffle(b, 4);
    assert_true(strcmp(a->names[0], b->names[0]) != 0 ||
                strcmp(a->names[1], b->names[1]) != 0);
}

static void test_trace_errors(void **state)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("pp-trace-XXXXXX", NULL);
    g_autofree char *f1 = g_build_filename(dir, "a vm", NULL);
    g_autofree char *f2 = g_build_filename(dir, "b", NULL);

    assert_non_null(dir);
    assert_true(g_file_set_contents(f1, "1\n2\n3\n", -1, NULL));
    assert_true(g_file_set_contents(f2, "1\n2\nlots\n", -1, NULL));
    assert_null(pp_trace_load_planetlab(dir, 0, 300, &err));
    assert_non_null(strstr(err->message, "b:3: 'lots'"));
    g_clear_error(&err);

    assert_true(g_file_set_contents(f2, "1\n2\n", -1, NULL));
    assert_null(pp_trace_load_planetlab(dir, 0, 300, &err));
    assert_non_null(strstr(err->message, "2 samples, 3 needed"));
    g_clear_error(&err);

    assert_true(g_file_set_contents(f2, "1\n2\n101\n", -1, NULL));
    assert_null(pp_trace_load_planetlab(dir, 0, 300, &err));
    g_clear_error(&err);

    /* a longer file: an error, unless --samples says how many */
    assert_true(g_file_set_contents(f2, "1\n2\n3\n4\n", -1, NULL));
    assert_null(pp_trace_load_planetlab(dir, 0, 300, &err));
    assert_non_null(strstr(err->message, "every file must have as many"));
    g_clear_error(&err);
    g_autoptr(PpTrace) t = pp_trace_load_planetlab(dir, 3, 300, &err);
    assert_non_null(t);
    assert_int_equal(t->nsamples, 3);
    assert_string_equal(t->names[0], "a vm");
    assert_float_equal(pp_trace_at(t, 1, 2), 0.03, 1e-6);
    g_unlink(f1);
    g_unlink(f2);
    g_rmdir(dir);
    assert_null(pp_trace_load_planetlab(dir, 0, 300, &err));
}

static void test_synthetic(void **state)
{
    g_autoptr(PpTrace) a = pp_trace_synthetic(500, 288, 300, 12, 9);
    g_autoptr(PpTrace) b = pp_trace_synthetic(500, 288, 300, 12, 9);
    g_autoptr(PpTrace) c = pp_trace_synthetic(500, 288, 300, 12, 10);
    double sum = 0;

    assert_memory_equal(a->util, b->util, 500 * 288 * sizeof(float));
    assert_memory_not_equal(a->util, c->util, 500 * 288 * sizeof(float));
    for (gsize i = 0; i < 500 * 288; i++) {
        assert_true(a->util[i] >= 0 && a->util[i] <= 0.99f);
        sum += a->util[i];
    }
    /* roughly the asked mean (clamping at 0 lifts it a little) */
    assert_true(sum / (500 * 288) > 0.08 && sum / (500 * 288) < 0.18);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_no_moves),
        cmocka_unit_test(test_sim_one_move),
        cmocka_unit_test(test_sim_power_actions),
        cmocka_unit_test(test_sim_bad_input),
        cmocka_unit_test(test_planetlab_day),
        cmocka_unit_test(test_trace_errors),
        cmocka_unit_test(test_synthetic),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
