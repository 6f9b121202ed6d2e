/*
 * The consolidation literature's policy family (Beloglazov & Buyya, CCPE
 * 24(13), 2012), named DETECTOR-SELECTOR:
 *
 *  detectors (is a host overloaded?), on the host's utilisation u = sum of
 *  its VMs' demand over its capacity, and its history h (the sum of its
 *  VMs' histories over its capacity, so a VM's past moves with it):
 *    thr   u > threshold (0.8)
 *    iqr   u > 1 - safety x IQR(h)   (safety 1.5)
 *    mad   u > 1 - safety x MAD(h)   (safety 2.5)
 *    lr    safety x (least-squares line through the last 10 values of h,
 *          extrapolated by the migration time in steps) >= 1 (safety 1.2)
 *    lrr   the same line fitted robustly (bisquare reweighting)
 *  With less history than they need (iqr, mad: 12 samples; lr, lrr: 10)
 *  they use thr at fallback (0.7).
 *
 *  selectors (which VM leaves an overloaded host, repeated until the
 *  detector no longer fires):
 *    mmt   least memory (the shortest migration at equal bandwidth)
 *    mu    least utilisation of its own size
 *    rs    uniformly random (seeded: the same seed, the same choices)
 *    mc    the highest R^2 of its history regressed on the others' (the
 *          one most correlated with its neighbours); mmt when there is
 *          too little history for the regression
 *
 *  placement, PABFD: the VMs to move by demand, largest first, each to the
 *  host whose power rises least, among hosts where it fits (a vCPU's
 *  demand within a core, the demand within the free capacity, memory)
 *  and that the detector does not then call overloaded.
 *
 *  draining: then every active host below `underload' (1.0: every host,
 *  as CloudSim does), least utilised first, is emptied when all its VMs
 *  fit on active hosts that are neither overloaded nor drained this round.
 *
 * hybrid (ours) is thr-mmt with what post-copy changes: relief moves go
 * by post-copy (the host is relieved in a tenth of a second instead of
 * after a pre-copy that may not converge), so packing may dare more (the
 * threshold is 0.9), and drain moves, which are not urgent, go by
 * pre-copy when the migration model says it converges within precopy_max
 * (30 s), post-copy otherwise; its PABFD charges waking a host its idle
 * power (power_diff = projected); and it drains only as much as the
 * links can carry before relief may be needed again: link_budget (half a
 * step, 150 s) of moves per host link and round (a host sends and receives one VM at
 * a time, so a drain queued behind others would delay the next relief).  `methods = hybrid' gives any member
 * the same choice of methods.
 *
 * A VM the operator keeps in place (PpVmView.fixed, no_relocate) is never
 * selected, and a host holding one is never drained.
 *
 * power_actions = on (hybrid: on, 1 spare) adds power actions to the plan:
 * wake a switched-off host before VMs move to it, keep `spare' empty
 * hosts awake so that relief needs no wake, suspend the other empty
 * hosts.
 *
 * quirks = cloudsim reproduces CloudSim 3.0.3's draining for validation:
 * a host that received VMs from an overloaded host in the same round may
 * be drained, the VMs it just received included, so one VM can have two
 * moves in a plan (S to A, then A to B: the simulator's cloudsim model
 * runs them as CloudSim does).  Off by default: each VM moves once.
 *
 * The host power "before" in PABFD is, by default, the host's measured
 * power (as CloudSim 3.0.3 computes it: a switched-off host then costs only
 * its dynamic power to wake); `power_diff = projected' compares against
 * the host's projected load and charges a switched-off host its idle power
 * too (a truly power-aware best fit).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "migmodel.h"
#include "policy.h"
#include "pp-error.h"
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { DET_THR, DET_IQR, DET_MAD, DET_LR, DET_LRR } Detector;
typedef enum { SEL_MMT, SEL_MU, SEL_RS, SEL_MC } Selector;

typedef struct Member {
    Detector det;
    Selector sel;
    bool hybrid;            /* ours: see "hybrid" below */
} Member;

static const char *const det_names[] = { "thr", "iqr", "mad", "lr", "lrr" };
static const char *const sel_names[] = { "mmt", "mu", "rs", "mc" };

typedef struct Fam {
    Detector det;
    Selector sel;
    double threshold;       /* thr */
    double safety;          /* iqr, mad, lr, lrr */
    double fallback;        /* thr level when the history is short */
    double min_history;     /* samples the adaptive detectors need */
    double lr_points;       /* samples the regression fits */
    double underload;       /* drain hosts below this utilisation */
    double step;            /* seconds per history sample */
    double window;          /* seconds the current demand averages */
    double history;         /* samples kept */
    double seed;
    double cooldown;        /* s after a move started before the next */
    double precopy_max;     /* hybrid: pre-copy a drain move this fast */
    double link_budget;     /* s of moves per host link and round for
                             * draining; 0: no limit */
    bool link_budget_auto;  /* half the view's history step */
    PpMigParams mig;        /* hybrid: the pre-copy estimate's model */
    double spare;           /* power actions: empty hosts kept awake */
    bool power_projected;
    bool cloudsim_quirks;
    bool hybrid_methods;
    bool power_actions;
    guint64 rng[4];
} Fam;

