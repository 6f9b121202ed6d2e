/*
 * Unit tests: the literature's policy family (detectors, selectors,
 * PABFD placement, draining) on hand-made clusters and histories, and
 * the statistics under them.
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

#include "migmodel.h"
#include "policy.h"
#include "pp-error.h"
#include "stats.h"

/* Convex, so where a VM goes changes the power increase. */
static const PpPowerModel convex = {
    "convex", { 100, 101, 103, 106, 110, 115, 121, 128, 136, 145, 155 }
};

#define HOST(n, u) { .name = (n), .ncpus = 2, .core_mips = 1000,             \
                     .cpu = (u), .bandwidth = 62.5, .power = &convex,       \
                     .off = (u) == 0 }

typedef struct Vm {
    const char *name, *host;
    double cpu;
    guint64 mem;
    const float *hist;
    guint nhist;
} Vm;

/* run() marks the VM of this name fixed (no_relocate); NULL: none */
static const char *fixed_vm;

static PpPlan *run(const char *policy, const char *settings,
                   const PpHostView *hosts, guint nh, const Vm *vms, guint nv)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *text = g_strdup_printf("[policy]\n%s\n",
                                            settings ? settings : "");
    const PpPolicyOps *ops = pp_policy_find(policy, &err);
    PpVmView *vv = g_new0(PpVmView, nv + 1);

    assert_non_null(ops);
    assert_true(g_key_file_load_from_data(kf, text, -1, 0, &err));
    void *st = pp_policy_create(ops, kf, "policy", NULL, &err);
    if (!st) {
        fail_msg("%s", err->message);
    }
    for (guint i = 0; i < nv; i++) {
        vv[i] = (PpVmView) {
            .name = vms[i].name, .host = vms[i].host, .cpu = vms[i].cpu,
            .mem_mib = vms[i].mem, .vcpus = 1, .vcpu_mips = 1000,
            .history = vms[i].hist, .nhistory = vms[i].nhist,
            .dirty_rate = NAN,
            .fixed = fixed_vm && strcmp(fixed_vm, vms[i].name) == 0,
        };
    }
    PpClusterView view = {
        .now = 1000, .last_relocation = -INFINITY, .history_step = 300,
        .hosts = hosts, .nhosts = nh, .vms = vv, .nvms = nv,
    };
    PpPlan *plan = pp_plan_new();
    ops->decide(st, &view, plan);
    ops->destroy(st);
    g_free(vv);
    return plan;
}

static void assert_move(PpPlan *p, guint i, const char *vm, const char *from,
                        const char *to)
{
    assert_true(i < p->moves->len);
    PpMove *m = p->moves->pdata[i];
    assert_string_equal(m->vm, vm);
    assert_string_equal(m->from, from);
    assert_string_equal(m->to, to);
}

/* ---- statistics ---- */

static void test_stats(void **state)
{
    double x[] = { 5, 1, 4, 2, 3 }, y[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                            11, 12 };
    double a, b;

    assert_float_equal(pp_median(x, 5), 3, 1e-12);
    assert_float_equal(pp_median(x, 4), 3, 1e-12);    /* 1 2 4 5 */
    assert_float_equal(pp_mad(x, 5), 1, 1e-12);       /* |dev| 2 2 1 1 0 */
    /* ranks round(0.25 x 13) = 3 and round(0.75 x 13) = 10 */
    assert_float_equal(pp_iqr(y, 12), 10 - 3, 1e-12);
    assert_true(pp_ols(y, 12, &a, &b));
    assert_float_equal(a, 0, 1e-9);
    assert_float_equal(b, 1, 1e-9);
    assert_false(pp_ols(y, 1, &a, &b));

    /* a line with one outlier: the robust fit ignores it */
    double z[10];
    for (int i = 0; i < 10; i++) {
        z[i] = 0.5 + 0.01 * (i + 1);
    }
    z[9] = 2;
    assert_true(pp_ols(z, 10, &a, &b));
    assert_true(b > 0.05);
    assert_true(pp_robust_ols(z, 10, &a, &b));
    assert_float_equal(b, 0.01, 1e-6);
    assert_float_equal(a, 0.5, 1e-6);

    /* R^2: y = 2 x1 + 1 exactly; and y against noise-free unrelated */
    double yy[] = { 3, 5, 7, 9 }, xx[] = { 1, 2, 3, 4 }, r2;
    assert_true(pp_r_squared(yy, xx, 4, 1, &r2));
    assert_float_equal(r2, 1, 1e-9);
    double flat[] = { 1, 1, 1, 1 };
    assert_false(pp_r_squared(yy, flat, 4, 1, &r2)); /* singular */
    assert_false(pp_r_squared(yy, xx, 1, 1, &r2));   /* too few rows */
}

