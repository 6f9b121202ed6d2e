#!/usr/bin/python3
# bench-report: medians and ours/upstream ratios from the JSON lines that
# scripts/bench-postcopy writes (one ppmig report per run).
#
# Every configuration that is not an upstream baseline ("ours" and any
# --variant of bench-postcopy) gets a ratio against each baseline present
# (and a variant one against ours):
# the ratio of the medians, and in brackets its 95% bootstrap interval
# (the runs of each configuration resampled with replacement, 2,000 times,
# fixed seed, so the same results print the same table).  An interval
# that holds 1 means the run cannot tell the two apart; one entirely
# below 1 means ours is lower beyond the noise of these repetitions.
#
# Usage: bench-report.py RESULTS.jsonl [--no-ci]
#
# SPDX-License-Identifier: GPL-2.0-or-later
import json
import random
import statistics
import sys

LINK_BYTES_PER_S = 1e9 / 8   # the tbf link's nominal rate
OBSERVE_MS = 5000.0          # scripts/bench-postcopy's --observe
BASELINES = ("upstream-plain", "upstream-preempt")
SHORT = {"upstream-plain": "plain", "upstream-preempt": "preempt", "ours": "ours"}
BOOTSTRAP = 2000

METRICS = [
    # name, unit, function of a report
    ("switchover", "ms", lambda r: r.get("switchover-ms")),
    ("remote faults", "", lambda r: r.get("postcopy-requests")),
    ("work lost 5 s", "%", lambda r: (100.0 * (1 - r["rate-after"] / r["rate-before"])
                                      if r.get("rate-after") is not None and r.get("rate-before") else None)),
    ("longest stall", "ms", lambda r: r.get("longest-stall-ms")),
    # not back within the 5 s observed counts as 5 s (a censored value)
    ("back to 90%", "ms", lambda r: (None if r.get("rate-before") is None
                                     else r.get("back-to-90-ms") or OBSERVE_MS)),
    ("mean fault wait", "ms", lambda r: (r["blocktime-ms"] / r["postcopy-requests"]
                                         if r.get("postcopy-requests") and
                                         (r.get("blocktime-ms") or -1) >= 0 else None)),
    ("migrate->stop", "ms", lambda r: r.get("switch-delay-ms")),
    ("time/(bytes/bw)", "", None),   # tbf only, filled in below
    ("bytes/non-zero", "", lambda r: (r["transferred-bytes"] / (4096.0 * r["nonzero-pages"])
                                      if r.get("nonzero-pages") else None)),
]


def value(name, fn, link, r):
    if name == "time/(bytes/bw)":
        if not link.startswith("tbf") or not r.get("transferred-bytes"):
            return None
        return (r["total-ms"] / 1000.0) / (r["transferred-bytes"] / LINK_BYTES_PER_S)
    return fn(r)


def ratio_ci(a, b, rng):
    """95% percentile-bootstrap interval of median(a) / median(b)."""
    if len(a) < 2 or len(b) < 2:
        return None
    ratios = []
    for _ in range(BOOTSTRAP):
        mb = statistics.median(rng.choices(b, k=len(b)))
        if mb == 0:
            continue
        ratios.append(statistics.median(rng.choices(a, k=len(a))) / mb)
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
    runs = [json.loads(line) for line in open(args[0]) if line.strip()]
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
    configs = ([c for c in BASELINES if c in configs] +
               [c for c in configs if c not in BASELINES])
    baselines = [c for c in configs if c in BASELINES]
    others = [c for c in configs if c not in BASELINES]
    pairs = [(o, b) for o in others for b in baselines]
    # A variant is also measured against ours (what taking a feature out
    # costs).
    if "ours" in others:
        pairs += [(o, "ours") for o in others if o != "ours"]
    reps = max((len(v) for v in groups.values()), default=0)
    print("post-copy benchmark: medians over %d repetitions; ratio < 1 means ours is lower%s"
          % (reps, "; (95% bootstrap interval)" if with_ci else ""))
    rcol = 22 if with_ci else 12
    cells = sorted({(l, w) for (l, w, _) in groups})
    for link, wl in cells:
        rng = random.Random(1)
        print("\n%s link, %s workload" % (link, wl))
        head = "  %-17s" % "metric"
        for c in configs:
            head += " %12s" % (c.replace("upstream-", "up-")[:12])
        for o, b in pairs:
            head += " %*s" % (rcol, "%s/%s" % (o[:10], SHORT[b]))
        print(head)
        for name, unit, fn in METRICS:
            vals = {}
            for c in configs:
                v = [value(name, fn, link, r) for r in groups.get((link, wl, c), [])]
                vals[c] = [x for x in v if x is not None]
            med = {c: statistics.median(v) if v else None for c, v in vals.items()}
            if all(v is None for v in med.values()):
                continue
            line = "  %-17s" % name
            for c in configs:
                line += " %12s" % fmt_value(med[c], unit)
            for o, b in pairs:
                ci = ratio_ci(vals[o], vals[b], rng) if with_ci else None
                line += " %*s" % (rcol, fmt_ratio(med[o], med[b], ci))
            print(line)
    for key, n in sorted(failed.items()):
        print("failed runs: %s: %d" % ("/".join(key), n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
