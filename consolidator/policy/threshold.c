/*
 * The "threshold" policy: the rules of the paper's experiments (Hirofuchi
 * et al. 2010, section 5), every number a setting.
 *
 *  - A host is overloaded when its CPU >= overload_cpu (90%) and it runs
 *    more than one active VM (VM CPU >= active_vm_cpu, 5%).
 *  - A host is idle when its CPU < idle_cpu (30%).
 *  - On overload: keep the busiest active VM, move the other active VMs to
 *    idle hosts (busier VMs dirty memory faster, so they cost more to
 *    move).  Each goes to the idle host with the lowest projected CPU
 *    that has the memory for it; with no such host the VM stays and the
 *    plan carries a warning.
 *  - Otherwise, when more than one idle host holds VMs: pack them onto the
 *    busiest idle host, one source host at a time, only when all of that
 *    host's VMs fit (memory, and projected CPU below overload_cpu), so a
 *    pack always empties a host and never overloads one.
 *  - VMs the operator keeps in place (no_relocate) never move: on
 *    overload they are kept (all of them, instead of the busiest) and
 *    the other active VMs move; a host holding one is never packed away
 *    (the busiest such idle host is the pack's target instead).
 *  - No new relocation for cooldown seconds after one started, and none
 *    while a move is in flight.  The caller averages samples over window
 *    seconds (10) and asks once per decision interval (1 s).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "policy.h"
#include "pp-error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Threshold {
    double overload_cpu;
    double active_vm_cpu;
    double idle_cpu;
    double window;
    double cooldown;
} Threshold;

static const struct {
    const char *key;
    size_t offset;
    double def, min, max;
} settings[] = {
    { "overload_cpu", offsetof(Threshold, overload_cpu), 90, 0, 100 },
    { "active_vm_cpu", offsetof(Threshold, active_vm_cpu), 5, 0, 100 },
    { "idle_cpu", offsetof(Threshold, idle_cpu), 30, 0, 100 },
    { "window", offsetof(Threshold, window), 10, 1, 3600 },
    { "cooldown", offsetof(Threshold, cooldown), 10, 0, 86400 },
};

static void *threshold_create(const PpPolicyOps *ops, GKeyFile *kf,
                              const char *group, char **bad_key,
                              GError **errp)
{
    g_autofree Threshold *t = g_new0(Threshold, 1);
    g_auto(GStrv) keys = NULL;

    for (size_t i = 0; i < G_N_ELEMENTS(settings); i++) {
        *(double *)((char *)t + settings[i].offset) = settings[i].def;
    }
    if (kf && g_key_file_has_group(kf, group)) {
        keys = g_key_file_get_keys(kf, group, NULL, NULL);
    }
    for (char **k = keys; k && *k; k++) {
        size_t i;
        if (strcmp(*k, "name") == 0) {
            continue; /* the policy's own name, read by the caller */
        }
        for (i = 0; i < G_N_ELEMENTS(settings); i++) {
            if (strcmp(*k, settings[i].key) == 0) {
                break;
            }
        }
        if (i == G_N_ELEMENTS(settings)) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "[%s] unknown key '%s' for policy threshold", group,
                        *k);
            if (bad_key) {
                *bad_key = g_strdup(*k);
            }
            return NULL;
        }
        g_autofree char *raw = g_key_file_get_value(kf, group, *k, NULL);
        char *end;
        double v = g_ascii_strtod(raw, &end);
        if (!raw || end == raw || *end || isnan(v) || v < settings[i].min ||
            v > settings[i].max) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "[%s] %s = '%s': expected a number from %g to %g",
                        group, *k, raw ? raw : "", settings[i].min,
                        settings[i].max);
            if (bad_key) {
                *bad_key = g_strdup(*k);
            }
            return NULL;
        }
        *(double *)((char *)t + settings[i].offset) = v;
    }
    if (t->idle_cpu > t->overload_cpu) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "[%s] idle_cpu (%g) must not exceed overload_cpu (%g)",
                    group, t->idle_cpu, t->overload_cpu);
        if (bad_key) {
            *bad_key = g_strdup("idle_cpu");
        }
        return NULL;
    }
    return g_steal_pointer(&t);
}

static double threshold_window(void *state)
{
    return ((Threshold *)state)->window;
}

/* Projected state of one host while the plan is being built. */
typedef struct HostState {
    const PpHostView *h;
    double cpu;             /* projected, % of the CPU set */
    guint64 mem_used;       /* projected, MiB */
    guint nvms;             /* projected */
} HostState;

typedef struct Ctx {
    const Threshold *t;
    const PpClusterView *view;
    HostState *hs;
    const guint *hidx;      /* per VM, its host's index */
} Ctx;

/* @vm's demand as a share (%) of @hs's CPU set. */
static double cpu_share(const HostState *hs, const PpVmView *vm)
{
    return vm->cpu * 100 / pp_host_capacity(hs->h);
}