/* ---- thr + mmt + PABFD ---- */

static void test_thr_mmt_pabfd(void **state)
{
    /* h0 at 85 % > 0.8: mmt takes b (less memory), then 45 %: stop. */
    PpHostView h[] = { HOST("h0", 85), HOST("h1", 0), HOST("h2", 20) };
    Vm v[] = { { "a", "h0", 900, 1000, NULL, 0 }, { "b", "h0", 800, 500, NULL, 0 },
               { "c", "h2", 400, 500, NULL, 0 } };
    g_autoptr(PpPlan) p = run("thr-mmt", NULL, h, 3, v, 3);

    /* measured power: waking h1 costs P(.4)-P(0) = 10 W, h2 costs
     * P(.6)-P(.2) = 18 W: h1; draining h2 finds no active target */
    assert_int_equal(p->moves->len, 1);
    assert_move(p, 0, "b", "h0", "h1");

    /* projected: h1 costs its idle power too (110 W): h2 */
    g_autoptr(PpPlan) q = run("thr-mmt", "power_diff = projected", h, 3, v,
                              3);
    assert_int_equal(q->moves->len, 1);
    assert_move(q, 0, "b", "h0", "h2");

    /* below the threshold: nothing moves off h0 */
    g_autoptr(PpPlan) r = run("thr-mmt", "threshold = 0.9", h, 3, v, 3);
    assert_int_equal(r->moves->len, 0);
}

static void test_no_target_is_a_warning(void **state)
{
    /* b needs a core (900 of 1000): the only other host is full */
    PpHostView h[] = { HOST("h0", 90), HOST("h1", 60) };
    Vm v[] = { { "a", "h0", 900, 1000, NULL, 0 }, { "b", "h0", 900, 500, NULL, 0 },
               { "c", "h1", 1200, 500, NULL, 0 } };
    g_autoptr(PpPlan) p = run("thr-mmt", NULL, h, 2, v, 3);

    assert_int_equal(p->moves->len, 0);
    assert_true(p->warning);
}

/* ---- the adaptive detectors and their fallback ---- */

static void test_iqr_fallback_and_history(void **state)
{
    /* u = 0.75: over the 0.7 fallback with 5 samples; with 12 steady
     * samples IQR = 0 and the threshold is 1 */
    float steady[12];
    for (int i = 0; i < 12; i++) {
        steady[i] = 750;
    }
    PpHostView h[] = { HOST("h0", 75), HOST("h1", 10) };
    Vm v[] = { { "a", "h0", 1000, 1000, steady, 5 },
               { "b", "h0", 500, 500, steady, 5 },
               { "c", "h1", 200, 500, steady, 5 } };
    g_autoptr(PpPlan) p = run("iqr-mmt", NULL, h, 2, v, 3);
    assert_true(p->moves->len >= 1);
    assert_move(p, 0, "b", "h0", "h1");

    for (int i = 0; i < 3; i++) {
        v[i].nhist = 12;
    }
    g_autoptr(PpPlan) q = run("iqr-mmt", "underload = 0", h, 2, v, 3);
    assert_int_equal(q->moves->len, 0);
}

