#!/usr/bin/python3
# exp51-report: measurements and plot of one run of experiment 5.1, or the
# comparison table of several (--summary).  Reads what
# scripts/experiment-5.1 leaves in a run directory: timeline.csv (the
# consolidator's export), jobs.json and the guests' serial logs.
#
# SPDX-License-Identifier: GPL-2.0-or-later
import argparse
import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exp_common import (fmt, has_cairo, load_timeline, overload_s,  # noqa: E402
                        relief_s, sample_step)


def load(run_dir, step):
    hosts, vms, events, jobs = load_timeline(run_dir)
    start = min(t for t, k, _, _ in events if k == "start")
    vm_start = {n: t for t, k, n, _ in events if k == "vm-start"}
    # VM1's steps, on the wall clock: guest monotonic time counts from its
    # QEMU's start (the guest clock follows the host's under TCG and KVM).
    steps = []
    logs = glob.glob(os.path.join(run_dir, "state/run/vm1/*/serial.log"))
    started = os.path.join(run_dir, "vm1.started")
    if not logs and os.path.exists(started):
        # libvirt driver: the domain's serial log, and when it was created
        logs = [os.path.join(run_dir, "vm1.serial")]
        vm_start["vm1"] = float(open(started).read())
    for log in logs:
        for line in open(log, errors="replace"):
            m = re.search(r"PP cpuload step t=([0-9.]+) pct=([0-9]+) index=([0-9]+)", line)
            if m:
                steps.append((vm_start["vm1"] + float(m.group(1)), int(m.group(2)),
                              int(m.group(3))))
    steps = sorted(set(steps))
    d = dict(hosts=hosts, vms=vms, events=events, jobs=jobs, start=start,
             steps=steps, step=step)
    d["clock_offset"] = align(d)
    d["steps"] = [(t + d["clock_offset"], p, i) for t, p, i in steps]
    return d


def align(d):
    """Guest monotonic time starts when the guest kernel does, a moment
    after its QEMU started, so the steps' wall times are off by that
    boot delay.  Estimate it as the shift that best fits VM1's measured
    CPU to its target before the first move (least squares, 0.1 s steps
    from -2 to +8 s; of equal fits the smallest shift)."""
    first_move = min([j["started"] for j in d["jobs"]] or [float("inf")])
    pts = [(t, v["vm1"][1]) for t, v in d["vms"].items()
           if "vm1" in v and d["steps"] and t >= d["steps"][0][0] and t < first_move]
    if len(pts) < 10:
        return 0.0
    best = (float("inf"), 0.0, 0.0)
    for k in range(-20, 81):
        off = k / 10.0
        err = sum((cpu - target_at(d["steps"], sample_mid(t) - off)) ** 2 for t, cpu in pts)
        best = min(best, (round(err, 6), abs(off), off))
    return best[2]


def sample_mid(t):
    """A sample stamped t holds the CPU of the second before it."""
    return t - 0.5


def target_at(steps, t):
    pct = 0
    for ts, p, _ in steps:
        if ts <= t:
            pct = p
    return pct


def step_start(steps, index):
    for ts, _, i in steps:
        if i == index:
            return ts
    return None


def measure(d):
    m = {}
    jobs = d["jobs"]
    spread = next((j for j in jobs if (j.get("reason") or "").startswith("spread")), None)
    pack = next((j for j in jobs if (j.get("reason") or "").startswith("pack")), None)
    t100 = step_start(d["steps"], 2)
    t0pct = step_start(d["steps"], 4)
    m["moves"] = len(jobs)
    m["clock_offset"] = d["clock_offset"]
    m["failed"] = sum(1 for j in jobs if j["state"] != "done")
    if spread:
        m["spread_vm"] = spread["vm"]
        m["detect_s"] = spread["started"] - t100 if t100 else None
        m["switch_ms"] = spread.get("switchover-ms")
        # When the guest started running on the destination, counted from
        # the move's start: the time the overloaded host keeps carrying it.
        m["switched_s"] = (spread["resumed"] - spread["started"]) if spread.get("resumed") else None
        m["spread_total_s"] = (spread["ended"] - spread["started"]) if spread.get("ended") else None
        m["spread_mib"] = spread["bytes"] / 1048576.0
        m["spread_requests"] = spread["postcopy-requests"]
    if pack:
        m["pack_vm"] = pack["vm"]
        m["pack_delay_s"] = pack["started"] - t0pct if t0pct else None
        m["pack_total_s"] = (pack["ended"] - pack["started"]) if pack.get("ended") else None
        m["pack_switch_ms"] = pack.get("switchover-ms")
    # Overload: a host at >= 90% running more than one active VM, counted
    # from VM1's first step (boot and fill load both VMs before that).
    t_begin = d["steps"][0][0] if d["steps"] else 0
    times = sorted(t for t in d["hosts"] if t >= t_begin)
    dt = sample_step(times)
    m["overload_s"] = overload_s(d["hosts"], d["vms"], t_begin)
    # Relief as VM1 feels it: from the decision to spread until it gets
    # 95% of its target (3 samples in a row).
    m["relief_s"] = (relief_s(d["vms"], "vm1", spread["started"],
                              lambda t: target_at(d["steps"], sample_mid(t)))
                     if spread else None)
    # VM1's shortfall against its target.
    want = short = 0.0
    for t in times:
        tgt = target_at(d["steps"], sample_mid(t))
        got = d["vms"].get(t, {}).get("vm1", (None, 0.0))[1]
        want += tgt * dt / 100
        short += max(0.0, tgt - got) * dt / 100
    m["vm1_short_cpu_s"] = short
    m["vm1_short_pct"] = 100.0 * short / want if want else 0.0
    if spread and pack and pack.get("ended"):
        m["pm1_busy_s"] = pack["ended"] - spread["started"]
    return m


