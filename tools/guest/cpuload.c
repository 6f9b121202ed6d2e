/*
 * cpuload: the paper's CPU load generator.
 *
 * Holds a target CPU utilisation with a compute/sleep loop: in every period
 * it computes for pct% of the period and sleeps for the rest.  The target
 * follows a schedule of steps (e.g. 0,50,100,50,0 with 60 s per step) and
 * stays at the last value once the schedule ends (or starts over with
 * --repeat).  While computing it writes into a working area of --dirty-mib,
 * one word per page, at --dirty-rate MiB/s of pages while busy (so 20% CPU
 * dirties a fifth of that): the rate at which it dirties memory grows with
 * its CPU use, as a real busy VM's does.
 *
 * Usage: cpuload --schedule=P[,P...] [--step=SECONDS] [--period-ms=MS]
 *                [--dirty-mib=M] [--dirty-rate=MIBS] [--repeat]
 * Records:
 *   PP cpuload ready steps=N step_s=S dirty_mib=M
 *   PP cpuload step  pct=P index=I
 *   PP cpuload rate  target=P busy_pct=B   (once per second)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "ppguest.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG "cpuload"
#define MAX_STEPS 64

static void sleep_for(double s)
{
    struct timespec ts;

    if (s <= 0) {
        return;
    }
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0) {
        /* EINTR: sleep the rest */
    }
}

int main(int argc, char **argv)
{
    unsigned pcts[MAX_STEPS];
    unsigned nsteps = 0;
    uint64_t step_s = 60, period_ms = 100, dirty_mib = 0, dirty_rate = 100;
    bool repeat = false;
    const char *v;

    for (int i = 1; i < argc; i++) {
        if (pp_opt(argv[i], "schedule", &v)) {
            char *copy = strdup(v), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                uint64_t p = pp_parse_u64(PROG, "schedule", t);
                if (p > 100 || nsteps == MAX_STEPS) {
                    pp_die(PROG, "--schedule: at most %d steps of 0..100",
                           MAX_STEPS);
                }
                pcts[nsteps++] = (unsigned)p;
            }
            free(copy);
        } else if (pp_opt(argv[i], "step", &v)) {
            step_s = pp_parse_u64(PROG, "step", v);
        } else if (pp_opt(argv[i], "period-ms", &v)) {
            period_ms = pp_parse_u64(PROG, "period-ms", v);
        } else if (pp_opt(argv[i], "dirty-mib", &v)) {
            dirty_mib = pp_parse_u64(PROG, "dirty-mib", v);
        } else if (pp_opt(argv[i], "dirty-rate", &v)) {
            dirty_rate = pp_parse_u64(PROG, "dirty-rate", v);
        } else if (strcmp(argv[i], "--repeat") == 0) {
            repeat = true;
        } else {
            pp_die(PROG, "unknown option '%s' (usage: cpuload "
                   "--schedule=P[,P...] [--step=S] [--period-ms=MS] "
                   "[--dirty-mib=M] [--dirty-rate=MIBS] [--repeat])",
                   argv[i]);
        }
    }
    if (nsteps == 0 || step_s == 0 || period_ms == 0) {
        pp_die(PROG, "need --schedule, and --step and --period-ms > 0");
    }

    uint64_t *dirty = NULL;
    uint64_t dirty_words = dirty_mib * PP_MIB / sizeof(uint64_t);
    uint64_t cur = 0;
    if (dirty_mib) {
        dirty = pp_alloc(PROG, dirty_mib * PP_MIB);
        for (uint64_t i = 0; i < dirty_words; i++) {
            dirty[i] = i | 1;
        }
    }

    pp_report(PROG, "ready", "steps=%u step_s=%llu dirty_mib=%llu "
              "dirty_rate=%llu", nsteps, (unsigned long long)step_s,
              (unsigned long long)dirty_mib, (unsigned long long)dirty_rate);
    /* Pages to dirty per second of busy time. */
    double dirty_pps = (double)dirty_rate * PP_MIB / PP_PAGE;
    double dirty_due = 0;

    double period = period_ms / 1000.0;
    double t0 = pp_now();
    double sec_start = t0, busy_acc = 0;
    unsigned last_index = ~0u;
    uint64_t acc = 1;

    for (;;) {
        double now = pp_now();
        uint64_t idx = (uint64_t)((now - t0) / (double)step_s);
        if (idx >= nsteps) {
            idx = repeat ? idx % nsteps : nsteps - 1;
        }
        unsigned pct = pcts[idx];
        if (idx != last_index) {
            pp_report(PROG, "step", "pct=%u index=%llu", pct,
                      (unsigned long long)idx);
            last_index = (unsigned)idx;
        }

        double busy_until = now + period * pct / 100.0;
        double t = now;
        while (t < busy_until) {
            /* One unit of work: some arithmetic and a page-strided write. */
            for (int k = 0; k < 2000; k++) {
                acc = acc * 6364136223846793005ULL + 1442695040888963407ULL;
            }
            double t1 = pp_now();
            if (dirty) {
                dirty_due += (t1 - t) * dirty_pps;
                for (; dirty_due >= 1; dirty_due -= 1) {
                    dirty[cur] = acc | 1;
                    cur = (cur + PP_PAGE / sizeof(uint64_t) + 1) % dirty_words;
                }
            }
            t = t1;
        }
        busy_acc += t - now;
        sleep_for(now + period - t);

        now = pp_now();
        if (now - sec_start >= 1.0) {
            pp_report(PROG, "rate", "target=%u busy_pct=%.1f", pct,
                      100.0 * busy_acc / (now - sec_start));
            sec_start = now;
            busy_acc = 0;
        }
    }
    return (int)(acc & 0);
}