static const struct {
    const char *key;
    size_t offset;
    double min, max;
} settings[] = {
    { "threshold", offsetof(Fam, threshold), 0, 10 },
    { "safety", offsetof(Fam, safety), 0, 100 },
    { "fallback", offsetof(Fam, fallback), 0, 10 },
    { "min_history", offsetof(Fam, min_history), 3, 1000 },
    { "lr_points", offsetof(Fam, lr_points), 3, 1000 },
    { "underload", offsetof(Fam, underload), 0, 1 },
    { "step", offsetof(Fam, step), 1, 86400 },
    { "window", offsetof(Fam, window), 1, 86400 },
    { "history", offsetof(Fam, history), 1, 1000 },
    { "seed", offsetof(Fam, seed), 0, 4294967295.0 },
    { "cooldown", offsetof(Fam, cooldown), 0, 86400 },
    { "precopy_max", offsetof(Fam, precopy_max), 0, 86400 },
    { "link_budget", offsetof(Fam, link_budget), 0, 86400 },
    { "spare", offsetof(Fam, spare), 0, 1e6 },
    { "dirty_per_core", offsetof(Fam, mig.dirty_per_core), 0, 1e5 },
    { "working_set", offsetof(Fam, mig.working_set), 0, 1 },
    { "downtime", offsetof(Fam, mig.downtime), 0.001, 60 },
};

