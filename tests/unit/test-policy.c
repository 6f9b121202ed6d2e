/*
 * Unit tests: the threshold policy (the paper's rules) and the registry.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "policy.h"
#include "pp-error.h"

typedef struct Fixture {
    const PpPolicyOps *ops;
    void *state;
} Fixture;

static int setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);
    g_autoptr(GError) err = NULL;

    f->ops = pp_policy_find("threshold", &err);
    assert_non_null(f->ops);
    f->state = pp_policy_create(f->ops, NULL, "policy", NULL, &err);
    assert_non_null(f->state);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;

    f->ops->destroy(f->state);
    g_free(f);
    return 0;
}

#define HOST(n, c) { .name = (n), .ncpus = 1, .mem_mib = 0, .cpu = (c) }
#define VM(n, h, c) { .name = (n), .host = (h), .mem_mib = 2048, .cpu = (c) }

static PpPlan *decide(Fixture *f, const PpHostView *hosts, guint nh,
                      const PpVmView *vms, guint nv, double since_last)
{
    PpClusterView view = {
        .now = 1000, .last_relocation = 1000 - since_last,
        .hosts = hosts, .nhosts = nh, .vms = vms, .nvms = nv,
    };
    PpPlan *plan = pp_plan_new();

    f->ops->decide(f->state, &view, plan);
    return plan;
}

static void assert_move(PpPlan *plan, guint i, const char *vm,
                        const char *from, const char *to)
{
    assert_true(i < plan->moves->len);
    PpMove *m = plan->moves->pdata[i];
    assert_string_equal(m->vm, vm);
    assert_string_equal(m->from, from);
    assert_string_equal(m->to, to);
}

static bool has_note(PpPlan *plan, const char *needle)
{
    for (guint i = 0; i < plan->notes->len; i++) {
        if (strstr(plan->notes->pdata[i], needle)) {
            return true;
        }
    }
    return false;
}

/* The paper's 5.1: VM1 at 100% beside VM0 at 20% on PM0: VM0 moves. */
static void test_spread_moves_less_busy(void **state)
{
    PpHostView h[] = { HOST("pm0", 100), HOST("pm1", 0) };
    PpVmView v[] = { VM("vm0", "pm0", 20), VM("vm1", "pm0", 80) };
    g_autoptr(PpPlan) p = decide(*state, h, 2, v, 2, INFINITY);

    assert_int_equal(p->moves->len, 1);
    assert_move(p, 0, "vm0", "pm0", "pm1");
    assert_non_null(strstr(((PpMove *)p->moves->pdata[0])->reason, "spread"));
    assert_false(p->warning);
}

/* no_relocate: a fixed VM stays even when it is the less busy one; the
 * others move; with only fixed VMs active the plan warns and moves none */
static void test_spread_keeps_fixed(void **state)
{
    PpHostView h[] = { HOST("pm0", 100), HOST("pm1", 0), HOST("pm2", 0) };
    PpVmView v[] = { VM("vm0", "pm0", 20), VM("vm1", "pm0", 50),
                     VM("vm2", "pm0", 30) };
    v[0].fixed = true;
    g_autoptr(PpPlan) p = decide(*state, h, 3, v, 3, INFINITY);

    assert_int_equal(p->moves->len, 2);
    assert_string_equal(((PpMove *)p->moves->pdata[0])->vm, "vm1");
    assert_string_equal(((PpMove *)p->moves->pdata[1])->vm, "vm2");
    assert_non_null(strstr(((PpMove *)p->moves->pdata[0])->reason,
                           "keeps vm0 (no_relocate)"));

    v[1].fixed = v[2].fixed = true;
    g_autoptr(PpPlan) q = decide(*state, h, 3, v, 3, INFINITY);
    assert_int_equal(q->moves->len, 0);
    assert_true(q->warning);
    assert_true(has_note(q, "all kept in place"));
}

/* no_relocate: a host holding a fixed VM is never packed away; it is the
 * target instead, even when it is not the busiest idle host */
static void test_pack_around_fixed(void **state)
{
    PpHostView h[] = { HOST("pm0", 10), HOST("pm1", 21), HOST("pm2", 5) };
    PpVmView v[] = { VM("vm1", "pm0", 9), VM("vm0", "pm1", 20),
                     VM("vm2", "pm2", 4) };
    v[0].fixed = true;
    g_autoptr(PpPlan) p = decide(*state, h, 3, v, 3, INFINITY);

    assert_int_equal(p->moves->len, 2);
    assert_move(p, 0, "vm0", "pm1", "pm0");
    assert_move(p, 1, "vm2", "pm2", "pm0");

    v[2].fixed = true;  /* pm2 cannot empty: noted, the rest still packs */
    g_autoptr(PpPlan) q = decide(*state, h, 3, v, 3, INFINITY);
    assert_int_equal(q->moves->len, 1);
    assert_move(q, 0, "vm0", "pm1", "pm0");
    assert_true(has_note(q, "not packing pm2 onto pm0: it holds a VM kept"));
}

