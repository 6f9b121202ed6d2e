#!/bin/bash
# The literature's policy family drives the daemon: the same lr-mmt object
# the simulator runs (consolidator policies and simulate --list name the
# same policies), fed with per-VM histories from the sample store.  Both
# VMs start on pm0 (one core) and load it fully: the least-squares line
# through pm0's history predicts overload, mmt picks vm1 (less memory),
# PABFD places it on pm1, and then nothing else moves (neither host can
# take the other's VM without going over its capacity, and both are
# busier than underload).
#
# cpuload computes for P% of each period by the guest's clock and sleeps
# the rest, so two of them sharing a core leave it idle whenever both
# sleep.  With the same period their phases stay where boot put them and
# pm0 carries anything from 60% (in step) to 100% (out of step): 65% and
# 87% were seen, and the test failed CI.  vm1's period of 70 ms against
# vm0's 100 ms walks the phases through each other every 233 ms, so over
# a history step pm0 averages about 1 - 0.4 x 0.45 = 82%.  The default
# safety 1.2 wants 83%; 1.45 puts the line at 69%, between the pair and
# either VM alone (vm0 about 61%: 0.61 x 1.45 = 0.88).
. "$(dirname "$0")/lib.sh"
need_root
inst=it32
run=$PP_BUILD/tests/run/32
rm -rf "$run"; mkdir -p "$run"
cfg=$run/cluster.ini

# one list of names for the daemon's CLI and for the simulator
"$CONSOLIDATOR" policies | awk '{ print $1 }' > "$run/policies.txt"
"$CONSOLIDATOR" simulate --list | awk '{ print $1 }' > "$run/simulate.txt"
cmp "$run/policies.txt" "$run/simulate.txt" ||
    fail "consolidator policies and simulate --list differ"
for p in threshold thr-mmt iqr-mmt mad-mmt lr-mmt lrr-mmt lr-mc lr-rs lr-mu none; do
    grep -qx "$p" "$run/policies.txt" || fail "policy $p is not listed"
done

write_cluster_config "$cfg" "$inst" "$run/state"
cat >> "$cfg" <<END
mode = postcopy
decide_after = 25

[policy]
name = lr-mmt
safety = 1.45
step = 4
window = 8
history = 6
lr_points = 3
min_history = 3
underload = 0.3
cooldown = 10

[host pm0]
cpus = 0

[host pm1]
cpus = 1

[vm vm0]
memory = 256
host = pm0
workload = cpuload --schedule=60 --dirty-mib=8

[vm vm1]
memory = 192
host = pm0
workload = cpuload --schedule=55 --period-ms=70 --dirty-mib=8
END
DAEMON_PID=
cleanup() {
    [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null
    wait 2>/dev/null
    kill_instance "$run/state" "$inst"
}
trap cleanup EXIT
start_daemon "$cfg" "$run/daemon.log"
C() { "$CONSOLIDATOR" "$@" -c "$cfg"; }

for _ in $(seq 1 120); do
    [ "$(C jobs | grep -c ' done ')" -ge 1 ] && break
    sleep 1
done
sleep 15   # anything else it would do, it would do now
C jobs | tee "$run/jobs.txt"
C plan | tee "$run/plan.txt"
C hosts
C vms
cat "$run/daemon.log"
[ "$(wc -l < "$run/jobs.txt")" = 1 ] ||
    fail "expected exactly one move, got $(wc -l < "$run/jobs.txt")"
grep -q 'vm1 *pm0 *-> pm1 .* done .*lr-mmt: pm0 overloaded' "$run/jobs.txt" ||
    fail "the move is not lr-mmt's vm1 from the overloaded pm0 to pm1"
grep -q '^note: 0 overloaded hosts, 0 moves off them, 0 draining' \
    "$run/plan.txt" || fail "the plan after the move is not empty"
[ "$(C vms | grep -c ' running ')" = 2 ] || fail "a VM is not running"
stop_daemon "$cfg"
echo "all good"
