/*
 * Relocation policy registry and plan helpers (see policy.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "policy.h"
#include "pp-error.h"

#include <string.h>

extern const PpPolicyOps pp_policy_threshold;

const PpPolicyOps *const pp_policies[] = {
    &pp_policy_threshold,
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
    plan->notes = g_ptr_array_new_with_free_func(g_free);
    return plan;
}

void pp_plan_free(PpPlan *plan)
{
    if (!plan) {
        return;
    }
    g_ptr_array_unref(plan->moves);
    g_ptr_array_unref(plan->notes);
    g_free(plan);
}

void pp_plan_add_move(PpPlan *plan, const char *vm, const char *from,
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
