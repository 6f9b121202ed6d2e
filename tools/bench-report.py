#!/usr/bin/python3
# bench-report: medians and ratios from the JSON lines that
# scripts/bench-postcopy writes (one ppmig report per run).
#
# Configurations named upstream-* are baselines; every other one ("ours"
# and the variants) is compared with the *best* baseline of each metric
# (the one with the lowest median: every metric here is better lower),
# and a variant also with ours.  A ratio is that of the medians (or of
# the 90th percentiles and worst values for the stall's p90 and worst
# rows), with in brackets its 95% bootstrap interval (the runs of each
# configuration resampled with replacement, 2,000 times, fixed seed, so
# the same results print the same table).  An interval that holds 1 means
# the runs cannot tell the two apart; one entirely below 1 means ours is
# lower beyond the noise of these repetitions.
#
# The longest stall is judged on every run, not only at the median: its
# 90th percentile (nearest rank) and worst value over the runs, and how
# many runs stalled longer than 100 ms.
#
# Usage: bench-report.py RESULTS.jsonl [--no-ci]
#
# SPDX-License-Identifier: GPL-2.0-or-later
import json
import math
import random
import statistics
import sys

LINK_BYTES_PER_S = 1e9 / 8   # the tbf link's nominal rate
OBSERVE_MS = 5000.0          # scripts/bench-postcopy's --observe
STALL_LIMIT_MS = 100.0       # the stall target
BOOTSTRAP = 2000


def work_lost(r):
    if r.get("rate-after") is None or not r.get("rate-before"):
        return None
    return 100.0 * (1 - r["rate-after"] / r["rate-before"])


def window_cost(r):
    # What the guest lost between the migrate command and the switch (our
    # tracking window), against its rate before the command; only where
    # that period is long enough to measure (>= 100 ms).
    if (r.get("rate-window") is None or not r.get("rate-before") or
            (r.get("window-ms") or 0) < 100):
        return None
    return 100.0 * (1 - r["rate-window"] / r["rate-before"])


def fault_wait(r):
    # vCPU time blocked per page faulted (per request if not counted).
    n = r.get("faulted-pages")
    if n is None or n < 0:
        n = r.get("postcopy-requests")
    blocked = r.get("blocktime-ms")
    if not n or blocked is None or blocked < 0:
        return None
    return r["blocktime-ms"] / n


def faults_per_work(r):
    # Pages faulted per second of the guest's normal work done in the 5 s
    # observed after the switch: a build whose faults are so slow that
    # the guest hardly runs faults rarely, and this says so.
    n = r.get("faulted-pages")
    if n is None or n < 0 or r.get("rate-after") is None or not r.get("rate-before"):
        return None
    work_s = OBSERVE_MS / 1000.0 * r["rate-after"] / r["rate-before"]
    return n / work_s if work_s > 0 else None


def p90(v):
    s = sorted(v)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]


# name, unit, function of a report, statistic over the runs
METRICS = [
    ("switchover", "ms", lambda r: r.get("switchover-ms"), statistics.median),
    ("page requests", "", lambda r: r.get("postcopy-requests"), statistics.median),
    ("pages faulted", "", lambda r: (r.get("faulted-pages")
                                     if (r.get("faulted-pages") or -1) >= 0 else None),
     statistics.median),
    ("faults/work-s", "", faults_per_work, statistics.median),
    ("work lost 5 s", "%", work_lost, statistics.median),
    ("longest stall", "ms", lambda r: r.get("longest-stall-ms"), statistics.median),
    ("stall p90", "ms", lambda r: r.get("longest-stall-ms"), p90),
    ("stall worst", "ms", lambda r: r.get("longest-stall-ms"), max),
    # where the longest stall ended, from the switch (negative: before it,
    # in the tracking window or the switchover)
    ("stall ends at", "ms", lambda r: r.get("longest-stall-end-ms"), statistics.median),
    # not back within the 5 s observed counts as 5 s (a censored value)
    ("back to 90%", "ms", lambda r: (None if r.get("rate-before") is None
                                     else r.get("back-to-90-ms") or OBSERVE_MS),
     statistics.median),
    ("mean fault wait", "ms", fault_wait, statistics.median),
    ("window cost", "%", window_cost, statistics.median),
    ("migrate->stop", "ms", lambda r: r.get("switch-delay-ms"), statistics.median),
    ("time/(bytes/bw)", "", None, statistics.median),   # tbf only, below
    ("bytes/non-zero", "", lambda r: (r["transferred-bytes"] / (4096.0 * r["nonzero-pages"])
                                      if r.get("nonzero-pages") else None),
     statistics.median),
    # our build only: what the hot-first machinery costs the source
    ("our memory", "%RAM", lambda r: (100.0 * r["hot-bytes"] / (r["mem-mib"] * 1048576.0)
                                      if (r.get("hot-bytes") or -1) > 0 and r.get("mem-mib")
                                      else None), max),
    ("sample BQL mean", "us", lambda r: (r.get("hot-sample-mean-us")
                                         if (r.get("hot-sample-mean-us") or -1) >= 0
                                         else None), statistics.median),
    ("sample BQL max", "us", lambda r: (r.get("hot-sample-max-us")
                                        if (r.get("hot-sample-max-us") or -1) >= 0
                                        else None), max),
]


# a place in time, not a cost: no ratio
NO_RATIO = {"stall ends at"}


def is_baseline(c):
    return c.startswith("upstream-")


def short(c):
    s = c.replace("upstream-", "up-")
    if len(s) > 12:
        s = s.replace("preempt", "pre").replace("kvmlike", "kvm")
    return s[:12]