static bool fits(const Ctx *c, const HostState *hs, const PpVmView *vm)
{
    if (hs->h->mem_mib && hs->mem_used + vm->mem_mib > hs->h->mem_mib) {
        return false;
    }
    return hs->cpu + cpu_share(hs, vm) < c->t->overload_cpu;
}

static void project_move(Ctx *c, const PpVmView *vm, HostState *from,
                         HostState *to)
{
    from->cpu = MAX(0, from->cpu - cpu_share(from, vm));
    from->mem_used -= MIN(from->mem_used, vm->mem_mib);
    from->nvms--;
    to->cpu += cpu_share(to, vm);
    to->mem_used += vm->mem_mib;
    to->nvms++;
}

/* Busiest first; equal CPU: name order, so decisions are deterministic. */
static int cmp_vm_busy(const void *a, const void *b)
{
    const PpVmView *x = *(const PpVmView *const *)a;
    const PpVmView *y = *(const PpVmView *const *)b;

    if (x->cpu != y->cpu) {
        return x->cpu > y->cpu ? -1 : 1;
    }
    return strcmp(x->name, y->name);
}

static int cmp_host_busy(const void *a, const void *b)
{
    const HostState *x = *(const HostState *const *)a;
    const HostState *y = *(const HostState *const *)b;

    if (x->h->cpu != y->h->cpu) {
        return x->h->cpu > y->h->cpu ? -1 : 1;
    }
    return strcmp(x->h->name, y->h->name);
}

/* The idle host (by measured CPU) other than @from with the lowest
 * projected CPU that fits @vm; ties in host order. */
static HostState *pick_idle_target(Ctx *c, const HostState *from,
                                   const PpVmView *vm)
{
    HostState *best = NULL;

    for (guint i = 0; i < c->view->nhosts; i++) {
        HostState *hs = &c->hs[i];
        if (hs == from || hs->h->off || hs->h->cpu >= c->t->idle_cpu ||
            hs->cpu >= c->t->idle_cpu || !fits(c, hs, vm)) {
            continue;
        }
        if (!best || hs->cpu < best->cpu) {
            best = hs;
        }
    }
    return best;
}

static guint vms_on(const Ctx *c, const HostState *hs, const PpVmView **out)
{
    guint n = 0, h = hs - c->hs;

    for (guint i = 0; i < c->view->nvms; i++) {
        if (c->hidx[i] == h) {
            out[n++] = &c->view->vms[i];
        }
    }
    return n;
}

/* Does @hs hold a VM the operator keeps in place?  @buf: scratch. */
static bool holds_fixed(const Ctx *c, const HostState *hs,
                        const PpVmView **buf)
{
    guint n = vms_on(c, hs, buf);

    for (guint k = 0; k < n; k++) {
        if (buf[k]->fixed) {
            return true;
        }
    }
    return false;
}

static void spread(Ctx *c, PpPlan *plan)
{
    const PpVmView **on = g_new(const PpVmView *, c->view->nvms + 1);

    for (guint i = 0; i < c->view->nhosts; i++) {
        HostState *hs = &c->hs[i];
        guint n = vms_on(c, hs, on), nactive = 0;

        double core = hs->h->core_mips > 0 ? hs->h->core_mips : 100;
        qsort(on, n, sizeof(*on), cmp_vm_busy);
        /* active_vm_cpu is a % of one core; cpu is in the view's units */
        while (nactive < n &&
               on[nactive]->cpu * 100 / core >= c->t->active_vm_cpu) {
            nactive++;
        }
        if (hs->h->cpu < c->t->overload_cpu || nactive < 2) {
            continue;
        }
        /* The operator's fixed VMs stay (all of them); with none among
         * the active ones, the busiest stays.  The others move. */
        guint nkeep = 0;
        for (guint k = 0; k < nactive; k++) {
            if (on[k]->fixed) {
                const PpVmView *v = on[k];
                memmove(on + nkeep + 1, on + nkeep, (k - nkeep) * sizeof(*on));
                on[nkeep++] = v;
            }
        }
        if (nkeep == nactive) {
            pp_plan_note(plan, true, "%s is overloaded (%.0f%%) but its "
                         "active VMs are all kept in place (no_relocate)",
                         hs->h->name, hs->h->cpu);
            continue;
        }
        nkeep = MAX(nkeep, 1);
        for (guint k = nkeep; k < nactive; k++) {
            HostState *to = pick_idle_target(c, hs, on[k]);
            if (!to) {
                pp_plan_note(plan, true,
                             "%s is overloaded (%.0f%%) but no idle host can "
                             "take %s (%.0f%% of a core)", hs->h->name,
                             hs->h->cpu, on[k]->name,
                             on[k]->cpu * 100 / core);
                continue;
            }
            pp_plan_add_move(plan, on[k]->name, hs->h->name, to->h->name,
                             "spread: %s overloaded (%.0f%%, %u active VMs); "
                             "%s keeps %s%s", hs->h->name, hs->h->cpu, nactive,
                             hs->h->name, on[0]->name,
                             on[0]->fixed ? " (no_relocate)" : "");
            project_move(c, on[k], hs, to);
        }
    }
    g_free(on);
}