static void test_mad_threshold(void **state)
{
    /* host history alternating 0.4 / 0.6: median 0.5, MAD 0.1, threshold
     * 1 - 2.5 x 0.1 = 0.75 */
    float ha[12], hb[12];
    for (int i = 0; i < 12; i++) {
        ha[i] = 500;
        hb[i] = i % 2 ? 700 : 300;  /* host: (500 + hb) / 2000 */
    }
    PpHostView h[] = { HOST("h0", 78), HOST("h1", 10) };
    Vm over[] = { { "a", "h0", 1000, 1000, ha, 12 },
                  { "b", "h0", 560, 500, hb, 12 },
                  { "c", "h1", 200, 500, ha, 12 } };
    g_autoptr(PpPlan) p = run("mad-mmt", "underload = 0", h, 2, over, 3);
    assert_int_equal(p->moves->len, 1);   /* 0.78 > 0.75 */
    assert_move(p, 0, "b", "h0", "h1");

    over[1].cpu = 480;                    /* 0.74 */
    g_autoptr(PpPlan) q = run("mad-mmt", "underload = 0", h, 2, over, 3);
    assert_int_equal(q->moves->len, 0);
}

static void test_lr_and_lrr(void **state)
{
    /* host history 0.65 x 9 then 1.15: the least-squares line predicts
     * 0.65 + 0.4 x 0.5 = 0.85 one step on, x 1.2 = 1.02 >= 1: over; the
     * robust line discounts the last sample: not over */
    float ha[10], hb[10];
    for (int i = 0; i < 10; i++) {
        ha[i] = 400;
        hb[i] = i < 9 ? 900 : 1900;
    }
    PpHostView h[] = { HOST("h0", 50), HOST("h1", 10) };
    Vm v[] = { { "a", "h0", 400, 500, ha, 10 },
               { "b", "h0", 600, 1000, hb, 10 },
               { "c", "h1", 200, 500, ha, 10 } };
    g_autoptr(PpPlan) p = run("lr-mmt", "underload = 0", h, 2, v, 3);
    assert_int_equal(p->moves->len, 1);
    assert_move(p, 0, "a", "h0", "h1");

    g_autoptr(PpPlan) q = run("lrr-mmt", "underload = 0", h, 2, v, 3);
    assert_int_equal(q->moves->len, 0);

    /* safety 1.1: 0.935 < 1 */
    g_autoptr(PpPlan) r = run("lr-mmt", "underload = 0\nsafety = 1.1", h,
                              2, v, 3);
    assert_int_equal(r->moves->len, 0);

    /* 9 samples: too few; the 0.7 fallback sees u = 0.5 */
    for (int i = 0; i < 3; i++) {
        v[i].nhist = 9;
    }
    g_autoptr(PpPlan) s = run("lr-mmt", "underload = 0", h, 2, v, 3);
    assert_int_equal(s->moves->len, 0);
}

/* ---- selectors ---- */

