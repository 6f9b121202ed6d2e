/*
 * The trace-driven consolidation simulator: a data centre of hosts with
 * power models, VMs driven by per-VM CPU traces, and any registered
 * policy (the same PpPolicyOps the daemon runs) deciding every trace
 * step.  Migrations follow a model chosen by name; metrics are the
 * consolidation literature's (energy, SLATAH, PDM, SLAV, ESV, ...).
 *
 * The timeline follows CloudSim 3.0.3's power module, so its figures can
 * be reproduced: decisions at k x step + offset (k >= 1), the state
 * between events judged by its value at the start, every host updated at
 * every event (decision or migration end), energy as the trapezoid of
 * power between updates, a host whose CPU use is 0 counted as off (0 W).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_SIM_H
#define PP_SIM_H

#include "migmodel.h"
#include "policy.h"
#include "trace.h"

#include <stdio.h>

typedef struct PpSimHostType {
    const char *name;
    guint cores;
    double core_mips;
    guint64 mem_mib;
    double bandwidth;       /* MB/s of the host's link; migrations get half */
    PpPowerModel power;
} PpSimHostType;

typedef struct PpSimVmType {
    double mips;            /* one vCPU */
    guint64 mem_mib;
} PpSimVmType;

typedef enum PpMigModel {
    /* CloudSim's: time = RAM / (bandwidth / 2); meanwhile the VM gets 90 %
     * of its demand on the source and the target reserves 10 % of it. */
    PP_MIG_CLOUDSIM,
    PP_MIG_PRECOPY,         /* every move by pre-copy (below) */
    PP_MIG_POSTCOPY,        /* every move by post-copy (below) */
    PP_MIG_BY_PLAN,         /* each move as its plan says; default post-copy */
} PpMigModel;

typedef struct PpSimConfig {
    const PpSimHostType *host_types;
    guint nhost_types;
    guint nhosts;           /* host i has type i % nhost_types */
    const PpSimVmType *vm_types;
    guint nvm_types;
    bool vm_types_in_blocks; /* VM i: type i / ceil(n / ntypes) (CloudSim);
                              * else i % ntypes */
    double offset;          /* seconds after each step boundary */
    bool end_idle_vms;      /* a VM whose demand reaches 0 ends (CloudSim
                             * destroys it) */
    bool enforce_mem;       /* memory limits placement after the start
                             * (CloudSim: only at the start) */
    PpMigModel model;
    PpMigParams mig;
    /* Host power: false, a host without CPU use is off at once and for
     * free (CloudSim); true, as the plans' power actions say: an awake
     * host draws its idle power even empty, a suspended one
     * suspended_watts, and waking takes wake_delay seconds at idle power
     * before it runs anything (a move to a suspended host wakes it). */
    bool power_actions;
    double wake_delay;
    double suspended_watts;
    /* The start: false, each VM in order asking its full size to the host
     * whose power rises least (CloudSim); true, by the first sample's
     * demand, largest first, filling hosts in order up to 70 % (fast at
     * any size: for synthetic data centres). */
    bool start_by_demand;
    FILE *csv;              /* per-interval rows; NULL: none */
} PpSimConfig;

/* The literature's data centre (sim-reference.md): 800 hosts, half HP
 * ML110 G4, half G5; four VM types; CloudSim's quirks on. */
void pp_sim_preset_literature(PpSimConfig *cfg);

typedef struct PpSimResult {
    guint nhosts, nvms;
    double seconds;         /* simulated */
    double energy_kwh;
    double slatah;          /* fraction */
    double pdm;             /* fraction */
    double slav;            /* slatah x pdm */
    double esv;             /* energy (kWh) x slav */
    guint64 migrations;
    guint64 shutdowns;
    double mean_before_shutdown;  /* s a host ran before switching off */
    double mean_migration_time;   /* s (CloudSim's "time before a VM
                                   * migration" measures this) */
    guint64 decisions;
    double decision_mean_ms, decision_max_ms;
    double overload_host_seconds; /* hosts short of CPU x seconds */
    /* times from a host becoming short of CPU until it no longer is */
    guint64 overloads;
    double resolve_mean, resolve_p50, resolve_p90, resolve_max;
    guint64 precopies, postcopies;
    guint64 unconverged;    /* pre-copies auto-converge had to throttle */
    double moved_mb;        /* memory moved */
    guint64 wakes, suspends;
    guint64 unplanned_wakes; /* moves to a suspended host without a wake */
    guint64 ended_vms;      /* end_idle_vms */
    guint64 unplaced;       /* moves the simulator refused (bad plan) */
} PpSimResult;

/*
 * Run @ops with @state over @trace in @cfg's data centre.  Fails on a
 * trace or configuration that cannot be simulated (e.g. a VM that fits
 * no host at the start).
 */
bool pp_sim_run(const PpSimConfig *cfg, const PpTrace *trace,
                const PpPolicyOps *ops, void *state, PpSimResult *res,
                GError **errp);

#endif