static void pack(Ctx *c, PpPlan *plan)
{
    g_autofree HostState **idle = g_new(HostState *, c->view->nhosts);
    g_autofree const PpVmView **on = g_new(const PpVmView *,
                                           c->view->nvms + 1);
    guint nidle = 0;

    for (guint i = 0; i < c->view->nhosts; i++) {
        if (c->hs[i].h->cpu < c->t->idle_cpu && c->hs[i].nvms > 0) {
            idle[nidle++] = &c->hs[i];
        }
    }
    if (nidle < 2) {
        return;
    }
    qsort(idle, nidle, sizeof(*idle), cmp_host_busy);
    /* A host with a VM the operator keeps in place cannot be emptied:
     * the busiest such host is the target, and no such host a source. */
    g_autofree bool *fixed = g_new(bool, nidle);
    guint ti = nidle;
    for (guint i = 0; i < nidle; i++) {
        fixed[i] = holds_fixed(c, idle[i], on);
        if (fixed[i] && ti == nidle) {
            ti = i;
        }
    }
    ti = ti == nidle ? 0 : ti;
    HostState *to = idle[ti];
    for (guint i = 0; i < nidle; i++) {
        HostState *from = idle[i];
        if (i == ti) {
            continue;
        }
        if (fixed[i]) {
            pp_plan_note(plan, false, "not packing %s onto %s: it holds a "
                         "VM kept in place (no_relocate)", from->h->name,
                         to->h->name);
            continue;
        }
        guint n = vms_on(c, from, on);
        HostState trial = *to;
        bool all_fit = true;

        for (guint k = 0; k < n && all_fit; k++) {
            all_fit = fits(c, &trial, on[k]);
            trial.cpu += cpu_share(&trial, on[k]);
            trial.mem_used += on[k]->mem_mib;
        }
        if (!all_fit) {
            pp_plan_note(plan, false, "not packing %s onto %s: its VMs do "
                         "not all fit", from->h->name, to->h->name);
            continue;
        }
        for (guint k = 0; k < n; k++) {
            pp_plan_add_move(plan, on[k]->name, from->h->name, to->h->name,
                             "pack: %s (%.0f%%) and %s (%.0f%%) idle",
                             from->h->name, from->h->cpu, to->h->name,
                             to->h->cpu);
            project_move(c, on[k], from, to);
        }
    }
}

static void threshold_decide(void *state, const PpClusterView *view,
                             PpPlan *plan)
{
    const Threshold *t = state;
    g_autofree HostState *hs = g_new0(HostState, view->nhosts + 1);
    Ctx c = { .t = t, .view = view, .hs = hs };

    for (guint i = 0; i < view->nvms; i++) {
        if (view->vms[i].migrating) {
            pp_plan_note(plan, false, "waiting: %s is moving",
                         view->vms[i].name);
            return;
        }
    }
    /* The rules compare every host and VM: with one of them unknown
     * (no samples: just started, or its host stopped answering) an idle
     * verdict could be wrong, so nothing is decided until it is known. */
    for (guint i = 0; i < view->nhosts; i++) {
        if (isnan(view->hosts[i].cpu)) {
            pp_plan_note(plan, false, "waiting: no CPU samples of host %s",
                         view->hosts[i].name);
            return;
        }
    }
    for (guint i = 0; i < view->nvms; i++) {
        if (isnan(view->vms[i].cpu)) {
            pp_plan_note(plan, false, "waiting: no CPU samples of VM %s",
                         view->vms[i].name);
            return;
        }
    }
    if (view->now - view->last_relocation < t->cooldown) {
        pp_plan_note(plan, false, "cooldown: %.1f s left",
                     t->cooldown - (view->now - view->last_relocation));
        return;
    }
    for (guint i = 0; i < view->nhosts; i++) {
        hs[i].h = &view->hosts[i];
        hs[i].cpu = view->hosts[i].cpu;
    }
    guint bad = 0;
    g_autofree guint *hidx = pp_view_host_index(view, &bad);
    if (!hidx) {
        pp_plan_note(plan, true, "VM %s is on unknown host %s",
                     view->vms[bad].name, view->vms[bad].host);
        return;
    }
    c.hidx = hidx;
    for (guint i = 0; i < view->nvms; i++) {
        HostState *h = &hs[hidx[i]];
        h->mem_used += view->vms[i].mem_mib;
        h->nvms++;
    }
    spread(&c, plan);
    if (plan->moves->len == 0) {
        pack(&c, plan);
    }
}

static void threshold_destroy(void *state)
{
    g_free(state);
}

const PpPolicyOps pp_policy_threshold = {
    .name = "threshold",
    .description = "the paper's rules: spread on overload, pack idle hosts",
    .create = threshold_create,
    .window = threshold_window,
    .decide = threshold_decide,
    .destroy = threshold_destroy,
};
