/*
 * How long a migration takes and what it costs, by method: the model the
 * simulator runs and the policies that choose a method consult.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_MIGMODEL_H
#define PP_MIGMODEL_H

#include <glib.h>
#include <stdbool.h>

/* Migration by method, calibrated on our measurements (docs/simulator.md):
 *
 * pre-copy: rounds at the bandwidth, the first sending all memory, each
 * next one what the guest dirtied meanwhile (at most its working set),
 * until the rest fits in the downtime limit; the VM runs on the source
 * meanwhile, losing precopy_slowdown of its demand (dirty logging).  When
 * the rounds stop shrinking (or after max_rounds) QEMU's auto-converge
 * throttles the guest to half the dirty rate the link can carry, one
 * more working-set round and the stop-and-copy.
 *
 * post-copy: the VM runs on the target switch_time after the start, and
 * the memory follows at the bandwidth; meanwhile the VM loses
 * postcopy_first_loss of its demand for the first postcopy_first_s
 * seconds (remote faults, the hot set still arriving) and postcopy_loss
 * after that.
 *
 * Both: the source spends source_cpu of a core sending.  A guest dirties
 * dirty_per_core MB/s per fully busy vCPU, in working_set of its RAM. */
typedef struct PpMigParams {
    double bandwidth_share; /* of the host link (CloudSim: 0.5) */
    double downtime;        /* s */
    double max_rounds;
    double dirty_per_core;  /* MB/s */
    double working_set;     /* of RAM */
    double precopy_slowdown;
    double switch_time;     /* s */
    double postcopy_first_s;
    double postcopy_first_loss;
    double postcopy_loss;
    double source_cpu;      /* of a core */
} PpMigParams;

/* The defaults above, from our measurements and estimates. */
void pp_mig_params_default(PpMigParams *p);

/* Pre-copy of @mem MB dirtied at @dirty MB/s over @bw MB/s: its total
 * time, and when auto-converge starts throttling (INFINITY: it
 * converged by itself); false when it does not converge. */
bool pp_precopy_time(const PpMigParams *p, double mem, double dirty,
                     double bw, double *total, double *throttle_at);

#endif