static void test_selectors(void **state)
{
    /* h0 at 95 %: one VM leaving brings it below 0.8 whichever goes */
    float x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, y[8] = { 2, 4, 6, 8, 10, 12, 14,
                                                      17 };
    float z[8] = { 5, 1, 4, 1, 5, 9, 2, 6 };
    PpHostView h[] = { HOST("h0", 95), HOST("h1", 10) };
    Vm v[] = { { "big", "h0", 800, 300, z, 8 },   /* util 0.8 */
               { "small", "h0", 500, 900, x, 8 }, /* util 0.5 */
               { "twin", "h0", 600, 800, y, 8 },  /* util 0.6 */
               { "c", "h1", 200, 500, z, 8 } };

    g_autoptr(PpPlan) mmt = run("thr-mmt", "underload = 0", h, 2, v, 4);
    assert_move(mmt, 0, "big", "h0", "h1");       /* least memory */
    g_autoptr(PpPlan) mu = run("thr-mmt", NULL, h, 0, v, 0);
    g_autoptr(PpPlan) mu2 = run("thr-mu", "underload = 0", h, 2, v, 4);
    assert_move(mu2, 0, "small", "h0", "h1");     /* least utilisation */
    /* small and twin are nearly collinear; big is not (exactly
     * collinear would be singular: mmt, as in CloudSim) */
    g_autoptr(PpPlan) mc = run("thr-mc", "underload = 0", h, 2, v, 4);
    assert_true(strcmp(((PpMove *)mc->moves->pdata[0])->vm, "big") != 0);
    /* rs: the same seed, the same choice */
    g_autoptr(PpPlan) rs1 = run("thr-rs", "underload = 0\nseed = 7", h, 2,
                                v, 4);
    g_autoptr(PpPlan) rs2 = run("thr-rs", "underload = 0\nseed = 7", h, 2,
                                v, 4);
    assert_string_equal(((PpMove *)rs1->moves->pdata[0])->vm,
                        ((PpMove *)rs2->moves->pdata[0])->vm);
    (void)mu;
}

/* ---- draining ---- */

static void test_drain(void **state)
{
    /* h0 (10 %) drains onto the busier active hosts; h1 then cannot drain
     * (its only candidate target, h2, would go over 0.8) */
    PpHostView h[] = { HOST("h0", 10), HOST("h1", 30), HOST("h2", 60),
                       HOST("h3", 0) };
    Vm v[] = { { "a", "h0", 200, 500, NULL, 0 }, { "b", "h1", 600, 500, NULL, 0 },
               { "c", "h2", 1200, 500, NULL, 0 } };
    g_autoptr(PpPlan) p = run("thr-mmt", NULL, h, 4, v, 3);

    assert_int_equal(p->moves->len, 1);
    PpMove *m = p->moves->pdata[0];
    assert_string_equal(m->vm, "a");
    assert_string_equal(m->from, "h0");
    assert_true(strcmp(m->to, "h1") == 0 || strcmp(m->to, "h2") == 0);
    assert_non_null(strstr(m->reason, "drain"));

    /* underload = 0.2: only h0 is a candidate anyway; 0.05: none */
    g_autoptr(PpPlan) q = run("thr-mmt", "underload = 0.05", h, 4, v, 3);
    assert_int_equal(q->moves->len, 0);
}

/* no_relocate: mmt passes over a fixed VM for the next one; a host
 * holding a fixed VM is not drained */
static void test_fixed_vms(void **state)
{
    PpHostView h[] = { HOST("h0", 95), HOST("h1", 10) };
    Vm v[] = { { "big", "h0", 800, 300, NULL, 0 },
               { "small", "h0", 500, 900, NULL, 0 },
               { "twin", "h0", 600, 800, NULL, 0 },
               { "c", "h1", 200, 500, NULL, 0 } };

    fixed_vm = "big";
    g_autoptr(PpPlan) p = run("thr-mmt", "underload = 0", h, 2, v, 4);
    assert_true(p->moves->len >= 1);
    assert_move(p, 0, "twin", "h0", "h1");  /* least memory but big */
    for (guint i = 0; i < p->moves->len; i++) {
        assert_string_not_equal(((PpMove *)p->moves->pdata[i])->vm, "big");
    }

    /* draining: h0 (10 %) would drain onto h1 (30 %), but a is fixed */
    PpHostView d[] = { HOST("h0", 10), HOST("h1", 30) };
    Vm w[] = { { "a", "h0", 200, 500, NULL, 0 },
               { "b", "h1", 600, 500, NULL, 0 } };
    fixed_vm = "a";
    g_autoptr(PpPlan) q = run("thr-mmt", NULL, d, 2, w, 2);
    assert_int_equal(q->moves->len, 0);
    fixed_vm = NULL;
    g_autoptr(PpPlan) r = run("thr-mmt", NULL, d, 2, w, 2);
    assert_int_equal(r->moves->len, 1);
    assert_move(r, 0, "a", "h0", "h1");
}

