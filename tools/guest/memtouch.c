/*
 * memtouch: a memory-bound guest workload with a measurable rate.
 *
 * Fills F MiB with non-zero data, then touches a hot set of H MiB forever:
 * each work unit picks a random page of the hot set and reads or writes one
 * random word in it.  The hot set is contiguous (the middle of the filled
 * area) or scattered (pages drawn at random across the whole filled area).
 * Progress is reported every interval (the clock is read every 32
 * touches), so a host can see throughput before, during and after a
 * migration and find the longest stall (the largest gap between
 * consecutive "rate" records).
 *
 * With --hot=0 it only fills and then sleeps, holding its memory (the
 * guest init uses that to make a VM's memory look long-running).
 *
 * Usage: memtouch --fill=F --hot=H [--layout=contig|scatter]
 *                 [--write-pct=P] [--interval-ms=I] [--seed=S]
 * Records:
 *   PP memtouch ready  fill_mib=F hot_mib=H layout=L write_pct=P hot_pages=N
 *   PP memtouch rate   units=U total=T        (one per interval)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "ppguest.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG "memtouch"
#define WORDS (PP_PAGE / sizeof(uint64_t))
/*
 * Touches between two readings of the clock.  A report is late by at
 * most one batch, so the batch must stay short even when every touch
 * is a remote fault after a post-copy switch: with 256, a batch took
 * ~100 ms there and "the largest gap between reports" measured how
 * slowly the guest ran, not how long it made no progress.  32 touches
 * take ~10 ms at 0.3 ms a fault, and the clock costs a few percent.
 */
#define BATCH 32

int main(int argc, char **argv)
{
    uint64_t fill = 0, hot = 0, write_pct = 50, interval_ms = 100;
    uint64_t seed = 0x12345678;
    bool scatter = true;
    const char *v;

    for (int i = 1; i < argc; i++) {
        if (pp_opt(argv[i], "fill", &v)) {
            fill = pp_parse_u64(PROG, "fill", v);
        } else if (pp_opt(argv[i], "hot", &v)) {
            hot = pp_parse_u64(PROG, "hot", v);
        } else if (pp_opt(argv[i], "write-pct", &v)) {
            write_pct = pp_parse_u64(PROG, "write-pct", v);
        } else if (pp_opt(argv[i], "interval-ms", &v)) {
            interval_ms = pp_parse_u64(PROG, "interval-ms", v);
        } else if (pp_opt(argv[i], "seed", &v)) {
            seed = pp_parse_u64(PROG, "seed", v) | 1;
        } else if (pp_opt(argv[i], "layout", &v)) {
            if (strcmp(v, "contig") == 0) {
                scatter = false;
            } else if (strcmp(v, "scatter") == 0) {
                scatter = true;
            } else {
                pp_die(PROG, "--layout must be contig or scatter, not '%s'",
                       v);
            }
        } else {
            pp_die(PROG, "unknown option '%s' (usage: memtouch --fill=F "
                   "--hot=H [--layout=contig|scatter] [--write-pct=P] "
                   "[--interval-ms=I] [--seed=S])", argv[i]);
        }
    }
    if (fill == 0 || hot > fill || write_pct > 100 || interval_ms == 0) {
        pp_die(PROG, "need 0 <= --hot <= --fill, --fill > 0, "
               "--write-pct <= 100 and --interval-ms > 0");
    }

    uint64_t npages = fill * PP_MIB / PP_PAGE;
    uint64_t nhot = hot * PP_MIB / PP_PAGE;
    uint64_t *mem = pp_alloc(PROG, fill * PP_MIB);
    uint32_t *hotset = malloc(sizeof(*hotset) * npages);

    if (!hotset) {
        pp_die(PROG, "out of memory for the hot set index");
    }
    for (uint64_t p = 0; p < npages; p++) {
        uint64_t *w = mem + p * WORDS;
        for (size_t i = 0; i < WORDS; i++) {
            w[i] = (p << 20) ^ (i * 0x9E3779B97F4A7C15ULL) ^ 1;
        }
        hotset[p] = (uint32_t)p;
    }
    if (scatter) {
        /* Partial Fisher-Yates: the first nhot entries are a random set. */
        for (uint64_t i = 0; i < nhot; i++) {
            uint64_t j = i + pp_rand(&seed) % (npages - i);
            uint32_t t = hotset[i];
            hotset[i] = hotset[j];
            hotset[j] = t;
        }
    } else {
        uint64_t start = (npages - nhot) / 2;
        for (uint64_t i = 0; i < nhot; i++) {
            hotset[i] = (uint32_t)(start + i);
        }
    }
    pp_report(PROG, "ready",
              "fill_mib=%llu hot_mib=%llu layout=%s write_pct=%llu "
              "hot_pages=%llu",
              (unsigned long long)fill, (unsigned long long)hot,
              scatter ? "scatter" : "contig",
              (unsigned long long)write_pct, (unsigned long long)nhot);

    if (nhot == 0) {
        for (;;) {
            pause(); /* hold the filled memory */
        }
    }

    uint64_t units = 0, total = 0, sink = 0;
    uint64_t write_threshold = write_pct * 0x10000 / 100;
    double interval = interval_ms / 1000.0;
    double next = pp_now() + interval;

    for (;;) {
        for (int b = 0; b < BATCH; b++) {
            uint64_t r = pp_rand(&seed);
            uint64_t *w = mem + (uint64_t)hotset[r % nhot] * WORDS +
                          (r >> 40) % WORDS;
            if (((r >> 24) & 0xffff) < write_threshold) {
                *w += 2; /* stays odd, never zero */
            } else {
                sink += *w;
            }
        }
        units += BATCH;
        double now = pp_now();
        if (now >= next) {
            total += units;
            pp_report(PROG, "rate", "units=%llu total=%llu",
                      (unsigned long long)units, (unsigned long long)total);
            units = 0;
            next += interval;
            if (next < now) {
                next = now + interval; /* after a long stall: no burst */
            }
        }
    }
    return (int)(sink & 0); /* unreachable; keeps sink alive */
}
