/*
 * The consolidation simulator (see sim.h).
 *
 * Every event (a decision tick or the end of migrations) updates every
 * host: demands from the traces, the CPU each VM gets (a vCPU is capped
 * at a core; an over-subscribed host shares its capacity in proportion),
 * then the metrics of the segment since the previous event, judged by
 * the state at its start.  A state recorded twice at the same instant
 * (a tick, then the migrations it started) keeps the later one.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "sim.h"
#include "pp-error.h"

#include <math.h>
#include <string.h>


/* One recorded state, kept until a later instant replaces it. */
typedef struct Entry {
    double t;
    double alloc, req;
    bool flag;              /* host: active; VM: in migration */
    bool valid;
} Entry;

typedef enum MigKind { MIG_NONE, MIG_CLOUDSIM, MIG_PRE, MIG_POST } MigKind;

typedef struct SVm {
    const PpSimVmType *type;
    int host;               /* where it runs; -1: ended */
    /* a move in flight */
    MigKind kind;
    int src;                /* the host it leaves */
    int mig_to;             /* -1: not moving */
    int mig_via;            /* a chained move's first target (CloudSim's
                             * duplicate moves); -1: none */
    bool switched;          /* post-copy: runs on the target */
    double t_start;         /* by method: when its turn on the links
                             * comes (a host sends and receives one VM
                             * at a time) */
    double t_switch;        /* post-copy: when it runs on the target */
    double t_first;         /* post-copy: end of the first, worse phase */
    double t_throttle;      /* pre-copy: auto-converge from then on */
    double throttle;        /* share of its demand it gets throttled */
    double mig_end;
    double req;             /* demand now, MIPS */
    float *hist;            /* demand per step, oldest first (hmax) */
    guint nhist;
    Entry e;
    /* metrics */
    double mig_since;
    bool prev_mig;
} SVm;

typedef struct SHost {
    const PpSimHostType *type;
    double cap;
    GArray *vms;            /* int: VMs whose CPU it runs, in order */
    double util;            /* CPU in use / capacity, at the last update */
    Entry e;
    /* metrics */
    bool prev_active;
    double last_on;
    double short_since;     /* < 0: not short of CPU */
    double link_free;       /* its link is free for a move then (one
                             * move at a time, sending or receiving) */
    /* power actions */
    bool suspended;
    bool suspend_pending;   /* suspend once empty */
    double awake_at;        /* waking until then */
} SHost;

typedef struct Sim {
    const PpSimConfig *cfg;
    const PpTrace *tr;
    PpSimResult *res;
    SVm *vm;
    SHost *host;
    guint nvms, nhosts;
    double last_t;
    double energy_ws;
    double active_s, viol_s;
    double tot_req, under_mig;
    double shutdown_s_sum, mig_s_sum;
    guint64 mig_count_done;
    GArray *resolve;        /* double: overload episode lengths */
    guint hmax;             /* history samples kept per VM */
    float *hist;            /* nvms x hmax */
    double last_relocation; /* when a move last started */
    char **host_names;
} Sim;

void pp_sim_preset_literature(PpSimConfig *cfg)
{
    static const PpSimHostType hosts[] = {
        { "HP ProLiant ML110 G4", 2, 1860, 4096, 125,
          { "ML110 G4", { 86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114,
                          117 } } },
        { "HP ProLiant ML110 G5", 2, 2660, 4096, 125,
          { "ML110 G5", { 93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133,
                          135 } } },
    };
    static const PpSimVmType vms[] = {
        { 2500, 870 }, { 2000, 1740 }, { 1000, 1740 }, { 500, 613 },
    };

    memset(cfg, 0, sizeof(*cfg));
    cfg->host_types = hosts;
    cfg->nhost_types = G_N_ELEMENTS(hosts);
    cfg->nhosts = 800;
    cfg->vm_types = vms;
    cfg->nvm_types = G_N_ELEMENTS(vms);
    cfg->vm_types_in_blocks = true;
    cfg->offset = 0.1;
    cfg->end_idle_vms = true;
    cfg->enforce_mem = false;
    cfg->model = PP_MIG_CLOUDSIM;
    pp_mig_params_default(&cfg->mig);
    cfg->wake_delay = 30;
    cfg->suspended_watts = 5;
}

/* Trace utilisation of VM @i at time @t, linear between samples, the
 * last sample held. */