/* A VM in flight counts on its target: h0 is not overloaded once b's
 * load is on h1, and nothing more leaves h0 while the move lasts. */
static void test_in_flight(void **state)
{
    g_autoptr(GError) err = NULL;
    const PpPolicyOps *ops = pp_policy_find("thr-mmt", &err);
    void *st = pp_policy_create(ops, NULL, "policy", NULL, &err);
    PpHostView h[] = { HOST("h0", 85), HOST("h1", 10) };
    PpVmView v[] = {
        { .name = "a", .host = "h0", .cpu = 900, .mem_mib = 1000 },
        { .name = "b", .host = "h0", .cpu = 800, .mem_mib = 500,
          .migrating = true, .migrating_to = "h1" },
    };
    PpClusterView view = { .now = 1, .last_relocation = -INFINITY,
                           .history_step = 300, .hosts = h, .nhosts = 2,
                           .vms = v, .nvms = 2 };
    g_autoptr(PpPlan) p = pp_plan_new();

    ops->decide(st, &view, p);
    assert_int_equal(p->moves->len, 0);

    /* the target unknown: the load stays on h0, which is overloaded;
     * only the VM not in flight can leave */
    v[1].migrating_to = NULL;
    g_autoptr(PpPlan) q = pp_plan_new();
    ops->decide(st, &view, q);
    assert_int_equal(q->moves->len, 1);
    assert_move(q, 0, "a", "h0", "h1");

    /* the move over: b is on h0 again in this view, h0 overloaded */
    v[1].migrating = false;
    g_autoptr(PpPlan) r = pp_plan_new();
    ops->decide(st, &view, r);
    assert_int_equal(r->moves->len, 1);
    assert_move(r, 0, "b", "h0", "h1");
    ops->destroy(st);
}

/* hybrid: relief by post-copy; a drain by pre-copy when the model says
 * it converges within precopy_max, else post-copy; bolder packing (0.9). */
static void test_hybrid_methods(void **state)
{
    /* h0 at 85 %: over for thr-mmt (0.8), not for hybrid (0.9) */
    PpHostView h[] = { HOST("h0", 85), HOST("h1", 10), HOST("h2", 20) };
    Vm v[] = { { "a", "h0", 900, 1000, NULL, 0 },
               { "b", "h0", 800, 500, NULL, 0 },
               { "c", "h2", 400, 500, NULL, 0 } };
    g_autoptr(PpPlan) p = run("hybrid", "underload = 0", h, 3, v, 3);
    assert_int_equal(p->moves->len, 0);

    /* at 95 % it is: b leaves by post-copy */
    h[0].cpu = 95;
    v[0].cpu = 1100;
    g_autoptr(PpPlan) q = run("hybrid", "underload = 0", h, 3, v, 3);
    assert_int_equal(q->moves->len, 1);
    assert_int_equal(((PpMove *)q->moves->pdata[0])->method,
                     PP_METHOD_POSTCOPY);

    /* drains: a quiet 500 MB VM pre-copies in 500/62.5 = 8 s plus a
     * little: pre-copy; the same VM with 4 GB takes longer than 30 s */
    PpHostView d[] = { HOST("d0", 10), HOST("d1", 50) };
    Vm w[] = { { "q", "d0", 100, 500, NULL, 0 },
               { "r", "d1", 1000, 500, NULL, 0 } };
    g_autoptr(PpPlan) r = run("hybrid", NULL, d, 2, w, 2);
    assert_int_equal(r->moves->len, 1);
    assert_move(r, 0, "q", "d0", "d1");
    assert_int_equal(((PpMove *)r->moves->pdata[0])->method,
                     PP_METHOD_PRECOPY);
    w[0].mem = 4096;
    g_autoptr(PpPlan) s2 = run("hybrid", NULL, d, 2, w, 2);
    assert_int_equal(s2->moves->len, 1);
    assert_int_equal(((PpMove *)s2->moves->pdata[0])->method,
                     PP_METHOD_POSTCOPY);
    /* the family's members leave the method to the executor */
    g_autoptr(PpPlan) t = run("thr-mmt", NULL, d, 2, w, 2);
    assert_int_equal(((PpMove *)t->moves->pdata[0])->method,
                     PP_METHOD_DEFAULT);
}

