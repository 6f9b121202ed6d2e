#!/usr/bin/python3
# exp53-report: experiment 5.3 (a web service under packing): the
# responses of one run classed good / tolerable / failed per VM, with the
# move's times and a plot, or the table of several runs (--summary)
# beside the paper's, or (--calibrate) the page's work that makes pm0
# overload at the planned number of sessions.  Reads what
# scripts/experiment-5.3 leaves in a run directory: responses.csv
# (tools/exp53-load.py), timeline.csv and jobs.json.
#
# SPDX-License-Identifier: GPL-2.0-or-later
import argparse
import csv
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exp_common import fmt, has_cairo, load_timeline, overload_s  # noqa: E402

VMS = ("vm0", "vm1")
# The paper's table (section 5.3): Good, Tolerable, Failed responses.
PAPER = {("postcopy", "vm0"): (3622, 23, 8), ("postcopy", "vm1"): (4119, 299, 181),
         ("precopy", "vm0"): (3522, 19, 49), ("precopy", "vm1"): (3130, 412, 549)}
RELIEF_WINDOW = 5.0     # s: a window of responses ...
RELIEF_GOOD = 0.95      # ... this share of which is good


def load_responses(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            rows.append((float(r["t"]), r["vm"], int(r["group"]), r["code"],
                         float(r["secs"]) if r["secs"] else None))
    return sorted(rows)


def classify(code, secs, good, tolerable):
    if code.isdigit() and 200 <= int(code) < 300 and secs is not None:
        if secs <= good:
            return "good"
        if secs <= tolerable:
            return "tolerable"
    return "failed"


def load(run_dir, good, tolerable):
    hosts, vms, events, jobs = load_timeline(run_dir)
    resp = load_responses(os.path.join(run_dir, "responses.csv"))
    classed = [(t, vm, g, classify(c, s, good, tolerable), s) for t, vm, g, c, s in resp]
    starts = []
    log = os.path.join(run_dir, "load.log")
    if os.path.exists(log):
        with open(log) as f:
            for line in f:
                p = line.split()
                if len(p) >= 6 and p[1] == "start":
                    starts.append((float(p[0]), p[4], int(p[5].lstrip("x"))))
    # time 0: when the first sessions started
    t0 = min([t for t, _, _ in starts] or [classed[0][0] if classed else 0.0])
    return dict(hosts=hosts, vms=vms, events=events, jobs=jobs, resp=classed,
                starts=starts, t0=t0)


def relief(d, t0):
    """From t0 (the decision) until every VM's responses over a
    RELIEF_WINDOW s window are RELIEF_GOOD good, counted to the window's
    start (the windows slide by 1 s); None when never."""
    if not d["resp"]:
        return None
    end = d["resp"][-1][0]
    t = t0
    while t + RELIEF_WINDOW <= end:
        ok = True
        for vm in VMS:
            w = [c for (tt, v, _, c, _) in d["resp"] if v == vm and t <= tt < t + RELIEF_WINDOW]
            if w and sum(1 for c in w if c == "good") < RELIEF_GOOD * len(w):
                ok = False
        if ok:
            return t - t0
        t += 1.0
    return None


def measure(d):
    m = {"moves": len(d["jobs"]), "failed_moves": sum(1 for j in d["jobs"] if j["state"] != "done")}
    for vm in VMS:
        cls = [c for (_, v, _, c, _) in d["resp"] if v == vm]
        m[vm] = {k: cls.count(k) for k in ("good", "tolerable", "failed")}
        m[vm]["n"] = len(cls)
    if d["resp"]:
        m["overload_s"] = overload_s(d["hosts"], d["vms"], d["t0"], d["resp"][-1][0])
    else:
        m["overload_s"] = None
    spread = next((j for j in d["jobs"] if (j.get("reason") or "").startswith("spread")), None)
    m["spread_vm"] = spread["vm"] if spread else None
    m["switched_s"] = (spread["resumed"] - spread["started"]) if spread and spread.get("resumed") else None
    m["spread_s"] = (spread["ended"] - spread["started"]) if spread and spread.get("ended") else None
    m["relief_s"] = relief(d, spread["started"]) if spread else None
    if spread and d["resp"]:
        m["decided_at_s"] = spread["started"] - d["t0"]
    return m


def pct(n, total):
    return "%d (%.2f%%)" % (n, 100.0 * n / total) if total else "0 (-)"


def report(label, m, good, tolerable):
    lines = ["experiment 5.3: %s (good: a 2xx within %g s, tolerable: within %g s)"
             % (label, good, tolerable),
             "  moves %d (%d not done)" % (m["moves"], m["failed_moves"])]
    for vm in VMS:
        c = m[vm]
        lines.append("  %s: %d responses: good %s, tolerable %s, failed %s" % (
            vm, c["n"], pct(c["good"], c["n"]), pct(c["tolerable"], c["n"]),
            pct(c["failed"], c["n"])))
    if m["spread_vm"]:
        lines.append("  spread: moved %s %s s into the load; host switched %s s after the "
                     "decision; move took %s s" % (
                         m["spread_vm"], fmt(m.get("decided_at_s"), ".0f"),
                         fmt(m["switched_s"], ".1f"), fmt(m["spread_s"], ".1f")))
    else:
        lines.append("  spread: none")
    lines += ["  overload (host >= 90%% with 2 active VMs): %s s" % fmt(m["overload_s"], ".0f"),
              "  relief (decision until both VMs answer %d%% good over %g s): %s s"
              % (100 * RELIEF_GOOD, RELIEF_WINDOW, fmt(m["relief_s"], ".0f"))]
    return "\n".join(lines)


def plot(run_dir, d, label, good, tolerable):
    if not d["resp"]:
        return
    t0 = d["t0"]
    dat = os.path.join(run_dir, "plot.dat")
    sessions = {}
    for t, vm, n in d["starts"]:
        sessions.setdefault(vm, []).append((t - t0, n))
    with open(dat, "w") as f:
        for i, vm in enumerate(VMS):
            f.write("# %s: t secs\n" % vm)
            for t, v, _, c, s in d["resp"]:
                if v == vm:
                    f.write("%.2f %s\n" % (t - t0, s if c != "failed" or s else 8.0))
            f.write("\n\n")
        f.write("# VM1 sessions\n")
        total = 0
        for t, n in sorted(sessions.get("vm1", [])):
            total += n
            f.write("%.2f %d\n" % (t, total))
        f.write("%.2f %d\n\n\n" % (d["resp"][-1][0] - t0, total))
        f.write("# per 10 s: bin good tolerable failed (VM1)\n")
        bins = {}
        for t, v, _, c, _ in d["resp"]:
            if v == "vm1":
                b = int((t - t0) // 10) * 10
                bins.setdefault(b, {"good": 0, "tolerable": 0, "failed": 0})[c] += 1
        for b in sorted(bins):
            f.write("%d %d %d %d\n" % (b, bins[b]["good"], bins[b]["tolerable"], bins[b]["failed"]))
    gp = ["set terminal pngcairo size 1100,800 font ',10'" if has_cairo() else
          "set terminal png size 1100,800",
          "set output '%s'" % os.path.join(run_dir, "plot.png"),
          "set multiplot layout 2,1 title 'Experiment 5.3: %s'" % label,
          # both panels on the same time axis
          "set xrange [0:%.0f]" % (d["resp"][-1][0] - t0 + 5),
          "set grid", "set key outside right", "set logscale y",
          "set yrange [0.005:10]", "set ylabel 'response time, s'", "set y2label 'VM1 sessions'",
          "set y2tics", "set y2range [0:*]",
          "set arrow from graph 0, first %g to graph 1, first %g nohead dt 3 lc rgb 'dark-green'"
          % (good, good),
          "set arrow from graph 0, first %g to graph 1, first %g nohead dt 3 lc rgb 'orange'"
          % (tolerable, tolerable)]
    for j in d["jobs"]:
        for key, txt in (("started", "move %s" % j["vm"]), ("resumed", "switched"),
                         ("ended", "done")):
            if j.get(key):
                x = j[key] - t0
                gp.append("set arrow from %.1f, graph 0 to %.1f, graph 1 nohead dt 2 lc rgb 'gray40'"
                          % (x, x))
                gp.append("set label '%s' at %.1f, graph 0.97 rotate by 90 right font ',8'"
                          % (txt, x + 0.5))
    gp += ["plot '%s' index 0 u 1:2 w p pt 7 ps 0.3 t 'VM0', '' index 1 u 1:2 w p pt 7 ps 0.3 "
           "t 'VM1', '' index 2 u 1:2 axes x1y2 w steps lw 2 lc rgb 'black' t 'VM1 sessions'" % dat,
           "unset logscale y", "unset y2tics", "unset y2label", "unset label", "unset arrow",
           "set yrange [0:*]", "set ylabel 'VM1 responses per 10 s'", "set xlabel 'seconds'",
           "set style fill solid",
           "set boxwidth 8",
           # stacked by hand: the totals first, so the smaller parts show on top
           "plot '%s' index 3 u ($1+5):($2+$3+$4) w boxes lc rgb 'red' t 'failed', "
           "'' index 3 u ($1+5):($2+$3) w boxes lc rgb 'orange' t 'tolerable', "
           "'' index 3 u ($1+5):2 w boxes lc rgb 'dark-green' t 'good'" % dat,
           "unset multiplot"]
    subprocess.run(["gnuplot"], input="\n".join(gp), text=True, check=True)


def calibrate(cal_dir, sessions, think):
    """bankpage's work per request that makes @sessions sessions fill one
    CPU: from the VM's CPU per response at the lowest and highest work
    levels measured (cal_dir/wN for work N), linear between."""
    hosts, vms, _, _ = load_timeline(cal_dir)
    levels = sorted(int(d[1:]) for d in os.listdir(cal_dir)
                    if d[:1] == "w" and d[1:].isdigit())
    if len(levels) < 2:
        sys.exit("exp53-report: calibration needs two work levels in %s" % cal_dir)
    lo, hi = levels[0], levels[-1]
    cost, rate_per_session = {}, None
    for w in (lo, hi):
        resp = load_responses(os.path.join(cal_dir, "w%d" % w, "responses.csv"))
        ok = [r for r in resp if r[3].isdigit() and 200 <= int(r[3]) < 300]
        if len(ok) < 20:
            sys.exit("exp53-report: calibration at work %d: only %d good responses" % (w, len(ok)))
        t0, t1 = ok[0][0], ok[-1][0]
        # skip the first and last seconds: the load starts and ends there
        cpu = [v["vm0"][1] for t, v in vms.items() if t0 + 2 <= t <= t1 and "vm0" in v]
        if len(cpu) < 5:
            sys.exit("exp53-report: calibration at work %d: too few CPU samples" % w)
        rate = len(ok) / (t1 - t0)
        cost[w] = (sum(cpu) / len(cpu) / 100.0) / rate     # CPU-seconds per request
        with open(os.path.join(cal_dir, "w%d" % w, "load.log")) as f:
            n = sum(int(line.split()[5].lstrip("x")) for line in f if " start group " in line)
        rate_per_session = rate / n if w == lo else rate_per_session
        print("calibration: work %d: %.1f requests/s, VM CPU %.0f%%, %.1f ms of CPU a request"
              % (w, rate, sum(cpu) / len(cpu), 1000 * cost[w]), file=sys.stderr)
    a, b = cost[lo], (cost[hi] - cost[lo]) / float(hi - lo)
    a -= b * lo
    target = 1.0 / (sessions * rate_per_session)
    if b <= 0:
        sys.exit("exp53-report: the page's cost does not grow with its work (%.1f, %.1f ms)"
                 % (1000 * cost[lo], 1000 * cost[hi]))
    work = max(0, min(1000, round((target - a) / b)))
    if target < a:
        print("calibration: a request costs %.1f ms even at work 0, more than the %.1f ms "
              "that %d sessions can have: pm0 overloads earlier" % (1000 * a, 1000 * target,
                                                                    sessions), file=sys.stderr)
    print("calibration: %d sessions at %.3f requests/s each fill a CPU at %.1f ms a request: "
          "work %d" % (sessions, rate_per_session, 1000 * target, work), file=sys.stderr)
    print(work)
    return 0


def summary(dirs, good, tolerable):
    print("Experiment 5.3: web service under packing; responses good (2xx within %g s), "
          "tolerable (within %g s), failed" % (good, tolerable))
    hdr = "%-11s %-4s %17s %17s %17s %9s %9s %9s %6s  %s" % (
        "run", "VM", "good", "tolerable", "failed", "overload", "switched", "relief",
        "moved", "paper: good / tolerable / failed")
    print(hdr)
    print("-" * len(hdr))
    for x in dirs:
        run = os.path.basename(x.rstrip("/"))
        m = measure(load(x, good, tolerable))
        for vm in VMS:
            c = m[vm]
            p = PAPER.get((run, vm))
            paper = "-" if not p else "%.2f%% / %.2f%% / %.2f%%" % tuple(
                100.0 * v / sum(p) for v in p)
            print("%-11s %-4s %17s %17s %17s %9s %9s %9s %6s  %s" % (
                run, vm, pct(c["good"], c["n"]), pct(c["tolerable"], c["n"]),
                pct(c["failed"], c["n"]), fmt(m["overload_s"], ".0f"),
                fmt(m["switched_s"], ".1f"), fmt(m["relief_s"], ".0f"),
                m["spread_vm"] or "-", paper))
    print("overload: s a host was >= 90%% with 2 active VMs; switched: from the spread's "
          "decision until the guest ran on the destination;\nmoved: the VM the spread moved; relief: from the decision until "
          "both VMs answered %d%% good over %g s" % (100 * RELIEF_GOOD, RELIEF_WINDOW))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--label", default="")
    ap.add_argument("--good", type=float, default=2.0)
    ap.add_argument("--tolerable", type=float, default=4.0)
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--sessions", type=int, default=270)
    ap.add_argument("--think", type=float, default=10.0)
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    if a.calibrate:
        return calibrate(a.dirs[0], a.sessions, a.think)
    if a.summary:
        return summary(a.dirs, a.good, a.tolerable)
    d = load(a.dirs[0], a.good, a.tolerable)
    m = measure(d)
    print(report(a.label, m, a.good, a.tolerable))
    plot(a.dirs[0], d, a.label, a.good, a.tolerable)
    return 0


if __name__ == "__main__":
    sys.exit(main())