static double trace_util(const Sim *s, guint i, double t)
{
    const PpTrace *tr = s->tr;
    double x = t / tr->step;
    guint k1 = (guint)floor(x), k2 = (guint)ceil(x);
    guint last = tr->nsamples - 1;
    double a = pp_trace_at(tr, i, MIN(k1, last));
    double b = pp_trace_at(tr, i, MIN(k2, last));

    if (k1 == k2) {
        return a;
    }
    return a + (b - a) * (t - k1 * tr->step) / tr->step;
}

static double power(const SHost *h, double u)
{
    return pp_power_at(&h->type->power, u);
}

/* Close the segment that ends at @e's successor time @t for a host. */
static void host_entry(Sim *s, SHost *h, double t, double alloc, double req,
                       bool active)
{
    Entry *e = &h->e;

    if (e->valid && t > e->t) {
        double dt = t - e->t;
        if (e->flag) {
            s->active_s += dt;
            if (e->alloc < e->req) {
                s->viol_s += dt;
            }
        }
    }
    if (!e->valid || t > e->t) {
        /* a new instant: the previous entry is final */
        if (e->valid) {
            if (h->prev_active && !e->flag) {
                s->res->shutdowns++;
                s->shutdown_s_sum += e->t - h->last_on;
            } else if (!h->prev_active && e->flag) {
                h->last_on = e->t;
            }
            h->prev_active = e->flag;
            /* overload episodes, as the metrics see them */
            bool is_short = e->flag && e->alloc < e->req;
            if (is_short && h->short_since < 0) {
                h->short_since = e->t;
            } else if (!is_short && h->short_since >= 0) {
                double d = e->t - h->short_since;
                g_array_append_val(s->resolve, d);
                h->short_since = -1;
            }
        }
    }
    e->t = t;
    e->alloc = alloc;
    e->req = req;
    e->flag = active;
    e->valid = true;
}

static void vm_entry(Sim *s, SVm *v, double t, double alloc, double req,
                     bool mig)
{
    Entry *e = &v->e;

    if (e->valid && t > e->t) {
        double dt = t - e->t;
        s->tot_req += e->req * dt;
        if (e->alloc < e->req && e->flag) {
            s->under_mig += (e->req - e->alloc) * dt;
        }
    }
    if (e->valid && t > e->t) {
        if (!v->prev_mig && e->flag) {
            v->mig_since = e->t;
        } else if (v->prev_mig && !e->flag) {
            s->mig_s_sum += e->t - v->mig_since;
            s->mig_count_done++;
        }
        v->prev_mig = e->flag;
    }
    e->t = t;
    e->alloc = alloc;
    e->req = req;
    e->flag = mig;
    e->valid = true;
}

/* How a VM touches host @hi now: runs there, has CPU reserved there
 * (CloudSim's target), or is sent from there (the source of a move by
 * method, which spends CPU on it). */
typedef enum Role { ROLE_RUN, ROLE_RESERVE, ROLE_SEND } Role;

static Role role_on(const SVm *v, int hi)
{
    if (v->host == hi) {
        return ROLE_RUN;
    }
    return v->kind == MIG_CLOUDSIM ? ROLE_RESERVE : ROLE_SEND;
}

/* The share of its demand a running VM gets (before any sharing), and
 * whether its host still spends the rest (overhead) or not (stalls). */
static double run_factor(const Sim *s, const SVm *v, double t,
                         bool *host_pays_full)
{
    const PpMigParams *p = &s->cfg->mig;

    *host_pays_full = true;
    switch (v->kind) {
    case MIG_CLOUDSIM:
        return 0.9;
    case MIG_PRE:
        if (t < v->t_start) {
            return 1;               /* waiting for its turn */
        }
        if (t >= v->t_throttle) {
            *host_pays_full = false;
            return v->throttle;
        }
        return 1 - p->precopy_slowdown;
    case MIG_POST:
        if (!v->switched) {
            return 1;
        }
        *host_pays_full = false;
        return 1 - (t < v->t_first ? p->postcopy_first_loss :
                    p->postcopy_loss);
    default:
        return 1;
    }
}

/* Share @h's CPU among its VMs; record the states at @t; returns the
 * utilisation (CPU in use / capacity). */