/* A drain whose moves would keep a link busy beyond link_budget waits. */
static void test_link_budget(void **state)
{
    PpHostView d[] = { HOST("d0", 10), HOST("d1", 50) };
    Vm w[] = { { "q", "d0", 100, 5000, NULL, 0 },    /* 80 s at 62.5 MB/s */
               { "r", "d1", 1000, 5000, NULL, 0 } };

    g_autoptr(PpPlan) p = run("thr-mmt", "link_budget = 60", d, 2, w, 2);
    assert_int_equal(p->moves->len, 0);
    g_autoptr(PpPlan) q = run("thr-mmt", "link_budget = 90", d, 2, w, 2);
    assert_int_equal(q->moves->len, 1);
    /* hybrid's default is half the view's step (300 s here): 150 s */
    g_autoptr(PpPlan) r = run("hybrid", "link_budget = 50", d, 2, w, 2);
    assert_int_equal(r->moves->len, 0);
    g_autoptr(PpPlan) s = run("hybrid", NULL, d, 2, w, 2);
    assert_int_equal(s->moves->len, 1);
}

/* Power actions: an awake empty host beats waking one; a spare is kept
 * awake (woken if need be); hosts a plan empties are suspended. */
static void test_power_actions(void **state)
{
    PpHostView h[] = { HOST("h0", 95), HOST("h1", 0), HOST("h2", 0) };
    h[2].off = false;           /* awake, empty */
    Vm v[] = { { "a", "h0", 1100, 1000, NULL, 0 },
               { "b", "h0", 800, 500, NULL, 0 } };
    g_autoptr(PpPlan) p = run("hybrid", NULL, h, 3, v, 2);

    assert_int_equal(p->moves->len, 1);
    assert_move(p, 0, "b", "h0", "h2");
    assert_int_equal(p->power->len, 1);
    PpPowerAction *a = p->power->pdata[0];
    assert_string_equal(a->host, "h1");
    assert_true(a->on);
    assert_non_null(strstr(a->reason, "spare"));

    g_autoptr(PpPlan) q = run("hybrid", "spare = 0", h, 3, v, 2);
    assert_int_equal(q->power->len, 0);

    /* d0 drains onto d1 and is suspended; d2, empty and awake, is the
     * spare; with two, d0 too; with three, the off d3 wakes */
    PpHostView d[] = { HOST("d0", 10), HOST("d1", 50), HOST("d2", 0),
                       HOST("d3", 0) };
    d[2].off = false;
    Vm w[] = { { "q", "d0", 100, 500, NULL, 0 },
               { "r", "d1", 1000, 500, NULL, 0 } };
    g_autoptr(PpPlan) r = run("hybrid", NULL, d, 4, w, 2);
    assert_int_equal(r->moves->len, 1);
    assert_int_equal(r->power->len, 1);
    a = r->power->pdata[0];
    assert_string_equal(a->host, "d0");
    assert_false(a->on);
    g_autoptr(PpPlan) t = run("hybrid", "spare = 2", d, 4, w, 2);
    assert_int_equal(t->power->len, 0);   /* d0 is the second spare */
    g_autoptr(PpPlan) u = run("hybrid", "spare = 3", d, 4, w, 2);
    assert_int_equal(u->power->len, 1);
    a = u->power->pdata[0];
    assert_string_equal(a->host, "d3");
    assert_true(a->on);
    /* the family's members plan no power actions unless asked */
    g_autoptr(PpPlan) x = run("thr-mmt", NULL, d, 4, w, 2);
    assert_int_equal(x->power->len, 0);
    g_autoptr(PpPlan) y = run("thr-mmt", "power_actions = on", d, 4, w, 2);
    assert_int_equal(y->power->len, 2);     /* d0 and d2 suspend */
}

