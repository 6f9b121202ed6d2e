/*
 * Relocation policies: a pure interface.
 *
 * A policy sees a PpClusterView (hosts and VMs with windowed averages, the
 * current time and the time of the last relocation, all supplied by the
 * caller) and fills a PpPlan (moves plus human-readable notes).  Policies
 * do no I/O and read no clock, so the daemon, the unit tests and a
 * trace-driven simulator run exactly the same code.
 *
 * CPU units: a host core provides core_mips units of CPU (0 means 100,
 * the daemon's case, where a VM's cpu is then a percentage of one core);
 * a VM's cpu is its demand in those units (the simulator: MIPS); a
 * host's cpu is a percentage of its whole CPU set (100 = every core of
 * the set busy).
 *
 * Histories: policies that look back (the literature's detectors) get,
 * per VM, its demand over the last nhistory steps of history_step seconds,
 * oldest first, in the same units as cpu.  How many they want is their
 * history() answer; the caller gives what it has (maybe fewer).
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

/* A host's power draw: watts at 0, 10, ..., 100 % CPU, linear between
 * (SPECpower tables). */
typedef struct PpPowerModel {
    const char *name;
    double watts[11];
} PpPowerModel;

/* Watts at @util (0..1, clamped) on @m. */
double pp_power_at(const PpPowerModel *m, double util);

typedef struct PpHostView {
    const char *name;
    guint ncpus;            /* cores in the host's CPU set */
    guint64 mem_mib;        /* memory available to VMs; 0 = unlimited */
    double cpu;             /* windowed average, % of the CPU set; NAN
                             * when no sample fell in the window (unknown,
                             * never to be read as idle) */
    double core_mips;       /* CPU units one core provides; 0: 100 */
    double bandwidth;       /* MiB/s a migration from or to it gets; 0:
                             * unknown */
    const PpPowerModel *power; /* NULL: unknown */
    bool off;               /* suspended: runs nothing until woken */
} PpHostView;

typedef struct PpVmView {
    const char *name;
    const char *host;       /* name of the host it runs on */
    guint64 mem_mib;
    double cpu;             /* windowed average demand, CPU units (the
                             * daemon: % of one core); NAN when unknown, as
                             * for hosts */
    guint vcpus;            /* 0: 1 */
    double vcpu_mips;       /* most one vCPU can use, CPU units; 0: no
                             * limit below a host core */
    const float *history;   /* demand per history step, oldest first */
    guint nhistory;
    double dirty_rate;      /* MiB/s the guest dirties; NAN: unknown */
    bool migrating;         /* a move of this VM is in flight */
    bool fixed;             /* the operator keeps it where it is
                             * (no_relocate): a plan never moves it */
    const char *migrating_to; /* its target then, when known */
} PpVmView;

typedef struct PpClusterView {
    double now;             /* seconds on the caller's monotonic clock */
    double last_relocation; /* when the last move was started; -INFINITY if never */
    double history_step;    /* seconds per VM history sample */
    const PpHostView *hosts;
    guint nhosts;
    const PpVmView *vms;
    guint nvms;
} PpClusterView;

/* How a move is to be made. */
typedef enum PpMethod {
    PP_METHOD_DEFAULT,      /* the executor's configured mode */
    PP_METHOD_PRECOPY,
    PP_METHOD_POSTCOPY,
} PpMethod;

const char *pp_method_name(PpMethod m);

typedef struct PpMove {
    char *vm;
    char *from;
    char *to;
    char *reason;           /* one phrase, e.g. "spread: pm0 overloaded" */
    PpMethod method;
} PpMove;

/* Switch a host off (suspend) or on.  Power-ons come before the moves
 * that need the host (the executor waits until it is up); power-offs
 * apply once the host is empty. */
typedef struct PpPowerAction {
    char *host;
    bool on;
    char *reason;
} PpPowerAction;

typedef struct PpPlan {
    GPtrArray *moves;       /* PpMove *, in the order to execute them */
    GPtrArray *power;       /* PpPowerAction * */
    GPtrArray *notes;       /* char *: why nothing or something was done */
    bool warning;           /* some note is a warning (e.g. no idle host) */
} PpPlan;

PpPlan *pp_plan_new(void);
void pp_plan_free(PpPlan *plan);
PpMove *pp_plan_add_move(PpPlan *plan, const char *vm, const char *from,
                         const char *to, const char *reason_fmt, ...)
    G_GNUC_PRINTF(5, 6);
void pp_plan_add_power(PpPlan *plan, const char *host, bool on,
                       const char *reason_fmt, ...) G_GNUC_PRINTF(4, 5);
void pp_plan_note(PpPlan *plan, bool warning, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PpPlan, pp_plan_free)

typedef struct PpPolicyOps PpPolicyOps;
struct PpPolicyOps {
    const char *name;
    const char *description;
    const void *opaque;     /* for create(): e.g. a family member's parts */
    /*
     * Read settings from @group of @kf (may be NULL: all defaults) and
     * return the policy's state; unknown keys and bad values are errors
     * naming the key.  Returns NULL on error, with *@bad_key (when
     * @bad_key is not NULL) the key at fault, newly allocated, or NULL
     * when no single key is.
     */
    void *(*create)(const PpPolicyOps *ops, GKeyFile *kf, const char *group,
                    char **bad_key, GError **errp);
    /* How many seconds of samples the averages in the view should cover. */
    double (*window)(void *state);
    /* How many history samples of how many seconds each (*step) the
     * policy uses; NULL: none. */
    guint (*history)(void *state, double *step);
    /* Decide; never fails: problems become notes in the plan. */
    void (*decide)(void *state, const PpClusterView *view, PpPlan *plan);
    void (*destroy)(void *state);
};

/* The registered policies, NULL-terminated. */
extern const PpPolicyOps *const pp_policies[];

/* Look a policy up by name; NULL with an error listing the known ones. */
const PpPolicyOps *pp_policy_find(const char *name, GError **errp);

/* ops->create() */
void *pp_policy_create(const PpPolicyOps *ops, GKeyFile *kf,
                       const char *group, char **bad_key, GError **errp);

/* Helpers for policies. */
const PpHostView *pp_view_host(const PpClusterView *view, const char *name);
/* Capacity of @h in CPU units (ncpus x core_mips). */
double pp_host_capacity(const PpHostView *h);
/* Per VM, the index of its host in view->hosts; NULL (and *@bad the
 * first VM at fault) when a VM names an unknown host. */
guint *pp_view_host_index(const PpClusterView *view, guint *bad);

#endif
