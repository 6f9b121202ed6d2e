# exp_common: what the experiment reports (exp51-report.py, and the 5.2
# and 5.3 reports) share: the consolidator's timeline export read into
# samples grouped by sampling pass, overload and relief, and gnuplot's
# terminal.
#
# SPDX-License-Identifier: GPL-2.0-or-later
import csv
import json
import os
import subprocess

OVERLOAD = 90.0     # host CPU % that counts as overloaded ...
ACTIVE = 5.0        # ... while it runs more than one VM above this
RELIEF_SHARE = 0.95  # relieved: the VM gets this share of its demand ...
RELIEF_SAMPLES = 3   # ... in this many consecutive samples


def load_timeline(run_dir):
    """timeline.csv (consolidator export --csv) and jobs.json of a run:
    hosts {t: {host: cpu}}, vms {t: {vm: (host, cpu)}} grouped by pass,
    events [(t, kind, name, detail)], jobs."""
    hosts, vms, events = {}, {}, []
    with open(os.path.join(run_dir, "timeline.csv")) as f:
        for r in csv.DictReader(f):
            t = float(r["t"])
            if r["kind"] == "host":
                hosts.setdefault(t, {})[r["name"]] = float(r["cpu"])
            elif r["kind"] == "vm":
                vms.setdefault(t, {})[r["name"]] = (r["host"], float(r["cpu"]))
            elif r["kind"].startswith("event:"):
                events.append((t, r["kind"][len("event:"):], r["name"], r["detail"]))
    with open(os.path.join(run_dir, "jobs.json")) as f:
        jobs = json.load(f)
    hosts, vms = by_pass(hosts, vms)
    return hosts, vms, events, jobs


def by_pass(hosts, vms):
    """Host and VM samples grouped by sampling pass.  The local driver
    stamps every host and VM of a pass with one time; the libvirt driver
    samples each host (and its domains) in a call of its own, a few ms
    apart: samples within half a second of a pass's first are that
    pass's."""
    key = {}
    start = None
    for t in sorted(set(hosts) | set(vms)):
        if start is None or t - start > 0.5:
            start = t
        key[t] = start
    h2, v2 = {}, {}
    for t, v in hosts.items():
        h2.setdefault(key[t], {}).update(v)
    for t, v in vms.items():
        v2.setdefault(key[t], {}).update(v)
    return h2, v2


def sample_step(times):
    """The mean time between samples (1 s when there are too few)."""
    if len(times) < 2:
        return 1.0
    return (times[-1] - times[0]) / (len(times) - 1)


def overload_s(hosts, vms, t_begin, t_end=float("inf")):
    """Seconds some host was >= OVERLOAD % while running more than one
    VM at >= ACTIVE %, summed over hosts, from t_begin to t_end."""
    times = sorted(t for t in hosts if t_begin <= t <= t_end)
    dt = sample_step(times)
    total = 0.0
    for t in times:
        for h, cpu in hosts[t].items():
            active = sum(1 for (vh, c) in vms.get(t, {}).values()
                         if vh == h and c >= ACTIVE)
            if cpu >= OVERLOAD and active > 1:
                total += dt
    return total


def relief_s(vms, vm, t0, demand_at):
    """Relief as the loaded VM feels it: seconds from t0 (the decision to
    move) until @vm gets >= RELIEF_SHARE of its demand in RELIEF_SAMPLES
    consecutive samples, counted to the first of them (a sample at t
    holds the CPU of the second before t).  demand_at(t) is the CPU % the VM asks
    for; a sample where it asks for nothing counts as relieved.  None
    when the VM is never relieved after t0."""
    run_start, run = None, 0
    for t in sorted(t for t in vms if t > t0):
        if vm not in vms[t]:
            run_start, run = None, 0
            continue
        want = demand_at(t)
        got = vms[t][vm][1]
        if want <= 0 or got >= RELIEF_SHARE * want:
            if run == 0:
                run_start = t
            run += 1
            if run >= RELIEF_SAMPLES:
                return run_start - t0
        else:
            run_start, run = None, 0
    return None


def has_cairo():
    out = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
    return "pngcairo" in (out.stdout + out.stderr)


def fmt(v, spec):
    return "-" if v is None else format(v, spec)