/* ---- a tiny seeded PRNG (splitmix64), so rs repeats ---- */
static guint64 rng_next(Fam *f)
{
    guint64 z = (f->rng[0] += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static bool bad(GError **errp, char **bad_key, const char *key,
                const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static bool bad(GError **errp, char **bad_key, const char *key,
                const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(errp, PP_ERROR, PP_ERROR_INVALID, msg);
    if (bad_key) {
        *bad_key = g_strdup(key);
    }
    return false;
}

static void *fam_create(const PpPolicyOps *ops, GKeyFile *kf,
                        const char *group, char **bad_key, GError **errp)
{
    const Member *m = ops->opaque;
    g_autofree Fam *f = g_new0(Fam, 1);
    g_auto(GStrv) keys = NULL;

    f->det = m->det;
    f->sel = m->sel;
    f->threshold = 0.8;
    f->safety = m->det == DET_IQR ? 1.5 : m->det == DET_MAD ? 2.5 : 1.2;
    f->fallback = 0.7;
    f->min_history = m->det == DET_LR || m->det == DET_LRR ? 10 : 12;
    f->lr_points = 10;
    f->underload = 1;
    f->step = 300;
    f->window = 300;
    f->history = 30;
    f->seed = 1;
    f->precopy_max = 30;
    pp_mig_params_default(&f->mig);
    f->link_budget = NAN;       /* hybrid: half a step; others: none */
    if (m->hybrid) {
        f->threshold = 0.9;
        f->power_projected = true;
        f->hybrid_methods = true;
        f->power_actions = true;
        f->spare = 1;
    }
    if (kf && g_key_file_has_group(kf, group)) {
        keys = g_key_file_get_keys(kf, group, NULL, NULL);
    }
    for (char **k = keys; k && *k; k++) {
        g_autofree char *raw = g_key_file_get_value(kf, group, *k, NULL);
        size_t i;

        if (strcmp(*k, "name") == 0) {
            continue;
        }
        if (strcmp(*k, "quirks") == 0) {
            if (g_strcmp0(raw, "none") && g_strcmp0(raw, "cloudsim")) {
                bad(errp, bad_key, *k, "[%s] quirks = '%s': expected none "
                    "or cloudsim", group, raw ? raw : "");
                return NULL;
            }
            f->cloudsim_quirks = strcmp(raw, "cloudsim") == 0;
            continue;
        }
        if (strcmp(*k, "power_actions") == 0) {
            if (g_strcmp0(raw, "on") && g_strcmp0(raw, "off")) {
                bad(errp, bad_key, *k, "[%s] power_actions = '%s': expected "
                    "on or off", group, raw ? raw : "");
                return NULL;
            }
            f->power_actions = strcmp(raw, "on") == 0;
            continue;
        }
        if (strcmp(*k, "methods") == 0) {
            if (g_strcmp0(raw, "default") && g_strcmp0(raw, "hybrid")) {
                bad(errp, bad_key, *k, "[%s] methods = '%s': expected "
                    "default or hybrid", group, raw ? raw : "");
                return NULL;
            }
            f->hybrid_methods = strcmp(raw, "hybrid") == 0;
            continue;
        }
        if (strcmp(*k, "power_diff") == 0) {
            if (g_strcmp0(raw, "measured") && g_strcmp0(raw, "projected")) {
                bad(errp, bad_key, *k, "[%s] power_diff = '%s': expected "
                    "measured or projected", group, raw ? raw : "");
                return NULL;
            }
            f->power_projected = strcmp(raw, "projected") == 0;
            continue;
        }
        for (i = 0; i < G_N_ELEMENTS(settings); i++) {
            if (strcmp(*k, settings[i].key) == 0) {
                break;
            }
        }
        if (i == G_N_ELEMENTS(settings)) {
            bad(errp, bad_key, *k, "[%s] unknown key '%s' for policy %s",
                group, *k, ops->name);
            return NULL;
        }
        char *end;
        double v = raw ? g_ascii_strtod(raw, &end) : NAN;
        if (!raw || end == raw || *end || isnan(v) || v < settings[i].min ||
            v > settings[i].max) {
            bad(errp, bad_key, *k, "[%s] %s = '%s': expected a number from "
                "%g to %g", group, *k, raw ? raw : "", settings[i].min,
                settings[i].max);
            return NULL;
        }
        *(double *)((char *)f + settings[i].offset) = v;
    }
    if (f->lr_points > f->history || f->min_history > f->history) {
        bad(errp, bad_key, "history", "[%s] history (%g) must cover "
            "min_history (%g) and lr_points (%g)", group, f->history,
            f->min_history, f->lr_points);
        return NULL;
    }
    f->link_budget_auto = isnan(f->link_budget) && m->hybrid;
    if (isnan(f->link_budget)) {
        f->link_budget = m->hybrid ? f->step / 2 : 0;
    }
    f->rng[0] = (guint64)f->seed;
    return g_steal_pointer(&f);
}

static double fam_window(void *state)
{
    return ((Fam *)state)->window;
}

static guint fam_history(void *state, double *step)
{
    Fam *f = state;

    *step = f->step;
    return (guint)f->history;
}

static void fam_destroy(void *state)
{
    g_free(state);
}

/* ---- the projected cluster ---- */

typedef struct Host {
    const PpHostView *v;
    double cap;             /* capacity, CPU units */
    double core;            /* one core */
    double req;             /* sum of demands */
    double alloc;           /* sum of demands each capped at a core */
    guint64 mem;            /* sum of memory */
    double *hist;           /* sum of VM histories, oldest first (hlen) */
    guint *vms;             /* indices into view->vms, in order */
    guint nvms, avms;
    bool over;              /* overloaded at the start of the round */
    bool no_src;            /* not to be drained */
    bool no_dst;            /* not a target in the current phase */
    bool received;          /* got VMs this round */
    bool busy;              /* a move from or to it is in flight */
    double pnow;            /* cached host_power_now(); NAN: stale */
    double link_s;          /* seconds of moves planned over its link */
    bool was_empty;         /* no VM before the plan */
} Host;

typedef struct Ctx {
    Fam *f;
    double step;            /* seconds per history sample (the view's) */
    double link_budget;
    bool draining;          /* phase 2: the link budget applies */
    const PpClusterView *view;
    Host *h;
    guint hlen;             /* history samples per host array */
    guint *vm_host;         /* projected host per VM */
    double *free;           /* per host: free capacity, -INFINITY when not
                             * a target (a compact copy PABFD scans) */
    double *scratch;        /* hlen + a VM's worth of samples */
} Ctx;

static double vm_cap(const PpVmView *vm, const Host *h)
{
    return MIN(vm->cpu, h->core * (vm->vcpus ? vm->vcpus : 1));
}

/* The VM's history sample i of the host array (aligned at the newest). */
static double vm_hist(const Ctx *c, const PpVmView *vm, guint i)
{
    guint off = c->hlen - MIN(vm->nhistory, c->hlen);

    return i < off ? 0 : vm->history[vm->nhistory - (c->hlen - i)];
}

static void refresh_free(Ctx *c, const Host *h)
{
    c->free[h - c->h] = h->no_dst ? -INFINITY : h->cap - h->alloc;
}

static void host_add(Ctx *c, Host *h, guint vi, int sign)
{
    const PpVmView *vm = &c->view->vms[vi];

    if (c->f->power_projected) {
        h->pnow = NAN;
    }

    h->req += sign * vm->cpu;
    h->alloc += sign * vm_cap(vm, h);
    if (sign > 0) {
        h->mem += vm->mem_mib;
    } else {
        h->mem -= MIN(h->mem, vm->mem_mib);
    }
    if (vm->nhistory) {
        for (guint i = 0; i < c->hlen; i++) {
            h->hist[i] += sign * vm_hist(c, vm, i);
        }
    }
    refresh_free(c, h);
}


static void list_add(Host *h, guint vi)
{
    if (h->nvms == h->avms) {
        h->avms = h->avms ? 2 * h->avms : 4;
        h->vms = g_renew(guint, h->vms, h->avms);
    }
    h->vms[h->nvms++] = vi;
}

static void list_remove(Host *h, guint vi)
{
    for (guint i = 0; i < h->nvms; i++) {
        if (h->vms[i] == vi) {
            memmove(h->vms + i, h->vms + i + 1,
                    (h->nvms - i - 1) * sizeof(guint));
            h->nvms--;
            return;
        }
    }
}

/* Project @vi onto @to (and off its current host). */
static void move_vm(Ctx *c, guint vi, Host *to)
{
    Host *from = &c->h[c->vm_host[vi]];

    host_add(c, from, vi, -1);
    list_remove(from, vi);
    host_add(c, to, vi, +1);
    list_add(to, vi);
    c->vm_host[vi] = to - c->h;
}

/* The host's history as utilisation, oldest first, into c->scratch;
 * leading (oldest) zeros dropped as CloudSim drops them; at least one
 * value.  Returns its length. */
static guint host_history(Ctx *c, const Host *h, const PpVmView *extra)
{
    guint n = 0, start = 0;

    while (start < c->hlen) {
        double v = h->hist[start] + (extra ? vm_hist(c, extra, start) : 0);
        if (v != 0) {
            break;
        }
        start++;
    }
    for (guint i = start; i < c->hlen; i++) {
        c->scratch[n++] = (h->hist[i] +
                           (extra ? vm_hist(c, extra, i) : 0)) / h->cap;
    }
    if (n == 0) {
        c->scratch[n++] = 0;
    }
    return n;
}

/* Is @h overloaded (with @extra added when not NULL)? */
static bool overloaded(Ctx *c, const Host *h, const PpVmView *extra)
{
    const Fam *f = c->f;
    double u = (h->req + (extra ? extra->cpu : 0)) / h->cap;
    guint n;

    if (f->det == DET_THR) {
        return u > f->threshold;
    }
    n = host_history(c, h, extra);
    if (f->det == DET_IQR || f->det == DET_MAD) {
        if (n < f->min_history) {
            return u > f->fallback;
        }
        double s = f->det == DET_IQR ? pp_iqr(c->scratch, n) :
                   pp_mad(c->scratch, n);
        return u > 1 - f->safety * s;
    }
    /* lr, lrr */
    guint pts = (guint)f->lr_points;
    double a, b;
    if (n < MAX(pts, (guint)f->min_history)) {
        return u > f->fallback;
    }
    const double *y = c->scratch + n - pts;
    if (!(f->det == DET_LR ? pp_ols(y, pts, &a, &b) :
          pp_robust_ols(y, pts, &a, &b))) {
        return u > f->fallback;
    }
    /* extrapolate by the longest migration off this host, in steps */
    guint64 mem = extra ? extra->mem_mib : 0;
    for (guint i = 0; i < h->nvms; i++) {
        mem = MAX(mem, c->view->vms[h->vms[i]].mem_mib);
    }
    double bw = h->v->bandwidth > 0 ? h->v->bandwidth : 125.0 / 2;
    double steps = ceil(mem / bw / c->step);
    return f->safety * (a + b * (pts + steps)) >= 1;
}

static double vm_util(const PpVmView *vm)
{
    double size = vm->vcpu_mips > 0 ? vm->vcpu_mips * (vm->vcpus ? vm->vcpus
                                                                 : 1) : 100;
    return vm->cpu / size;
}

/* The VM (index into view->vms) @f's selector takes off @h; -1 if none. */
static int select_vm(Ctx *c, Host *h)
{
    const PpClusterView *view = c->view;
    g_autofree guint *cand = g_new(guint, h->nvms + 1);
    guint n = 0;

    for (guint i = 0; i < h->nvms; i++) {
        const PpVmView *vm = &view->vms[h->vms[i]];
        if (!vm->migrating && !vm->fixed) {
            cand[n++] = h->vms[i];
        }
    }
    if (n == 0) {
        return -1;
    }
    switch (c->f->sel) {
    case SEL_RS:
        return cand[rng_next(c->f) % n];
    case SEL_MU: {
        guint best = 0;
        for (guint i = 1; i < n; i++) {
            if (vm_util(&view->vms[cand[i]]) <
                vm_util(&view->vms[cand[best]])) {
                best = i;
            }
        }
        return cand[best];
    }
    case SEL_MC: {
        guint m = G_MAXUINT;
        for (guint i = 0; i < n; i++) {
            m = MIN(m, view->vms[cand[i]].nhistory);
        }
        if (n >= 2 && m >= n) {
            g_autofree double *y = g_new(double, m);
            g_autofree double *x = g_new(double, (gsize)m * (n - 1));
            double best_r2 = 0;
            guint best = 0;
            bool ok = true;
            for (guint i = 0; i < n && ok; i++) {
                guint col = 0;
                for (guint j = 0; j < n; j++) {
                    const PpVmView *vm = &view->vms[cand[j]];
                    double *dst = j == i ? y : x + (gsize)col++ * m;
                    for (guint k = 0; k < m; k++) {
                        dst[k] = vm->history[vm->nhistory - m + k];
                    }
                }
                double r2;
                ok = pp_r_squared(y, x, m, n - 1, &r2);
                if (ok && r2 > best_r2) {
                    best_r2 = r2;
                    best = i;
                }
            }
            if (ok) {
                return cand[best];
            }
        }
        /* too little history, or singular: mmt */
    }
    /* fall through */
    case SEL_MMT:
    default: {
        guint best = 0;
        for (guint i = 1; i < n; i++) {
            if (view->vms[cand[i]].mem_mib < view->vms[cand[best]].mem_mib) {
                best = i;
            }
        }
        return cand[best];
    }
    }
}

static bool fits(const Host *h, const PpVmView *vm)
{
    guint vcpus = vm->vcpus ? vm->vcpus : 1;

    if (vm->cpu / vcpus > h->core) {
        return false;
    }
    if (MAX(0, h->cap - h->alloc) < vm->cpu) {
        return false;
    }
    return !h->v->mem_mib || h->mem + vm->mem_mib <= h->v->mem_mib;
}

/* pp_power_at(), inlined for PABFD's inner loop. */
static inline double power(const PpPowerModel *m, double u)
{
    double x = CLAMP(u, 0, 1) * 10;
    int i = (int)x;

    return i >= 10 ? m->watts[10] :
           m->watts[i] + (m->watts[i + 1] - m->watts[i]) * (x - i);
}

static double host_power_now(const Ctx *c, Host *h)
{
    if (isnan(h->pnow)) {
        if (c->f->power_projected) {
            /* a switched-off host draws nothing yet: waking it costs its
             * idle power too; an awake empty one already draws that */
            h->pnow = h->v->off && h->nvms == 0 ? 0 :
                      power(h->v->power, MIN(1, h->alloc / h->cap));
        } else {
            h->pnow = power(h->v->power, isnan(h->v->cpu) ? 0 :
                                         h->v->cpu / 100);
        }
    }
    return h->pnow;
}

/* Seconds a move of @vm between @a and @b keeps their links busy (the
 * memory at the slower link's migration share). */
static double link_time(const PpVmView *vm, const Host *a, const Host *b)
{
    double bw = MIN(a->v->bandwidth > 0 ? a->v->bandwidth : 62.5,
                    b->v->bandwidth > 0 ? b->v->bandwidth : 62.5);

    return vm->mem_mib / bw;
}

/* PABFD's host for @vi: the least power increase; NULL if none. */
static Host *find_host(Ctx *c, guint vi)
{
    const PpVmView *vm = &c->view->vms[vi];
    Host *best = NULL;
    double best_diff = INFINITY;

    for (guint i = 0; i < c->view->nhosts; i++) {
        if (c->free[i] < vm->cpu) {
            continue;               /* full, or not a target */
        }
        Host *h = &c->h[i];
        if (h->no_dst || i == c->vm_host[vi] || !fits(h, vm)) {
            continue;
        }
        if (c->draining && c->link_budget > 0 &&
            h->link_s + link_time(vm, &c->h[c->vm_host[vi]], h) >
            c->link_budget) {
            continue;
        }
        double diff;
        if (h->v->power) {
            diff = power(h->v->power, (h->alloc + vm->cpu) / h->cap) -
                   host_power_now(c, h);
        } else {
            diff = (h->alloc + vm->cpu) / h->cap; /* best fit by load */
            diff = -diff;
        }
        /* the detector is the dearer test: only for a better host */
        if (diff < best_diff && (h->nvms == 0 || !overloaded(c, h, vm))) {
            best_diff = diff;
            best = h;
        }
    }
    return best;
}

/* Positions by d[] descending, equal values in position order (a
 * stable sort by demand, largest first). */
static int cmp_pos(gconstpointer a, gconstpointer b, gpointer data)
{
    const double *d = data;
    guint x = *(const guint *)a, y = *(const guint *)b;

    if (d[x] != d[y]) {
        return d[x] > d[y] ? -1 : 1;
    }
    return x < y ? -1 : x > y;
}

/* Host indices by d[] ascending, equal values in index order. */
static int cmp_asc(gconstpointer a, gconstpointer b, gpointer data)
{
    const double *d = data;
    guint x = *(const guint *)a, y = *(const guint *)b;

    if (d[x] != d[y]) {
        return d[x] < d[y] ? -1 : 1;
    }
    return x < y ? -1 : x > y;
}

/*
 * Power actions: wake every switched-off host the plan moves VMs to; keep
 * `spare' empty hosts awake (waking more when there are fewer), suspend
 * the other hosts that are empty once the plan has run (the executor
 * suspends a host only when it is empty).
 */
static void plan_power(Ctx *c, PpPlan *plan)
{
    const Fam *f = c->f;
    guint awake_empty = 0, want = (guint)f->spare;

    for (guint i = 0; i < c->view->nhosts; i++) {
        Host *h = &c->h[i];
        if (h->received && h->v->off) {
            pp_plan_add_power(plan, h->v->name, true,
                              "wake: VMs are planned to it");
        }
    }
    /* spares: hosts empty already first (they are free now), then those
     * the plan empties; the rest of the empty ones suspend */
    for (int pass = 0; pass < 2; pass++) {
        for (guint i = 0; i < c->view->nhosts; i++) {
            Host *h = &c->h[i];
            if (h->v->off || h->nvms || h->received || h->busy ||
                h->was_empty != (pass == 0)) {
                continue;
            }
            if (awake_empty < want) {
                awake_empty++;      /* a spare: relief needs no wake */
                continue;
            }
            pp_plan_add_power(plan, h->v->name, false, "suspend: empty");
        }
    }
    for (guint i = 0; i < c->view->nhosts && awake_empty < want; i++) {
        Host *h = &c->h[i];
        if (h->v->off && !h->received) {
            pp_plan_add_power(plan, h->v->name, true,
                              "wake: keep %u spare hosts", want);
            awake_empty++;
        }
    }
}

/* hybrid: a drain move is not urgent: pre-copy (the VM stays whole, no
 * remote faults) when the model says it converges within precopy_max
 * seconds, post-copy otherwise. */
static PpMethod drain_method(const Fam *f, const PpVmView *vm,
                             const Host *from, const Host *to)
{
    /* dirty_per_core per fully busy vCPU */
    double vcpu = vm->vcpu_mips > 0 ? vm->vcpu_mips : 100;
    double dirty = isnan(vm->dirty_rate) ?
                   f->mig.dirty_per_core *
                   MIN(vm->vcpus ? vm->vcpus : 1, vm->cpu / vcpu) :
                   vm->dirty_rate;
    double bw = MIN(from->v->bandwidth > 0 ? from->v->bandwidth : 62.5,
                    to->v->bandwidth > 0 ? to->v->bandwidth : 62.5);
    double total, thr;

    if (pp_precopy_time(&f->mig, vm->mem_mib, dirty, bw, &total, &thr) &&
        total <= f->precopy_max) {
        return PP_METHOD_PRECOPY;
    }
    return PP_METHOD_POSTCOPY;
}

static void fam_decide(void *state, const PpClusterView *view, PpPlan *plan)
{
    Fam *f = state;
    guint bad_vm = 0, nover = 0, nmoves1, hlen = 0;
    g_autofree guint *hidx = pp_view_host_index(view, &bad_vm);

    if (!hidx) {
        pp_plan_note(plan, true, "VM %s is on unknown host %s",
                     view->vms[bad_vm].name, view->vms[bad_vm].host);
        return;
    }
    for (guint i = 0; i < view->nvms; i++) {
        if (isnan(view->vms[i].cpu)) {
            pp_plan_note(plan, false, "waiting: no CPU samples of VM %s",
                         view->vms[i].name);
            return;
        }
        hlen = MAX(hlen, MIN(view->vms[i].nhistory, (guint)f->history));
    }
    hlen = MAX(hlen, 1);
    if (view->now - view->last_relocation < f->cooldown) {
        pp_plan_note(plan, false, "cooldown: %.1f s left",
                     f->cooldown - (view->now - view->last_relocation));
        return;
    }

    g_autofree Host *h = g_new0(Host, view->nhosts + 1);
    g_autofree double *hist = g_new0(double, (gsize)view->nhosts * hlen + 1);
    g_autofree double *scratch = g_new0(double, 2 * hlen + 2);
    g_autofree double *free_cap = g_new(double, view->nhosts + 1);
    Ctx c = { .f = f, .view = view, .h = h, .hlen = hlen,
              .vm_host = hidx, .scratch = scratch, .free = free_cap,
              .step = view->history_step > 0 ? view->history_step : f->step,
              .link_budget = f->link_budget };
    if (f->link_budget_auto) {
        c.link_budget = c.step / 2;
    }

    for (guint i = 0; i < view->nhosts; i++) {
        h[i].v = &view->hosts[i];
        h[i].cap = pp_host_capacity(&view->hosts[i]);
        h[i].core = view->hosts[i].core_mips > 0 ? view->hosts[i].core_mips
                                                 : 100;
        h[i].hist = hist + (gsize)i * hlen;
        h[i].pnow = NAN;
        free_cap[i] = h[i].cap;
    }
    /* A VM in flight counts on its target (where its load is going) and
     * stays where it goes; neither host is drained until it is there. */
    g_autoptr(GHashTable) by_name = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < view->nhosts; i++) {
        g_hash_table_insert(by_name, (gpointer)view->hosts[i].name,
                            GUINT_TO_POINTER(i + 1));
    }
    for (guint i = 0; i < view->nvms; i++) {
        const PpVmView *vm = &view->vms[i];
        if (vm->migrating) {
            guint to = vm->migrating_to ? GPOINTER_TO_UINT(
                g_hash_table_lookup(by_name, vm->migrating_to)) : 0;
            h[hidx[i]].busy = true;
            if (to) {
                hidx[i] = to - 1;
                h[hidx[i]].busy = true;
            }
        }
        host_add(&c, &h[hidx[i]], i, +1);
        list_add(&h[hidx[i]], i);
    }

    for (guint i = 0; i < view->nhosts; i++) {
        h[i].was_empty = h[i].nvms == 0;
    }

    /* 1. overloaded hosts give VMs up until the detector is quiet */
    g_autoptr(GArray) out = g_array_new(FALSE, FALSE, sizeof(guint));
    g_autofree guint *origin = g_new(guint, view->nvms + 1);
    memcpy(origin, hidx, view->nvms * sizeof(guint));
    for (guint i = 0; i < view->nhosts; i++) {
        if (h[i].nvms == 0 || !overloaded(&c, &h[i], NULL)) {
            continue;
        }
        h[i].over = h[i].no_src = h[i].no_dst = true;
        refresh_free(&c, &h[i]);
        nover++;
        for (;;) {
            int vi = select_vm(&c, &h[i]);
            if (vi < 0) {
                break;
            }
            g_array_append_val(out, vi);
            host_add(&c, &h[i], vi, -1);
            list_remove(&h[i], vi);
            c.vm_host[vi] = G_MAXUINT; /* in limbo */
            if (!overloaded(&c, &h[i], NULL)) {
                break;
            }
        }
    }
    g_autofree double *demand = g_new(double, out->len + 1);
    g_autofree guint *order = g_new(guint, out->len + 1);
    for (guint i = 0; i < out->len; i++) {
        demand[i] = view->vms[g_array_index(out, guint, i)].cpu;
        order[i] = i;
    }
    g_qsort_with_data(order, out->len, sizeof(guint), cmp_pos, demand);
    for (guint k = 0; k < out->len; k++) {
        guint vi = g_array_index(out, guint, order[k]);
        Host *from = &h[origin[vi]];
        c.vm_host[vi] = origin[vi];
        host_add(&c, from, vi, +1);   /* back, so move_vm can take it off */
        list_add(from, vi);
        Host *to = find_host(&c, vi);
        if (!to) {
            pp_plan_note(plan, true, "%s is overloaded but no host can take "
                         "%s", from->v->name, view->vms[vi].name);
            /* it stays; the detector ran without it: fine for a plan */
            continue;
        }
        double lt = link_time(&view->vms[vi], from, to);
        from->link_s += lt;
        to->link_s += lt;
        move_vm(&c, vi, to);
        to->received = true;
        /* CloudSim 3.0.3 means to exclude these from draining but does
         * not (its exclusion list is empty): a host that just received a
         * VM may be drained with it, which moves that VM a second time */
        to->no_src = !f->cloudsim_quirks;
        PpMove *mv = pp_plan_add_move(plan, view->vms[vi].name,
                                      from->v->name, to->v->name,
                                      "%s-%s: %s overloaded",
                                      det_names[f->det], sel_names[f->sel],
                                      from->v->name);
        /* hybrid: relief is urgent: post-copy ends it at once */
        if (f->hybrid_methods) {
            mv->method = PP_METHOD_POSTCOPY;
        }
    }
    nmoves1 = plan->moves->len;

    /* 2. drain under-used active hosts, least used first */
    g_autofree guint *src = g_new(guint, view->nhosts + 1);
    g_autofree double *util = g_new(double, view->nhosts + 1);
    guint nsrc = 0;
    for (guint i = 0; i < view->nhosts; i++) {
        double u = isnan(view->hosts[i].cpu) ? NAN : view->hosts[i].cpu / 100;
        util[i] = u;
        bool off = view->hosts[i].off || !(u > 0);
        /* draining onto an empty host would not free one */
        h[i].no_dst = h[i].over || off || h[i].nvms == 0;
        refresh_free(&c, &h[i]);
        if (!h[i].no_src && !h[i].busy && !off && u < f->underload &&
            h[i].nvms > 0) {
            src[nsrc++] = i;
        }
    }
    g_qsort_with_data(src, nsrc, sizeof(guint), cmp_asc, util);
    c.draining = true;
    for (guint q = 0; q < nsrc; q++) {
        Host *u = &h[src[q]];
        if (u->no_src || u->nvms == 0) {
            continue;
        }
        if (c.link_budget > 0) {
            /* its VMs leave one after another over its link */
            double need = u->link_s;
            for (guint k = 0; k < u->nvms; k++) {
                need += link_time(&view->vms[u->vms[k]], u, u);
            }
            if (need > c.link_budget) {
                continue;
            }
        }
        u->no_src = u->no_dst = true;
        refresh_free(&c, u);
        guint n = u->nvms, placed = 0;
        g_autofree guint *from_list = g_memdup2(u->vms, n * sizeof(guint));
        g_autofree double *dm = g_new(double, n + 1);
        g_autofree guint *ord = g_new(guint, n + 1);
        g_autofree Host **dst = g_new(Host *, n + 1);
        bool all = true;

        for (guint k = 0; k < n; k++) {
            dm[k] = view->vms[from_list[k]].cpu;
            ord[k] = k;
        }
        g_qsort_with_data(ord, n, sizeof(guint), cmp_pos, dm);
        for (guint k = 0; k < n; k++) {
            guint vi = from_list[ord[k]];
            /* a VM kept in place (or in flight) keeps its host on */
            Host *to = view->vms[vi].migrating || view->vms[vi].fixed ?
                       NULL : find_host(&c, vi);
            if (!to) {
                all = false;
                break;
            }
            double lt = link_time(&view->vms[vi], u, to);
            u->link_s += lt;
            to->link_s += lt;
            move_vm(&c, vi, to);
            dst[placed++] = to;
        }
        if (!all) {
            for (guint k = placed; k-- > 0;) {
                double lt = link_time(&view->vms[from_list[ord[k]]], u,
                                      dst[k]);
                u->link_s -= lt;
                dst[k]->link_s -= lt;
                move_vm(&c, from_list[ord[k]], u);
            }
            memcpy(u->vms, from_list, n * sizeof(guint)); /* its order */
            continue;
        }
        for (guint k = 0; k < placed; k++) {
            const PpVmView *vm = &view->vms[from_list[ord[k]]];
            dst[k]->no_src = true;
            dst[k]->received = true;
            PpMove *mv = pp_plan_add_move(plan, vm->name, u->v->name,
                                          dst[k]->v->name,
                                          "drain: %s under-used (%.0f%%)",
                                          u->v->name, util[src[q]] * 100);
            if (f->hybrid_methods) {
                mv->method = drain_method(f, vm, u, dst[k]);
            }
        }
    }
    if (f->power_actions) {
        plan_power(&c, plan);
    }
    pp_plan_note(plan, false, "%u overloaded hosts, %u moves off them, %u "
                 "draining", nover, nmoves1, plan->moves->len - nmoves1);
    for (guint i = 0; i < view->nhosts; i++) {
        g_free(h[i].vms);
    }
}

#define MEMBER(d, s)                                                        \
    static const Member member_##d##_##s = { DET_##d, SEL_##s, false };

#define OPS(d, s, dn, sn)                                                   \
    {                                                                       \
        .name = dn "-" sn,                                                  \
        .description = "Beloglazov-Buyya: " dn " detection, " sn            \
                       " selection, PABFD placement, draining",             \
        .opaque = &member_##d##_##s,                                        \
        .create = fam_create, .window = fam_window,                         \
        .history = fam_history, .decide = fam_decide,                       \
        .destroy = fam_destroy,                                             \
    }

#define FOR_SEL(d)                                                          \
    MEMBER(d, MMT) MEMBER(d, MU) MEMBER(d, RS) MEMBER(d, MC)
FOR_SEL(THR) FOR_SEL(IQR) FOR_SEL(MAD) FOR_SEL(LR) FOR_SEL(LRR)

#define OPS_SEL(d, dn)                                                      \
    OPS(d, MMT, dn, "mmt"), OPS(d, MU, dn, "mu"), OPS(d, RS, dn, "rs"),     \
    OPS(d, MC, dn, "mc")

const PpPolicyOps pp_policy_family[] = {
    OPS_SEL(THR, "thr"), OPS_SEL(IQR, "iqr"), OPS_SEL(MAD, "mad"),
    OPS_SEL(LR, "lr"), OPS_SEL(LRR, "lrr"),
};
const guint pp_policy_family_len = G_N_ELEMENTS(pp_policy_family);

static const Member member_hybrid = { DET_THR, SEL_MMT, true };

const PpPolicyOps pp_policy_hybrid = {
    .name = "hybrid",
    .description = "ours: packs bolder (thr 0.9) because post-copy relieves "
                   "at once; relief by post-copy, drains by pre-copy when "
                   "quick; truly power-aware PABFD",
    .opaque = &member_hybrid,
    .create = fam_create, .window = fam_window, .history = fam_history,
    .decide = fam_decide, .destroy = fam_destroy,
};