static void test_precopy_model(void **state)
{
    PpMigParams p;
    double total, thr;

    pp_mig_params_default(&p);
    p.downtime = 1;
    /* experiment 5.1's filled guest: 1902 MiB at 113 MiB/s, 20 MiB/s
     * dirtied in a 256 MiB area: 16.8 + 2.3 + 0.4 s, measured 19.4 s */
    p.working_set = 256.0 / 1902;
    assert_true(pp_precopy_time(&p, 1902, 20, 113, &total, &thr));
    assert_float_equal(total, 19.5, 0.1);
    assert_true(isinf(thr));
    /* dirtying faster than the link: auto-converge */
    assert_false(pp_precopy_time(&p, 1902, 200, 113, &total, &thr));
    assert_float_equal(thr, 1902 / 113.0 + 256 / 113.0, 1e-6);
    assert_float_equal(total, thr + 256 / 113.0 + 1, 1e-6);
}

static void test_bad_settings(void **state)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GKeyFile) kf = g_key_file_new();
    const PpPolicyOps *ops = pp_policy_find("lr-mmt", NULL);
    char *key = NULL;

    assert_non_null(ops);
    g_key_file_set_value(kf, "policy", "safety", "-1");
    assert_null(pp_policy_create(ops, kf, "policy", &key, &err));
    assert_string_equal(key, "safety");
    g_free(key);
    key = NULL;
    g_clear_error(&err);
    g_key_file_remove_key(kf, "policy", "safety", NULL);
    g_key_file_set_value(kf, "policy", "treshold", "0.8");
    assert_null(pp_policy_create(ops, kf, "policy", &key, &err));
    assert_non_null(strstr(err->message, "unknown key 'treshold'"));
    g_free(key);
}

static void test_unknown_host_and_nan(void **state)
{
    PpHostView h[] = { HOST("h0", 50) };
    Vm v[] = { { "a", "nowhere", 200, 500, NULL, 0 } };
    g_autoptr(PpPlan) p = run("thr-mmt", NULL, h, 1, v, 1);
    assert_int_equal(p->moves->len, 0);
    assert_true(p->warning);

    Vm w[] = { { "a", "h0", NAN, 500, NULL, 0 } };
    g_autoptr(PpPlan) q = run("thr-mmt", NULL, h, 1, w, 1);
    assert_int_equal(q->moves->len, 0);
    assert_non_null(strstr(q->notes->pdata[0], "no CPU samples"));
}

static void test_registry_lists_family(void **state)
{
    const char *names[] = { "threshold", "thr-mmt", "iqr-mu", "mad-rs",
                            "lr-mc", "lrr-mmt", "none" };

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        assert_non_null(pp_policy_find(names[i], NULL));
    }
    assert_float_equal(pp_power_at(&convex, 0.25), 104.5, 1e-9);
    assert_float_equal(pp_power_at(&convex, 1.5), 155, 1e-9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_thr_mmt_pabfd),
        cmocka_unit_test(test_no_target_is_a_warning),
        cmocka_unit_test(test_iqr_fallback_and_history),
        cmocka_unit_test(test_mad_threshold),
        cmocka_unit_test(test_lr_and_lrr),
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_fixed_vms),
        cmocka_unit_test(test_in_flight),
        cmocka_unit_test(test_hybrid_methods),
        cmocka_unit_test(test_precopy_model),
        cmocka_unit_test(test_link_budget),
        cmocka_unit_test(test_power_actions),
        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_unknown_host_and_nan),
        cmocka_unit_test(test_registry_lists_family),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
