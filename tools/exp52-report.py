#!/usr/bin/python3
# exp52-report: measurements and plot of one run of experiment 5.2 (two
# VMs doing a fixed amount of work, VM1 starting later), or the
# comparison table of several (--summary) beside the paper's table.
# Reads what scripts/experiment-5.2 leaves in a run directory:
# timeline.csv (the consolidator's export), jobs.json and vmN.serial
# (each guest's serial output over all its QEMUs).
#
# SPDX-License-Identifier: GPL-2.0-or-later
import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exp_common import (ACTIVE, fmt, has_cairo, load_timeline,  # noqa: E402
                        overload_s, relief_s, sample_step)

VMS = ("vm0", "vm1")
# The paper's table (section 5.2): completion s of VM0 and VM1, and how
# long PM1 was needed (post-copy ~260 s, pre-copy ~320 s).
PAPER = {"dedicated": (220.40, None, None), "postcopy": (225.15, 225.70, 260),
         "precopy": (257.21, 259.45, 320), "norelocate": (345.26, 345.90, None)}


def records(path):
    """fixedwork's start and done records: {event: {key: value}}, and its
    progress as a list of (t, units done) under "progress"."""
    out = {"progress": []}
    if not os.path.exists(path):
        return out
    for line in open(path, errors="replace"):
        m = re.search(r"PP fixedwork (start|done|progress) t=([0-9.]+)(.*)", line)
        if not m:
            continue
        kv = dict(re.findall(r"(\w+)=(\S+)", m.group(3)))
        if m.group(1) == "progress":
            out["progress"].append((float(m.group(2)), int(kv.get("done", 0))))
        elif m.group(1) not in out:
            kv["t"] = float(m.group(2))
            out[m.group(1)] = kv
    return out


def solo_rate(progress, t_from, t_to):
    """Units a second between two guest times (None with too few points)."""
    pts = [p for p in progress if t_from <= p[0] <= t_to]
    if len(pts) < 5 or pts[-1][0] <= pts[0][0]:
        return None
    return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])


def load(run_dir):
    hosts, vms, events, jobs = load_timeline(run_dir)
    d = dict(hosts=hosts, vms=vms, events=events, jobs=jobs, vm={})
    vm_start = {n: t for t, k, n, _ in events if k == "vm-start"}
    for v in VMS:
        rec = records(os.path.join(run_dir, v + ".serial"))
        if v not in vm_start or "start" not in rec:
            continue
        # Guest time counts from its QEMU's start (boot delay ignored, a
        # second or less); it stops while the VM is stopped for a move.
        info = dict(start_wall=vm_start[v] + rec["start"]["t"], done=None)
        if "done" in rec:
            info["done_wall"] = vm_start[v] + rec["done"]["t"]
            downtime = sum((j.get("switchover-ms") or 0) / 1000.0 for j in jobs
                           if j["vm"] == v and j["state"] == "done" and
                           info["start_wall"] <= j["started"] <= info["done_wall"])
            info["downtime_s"] = downtime
            info["done"] = rec["done"]["t"] - rec["start"]["t"] + downtime
            info["checksum"] = rec["done"].get("checksum")
            info["units"] = rec["done"].get("units")
        info["start_t"] = rec["start"]["t"]
        info["progress"] = rec["progress"]
        d["vm"][v] = info
    # The machine's speed in this run: VM0's rate while it runs alone
    # (before VM1 starts), the same situation in every placement.
    if all(v in d["vm"] for v in VMS):
        v0, v1 = d["vm"]["vm0"], d["vm"]["vm1"]
        alone = v1["start_wall"] - v0["start_wall"]
        d["solo_rate"] = solo_rate(v0["progress"], v0["start_t"] + 1, v0["start_t"] + alone - 1)
    return d


def held(d, t):
    """Hosts holding a VM at sample t: where a guest runs, and both ends
    of a move under way."""
    hs = {h for (h, _) in d["vms"].get(t, {}).values()}
    for j in d["jobs"]:
        end = j.get("ended") or float("inf")
        if j["started"] <= t <= end:
            hs |= {j["from"], j["to"]}
    return hs