static void test_single_busy_vm_is_not_overload(void **state)
{
    PpHostView h[] = { HOST("pm0", 98), HOST("pm1", 0) };
    PpVmView v[] = { VM("vm0", "pm0", 4.9), VM("vm1", "pm0", 93) };
    g_autoptr(PpPlan) p = decide(*state, h, 2, v, 2, INFINITY);

    assert_int_equal(p->moves->len, 0);
}

static void test_below_overload_threshold(void **state)
{
    PpHostView h[] = { HOST("pm0", 89.9), HOST("pm1", 0) };
    PpVmView v[] = { VM("vm0", "pm0", 40), VM("vm1", "pm0", 49) };
    g_autoptr(PpPlan) p = decide(*state, h, 2, v, 2, INFINITY);

    assert_int_equal(p->moves->len, 0);
}

static void test_no_idle_host_warns(void **state)
{
    PpHostView h[] = { HOST("pm0", 100), HOST("pm1", 30) };
    PpVmView v[] = { VM("vm0", "pm0", 40), VM("vm1", "pm0", 60),
                     VM("vm2", "pm1", 30) };
    g_autoptr(PpPlan) p = decide(*state, h, 2, v, 3, INFINITY);

    assert_int_equal(p->moves->len, 0);
    assert_true(p->warning);
    assert_true(has_note(p, "no idle host can take vm0"));
}

static void test_pack_onto_busiest_idle(void **state)
{
    PpHostView h[] = { HOST("pm0", 10), HOST("pm1", 21) };
    PpVmView v[] = { VM("vm1", "pm0", 9), VM("vm0", "pm1", 20) };
    g_autoptr(PpPlan) p = decide(*state, h, 2, v, 2, INFINITY);

    assert_int_equal(p->moves->len, 1);
    assert_move(p, 0, "vm1", "pm0", "pm1");
    assert_non_null(strstr(((PpMove *)p->moves->pdata[0])->reason, "pack"));
}

/* A host or VM without samples is unknown, not idle: this would pack
 * vm1 onto pm1 if pm0's NAN read as 0 %, and spread if vm0's did. */
static void test_unknown_load_decides_nothing(void **state)
{
    PpHostView h[] = { HOST("pm0", NAN), HOST("pm1", 21) };
    PpVmView v[] = { VM("vm1", "pm0", 9), VM("vm0", "pm1", 20) };
    g_autoptr(PpPlan) p = decide(*state, h, 2, v, 2, INFINITY);

    assert_int_equal(p->moves->len, 0);
    assert_true(has_note(p, "no CPU samples of host pm0"));

    PpHostView h2[] = { HOST("pm0", 100), HOST("pm1", 0) };
    PpVmView v2[] = { VM("vm0", "pm0", NAN), VM("vm1", "pm0", 80) };
    g_autoptr(PpPlan) p2 = decide(*state, h2, 2, v2, 2, INFINITY);

    assert_int_equal(p2->moves->len, 0);
    assert_true(has_note(p2, "no CPU samples of VM vm0"));
}

static void test_pack_needs_two_idle_hosts_with_vms(void **state)
{
    /* pm1 is idle but empty: nothing to pack. */
    PpHostView h[] = { HOST("pm0", 25), HOST("pm1", 0) };
    PpVmView v[] = { VM("vm0", "pm0", 10), VM("vm1", "pm0", 14) };
    g_autoptr(PpPlan) p = decide(*state, h, 2, v, 2, INFINITY);

    assert_int_equal(p->moves->len, 0);
}

static void test_cooldown(void **state)
{
    PpHostView h[] = { HOST("pm0", 100), HOST("pm1", 0) };
    PpVmView v[] = { VM("vm0", "pm0", 20), VM("vm1", "pm0", 80) };
    g_autoptr(PpPlan) p = decide(*state, h, 2, v, 2, 9.5);
    g_autoptr(PpPlan) q = decide(*state, h, 2, v, 2, 10.0);

    assert_int_equal(p->moves->len, 0);
    assert_true(has_note(p, "cooldown"));
    assert_int_equal(q->moves->len, 1);
}

static void test_no_decision_while_moving(void **state)
{
    PpHostView h[] = { HOST("pm0", 100), HOST("pm1", 0) };
    PpVmView v[] = { VM("vm0", "pm0", 20), VM("vm1", "pm0", 80) };

    v[0].migrating = true;
    g_autoptr(PpPlan) p = decide(*state, h, 2, v, 2, INFINITY);
    assert_int_equal(p->moves->len, 0);
    assert_true(has_note(p, "vm0 is moving"));
}

static void test_ties_are_deterministic(void **state)
{
    /* Equal VMs: the first by name stays; equal targets: host order. */
    PpHostView h[] = { HOST("pm0", 100), HOST("pm1", 5), HOST("pm2", 5) };
    PpVmView v[] = { VM("vm-b", "pm0", 50), VM("vm-a", "pm0", 50) };
    g_autoptr(PpPlan) p = decide(*state, h, 3, v, 2, INFINITY);

    assert_int_equal(p->moves->len, 1);
    assert_move(p, 0, "vm-b", "pm0", "pm1");
}