def report(label, m):
    lines = ["experiment 5.1: %s" % label,
             "  moves %d (%d not done)" % (m["moves"], m["failed"])]
    if "spread_vm" in m:
        lines += ["  spread: moved %s; detected %s s after VM1 reached 100%%; "
                  "host switched %s s after the start (downtime %s ms); move took %s s "
                  "(%.0f MiB, %d remote requests)"
                  % (m["spread_vm"], fmt(m["detect_s"], ".1f"), fmt(m["switched_s"], ".1f"),
                     fmt(m["switch_ms"], ".0f"),
                     fmt(m["spread_total_s"], ".1f"), m["spread_mib"], m["spread_requests"])]
    else:
        lines += ["  spread: none"]
    if "pack_vm" in m:
        lines += ["  pack: moved %s %s s after VM1 fell to 0%%; move took %s s"
                  % (m["pack_vm"], fmt(m["pack_delay_s"], ".1f"), fmt(m["pack_total_s"], ".1f"))]
    lines += ["  guest clock offset (boot delay, fitted): %.1f s" % m["clock_offset"],
              "  overload (host >= 90%% with 2 active VMs): %.0f s" % m["overload_s"],
              "  relief (decision until VM1 gets 95%% of its target, 3 samples in a row): "
              "%s s" % fmt(m["relief_s"], ".0f"),
              "  VM1 CPU shortfall: %.1f CPU-seconds (%.1f%% of its demand)"
              % (m["vm1_short_cpu_s"], m["vm1_short_pct"])]
    return "\n".join(lines)


def plot(run_dir, d, label):
    t0 = d["start"]
    dat = os.path.join(run_dir, "plot.dat")
    names = ["pm0", "pm1", "vm0", "vm1"]
    with open(dat, "w") as f:
        f.write("# t pm0 pm1 vm0 vm1 vm1-target\n")
        for t in sorted(d["hosts"]):
            h = d["hosts"][t]
            v = d["vms"].get(t, {})
            f.write("%.2f %s %s %s %s %d\n" % (
                t - t0, h.get("pm0", "?"), h.get("pm1", "?"),
                v.get("vm0", (0, "?"))[1], v.get("vm1", (0, "?"))[1],
                target_at(d["steps"], sample_mid(t))))
    marks = []
    for j in d["jobs"]:
        marks.append((j["started"] - t0, "start %s" % j["vm"], "dt 2"))
        if j.get("ended"):
            marks.append((j["ended"] - t0, "done %s" % j["vm"], "dt 3"))
    gp = ["set terminal pngcairo size 1100,750 font ',10'" if has_cairo() else
          "set terminal png size 1100,750",
          "set output '%s'" % os.path.join(run_dir, "plot.png"),
          "set multiplot layout 2,1 title 'Experiment 5.1: %s'" % label,
          "set yrange [0:110]", "set grid", "set key outside right",
          "set ylabel 'host CPU %'"]
    for x, txt, style in marks:
        gp.append("set arrow from %.1f, graph 0 to %.1f, graph 1 nohead %s lc rgb 'gray40'"
                  % (x, x, style))
        gp.append("set label '%s' at %.1f, graph 0.95 rotate by 90 right font ',8'" % (txt, x + 1))
    gp += ["plot '%s' u 1:2 w l lw 2 t 'pm0', '' u 1:3 w l lw 2 t 'pm1'" % dat,
           "set ylabel 'VM CPU %'", "set xlabel 'seconds'", "unset label",
           "plot '%s' u 1:4 w l lw 2 t 'VM0', '' u 1:5 w l lw 2 t 'VM1', "
           "'' u 1:6 w steps dt 2 lc rgb 'black' t 'VM1 target'" % dat,
           "unset multiplot"]
    subprocess.run(["gnuplot"], input="\n".join(gp), text=True, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--step", type=float, required=True)
    ap.add_argument("--label", default="")
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    if not a.summary:
        d = load(a.dirs[0], a.step)
        m = measure(d)
        print(report(a.label, m))
        plot(a.dirs[0], d, a.label)
        return
    hdr = ("%-17s %6s %9s %11s %9s %10s %10s %9s %10s %11s"
           % ("run", "moved", "detect s", "overload s", "relief s", "switched s",
              "downtime", "move s", "VM1 short", "pack move s"))
    print("Experiment 5.1, step %g s (10 s averages, decisions every 1 s, "
          "10 s cooldown)" % a.step)
    print(hdr)
    print("-" * len(hdr))
    for run_dir in a.dirs:
        m = measure(load(run_dir, a.step))
        print("%-17s %6s %9s %11.0f %9s %10s %8s ms %9s %9.1f%% %11s" % (
            os.path.basename(run_dir.rstrip("/")), m.get("spread_vm", "-"),
            fmt(m.get("detect_s"), ".1f"), m["overload_s"], fmt(m["relief_s"], ".0f"),
            fmt(m.get("switched_s"), ".1f"),
            fmt(m.get("switch_ms"), ".0f"),
            fmt(m.get("spread_total_s"), ".1f"), m["vm1_short_pct"],
            fmt(m.get("pack_total_s"), ".1f")))
    print("detect: spread start - VM1 reaching 100%; overload: seconds a host was "
          ">= 90% with 2 active VMs;\nrelief: from the spread's start until VM1 got 95% "
          "of its target (3 samples in a row);\nswitched: from the spread's start until the "
          "guest ran on the destination; downtime: STOP->RESUME;\nmove: the spread's "
          "total time; VM1 short: CPU VM1 wanted but did not get.")


if __name__ == "__main__":
    sys.exit(main())