def measure(d):
    m = {"moves": len(d["jobs"]), "failed": sum(1 for j in d["jobs"] if j["state"] != "done"),
         "solo_rate": d.get("solo_rate")}
    for v in VMS:
        info = d["vm"].get(v, {})
        m[v] = info.get("done")
        m[v + "_checksum"] = info.get("checksum")
    started = [i["start_wall"] for i in d["vm"].values()]
    dones = [i.get("done_wall") for i in d["vm"].values()]
    if not started or None in dones or len(dones) < len(VMS):
        m["complete"] = False
        return m
    m["complete"] = True
    t0, t_done = min(started), max(dones)
    # The window ends with the last job, or with the pack after it (the
    # hosts needed until the VMs share one again).
    t_end = max([t_done] + [j["ended"] for j in d["jobs"]
                            if j.get("ended") and j["started"] >= t_done - 1])
    m["window_s"] = t_end - t0
    times = sorted(t for t in d["hosts"] if t0 <= t <= t_end)
    dt = sample_step(times)
    per_host = {}
    shared = 0.0
    for t in times:
        for h in held(d, t):
            per_host[h] = per_host.get(h, 0.0) + dt
        v = d["vms"].get(t, {})
        if all(x in v for x in VMS) and v["vm0"][0] == v["vm1"][0] and \
                min(v["vm0"][1], v["vm1"][1]) >= ACTIVE:
            shared += dt
    m["host_s"] = sum(per_host.values())
    m["pm1_s"] = per_host.get("pm1", 0.0)
    m["shared_s"] = shared
    m["overload_s"] = overload_s(d["hosts"], d["vms"], t0, t_done)
    spread = next((j for j in d["jobs"] if (j.get("reason") or "").startswith("spread")), None)
    m["spread_vm"] = spread["vm"] if spread else None
    m["switched_s"] = (spread["resumed"] - spread["started"]) if spread and spread.get("resumed") else None
    m["spread_s"] = (spread["ended"] - spread["started"]) if spread and spread.get("ended") else None
    m["relief_s"] = None
    if spread:
        # Both VMs ask for a whole CPU while their work runs.
        rel = []
        for v in VMS:
            i = d["vm"][v]
            rel.append(relief_s(d["vms"], v, spread["started"],
                                lambda t, i=i: 100.0 if i["start_wall"] <= t - 0.5 <= i["done_wall"] else 0.0))
        m["relief_s"] = None if None in rel else max(rel)
    return m


def report(label, m):
    lines = ["experiment 5.2: %s" % label,
             "  moves %d (%d not done)" % (m["moves"], m["failed"])]
    for v in VMS:
        lines.append("  %s: completion %s s, checksum %s" % (v, fmt(m[v], ".1f"),
                                                             m[v + "_checksum"] or "-"))
    if not m["complete"]:
        lines.append("  (a job did not finish)")
        return "\n".join(lines)
    if m["spread_vm"]:
        lines.append("  spread: moved %s; host switched %s s after the decision; move took %s s"
                     % (m["spread_vm"], fmt(m["switched_s"], ".1f"), fmt(m["spread_s"], ".1f")))
    lines += ["  both VMs active on one host: %.0f s" % m["shared_s"],
              "  overload (host >= 90%% with 2 active VMs): %.0f s" % m["overload_s"],
              "  relief (decision until both VMs get 95%% of a CPU, 3 samples in a row): %s s"
              % fmt(m["relief_s"], ".0f"),
              "  hosts needed: %.0f host-seconds over %.0f s (pm1 %.0f s)"
              % (m["host_s"], m["window_s"], m["pm1_s"]),
              "  VM0 alone before VM1 starts: %s units/s" % fmt(m["solo_rate"], ".3f")]
    return "\n".join(lines)


