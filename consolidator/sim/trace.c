/*
 * Simulator traces (see trace.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "trace.h"
#include "pp-error.h"

#include <errno.h>
#include <math.h>
#include <string.h>

void pp_trace_free(PpTrace *t)
{
    if (!t) {
        return;
    }
    g_strfreev(t->names);
    g_free(t->util);
    g_free(t);
}

static int cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Parse one file's lines into @out (at most @max values); returns how
 * many were read, or -1 with an error. */
static int read_trace_file(const char *path, float *out, guint max,
                           GError **errp)
{
    g_autofree char *text = NULL;
    gsize len;
    guint n = 0, line = 0;

    if (!g_file_get_contents(path, &text, &len, errp)) {
        return -1;
    }
    if (memchr(text, '\0', len)) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "%s: not a text file", path);
        return -1;
    }
    for (char *p = text, *nl; p && *p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl) {
            *nl = '\0';
        }
        line++;
        g_strstrip(p);
        if (!*p) {
            continue;
        }
        if (n == max) {
            return n + 1;           /* more than wanted: the caller says */
        }
        char *end;
        errno = 0;
        double v = g_ascii_strtod(p, &end);
        if (errno || end == p || *end || !(v >= 0 && v <= 100)) {
            g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                        "%s:%u: '%.20s' is not a utilisation in percent "
                        "(0-100)", path, line, p);
            return -1;
        }
        out[n++] = (float)(v / 100);
    }
    return n;
}

PpTrace *pp_trace_load_planetlab(const char *dir, guint nsamples,
                                 double step, GError **errp)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, errp);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *e;
    const guint cap = 100000;
    guint want = nsamples ? nsamples : cap;

    if (!d) {
        return NULL;
    }
    while ((e = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, e, NULL);
        if (e[0] != '.' && g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
            g_ptr_array_add(names, g_strdup(e));
        }
    }
    if (names->len == 0) {
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "%s: no trace files", dir);
        return NULL;
    }
    g_ptr_array_sort(names, cmp_str);

    g_autoptr(PpTrace) t = g_new0(PpTrace, 1);
    g_autofree float *buf = g_new(float, want + 1);
    t->nvms = names->len;
    t->step = step;
    for (guint i = 0; i < names->len; i++) {
        g_autofree char *path = g_build_filename(dir, names->pdata[i], NULL);
        int n = read_trace_file(path, buf, want, errp);
        if (n < 0) {
            return NULL;
        }
        if ((guint)n > want) {
            if (nsamples) {
                n = nsamples;       /* --samples N: the first N */
            } else {
                g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                            "%s: more than %u samples", path, cap);
                return NULL;
            }
        }
        if (i == 0) {
            if (nsamples && (guint)n < nsamples) {
                goto short_file;
            }
            if (n == 0) {
                g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                            "%s: no samples", path);
                return NULL;
            }
            t->nsamples = n;
            t->util = g_new(float, (gsize)t->nvms * t->nsamples);
        } else if ((guint)n != t->nsamples) {
            if ((guint)n > t->nsamples) {
                g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                            "%s: %d samples, %s has %u (every file must "
                            "have as many, or give --samples)", path, n,
                            (char *)names->pdata[0], t->nsamples);
                return NULL;
            }
            goto short_file;
        }
        memcpy(t->util + (gsize)i * t->nsamples, buf,
               t->nsamples * sizeof(float));
        continue;
short_file:
        g_set_error(errp, PP_ERROR, PP_ERROR_INVALID,
                    "%s: %d samples, %u needed", path, n,
                    nsamples ? nsamples : t->nsamples);
        return NULL;
    }
    g_ptr_array_add(names, NULL);
    t->names = (char **)g_ptr_array_steal(names, NULL);
    return g_steal_pointer(&t);
}

/* ---- PRNG: xoshiro256** seeded by splitmix64 (public-domain algorithms
 * by Blackman and Vigna) ---- */

static guint64 splitmix64(guint64 *x)
{
    guint64 z = (*x += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void pp_rng_seed(PpRng *r, guint64 seed)
{
    for (int i = 0; i < 4; i++) {
        r->s[i] = splitmix64(&seed);
    }
}

static inline guint64 rotl(guint64 x, int k)
{
    return (x << k) | (x >> (64 - k));
}

guint64 pp_rng_next(PpRng *r)
{
    guint64 *s = r->s;
    guint64 result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double pp_rng_double(PpRng *r)
{
    return (pp_rng_next(r) >> 11) * 0x1.0p-53;
}

static double rng_normal(PpRng *r)
{
    double u = pp_rng_double(r), v = pp_rng_double(r);

    return sqrt(-2 * log(1 - u)) * cos(2 * G_PI * v);
}

void pp_trace_shuffle(PpTrace *t, guint64 seed)
{
    g_autofree float *row = g_new(float, t->nsamples);
    PpRng r;

    pp_rng_seed(&r, seed);
    for (guint i = t->nvms; i-- > 1;) {
        guint j = pp_rng_next(&r) % (i + 1);
        char *n = t->names[i];
        float *a = t->util + (gsize)i * t->nsamples;
        float *b = t->util + (gsize)j * t->nsamples;

        t->names[i] = t->names[j];
        t->names[j] = n;
        memcpy(row, a, t->nsamples * sizeof(float));
        memcpy(a, b, t->nsamples * sizeof(float));
        memcpy(b, row, t->nsamples * sizeof(float));
    }
}

PpTrace *pp_trace_synthetic(guint nvms, guint nsamples, double step,
                            double mean, guint64 seed)
{
    PpTrace *t = g_new0(PpTrace, 1);
    PpRng r;

    pp_rng_seed(&r, seed);
    t->nvms = nvms;
    t->nsamples = nsamples;
    t->step = step;
    t->names = g_new0(char *, nvms + 1);
    t->util = g_new(float, (gsize)nvms * nsamples);
    for (guint i = 0; i < nvms; i++) {
        double base = -log(1 - pp_rng_double(&r)) * mean;
        double swing = pp_rng_double(&r) * 0.5 * base;
        double phase = pp_rng_double(&r) * 2 * G_PI, noise = 0;
        double sd = 0.3 * base + 2;

        t->names[i] = g_strdup_printf("vm%05u", i);
        for (guint k = 0; k < nsamples; k++) {
            double day = 2 * G_PI * k * step / 86400;
            noise = 0.8 * noise + 0.6 * sd * rng_normal(&r);
            double v = base + swing * sin(day + phase) + noise;
            t->util[(gsize)i * nsamples + k] =
                (float)(CLAMP(floor(v), 0, 99) / 100);
        }
    }
    return t;
}
