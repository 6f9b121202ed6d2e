#!/usr/bin/python3
# bench-report: medians and ours/upstream ratios from the JSON lines that
# scripts/bench-postcopy writes (one ppmig report per run).
#
# SPDX-License-Identifier: GPL-2.0-or-later
import json
import statistics
import sys

LINK_BYTES_PER_S = 1e9 / 8   # the tbf link's nominal rate
OBSERVE_MS = 5000.0          # scripts/bench-postcopy's --observe

METRICS = [
    # name, unit, function of a report, lower is better
    ("switchover", "ms", lambda r: r.get("switchover-ms"), True),
    ("remote faults", "", lambda r: r.get("postcopy-requests"), True),
    ("work lost 5 s", "%", lambda r: (100.0 * (1 - r["rate-after"] / r["rate-before"])
                                      if r.get("rate-after") is not None and r.get("rate-before") else None), True),
    ("longest stall", "ms", lambda r: r.get("longest-stall-ms"), True),
    # not back within the 5 s observed counts as 5 s (a censored value)
    ("back to 90%", "ms", lambda r: (None if r.get("rate-before") is None
                                     else r.get("back-to-90-ms") or OBSERVE_MS), True),
    ("mean fault wait", "ms", lambda r: (r["blocktime-ms"] / r["postcopy-requests"]
                                         if r.get("postcopy-requests") and
                                         (r.get("blocktime-ms") or -1) >= 0 else None), True),
    ("migrate->stop", "ms", lambda r: r.get("switch-delay-ms"), True),
    ("time/(bytes/bw)", "", None, True),   # tbf only, filled in below
    ("bytes/non-zero", "", lambda r: (r["transferred-bytes"] / (4096.0 * r["nonzero-pages"])
                                      if r.get("nonzero-pages") else None), True),
]


def value(name, fn, link, r):
    if name == "time/(bytes/bw)":
        if not link.startswith("tbf") or not r.get("transferred-bytes"):
            return None
        return (r["total-ms"] / 1000.0) / (r["transferred-bytes"] / LINK_BYTES_PER_S)
    return fn(r)


def main():
    runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    groups = {}
    failed = {}
    for run in runs:
        key = (run["link"], run["workload"], run["config"])
        if run["report"] is None:
            failed[key] = failed.get(key, 0) + 1
            continue
        groups.setdefault(key, []).append(run["report"])
    reps = max((len(v) for v in groups.values()), default=0)
    print("post-copy benchmark: medians over %d repetitions; ratio < 1 means ours is lower"
          % reps)
    cells = sorted({(l, w) for (l, w, _) in groups})
    for link, wl in cells:
        print("\n%s link, %s workload" % (link, wl))
        print("  %-17s %12s %12s %12s %11s %11s" % (
            "metric", "up-plain", "up-preempt", "ours", "ours/plain", "ours/preempt"))
        for name, unit, fn, _ in METRICS:
            med = {}
            for cfg in ("upstream-plain", "upstream-preempt", "ours"):
                vals = [value(name, fn, link, r) for r in groups.get((link, wl, cfg), [])]
                vals = [v for v in vals if v is not None]
                med[cfg] = statistics.median(vals) if vals else None
            if all(v is None for v in med.values()):
                continue

            def f(v):
                return "-" if v is None else "%.3g%s" % (v, unit)

            def ratio(a, b):
                return "-" if a is None or not b else "%.2f" % (a / b)
            print("  %-17s %12s %12s %12s %11s %11s" % (
                name, f(med["upstream-plain"]), f(med["upstream-preempt"]), f(med["ours"]),
                ratio(med["ours"], med["upstream-plain"]),
                ratio(med["ours"], med["upstream-preempt"])))
    for key, n in sorted(failed.items()):
        print("failed runs: %s: %d" % ("/".join(key), n))


if __name__ == "__main__":
    main()