def value(name, fn, link, r):
    if name == "time/(bytes/bw)":
        if not link.startswith("tbf") or not r.get("transferred-bytes"):
            return None
        return (r["total-ms"] / 1000.0) / (r["transferred-bytes"] / LINK_BYTES_PER_S)
    return fn(r)


def ratio_ci(a, b, stat, rng):
    """95% percentile-bootstrap interval of stat(a) / stat(b)."""
    if len(a) < 2 or len(b) < 2:
        return None
    ratios = []
    for _ in range(BOOTSTRAP):
        sb = stat(rng.choices(b, k=len(b)))
        if sb == 0:
            continue
        ratios.append(stat(rng.choices(a, k=len(a))) / sb)
    if len(ratios) < BOOTSTRAP // 2:
        return None
    ratios.sort()
    return ratios[int(0.025 * len(ratios))], ratios[int(0.975 * len(ratios)) - 1]


def fmt_value(v, unit):
    return "-" if v is None else "%.3g%s" % (v, unit)


def fmt_ratio(a, b, ci):
    if a is None or not b:
        return "-"
    s = "%.2f" % (a / b)
    if ci is not None:
        s += " (%.2f-%.2f)" % ci
    return s


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    with_ci = "--no-ci" not in sys.argv[1:]
    if len(args) != 1:
        print("usage: bench-report.py RESULTS.jsonl [--no-ci]", file=sys.stderr)
        return 2
    try:
        runs = [json.loads(line) for line in open(args[0]) if line.strip()]
        for run in runs:
            for k in ("link", "workload", "config", "report"):
                if k not in run:
                    raise ValueError("a run without '%s'" % k)
            if run["report"] is not None and not isinstance(run["report"], dict):
                raise ValueError("a run's report is not an object")
    except (OSError, ValueError) as e:
        print("bench-report: %s: %s" % (args[0], e), file=sys.stderr)
        return 2
    groups = {}
    failed = {}
    configs = []
    for run in runs:
        key = (run["link"], run["workload"], run["config"])
        if run["config"] not in configs:
            configs.append(run["config"])
        if run["report"] is None:
            failed[key] = failed.get(key, 0) + 1
            continue
        groups.setdefault(key, []).append(run["report"])
    # Baselines first, then ours and the variants in the order they ran.
    configs = ([c for c in configs if is_baseline(c)] +
               [c for c in configs if not is_baseline(c)])
    others = [c for c in configs if not is_baseline(c)]
    pairs = [(o, None) for o in others]          # None: the best baseline
    if "ours" in others:
        pairs += [(o, "ours") for o in others if o != "ours"]
    reps = max((len(v) for v in groups.values()), default=0)
    print("post-copy benchmark: medians over %d repetitions (stall p90 and worst over the runs);"
          " ratio < 1 means ours is lower%s"
          % (reps, "; (95% bootstrap interval)" if with_ci else ""))
    print("best-up: the upstream configuration with the lowest value of that metric, named after the ratio")
    rcol = 30 if with_ci else 20
    cells = sorted({(l, w) for (l, w, _) in groups})
    for link, wl in cells:
        rng = random.Random(1)
        present = [c for c in configs if (link, wl, c) in groups]
        bases = [c for c in present if is_baseline(c)]
        mems = sorted({r.get("mem-mib") for c in present for r in groups[(link, wl, c)]
                       if r.get("mem-mib")})
        print("\n%s link, %s workload%s" % (link, wl, "".join(
            ", %d MiB guest" % m for m in mems if m != 1024)))
        head = "  %-17s" % "metric"
        for c in present:
            head += " %12s" % short(c)
        print(head)
        rows = []
        for name, unit, fn, stat in METRICS:
            vals = {}
            for c in present:
                v = [value(name, fn, link, r) for r in groups[(link, wl, c)]]
                vals[c] = [x for x in v if x is not None]
            st = {c: stat(v) if v else None for c, v in vals.items()}
            if all(v is None for v in st.values()):
                continue
            line = "  %-17s" % name
            for c in present:
                line += " %12s" % fmt_value(st[c], unit)
            print(line)
            if name not in NO_RATIO:
                rows.append((name, stat, vals, st))
            if name == "stall worst":
                line = "  %-17s" % ("stall>%dms runs" % STALL_LIMIT_MS)
                for c in present:
                    n = len(vals[c])
                    over = sum(1 for x in vals[c] if x > STALL_LIMIT_MS)
                    line += " %12s" % ("%d/%d" % (over, n) if n else "-")
                print(line)
        cols = [(o, b) for o, b in pairs if o in present and (b is None and bases or b in present)]
        if not cols:
            continue
        head = "  %-17s" % "ratio"
        for o, b in cols:
            head += " %-*s" % (rcol, "%s/%s" % (short(o), "best-up" if b is None else short(b)))
        print(head.rstrip())
        for name, stat, vals, st in rows:
            line = "  %-17s" % name
            for o, b in cols:
                if b is None:
                    cand = [c for c in bases if st[c] is not None]
                    ref = min(cand, key=lambda c: st[c]) if cand else None
                else:
                    ref = b
                if ref is None or st[o] is None or not st[ref]:
                    cell = "-"
                else:
                    ci = ratio_ci(vals[o], vals[ref], stat, rng) if with_ci else None
                    cell = fmt_ratio(st[o], st[ref], ci)
                    if b is None:
                        cell += " " + short(ref).replace("up-", "")
                line += " %-*s" % (rcol, cell)
            print(line.rstrip())
    for key, n in sorted(failed.items()):
        print("failed runs: %s: %d" % ("/".join(key), n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
