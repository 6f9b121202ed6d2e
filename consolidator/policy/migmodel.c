/*
 * The migration model (see migmodel.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "migmodel.h"

#include <math.h>

void pp_mig_params_default(PpMigParams *p)
{
    *p = (PpMigParams) {
        .bandwidth_share = 0.5,
        .downtime = 0.3,            /* QEMU's default downtime-limit */
        .max_rounds = 30,
        .dirty_per_core = 100,      /* cpuload: 100 MiB/s when busy */
        .working_set = 0.25,
        .precopy_slowdown = 0.05,
        .switch_time = 0.1,         /* experiment 5.1: switched in 0.1 s */
        .postcopy_first_s = 5,
        .postcopy_first_loss = 0.29,/* bench-postcopy: 71 % of the work */
        .postcopy_loss = 0.05,
        .source_cpu = 0.1,
    };
}

bool pp_precopy_time(const PpMigParams *p, double mem, double dirty,
                     double bw, double *total, double *throttle_at)
{
    double ws = p->working_set * mem, v = mem, t = 0, prev = INFINITY;

    for (int round = 1;; round++) {
        double dt = v / bw, next;
        t += dt;
        next = MIN(ws, dirty * dt);
        if (next / bw <= p->downtime) {
            *total = t + next / bw;
            *throttle_at = INFINITY;
            return true;
        }
        if (round >= p->max_rounds || next >= prev) {
            *throttle_at = t;
            *total = t + ws / bw + p->downtime;
            return false;
        }
        prev = v = next;
    }
}
