#!/bin/bash
# Host power through the daemon (local driver, emulated suspend): two
# VMs at 10 % on pm0 and pm1 are packed onto one host and the emptied one
# is suspended (the policy's power action); when both VMs rise to 70 %
# the busy host is overloaded, the plan wakes the suspended host, and the
# relief move starts only once it is awake (wake_delay 5 s); the woken
# host is not suspended again before the move (min_awake).  A host with
# a VM cannot be suspended; a suspended host takes no move.
. "$(dirname "$0")/lib.sh"
need_root
inst=it33
run=$PP_BUILD/tests/run/33
rm -rf "$run"; mkdir -p "$run"
cfg=$run/cluster.ini
write_cluster_config "$cfg" "$inst" "$run/state"
cat >> "$cfg" <<END
mode = postcopy
decide_after = 12

[policy]
name = thr-mmt
step = 2
window = 4
history = 12
underload = 0.5
power_actions = on
spare = 0
cooldown = 4

[host pm0]
cpus = 0
wake_delay = 5

[host pm1]
cpus = 1
wake_delay = 5

[vm vm0]
memory = 192
host = pm0
workload = cpuload --schedule=10,90 --step=50 --dirty-mib=8

[vm vm1]
memory = 192
host = pm1
workload = cpuload --schedule=10,90 --step=50 --dirty-mib=8
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

# 1. the pack, and the emptied host suspended
off=
for _ in $(seq 1 60); do
    off=$(C hosts | awk '$3 == "off" { print $1 }')
    [ -n "$off" ] && break
    sleep 1
done
C hosts | tee "$run/hosts1.txt"
[ -n "$off" ] || { cat "$run/daemon.log"; fail "no host was suspended after the pack"; }
busy=pm0; [ "$off" = pm0 ] && busy=pm1
[ "$(C vms | awk -v h="$busy" '$2 == h' | wc -l)" = 2 ] ||
    fail "the VMs are not both on $busy"
out=$(C power "$busy" off 2>&1) && fail "suspended a host with VMs: $out"
echo "$out" | grep -q "not empty" || fail "unexpected refusal: $out"
out=$("$CONSOLIDATOR" migrate vm0 "$off" -c "$cfg" 2>&1) &&
    fail "moved a VM to a suspended host: $out"
echo "$out" | grep -q "is off" || fail "unexpected refusal: $out"

# 2. the rise: the plan wakes the suspended host, the move waits for it
for _ in $(seq 1 120); do
    [ "$(C jobs | grep -c ' done ')" -ge 2 ] && break
    sleep 1
done
sleep 3
C jobs | tee "$run/jobs.txt"
C hosts | tee "$run/hosts2.txt"
cat "$run/daemon.log"
[ "$(C jobs | grep -c ' done ')" = 2 ] || fail "expected two moves"
ts() { date -d "$(echo "$1" | cut -c1-12)" +%s.%N; }
waking=$(grep -m1 "power: waking $off" "$run/daemon.log") ||
    fail "no wake of $off in the log"
awake=$(grep -m1 "power: $off is awake" "$run/daemon.log") ||
    fail "$off never woke"
start=$(grep "move-start .*-> $off" "$run/daemon.log" | tail -1) ||
    fail "no move to $off after the wake"
awk -v w="$(ts "$waking")" -v a="$(ts "$awake")" -v s="$(ts "$start")" \
    'BEGIN { exit !(a - w >= 4.9 && s >= a) }' ||
    fail "the move did not wait for the wake (waking $waking / awake $awake / start $start)"
sed -n "/power: waking $off/,/move-start .*-> $off/p" "$run/daemon.log" |
    grep "power: suspending $off" &&
    fail "$off was suspended again between its wake and the move"
[ "$(awk '$3 == "on"' "$run/hosts2.txt" | wc -l)" = 2 ] ||
    fail "both hosts should be on at the end"
[ "$(C vms | grep -c ' running ')" = 2 ] || fail "a VM is not running"
stop_daemon "$cfg"
echo "all good"