static double host_schedule(Sim *s, guint hi, double t)
{
    SHost *h = &s->host[hi];
    double core = h->type->core_mips, total = 0, used = 0, requested = 0;
    double send = s->cfg->mig.source_cpu * core;

    for (guint k = 0; k < h->vms->len; k++) {
        SVm *v = &s->vm[g_array_index(h->vms, int, k)];
        switch (role_on(v, hi)) {
        case ROLE_RUN:
            total += MIN(v->req, core);
            if (v->kind == MIG_PRE && t >= v->t_start) {
                total += send;
            }
            break;
        case ROLE_RESERVE:
            total += MIN(v->req, core) * 0.1;
            break;
        case ROLE_SEND:
            total += send;
            break;
        }
    }
    double scale = total > h->cap ? h->cap / total : 1;
    for (guint k = 0; k < h->vms->len; k++) {
        SVm *v = &s->vm[g_array_index(h->vms, int, k)];
        double c = MIN(v->req, core), a;
        bool full;
        switch (role_on(v, hi)) {
        case ROLE_RUN: {
            double f = run_factor(s, v, t, &full);
            if (v->kind == MIG_CLOUDSIM) {
                /* CloudSim's order of operations, kept for its figures */
                a = scale < 1 ? floor(c * scale * 0.9) : c * 0.9;
            } else {
                a = scale < 1 ? floor(c * scale * f) : c * f;
            }
            vm_entry(s, v, t, a, v->req, v->kind != MIG_NONE &&
                     (v->kind == MIG_CLOUDSIM || t >= v->t_start));
            if (full && f > 0) {
                /* overhead: the host spends it */
                if (v->kind == MIG_CLOUDSIM) {
                    a /= f;         /* CloudSim's rounding, kept */
                } else {
                    a = scale < 1 ? c * scale : c;
                }
                requested += v->req;
            } else {
                requested += v->req * f; /* stalls: nobody asks the CPU */
            }
            if (v->kind == MIG_PRE && t >= v->t_start) {
                a += send * scale;
                requested += send;
            }
            used += a;
            break;
        }
        case ROLE_RESERVE:
            a = scale < 1 ? floor(c * 0.1 * scale) : c * 0.1;
            used += a;
            requested += v->req;
            break;
        case ROLE_SEND:
            used += send * scale;
            requested += send;
            break;
        }
    }
    double u = used / h->cap;
    if (u > 1 && u < 1.01) {
        u = 1;
    }
    host_entry(s, h, t, used, requested, used > 0);
    return u;
}

/* Hosts told to suspend do so once nothing runs on or moves over them. */
static void suspend_empty(Sim *s)
{
    for (guint i = 0; i < s->nhosts; i++) {
        SHost *h = &s->host[i];
        if (h->suspend_pending && h->vms->len == 0 &&
            s->last_t >= h->link_free) {
            h->suspend_pending = false;
            h->suspended = true;
            s->res->suspends++;
        }
    }
}

/* Wake @h (now, or it is already awake or waking). */
static void wake(Sim *s, SHost *h)
{
    h->suspend_pending = false;
    if (h->suspended) {
        h->suspended = false;
        h->awake_at = s->last_t + s->cfg->wake_delay;
        s->res->wakes++;
    }
}

/* A full update at @t: demands, every host, energy, ended VMs. */
static void update(Sim *s, double t, bool tick)
{
    double dt = t - s->last_t;

    for (guint i = 0; i < s->nvms; i++) {
        SVm *v = &s->vm[i];
        if (v->host < 0) {
            continue;
        }
        v->req = trace_util(s, i, t) * v->type->mips;
        if (tick) {
            if (v->nhist == s->hmax) {
                memmove(v->hist, v->hist + 1, (s->hmax - 1) * sizeof(float));
                v->nhist--;
            }
            v->hist[v->nhist++] = (float)v->req;
        }
    }
    for (guint i = 0; i < s->nhosts; i++) {
        SHost *h = &s->host[i];
        double from = h->util, to = host_schedule(s, i, t);
        if (dt <= 0 || s->last_t == 0) {
            /* nothing to count (nor before the first update, as in
             * CloudSim: the figures cover the decisions' span) */
        } else if (!s->cfg->power_actions) {
            if (from != 0) {    /* CPU use 0: off, 0 W (CloudSim) */
                s->energy_ws += (power(h, from) + (power(h, to) -
                                                   power(h, from)) / 2) * dt;
            }
        } else if (h->suspended) {
            s->energy_ws += s->cfg->suspended_watts * dt;
        } else {
            /* awake (or waking, at idle power): even empty */
            s->energy_ws += (power(h, from) + (power(h, to) -
                                               power(h, from)) / 2) * dt;
        }
        h->util = to;
    }
    if (s->cfg->end_idle_vms) {
        for (guint i = 0; i < s->nvms; i++) {
            SVm *v = &s->vm[i];
            if (v->host >= 0 && v->kind == MIG_NONE && v->req == 0) {
                SHost *h = &s->host[v->host];
                for (guint k = 0; k < h->vms->len; k++) {
                    if (g_array_index(h->vms, int, k) == (int)i) {
                        g_array_remove_index(h->vms, k);
                        break;
                    }
                }
                v->host = -1;
                s->res->ended_vms++;
            }
        }
    }
    s->last_t = t;
    if (s->cfg->power_actions) {
        suspend_empty(s);
    }
}

