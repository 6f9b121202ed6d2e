/*
 * The "none" policy: never moves anything.  The baseline of the
 * simulator's comparisons (every VM stays where it was placed), and a
 * daemon that only monitors.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "policy.h"
#include "pp-error.h"

#include <string.h>

static void *none_create(const PpPolicyOps *ops, GKeyFile *kf,
                         const char *group, char **bad_key, GError **errp)
{
    g_auto(GStrv) keys = NULL;

    if (kf && g_key_file_has_group(kf, group)) {
        keys = g_key_file_get_keys(kf, group, NULL, NULL);
    }
    for (char **k = keys; k && *k; k++) {
        if (strcmp(*k, "name") != 0) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "[%s] unknown key '%s' for policy none", group, *k);
            if (bad_key) {
                *bad_key = g_strdup(*k);
            }
            return NULL;
        }
    }
    return g_new0(char, 1);
}

static double none_window(void *state)
{
    return 10;
}

static void none_decide(void *state, const PpClusterView *view, PpPlan *plan)
{
    pp_plan_note(plan, false, "policy none: no moves");
}

const PpPolicyOps pp_policy_none = {
    .name = "none",
    .description = "never move a VM (monitoring only; the baseline)",
    .create = none_create,
    .window = none_window,
    .decide = none_decide,
    .destroy = g_free,
};
