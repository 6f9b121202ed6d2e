/*
 * Per-VM CPU traces for the simulator: the PlanetLab format (a directory
 * with one file per VM, one integer utilisation in percent per line, one
 * line per step) and a synthetic generator for any size.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_TRACE_H
#define PP_TRACE_H

#include <glib.h>

typedef struct PpTrace {
    guint nvms;
    guint nsamples;         /* per VM */
    double step;            /* seconds between samples */
    char **names;           /* nvms VM names (file names) */
    float *util;            /* nvms x nsamples, 0..1, VM-major */
} PpTrace;

/* Utilisation of VM @vm at sample @k. */
static inline float pp_trace_at(const PpTrace *t, guint vm, guint k)
{
    return t->util[(gsize)vm * t->nsamples + k];
}

/*
 * Load a PlanetLab directory: files in byte order of their names, each
 * with at least @nsamples lines, of which the first @nsamples are read
 * (0: all, and every file must have as many as the first); values
 * 0..100 (percent).  Errors name the file and line.
 */
PpTrace *pp_trace_load_planetlab(const char *dir, guint nsamples,
                                 double step, GError **errp);

/*
 * A synthetic day: @nvms VMs, @nsamples samples of @step seconds, each VM
 * a base level (exponential, mean @mean percent) with a daily swing and
 * AR(1) noise, clamped to 0..99 %, from @seed: the same arguments give
 * the same trace on any machine.
 */
PpTrace *pp_trace_synthetic(guint nvms, guint nsamples, double step,
                            double mean, guint64 seed);

/* Put the VMs in a pseudo-random order from @seed (which trace gets which
 * VM type can depend on the order: CloudSim takes the directory's). */
void pp_trace_shuffle(PpTrace *t, guint64 seed);

void pp_trace_free(PpTrace *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PpTrace, pp_trace_free)

/* A small deterministic PRNG (xoshiro256**) the simulator and the
 * policies share, so runs repeat across platforms. */
typedef struct PpRng {
    guint64 s[4];
} PpRng;

void pp_rng_seed(PpRng *r, guint64 seed);
guint64 pp_rng_next(PpRng *r);
/* Uniform in [0, 1). */
double pp_rng_double(PpRng *r);

#endif