/* Recompute the states of every host at the current instant (after
 * migrations started or ended); no time passes. */
static void reschedule(Sim *s)
{
    for (guint i = 0; i < s->nhosts; i++) {
        s->host[i].util = host_schedule(s, i, s->last_t);
    }
}

static double power_at_full_mips(const SHost *h, double mips)
{
    return power(h, MIN(1, mips / h->cap));
}

/* The start: each VM in order, asking its full size, to the host whose
 * power rises least (first fit for the "none" policy); memory and the
 * core limit apply. */
static bool initial_placement(Sim *s, bool first_fit, GError **errp)
{
    g_autofree double *booked = g_new0(double, s->nhosts);
    g_autofree guint64 *mem = g_new0(guint64, s->nhosts);
    g_autofree guint *count = g_new0(guint, s->nhosts);

    for (guint i = 0; i < s->nvms; i++) {
        SVm *v = &s->vm[i];
        int best = -1;
        double best_diff = INFINITY;
        for (guint k = 0; k < s->nhosts; k++) {
            SHost *h = &s->host[k];
            if (v->type->mips > h->type->core_mips ||
                h->cap - booked[k] < v->type->mips ||
                mem[k] + v->type->mem_mib > h->type->mem_mib ||
                count[k] >= 10) {
                continue;
            }
            if (first_fit) {
                best = k;
                break;
            }
            double diff = power_at_full_mips(h, booked[k] + v->type->mips) -
                          power(h, 0);
            if (diff < best_diff) {
                best_diff = diff;
                best = k;
            }
        }
        if (best < 0) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "VM %s (%.0f MIPS, %" G_GUINT64_FORMAT " MiB) fits no "
                        "host at the start", s->tr->names[i], v->type->mips,
                        v->type->mem_mib);
            return false;
        }
        booked[best] += v->type->mips;
        mem[best] += v->type->mem_mib;
        count[best]++;
        v->host = best;
        g_array_append_val(s->host[best].vms, i);
    }
    return true;
}

static const float *demand_key;
static int cmp_demand_desc(const void *a, const void *b)
{
    guint x = *(const guint *)a, y = *(const guint *)b;

    if (demand_key[x] != demand_key[y]) {
        return demand_key[x] > demand_key[y] ? -1 : 1;
    }
    return x < y ? -1 : x > y;
}

/* The start by demand: largest first sample first, next fit up to 70 %. */
static bool start_by_demand(Sim *s, GError **errp)
{
    g_autofree float *d = g_new(float, s->nvms + 1);
    g_autofree guint *order = g_new(guint, s->nvms + 1);
    g_autofree double *booked = g_new0(double, s->nhosts + 1);
    g_autofree guint64 *mem = g_new0(guint64, s->nhosts + 1);
    guint cur = 0;

    for (guint i = 0; i < s->nvms; i++) {
        d[i] = pp_trace_at(s->tr, i, 0) * s->vm[i].type->mips;
        order[i] = i;
    }
    demand_key = d;
    qsort(order, s->nvms, sizeof(guint), cmp_demand_desc);
    for (guint k = 0; k < s->nvms; k++) {
        guint i = order[k];
        SVm *v = &s->vm[i];
        guint tried = 0;
        for (; tried < s->nhosts; tried++, cur = (cur + 1) % s->nhosts) {
            SHost *h = &s->host[cur];
            if (v->type->mips <= h->type->core_mips &&
                booked[cur] + d[i] <= 0.7 * h->cap &&
                (!s->cfg->enforce_mem ||
                 mem[cur] + v->type->mem_mib <= h->type->mem_mib)) {
                break;
            }
        }
        if (tried == s->nhosts) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "VM %s (%.0f MIPS) fits no host at the start",
                        s->tr->names[i], d[i]);
            return false;
        }
        booked[cur] += d[i];
        mem[cur] += v->type->mem_mib;
        v->host = cur;
    }
    /* host lists in VM order */
    for (guint i = 0; i < s->nvms; i++) {
        int vi = i;
        g_array_append_val(s->host[s->vm[i].host].vms, vi);
    }
    return true;
}

