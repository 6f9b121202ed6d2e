/*
 * Relocation policy registry and plan helpers (see policy.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "policy.h"
#include "pp-error.h"

#include <math.h>
#include <string.h>

extern const PpPolicyOps pp_policy_threshold;
extern const PpPolicyOps pp_policy_none;
extern const PpPolicyOps pp_policy_hybrid;
extern const PpPolicyOps pp_policy_family[];

#define FAM(i) &pp_policy_family[(i) * 4], &pp_policy_family[(i) * 4 + 1], \
               &pp_policy_family[(i) * 4 + 2], &pp_policy_family[(i) * 4 + 3]

const PpPolicyOps *const pp_policies[] = {
    &pp_policy_threshold,
    FAM(0), FAM(1), FAM(2), FAM(3), FAM(4),
    &pp_policy_hybrid,
    &pp_policy_none,
    NULL,
};

const PpPolicyOps *pp_policy_find(const char *name, GError **errp)
{
    g_autoptr(GString) known = g_string_new(NULL);

    for (const PpPolicyOps *const *p = pp_policies; *p; p++) {
        if (strcmp((*p)->name, name) == 0) {
            return *p;
        }
        g_string_append_printf(known, "%s%s", known->len ? ", " : "",
                               (*p)->name);
    }
    g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                "unknown policy '%s' (known: %s)", name, known->str);
    return NULL;
}

void *pp_policy_create(const PpPolicyOps *ops, GKeyFile *kf,
                       const char *group, char **bad_key, GError **errp)
{
    return ops->create(ops, kf, group, bad_key, errp);
}

const char *pp_method_name(PpMethod m)
{
    switch (m) {
    case PP_METHOD_PRECOPY:
        return "precopy";
    case PP_METHOD_POSTCOPY:
        return "postcopy";
    default:
        return "default";
    }
}

double pp_power_at(const PpPowerModel *m, double util)
{
    double x = isnan(util) ? 0 : CLAMP(util, 0, 1) * 10;
    int i = (int)x;

    if (i >= 10) {
        return m->watts[10];
    }
    return m->watts[i] + (m->watts[i + 1] - m->watts[i]) * (x - i);
}

double pp_host_capacity(const PpHostView *h)
{
    return (h->ncpus ? h->ncpus : 1) * (h->core_mips > 0 ? h->core_mips : 100);
}

guint *pp_view_host_index(const PpClusterView *view, guint *bad)
{
    g_autoptr(GHashTable) by_name = g_hash_table_new(g_str_hash, g_str_equal);
    g_autofree guint *idx = g_new(guint, view->nvms + 1);

    for (guint i = 0; i < view->nhosts; i++) {
        g_hash_table_insert(by_name, (gpointer)view->hosts[i].name,
                            GUINT_TO_POINTER(i + 1));
    }
    for (guint i = 0; i < view->nvms; i++) {
        guint h = GPOINTER_TO_UINT(g_hash_table_lookup(by_name,
                                                       view->vms[i].host));
        if (!h) {
            if (bad) {
                *bad = i;
            }
            return NULL;
        }
        idx[i] = h - 1;
    }
    return g_steal_pointer(&idx);
}

static void power_free(gpointer p)
{
    PpPowerAction *a = p;

    g_free(a->host);
    g_free(a->reason);
    g_free(a);
}

static void move_free(gpointer p)
{
    PpMove *m = p;

    g_free(m->vm);
    g_free(m->from);
    g_free(m->to);
    g_free(m->reason);
    g_free(m);
}

PpPlan *pp_plan_new(void)
{
    PpPlan *plan = g_new0(PpPlan, 1);

    plan->moves = g_ptr_array_new_with_free_func(move_free);
    plan->power = g_ptr_array_new_with_free_func(power_free);
    plan->notes = g_ptr_array_new_with_free_func(g_free);
    return plan;
}

void pp_plan_free(PpPlan *plan)
{
    if (!plan) {
        return;
    }
    g_ptr_array_unref(plan->moves);
    g_ptr_array_unref(plan->power);
    g_ptr_array_unref(plan->notes);
    g_free(plan);
}

PpMove *pp_plan_add_move(PpPlan *plan, const char *vm, const char *from,
                         const char *to, const char *reason_fmt, ...)
{
    PpMove *m = g_new0(PpMove, 1);
    va_list ap;

    m->vm = g_strdup(vm);
    m->from = g_strdup(from);
    m->to = g_strdup(to);
    va_start(ap, reason_fmt);
    m->reason = g_strdup_vprintf(reason_fmt, ap);
    va_end(ap);
    g_ptr_array_add(plan->moves, m);
    return m;
}

void pp_plan_add_power(PpPlan *plan, const char *host, bool on,
                       const char *reason_fmt, ...)
{
    PpPowerAction *a = g_new0(PpPowerAction, 1);
    va_list ap;

    a->host = g_strdup(host);
    a->on = on;
    va_start(ap, reason_fmt);
    a->reason = g_strdup_vprintf(reason_fmt, ap);
    va_end(ap);
    g_ptr_array_add(plan->power, a);
}

void pp_plan_note(PpPlan *plan, bool warning, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_ptr_array_add(plan->notes, g_strdup_vprintf(fmt, ap));
    va_end(ap);
    plan->warning |= warning;
}

const PpHostView *pp_view_host(const PpClusterView *view, const char *name)
{
    for (guint i = 0; i < view->nhosts; i++) {
        if (strcmp(view->hosts[i].name, name) == 0) {
            return &view->hosts[i];
        }
    }
    return NULL;
}
