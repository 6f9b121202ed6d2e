#!/usr/bin/python3
"""exp53-load: experiment 5.3's clients.  Runs siege (Debian's siege
4.0.7) from the client namespace, a group of sessions per plan entry,
each group started at its time and all ending together, and writes every
response with the wall time it arrived: DIR/responses.csv
(t,vm,group,code,secs,bytes; code "error" for a request siege reports as
a transport failure, e.g. a time-out or a reset connection).

Each session is one siege user: it asks for the VM's page, waits for the
answer, thinks a random 0..THINK s, and asks again (siege -d).  Responses
are timed by siege (10 ms resolution)."""
# SPDX-License-Identifier: GPL-2.0-or-later
import argparse
import os
import subprocess
import sys
import threading
import time

RC = """verbose = true
csv = true
timestamp = false
color = off
logging = false
parser = false
protocol = HTTP/1.0
connection = close
timeout = %d
failures = 1000000000
show-logfile = false
limit = 2000
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--netns", required=True, help="the client namespace")
    ap.add_argument("--cpu", default=None, help="pin the clients to this CPU list")
    ap.add_argument("--duration", type=int, required=True)
    ap.add_argument("--think", type=float, default=10.0)
    ap.add_argument("--timeout", type=int, default=8)
    ap.add_argument("--url", action="append", default=[], help="VM=URL")
    ap.add_argument("--plan", required=True,
                    help="VM:START_S:SESSIONS,... (groups of sessions)")
    a = ap.parse_args()
    urls = dict(u.split("=", 1) for u in a.url)
    plan = []
    for p in a.plan.split(","):
        vm, start, n = p.split(":")
        if vm not in urls:
            sys.exit("exp53-load: no --url for %s" % vm)
        if not (0 <= int(start) < a.duration) or int(n) < 1:
            sys.exit("exp53-load: bad plan entry '%s'" % p)
        plan.append((int(start), vm, int(n)))
    os.makedirs(a.out, exist_ok=True)
    rc = os.path.join(a.out, "siegerc")
    with open(rc, "w") as f:
        f.write(RC % a.timeout)
    out = open(os.path.join(a.out, "responses.csv"), "w")
    out.write("t,vm,group,code,secs,bytes\n")
    log = open(os.path.join(a.out, "load.log"), "w")
    lock = threading.Lock()

    def reader(stream, vm, group, is_err):
        for raw in stream:
            line = raw.decode(errors="replace").strip()
            t = time.time()
            if not line:
                continue
            row = None
            if not is_err:
                f = [x.strip() for x in line.split(",")]
                if len(f) >= 4 and f[0].startswith("HTTP/") and f[1].isdigit():
                    row = (f[1], f[2], f[3])
            elif line.startswith("[error]") or line.startswith("[alert]"):
                row = ("error", "", "0")
            with lock:
                if row:
                    out.write("%.3f,%s,%d,%s,%s,%s\n" % ((t, vm, group) + row))
                else:
                    log.write("%.3f %s/%d: %s\n" % (t, vm, group, line))

    t0 = time.time()
    procs, threads = [], []
    for g, (start, vm, n) in enumerate(sorted(plan)):
        delay = t0 + start - time.time()
        if delay > 0:
            time.sleep(delay)
        cmd = ["ip", "netns", "exec", a.netns]
        if a.cpu:
            cmd += ["taskset", "-c", a.cpu]
        # siege writes its lines with stdio: line-buffered, so that each
        # is stamped when the response came, not when a buffer filled
        cmd += ["stdbuf", "-oL", "-eL", "siege", "-R", rc, "-c", str(n), "-d", str(a.think),
                "-t", "%dS" % (a.duration - start), urls[vm]]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(p)
        with lock:
            log.write("%.3f start group %d: %s x%d at +%d s\n" % (time.time(), g, vm, n, start))
        for s, e in ((p.stdout, False), (p.stderr, True)):
            th = threading.Thread(target=reader, args=(s, vm, g, e), daemon=True)
            th.start()
            threads.append(th)
    for p in procs:
        try:
            p.wait(timeout=a.duration + a.timeout + 30)
        except subprocess.TimeoutExpired:
            p.kill()
    for th in threads:
        th.join(timeout=5)
    out.close()
    log.close()
    bad = [p.returncode for p in procs if p.returncode not in (0, None)]
    if bad:
        print("exp53-load: siege exited with %s (see %s)" % (bad, a.out), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
