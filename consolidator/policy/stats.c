/*
 * Statistics for the policies (see stats.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median_sorted(const double *s, guint n)
{
    if (n == 0) {
        return 0;
    }
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Sorted copy into @buf (n <= 64) or a new allocation (*@heap). */
static double *sorted(const double *x, guint n, double *buf, double **heap)
{
    double *s = n <= 64 ? buf : (*heap = g_new(double, n));

    memcpy(s, x, n * sizeof(double));
    qsort(s, n, sizeof(double), cmp_double);
    return s;
}

double pp_median(const double *x, guint n)
{
    double buf[64];
    g_autofree double *heap = NULL;

    return median_sorted(sorted(x, n, buf, &heap), n);
}

double pp_mad(const double *x, guint n)
{
    double buf[64];
    g_autofree double *heap = NULL, *dev = g_new(double, n + 1);
    double m = pp_median(x, n);

    for (guint i = 0; i < n; i++) {
        dev[i] = fabs(x[i] - m);
    }
    return median_sorted(sorted(dev, n, buf, &heap), n);
}

double pp_iqr(const double *x, guint n)
{
    double buf[64];
    g_autofree double *heap = NULL;
    const double *s = sorted(x, n, buf, &heap);

    if (n < 2) {
        return 0;
    }
    guint r1 = (guint)CLAMP(floor(0.25 * (n + 1) + 0.5), 1, n);
    guint r3 = (guint)CLAMP(floor(0.75 * (n + 1) + 0.5), 1, n);
    return s[r3 - 1] - s[r1 - 1];
}

/* Weighted least squares line through (i + 1, y[i]) with weights @w. */
static bool wls(const double *y, const double *w, guint n, double *a,
                double *b)
{
    double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;

    for (guint i = 0; i < n; i++) {
        double x = i + 1;
        sw += w[i];
        sx += w[i] * x;
        sy += w[i] * y[i];
        sxx += w[i] * x * x;
        sxy += w[i] * x * y[i];
    }
    double det = sw * sxx - sx * sx;
    if (n < 2 || !(fabs(det) > 1e-12)) {
        return false;
    }
    *b = (sw * sxy - sx * sy) / det;
    *a = (sy - *b * sx) / sw;
    return true;
}

bool pp_ols(const double *y, guint n, double *a, double *b)
{
    double w[64];
    g_autofree double *heap = n > 64 ? g_new(double, n) : NULL;
    double *ww = heap ? heap : w;

    for (guint i = 0; i < n; i++) {
        ww[i] = 1;
    }
    return wls(y, ww, n, a, b);
}

bool pp_robust_ols(const double *y, guint n, double *a, double *b)
{
    g_autofree double *w = g_new(double, n + 1), *r = g_new(double, n + 1);

    if (!pp_ols(y, n, a, b)) {
        return false;
    }
    for (int round = 0; round < 4; round++) {
        for (guint i = 0; i < n; i++) {
            r[i] = fabs(y[i] - (*a + *b * (i + 1)));
        }
        double s = 6 * pp_median(r, n);
        if (!(s > 1e-12)) {
            return true; /* a perfect fit (or nearly): nothing to reweigh */
        }
        for (guint i = 0; i < n; i++) {
            double u = r[i] / s;
            w[i] = u < 1 ? (1 - u * u) * (1 - u * u) : 0;
        }
        double a2, b2;
        if (!wls(y, w, n, &a2, &b2)) {
            return true; /* keep the last fit */
        }
        *a = a2;
        *b = b2;
    }
    return true;
}

bool pp_r_squared(const double *y, const double *x, guint n, guint k,
                  double *r2)
{
    guint p = k + 1; /* with the intercept */
    g_autofree double *m = g_new0(double, p * (p + 1));

    if (n < p) {
        return false;
    }
    /* Normal equations [X'X | X'y], X = [1, x_1 .. x_k]. */
#define XV(row, col) ((col) == 0 ? 1.0 : x[(gsize)((col) - 1) * n + (row)])
    for (guint i = 0; i < n; i++) {
        for (guint c = 0; c < p; c++) {
            double xc = XV(i, c);
            for (guint d = 0; d < p; d++) {
                m[c * (p + 1) + d] += xc * XV(i, d);
            }
            m[c * (p + 1) + p] += xc * y[i];
        }
    }
    /* Gauss-Jordan with partial pivoting. */
    for (guint c = 0; c < p; c++) {
        guint piv = c;
        for (guint r = c + 1; r < p; r++) {
            if (fabs(m[r * (p + 1) + c]) > fabs(m[piv * (p + 1) + c])) {
                piv = r;
            }
        }
        if (!(fabs(m[piv * (p + 1) + c]) > 1e-12)) {
            return false;
        }
        if (piv != c) {
            for (guint d = 0; d <= p; d++) {
                double t = m[c * (p + 1) + d];
                m[c * (p + 1) + d] = m[piv * (p + 1) + d];
                m[piv * (p + 1) + d] = t;
            }
        }
        for (guint r = 0; r < p; r++) {
            if (r == c) {
                continue;
            }
            double f = m[r * (p + 1) + c] / m[c * (p + 1) + c];
            for (guint d = c; d <= p; d++) {
                m[r * (p + 1) + d] -= f * m[c * (p + 1) + d];
            }
        }
    }
    double mean = 0, ss_tot = 0, ss_res = 0;
    for (guint i = 0; i < n; i++) {
        mean += y[i] / n;
    }
    for (guint i = 0; i < n; i++) {
        double fit = 0;
        for (guint c = 0; c < p; c++) {
            fit += XV(i, c) * m[c * (p + 1) + p] / m[c * (p + 1) + c];
        }
        ss_res += (y[i] - fit) * (y[i] - fit);
        ss_tot += (y[i] - mean) * (y[i] - mean);
    }
#undef XV
    *r2 = ss_tot > 0 ? 1 - ss_res / ss_tot : 0;
    return true;
}
