/*
 * Small statistics for the policies: order statistics, least squares.
 * Pure functions on arrays of doubles; no allocation visible to callers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PP_STATS_H
#define PP_STATS_H

#include <glib.h>
#include <stdbool.h>

double pp_median(const double *x, guint n);
/* Median absolute deviation from the median. */
double pp_mad(const double *x, guint n);
/* Interquartile range: third minus first quartile, each the order
 * statistic of rank round(q (n + 1)) (1-based, clamped to 1..n), as
 * CloudSim's MathUtil computes them. */
double pp_iqr(const double *x, guint n);
/* Least squares line through (1, y[0]) .. (n, y[n-1]): *a + *b x.
 * false when n < 2. */
bool pp_ols(const double *y, guint n, double *a, double *b);
/* The same, robust: iteratively reweighted with Tukey's bisquare on the
 * residuals (scale 6 x their median absolute value), a few rounds. */
bool pp_robust_ols(const double *y, guint n, double *a, double *b);
/*
 * R^2 of the least-squares regression of @y on the @k columns of @x
 * (column-major, each of length @n) with an intercept; false when the
 * regression is underdetermined (n < k + 1) or singular.
 */
bool pp_r_squared(const double *y, const double *x, guint n, guint k,
                  double *r2);

#endif
