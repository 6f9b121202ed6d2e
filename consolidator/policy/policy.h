/*
 * Relocation policies: a pure interface.
 *
 * A policy sees a PpClusterView (hosts and VMs with windowed averages, the
 * current time and the time of the last relocation, all supplied by the
 * caller) and fills a PpPlan (moves plus human-readable notes).  Policies
 * do no I/O and read no clock, so the daemon, the unit tests and a
 * trace-driven simulator run exactly the same code.
 *
 * CPU units: a VM's cpu is a percentage of one host core (100 = one core
 * busy); a host's cpu is a percentage of its whole CPU set (100 = every
 * core of the set busy).
 *
 * Adding a policy: write policy/NAME.c defining a PpPolicyOps and list it
 * in pp_policies[] (policy.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_POLICY_H
#define PP_POLICY_H

#include <glib.h>
#include <stdbool.h>

typedef struct PpHostView {
    const char *name;
    guint ncpus;            /* cores in the host's CPU set */
    guint64 mem_mib;        /* memory available to VMs; 0 = unlimited */
    double cpu;             /* windowed average, % of the CPU set; NAN
                             * when no sample fell in the window (unknown,
                             * never to be read as idle) */
} PpHostView;

typedef struct PpVmView {
    const char *name;
    const char *host;       /* name of the host it runs on */
    guint64 mem_mib;
    double cpu;             /* windowed average, % of one core; NAN when
                             * unknown, as for hosts */
    bool migrating;         /* a move of this VM is in flight */
} PpVmView;

typedef struct PpClusterView {
    double now;             /* seconds on the caller's monotonic clock */
    double last_relocation; /* when the last move was started; -INFINITY if never */
    const PpHostView *hosts;
    guint nhosts;
    const PpVmView *vms;
    guint nvms;
} PpClusterView;

typedef struct PpMove {
    char *vm;
    char *from;
    char *to;
    char *reason;           /* one phrase, e.g. "spread: pm0 overloaded" */
} PpMove;

typedef struct PpPlan {
    GPtrArray *moves;       /* PpMove *, in the order to execute them */
    GPtrArray *notes;       /* char *: why nothing or something was done */
    bool warning;           /* some note is a warning (e.g. no idle host) */
} PpPlan;

PpPlan *pp_plan_new(void);
void pp_plan_free(PpPlan *plan);
void pp_plan_add_move(PpPlan *plan, const char *vm, const char *from,
                      const char *to, const char *reason_fmt, ...)
    G_GNUC_PRINTF(5, 6);
void pp_plan_note(PpPlan *plan, bool warning, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PpPlan, pp_plan_free)

typedef struct PpPolicyOps {
    const char *name;
    const char *description;
    /*
     * Read settings from @group of @kf (may be NULL: all defaults) and
     * return the policy's state; unknown keys and bad values are errors
     * naming the key.  Returns NULL on error, with *@bad_key (when
     * @bad_key is not NULL) the key at fault, newly allocated, or NULL
     * when no single key is.
     */
    void *(*create)(GKeyFile *kf, const char *group, char **bad_key,
                    GError **errp);
    /* How many seconds of samples the averages in the view should cover. */
    double (*window)(void *state);
    /* Decide; never fails: problems become notes in the plan. */
    void (*decide)(void *state, const PpClusterView *view, PpPlan *plan);
    void (*destroy)(void *state);
} PpPolicyOps;

/* The registered policies, NULL-terminated. */
extern const PpPolicyOps *const pp_policies[];

/* Look a policy up by name; NULL with an error listing the known ones. */
const PpPolicyOps *pp_policy_find(const char *name, GError **errp);

/* Helpers for policies. */
const PpHostView *pp_view_host(const PpClusterView *view, const char *name);

#endif