def plot(run_dir, d, label):
    ts = sorted(d["hosts"])
    if not ts:
        return
    t0 = ts[0]
    dat = os.path.join(run_dir, "plot.dat")
    with open(dat, "w") as f:
        f.write("# t pm0 pm1 vm0 vm1 vm0-on-pm1 vm1-on-pm1\n")
        for t in ts:
            h, v = d["hosts"][t], d["vms"].get(t, {})
            f.write("%.2f %s %s %s %s %d %d\n" % (
                t - t0, h.get("pm0", "?"), h.get("pm1", "?"),
                v.get("vm0", (0, "?"))[1], v.get("vm1", (0, "?"))[1],
                v.get("vm0", ("",))[0] == "pm1", v.get("vm1", ("",))[0] == "pm1"))
    marks = []
    for v, i in d["vm"].items():
        marks.append((i["start_wall"] - t0, "%s starts" % v))
        if i.get("done_wall"):
            marks.append((i["done_wall"] - t0, "%s done" % v))
    for j in d["jobs"]:
        marks.append((j["started"] - t0, "move %s" % j["vm"]))
    gp = ["set terminal pngcairo size 1100,750 font ',10'" if has_cairo() else
          "set terminal png size 1100,750",
          "set output '%s'" % os.path.join(run_dir, "plot.png"),
          "set multiplot layout 2,1 title 'Experiment 5.2: %s'" % label,
          "set yrange [0:110]", "set grid", "set key outside right",
          "set ylabel 'host CPU %'"]
    for x, txt in marks:
        gp.append("set arrow from %.1f, graph 0 to %.1f, graph 1 nohead dt 2 lc rgb 'gray40'"
                  % (x, x))
        gp.append("set label '%s' at %.1f, graph 0.95 rotate by 90 right font ',8'" % (txt, x + 1))
    gp += ["plot '%s' u 1:2 w l lw 2 t 'pm0', '' u 1:3 w l lw 2 t 'pm1'" % dat,
           "set ylabel 'VM CPU %'", "set xlabel 'seconds'", "unset label",
           "plot '%s' u 1:4 w l lw 2 t 'VM0', '' u 1:5 w l lw 2 t 'VM1'" % dat,
           "unset multiplot"]
    subprocess.run(["gnuplot"], input="\n".join(gp), text=True, check=True)


def summary(dirs, units):
    ms = {os.path.basename(x.rstrip("/")): measure(load(x)) for x in dirs}
    ded = ms.get("dedicated")
    base = {v: ded[v] for v in VMS} if ded and ded["complete"] else {}
    base_rate = ded.get("solo_rate") if ded else None
    print("Experiment 5.2: fixed work (fixedwork%s), VM1 starting later; "
          "completion s and ratio to dedicated" % (", %s units" % units if units else ""))
    hdr = ("%-11s %15s %15s %8s %8s %9s %7s %6s %6s %6s  %s"
           % ("run", "VM0 s", "VM1 s", "VM0 solo", "shared", "overload", "relief",
              "host-s", "pm1 s", "moved", "paper: VM0 / VM1 s, pm1"))
    print(hdr)
    print("-" * len(hdr))
    sums = set()
    for run, m in ms.items():
        cells = []
        speed = (m["solo_rate"] / base_rate) if m.get("solo_rate") and base_rate else None
        for v in VMS:
            r = "(%+.0f%%)" % (100 * (m[v] / base[v] - 1)) if m[v] and base.get(v) else ""
            cells.append("%s %s" % (fmt(m[v], ".1f"), r))
            if m[v + "_checksum"]:
                sums.add(m[v + "_checksum"])
        p = PAPER.get(run)
        paper = "-" if not p else "%s / %s%s (%s)" % (
            fmt(p[0], ".1f"), fmt(p[1], ".1f"), ", ~%d s" % p[2] if p[2] else "",
            "+%.0f%%" % (100 * (p[0] / PAPER["dedicated"][0] - 1)))
        print("%-11s %15s %15s %8s %8s %9s %7s %6s %6s %6s  %s" % (
            run, cells[0], cells[1], fmt(speed, ".2f"),
            fmt(m.get("shared_s"), ".0f"), fmt(m.get("overload_s"), ".0f"),
            fmt(m.get("relief_s"), ".0f"), fmt(m.get("host_s"), ".0f"),
            fmt(m.get("pm1_s"), ".0f"), m.get("spread_vm") or "-", paper))
    print("checksums: %s" % ("all equal (%s)" % sums.pop() if len(sums) == 1 else
                             "DIFFER: %s" % " ".join(sorted(sums)) if sums else "none"))
    print("completion: the job's own time (guest clock) plus any move's downtime; VM0 solo: "
          "VM0's rate while it runs\nalone (before VM1 starts) against the dedicated run's, "
          "a check of how alike the runs' conditions were;\nshared: both VMs active on one host; "
          "relief: from the spread decision until both VMs get 95%\nof a CPU (3 samples in "
          "a row); host-s: seconds each host held a VM (or a move's end), from VM0's start "
          "until the last job or the pack after it; pm1 s: pm1's share.")
    return 0 if len(sums) <= 1 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--label", default="")
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--units", default="")
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    if a.summary:
        return summary(a.dirs, a.units)
    d = load(a.dirs[0])
    m = measure(d)
    print(report(a.label, m))
    plot(a.dirs[0], d, a.label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