static void test_spread_uses_projection(void **state)
{
    /* Three active VMs: the two smaller ones go to different idle hosts,
     * because the first move makes pm1 busier than pm2. */
    PpHostView h[] = { HOST("pm0", 100), HOST("pm1", 0), HOST("pm2", 10) };
    PpVmView v[] = { VM("a", "pm0", 50), VM("b", "pm0", 30),
                     VM("c", "pm0", 20), VM("d", "pm2", 10) };
    g_autoptr(PpPlan) p = decide(*state, h, 3, v, 4, INFINITY);

    assert_int_equal(p->moves->len, 2);
    assert_move(p, 0, "b", "pm0", "pm1");
    assert_move(p, 1, "c", "pm0", "pm2");
}

static void test_capacity(void **state)
{
    PpHostView h[] = { HOST("pm0", 100), HOST("pm1", 0) };
    PpVmView v[] = { VM("vm0", "pm0", 20), VM("vm1", "pm0", 80) };

    h[1].mem_mib = 1024; /* the 2 GiB VM does not fit */
    g_autoptr(PpPlan) p = decide(*state, h, 2, v, 2, INFINITY);
    assert_int_equal(p->moves->len, 0);
    assert_true(p->warning);

    /* Packing checks memory too, and moves all or nothing per host. */
    PpHostView h2[] = { HOST("pm0", 10), HOST("pm1", 20) };
    PpVmView v2[] = { VM("x", "pm0", 5), VM("y", "pm0", 5),
                      VM("z", "pm1", 20) };
    h2[1].mem_mib = 5000; /* z (2048) + x (2048) fit, y does not */
    g_autoptr(PpPlan) q = decide(*state, h2, 2, v2, 3, INFINITY);
    assert_int_equal(q->moves->len, 0);
    assert_true(has_note(q, "not packing pm0 onto pm1"));
}

static void test_multicore_host_share(void **state)
{
    /* A 2-core idle host at 20% takes a 60% VM: projected 50%, fits. */
    PpHostView h[] = { HOST("pm0", 100), { .name = "big", .ncpus = 2,
                                           .cpu = 20 } };
    PpVmView v[] = { VM("vm0", "pm0", 60), VM("vm1", "pm0", 70) };
    g_autoptr(PpPlan) p = decide(*state, h, 2, v, 2, INFINITY);

    assert_int_equal(p->moves->len, 1);
    assert_move(p, 0, "vm0", "pm0", "big");
}

static void test_settings(void **state)
{
    const PpPolicyOps *ops = pp_policy_find("threshold", NULL);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;
    void *s;

    assert_true(g_key_file_load_from_data(kf,
        "[policy]\nname = threshold\noverload_cpu = 80\nwindow = 5\n",
        (gsize)-1, 0, NULL));
    s = pp_policy_create(ops, kf, "policy", NULL, &err);
    assert_non_null(s);
    assert_true(fabs(ops->window(s) - 5) < 1e-9);
    ops->destroy(s);

    /* text, message, the key the policy names as at fault */
    const char *bad[][3] = {
        { "[policy]\nbogus = 1\n", "unknown key 'bogus'", "bogus" },
        { "[policy]\nidle_cpu = lots\n", "idle_cpu = 'lots'", "idle_cpu" },
        { "[policy]\noverload_cpu = 150\n", "from 0 to 100",
          "overload_cpu" },
        { "[policy]\nidle_cpu = 95\n", "must not exceed", "idle_cpu" },
        { "[policy]\nw = x\n", "unknown key 'w'", "w" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GKeyFile) k = g_key_file_new();
        g_autofree char *key = NULL;
        g_clear_error(&err);
        assert_true(g_key_file_load_from_data(k, bad[i][0], (gsize)-1, 0,
                                              NULL));
        assert_null(pp_policy_create(ops, k, "policy", &key, &err));
        assert_true(g_error_matches(err, PP_ERROR, PP_ERROR_INVALID));
        if (!strstr(err->message, bad[i][1])) {
            fail_msg("'%s' lacks '%s'", err->message, bad[i][1]);
        }
        assert_non_null(key);
        assert_string_equal(key, bad[i][2]);
    }
}

static void test_registry(void **state)
{
    g_autoptr(GError) err = NULL;

    assert_null(pp_policy_find("nope", &err));
    assert_non_null(strstr(err->message, "'nope'"));
    assert_non_null(strstr(err->message, "threshold"));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_spread_moves_less_busy),
        T(test_spread_keeps_fixed),
        T(test_pack_around_fixed),
        T(test_single_busy_vm_is_not_overload),
        T(test_below_overload_threshold),
        T(test_no_idle_host_warns),
        T(test_pack_onto_busiest_idle),
        T(test_pack_needs_two_idle_hosts_with_vms),
        T(test_unknown_load_decides_nothing),
        T(test_cooldown),
        T(test_no_decision_while_moving),
        T(test_ties_are_deterministic),
        T(test_spread_uses_projection),
        T(test_capacity),
        T(test_multicore_host_share),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