static gint cmp_double(gconstpointer a, gconstpointer b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Start moving @v to host @to by the configured model. */
static void start_move(Sim *s, SVm *v, int to, PpMethod method)
{
    const PpSimConfig *cfg = s->cfg;
    const PpMigParams *p = &cfg->mig;
    SHost *src = &s->host[v->host], *dst = &s->host[to];
    double mem = v->type->mem_mib, now = s->last_t;
    int vi = v - s->vm;

    v->src = v->host;
    v->mig_to = to;
    v->mig_via = -1;
    v->switched = false;
    v->t_throttle = v->t_first = v->t_switch = INFINITY;
    v->t_start = now;
    s->res->migrations++;
    s->res->moved_mb += mem;
    switch (cfg->model) {
    case PP_MIG_CLOUDSIM:
        v->kind = MIG_CLOUDSIM;
        break;
    case PP_MIG_PRECOPY:
        v->kind = MIG_PRE;
        break;
    case PP_MIG_POSTCOPY:
        v->kind = MIG_POST;
        break;
    default:
        v->kind = method == PP_METHOD_PRECOPY ? MIG_PRE : MIG_POST;
        break;
    }
    if (v->kind == MIG_CLOUDSIM) {
        if (cfg->power_actions) {
            if (dst->suspended) {
                s->res->unplanned_wakes++;
            }
            wake(s, dst);   /* CloudSim's migrations cannot wait for it */
        }
        /* CloudSim: the target's bandwidth, halved */
        v->mig_end = now + mem / (dst->type->bandwidth / 2);
        g_array_append_val(dst->vms, vi);
        return;
    }
    double bw = MIN(src->type->bandwidth, dst->type->bandwidth) *
                p->bandwidth_share;
    /* one move at a time on each host's link, in the plan's order; a
     * suspended target wakes first */
    if (cfg->power_actions) {
        if (dst->suspended) {
            s->res->unplanned_wakes++;
        }
        wake(s, dst);
        now = MAX(now, dst->awake_at);
    }
    now = MAX(now, MAX(src->link_free, dst->link_free));
    v->t_start = now;
    if (v->kind == MIG_PRE) {
        double util = MIN(1, v->req / v->type->mips), total, thr;
        double dirty = p->dirty_per_core * util;
        s->res->precopies++;
        if (!pp_precopy_time(p, mem, dirty, bw, &total, &thr)) {
            s->res->unconverged++;
        }
        v->mig_end = now + total;
        v->t_throttle = now + thr;
        v->throttle = dirty > 0 ? CLAMP(0.5 * bw / dirty, 0.01, 1) : 1;
    } else {
        s->res->postcopies++;
        v->t_switch = now + p->switch_time;
        v->t_first = v->t_switch + p->postcopy_first_s;
        v->mig_end = v->t_switch + mem / bw;
    }
    src->link_free = dst->link_free = v->mig_end;
}

/* Ask the policy; start the moves it plans. */
static void decide(Sim *s, const PpPolicyOps *ops, void *state,
                   GHashTable *vm_by_name, GHashTable *host_by_name)
{
    g_autofree PpHostView *hv = g_new0(PpHostView, s->nhosts + 1);
    g_autofree PpVmView *vv = g_new0(PpVmView, s->nvms + 1);
    guint nv = 0;

    for (guint i = 0; i < s->nhosts; i++) {
        SHost *h = &s->host[i];
        hv[i].name = s->host_names[i];
        hv[i].ncpus = h->type->cores;
        hv[i].core_mips = h->type->core_mips;
        hv[i].mem_mib = s->cfg->enforce_mem ? h->type->mem_mib : 0;
        hv[i].cpu = h->util * 100;
        /* what a migration gets, as the model moves them */
        hv[i].bandwidth = h->type->bandwidth *
                          (s->cfg->model == PP_MIG_CLOUDSIM ? 0.5 :
                           s->cfg->mig.bandwidth_share);
        hv[i].power = &h->type->power;
        hv[i].off = s->cfg->power_actions ?
                    h->suspended || s->last_t < h->awake_at : h->util == 0;
    }
    for (guint i = 0; i < s->nvms; i++) {
        SVm *v = &s->vm[i];
        if (v->host < 0) {
            continue;
        }
        vv[nv] = (PpVmView) {
            .name = s->tr->names[i], .host = s->host_names[v->host],
            .mem_mib = v->type->mem_mib, .cpu = v->req, .vcpus = 1,
            .vcpu_mips = v->type->mips, .history = v->hist,
            .nhistory = v->nhist, .dirty_rate = NAN,
            .migrating = v->kind != MIG_NONE,
            .migrating_to = v->kind != MIG_NONE ?
                            s->host_names[v->mig_to] : NULL,
        };
        nv++;
    }
    PpClusterView view = {
        .now = s->last_t, .last_relocation = s->last_relocation,
        .history_step = s->tr->step, .hosts = hv, .nhosts = s->nhosts,
        .vms = vv, .nvms = nv,
    };
    g_autoptr(PpPlan) plan = pp_plan_new();
    gint64 t0 = g_get_monotonic_time();
    ops->decide(state, &view, plan);
    double ms = (g_get_monotonic_time() - t0) / 1000.0;
    PpSimResult *r = s->res;
    r->decision_mean_ms += ms;
    r->decision_max_ms = MAX(r->decision_max_ms, ms);
    r->decisions++;

    /* a suspend is wanted while the plans say so */
    for (guint i = 0; i < s->nhosts; i++) {
        s->host[i].suspend_pending = false;
    }
    for (guint i = 0; s->cfg->power_actions && i < plan->power->len; i++) {
        PpPowerAction *a = plan->power->pdata[i];
        gpointer hp = g_hash_table_lookup(host_by_name, a->host);
        if (!hp) {
            r->unplaced++;
            continue;
        }
        SHost *h = &s->host[GPOINTER_TO_INT(hp) - 1];
        if (a->on) {
            wake(s, h);
        } else if (!h->suspended) {
            h->suspend_pending = true;
        }
    }
    bool started = false;
    for (guint i = 0; i < plan->moves->len; i++) {
        PpMove *m = plan->moves->pdata[i];
        gpointer vp = g_hash_table_lookup(vm_by_name, m->vm);
        gpointer hp = g_hash_table_lookup(host_by_name, m->to);
        if (!vp || !hp) {
            r->unplaced++;
            continue;
        }
        SVm *v = &s->vm[GPOINTER_TO_INT(vp) - 1];
        int to = GPOINTER_TO_INT(hp) - 1;
        gpointer fp = g_hash_table_lookup(host_by_name, m->from);
        if (v->host >= 0 && v->kind == MIG_CLOUDSIM && v->mig_via < 0 &&
            fp && GPOINTER_TO_INT(fp) - 1 == v->mig_to && to != v->host &&
            to != v->mig_to && v->mig_end == s->last_t +
            v->type->mem_mib / (s->host[v->mig_to].type->bandwidth / 2)) {
            /* a second move in the same plan, from the first one's
             * target: CloudSim runs both (each target reserves its
             * share), and the VM ends on the second */
            v->mig_via = v->mig_to;
            v->mig_to = to;
            int vi = v - s->vm;
            g_array_append_val(s->host[to].vms, vi);
            r->migrations++;
            continue;
        }
        if (v->host < 0 || v->kind != MIG_NONE || v->host == to ||
            !fp || GPOINTER_TO_INT(fp) - 1 != v->host) {
            r->unplaced++;
            continue;
        }
        start_move(s, v, to, m->method);
        s->last_relocation = s->last_t;
        started = true;
    }
    if (started) {
        reschedule(s);
    }
    if (s->cfg->power_actions) {
        suspend_empty(s);
    }
}

/* The next instant something about a move changes; INFINITY if none. */
static double next_event(const Sim *s)
{
    double t = INFINITY;

    for (guint i = 0; i < s->nvms; i++) {
        const SVm *v = &s->vm[i];
        switch (v->kind) {
        case MIG_NONE:
            continue;
        case MIG_PRE:
            if (v->t_start > s->last_t) {
                t = MIN(t, v->t_start);
            }
            if (v->t_throttle > s->last_t) {
                t = MIN(t, v->t_throttle);
            }
            break;
        case MIG_POST:
            if (!v->switched) {
                t = MIN(t, v->t_switch);
            } else if (v->t_first > s->last_t) {
                t = MIN(t, v->t_first);
            }
            break;
        default:
            break;
        }
        t = MIN(t, v->mig_end);
    }
    return t;
}

static void list_remove(GArray *a, int vi)
{
    for (guint k = 0; k < a->len; k++) {
        if (g_array_index(a, int, k) == vi) {
            g_array_remove_index(a, k);
            return;
        }
    }
}

/* Switches and ends due by @t. */
static void process_events(Sim *s, double t)
{
    for (guint i = 0; i < s->nvms; i++) {
        SVm *v = &s->vm[i];
        int vi = i;
        if (v->kind == MIG_POST && !v->switched && v->t_switch <= t) {
            v->switched = true;
            v->host = v->mig_to;
            g_array_append_val(s->host[v->mig_to].vms, vi);
        }
        if (v->kind == MIG_NONE || v->mig_end > t) {
            continue;
        }
        list_remove(s->host[v->src].vms, vi);
        list_remove(s->host[v->mig_to].vms, vi);
        if (v->mig_via >= 0) {
            list_remove(s->host[v->mig_via].vms, vi);
            v->mig_via = -1;
        }
        g_array_append_val(s->host[v->mig_to].vms, vi);
        v->host = v->mig_to;
        v->mig_to = v->src = -1;
        v->kind = MIG_NONE;
        v->switched = false;
    }
    reschedule(s);
    if (s->cfg->power_actions) {
        suspend_empty(s);
    }
}

bool pp_sim_run(const PpSimConfig *cfg, const PpTrace *trace,
                const PpPolicyOps *ops, void *state, PpSimResult *res,
                GError **errp)
{
    Sim s = { .cfg = cfg, .tr = trace, .res = res };
    g_autoptr(GHashTable) vm_by_name = g_hash_table_new(g_str_hash,
                                                        g_str_equal);
    g_autoptr(GHashTable) host_by_name = g_hash_table_new(g_str_hash,
                                                          g_str_equal);
    bool ok = false;

    memset(res, 0, sizeof(*res));
    if (!cfg->nhosts || !cfg->nhost_types || !cfg->nvm_types ||
        trace->nsamples < 2 || !(trace->step > 0)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "nothing to simulate: %u hosts, %u samples",
                    cfg->nhosts, trace->nsamples);
        return false;
    }
    s.nvms = trace->nvms;
    s.nhosts = cfg->nhosts;
    s.vm = g_new0(SVm, s.nvms + 1);
    s.host = g_new0(SHost, s.nhosts + 1);
    s.host_names = g_new0(char *, s.nhosts + 1);
    s.resolve = g_array_new(FALSE, FALSE, sizeof(double));
    s.last_relocation = -INFINITY;
    if (ops->history) {
        double step = 0;
        s.hmax = ops->history(state, &step);
    }
    s.hmax = CLAMP(s.hmax, 1, 100000);
    s.hist = g_new(float, (gsize)s.nvms * s.hmax + 1);
    guint block = (s.nvms + cfg->nvm_types - 1) / cfg->nvm_types;
    for (guint i = 0; i < s.nvms; i++) {
        guint type = cfg->vm_types_in_blocks ? i / block : i % cfg->nvm_types;
        s.vm[i].type = &cfg->vm_types[MIN(type, cfg->nvm_types - 1)];
        s.vm[i].mig_to = s.vm[i].mig_via = s.vm[i].src = -1;
        s.vm[i].hist = s.hist + (gsize)i * s.hmax;
        g_hash_table_insert(vm_by_name, trace->names[i],
                            GINT_TO_POINTER(i + 1));
    }
    for (guint i = 0; i < s.nhosts; i++) {
        SHost *h = &s.host[i];
        h->type = &cfg->host_types[i % cfg->nhost_types];
        h->cap = h->type->cores * h->type->core_mips;
        h->vms = g_array_new(FALSE, FALSE, sizeof(int));
        h->prev_active = true;
        h->short_since = -1;
        s.host_names[i] = g_strdup_printf("host%u", i);
        g_hash_table_insert(host_by_name, s.host_names[i],
                            GINT_TO_POINTER(i + 1));
    }
    res->nhosts = s.nhosts;
    res->nvms = s.nvms;
    if (cfg->start_by_demand ? !start_by_demand(&s, errp) :
        !initial_placement(&s, strcmp(ops->name, "none") == 0, errp)) {
        goto out;
    }
    for (guint i = 0; cfg->power_actions && i < s.nhosts; i++) {
        s.host[i].suspended = s.host[i].vms->len == 0;
    }
    if (cfg->csv) {
        fprintf(cfg->csv, "time,active_hosts,awake_hosts,power_w,energy_kwh,"
                "short_hosts,migrations,vms\n");
    }
    /* Ticks at k x step + offset, k = 1 .. nsamples - 1. */
    for (guint k = 1; k < trace->nsamples; k++) {
        double t = k * trace->step + cfg->offset;
        for (double m; (m = next_event(&s)) <= t;) {
            if (m > s.last_t) {
                update(&s, m, false);
            }
            process_events(&s, m);
        }
        update(&s, t, true);
        decide(&s, ops, state, vm_by_name, host_by_name);
        if (cfg->csv) {
            guint active = 0, awake = 0, shorts = 0, alive = 0;
            double w = 0;
            for (guint i = 0; i < s.nhosts; i++) {
                bool on = cfg->power_actions ? !s.host[i].suspended :
                          s.host[i].util > 0;
                active += s.host[i].util > 0;
                if (on) {
                    awake++;
                    w += power(&s.host[i], s.host[i].util);
                } else if (cfg->power_actions) {
                    w += cfg->suspended_watts;
                }
                shorts += s.host[i].e.alloc < s.host[i].e.req;
            }
            for (guint i = 0; i < s.nvms; i++) {
                alive += s.vm[i].host >= 0;
            }
            fprintf(cfg->csv, "%.1f,%u,%u,%.1f,%.4f,%u,%" G_GUINT64_FORMAT
                    ",%u\n", t, active, awake, w, s.energy_ws / 3.6e6, shorts,
                    res->migrations, alive);
        }
    }
    /* the last moves end; nothing after that is counted */
    for (double m; (m = next_event(&s)) < INFINITY;) {
        if (m > s.last_t) {
            update(&s, m, false);
        }
        process_events(&s, m);
    }
    /* final entries: close the shutdown / episode bookkeeping */
    for (guint i = 0; i < s.nhosts; i++) {
        SHost *h = &s.host[i];
        host_entry(&s, h, s.last_t + 1e-9, h->e.alloc, h->e.req, h->e.flag);
        if (h->short_since >= 0) {
            double d = s.last_t - h->short_since;
            g_array_append_val(s.resolve, d);
        }
    }
    for (guint i = 0; i < s.nvms; i++) {
        SVm *v = &s.vm[i];
        if (v->e.valid) {
            vm_entry(&s, v, v->e.t + 1e-9, v->e.alloc, v->e.req, v->e.flag);
        }
    }

    res->seconds = trace->nsamples * trace->step;
    res->energy_kwh = s.energy_ws / 3.6e6;
    res->slatah = s.active_s > 0 ? s.viol_s / s.active_s : 0;
    res->pdm = s.tot_req > 0 ? s.under_mig / s.tot_req : 0;
    res->slav = res->slatah * res->pdm;
    res->esv = res->energy_kwh * res->slav;
    res->overload_host_seconds = s.viol_s;
    res->mean_before_shutdown = res->shutdowns ?
                                s.shutdown_s_sum / res->shutdowns : 0;
    res->mean_migration_time = s.mig_count_done ?
                               s.mig_s_sum / s.mig_count_done : 0;
    if (res->decisions) {
        res->decision_mean_ms /= res->decisions;
    }
    g_array_sort(s.resolve, cmp_double);
    res->overloads = s.resolve->len;
    if (s.resolve->len) {
        double sum = 0;
        for (guint i = 0; i < s.resolve->len; i++) {
            sum += g_array_index(s.resolve, double, i);
        }
        res->resolve_mean = sum / s.resolve->len;
        res->resolve_p50 = g_array_index(s.resolve, double,
                                         s.resolve->len / 2);
        res->resolve_p90 = g_array_index(s.resolve, double,
                                         s.resolve->len * 9 / 10);
        res->resolve_max = g_array_index(s.resolve, double,
                                         s.resolve->len - 1);
    }
    ok = true;
out:
    for (guint i = 0; i < s.nhosts; i++) {
        if (s.host[i].vms) {
            g_array_unref(s.host[i].vms);
        }
    }
    g_strfreev(s.host_names);
    g_array_unref(s.resolve);
    g_free(s.hist);
    g_free(s.vm);
    g_free(s.host);
    return ok;
}
