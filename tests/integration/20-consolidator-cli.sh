#!/bin/bash
# The consolidator with two emulated hosts (CPU sets + network namespaces
# joined by tbf-shaped links) and two VMs: manual moves through the CLI in
# both modes (a second post-copy move starting warm with the hot set of
# the first), cancelling before (and not after) the switch, bad input
# rejected with a clear message, the database holds
# the timeline, a VM whose QEMU dies is marked lost without harm to the
# rest, and stopping the daemon leaves no VM process or namespace.
. "$(dirname "$0")/lib.sh"
need_root
run=$PP_BUILD/tests/run/20
rm -rf "$run"; mkdir -p "$run"
cfg=$run/cluster.ini
write_cluster_config "$cfg" it20 "$run/state"
cat >> "$cfg" <<END
autopilot = false

[host pm0]
cpus = 0

[host pm1]
cpus = 1

[vm vm0]
memory = 384
host = pm0
workload = memverify --mib=64 --pass-ms=2000

[vm vm1]
memory = 256
host = pm0
workload = cpuload --schedule=10

[vm vm2]
memory = 1024
host = pm0
fill = 768
END
DAEMON_PID=
trap '[ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null; wait 2>/dev/null; kill_instance "$run/state" it20' EXIT
start_daemon "$cfg" "$run/daemon.log"
C() { "$CONSOLIDATOR" "$@" -c "$cfg"; }
sleep 6   # let the guests boot

out=$(C migrate vm0 pm1 --mode=postcopy-instant --wait --json) || { cat "$run/daemon.log"; fail "post-copy move failed: $out"; }
echo "$out"
echo "$out" | grep -q '"state": "done"' || fail "post-copy job not done"
# Our QEMU has x-postcopy-instant (found in its QMP schema): no fallback.
echo "$out" | grep -q '"mode": "postcopy-instant"' || fail "wrong mode"
C vms | tee /dev/stderr | grep -q '^vm0 *pm1 *running' || fail "vm0 is not running on pm1"

# Our QEMU's hot-first push: the first move tracked a hot set for about
# 300 ms and the destination counted its faults.
echo "$out" | grep -q '"hot-tracked-ms": [23][0-9][0-9]' ||
    fail "the first move ran no tracking window"
echo "$out" | grep -q '"fault-latency-p50-us": [0-9]' ||
    fail "no fault latency recorded"

out=$(C migrate vm0 pm0 --mode=precopy --wait --json) || fail "pre-copy move failed: $out"
echo "$out" | grep -q '"state": "done"' || fail "pre-copy job not done"
C vms | grep -q '^vm0 *pm0 *running' || fail "vm0 is not back on pm0"

# Moving again: the hot set read from the first move's source is handed
# in, so no tracking window runs and the push list is not empty.
out=$(C migrate vm0 pm1 --mode=postcopy-instant --wait --json) || fail "warm post-copy move failed: $out"
echo "$out"
echo "$out" | grep -q '"state": "done"' || fail "warm post-copy job not done"
echo "$out" | grep -q '"hot-tracked-ms": 0,' || fail "the warm move tracked again"
echo "$out" | grep -q '"hot-pages": [1-9]' || fail "the warm move pushed no hot set"
out=$(C migrate vm0 pm0 --mode=precopy --wait --json) || fail "pre-copy move back failed: $out"
C vms | grep -q '^vm0 *pm0 *running' || fail "vm0 is not back on pm0"

# Bad input: clear messages, nothing moves.
msg=$(C migrate vm0 pm9 2>&1) && fail "moving to an unknown host succeeded"
echo "$msg" | grep -q "no host 'pm9'" || fail "unclear error: $msg"
msg=$(C migrate vm9 pm1 2>&1) && fail "moving an unknown VM succeeded"
echo "$msg" | grep -q "no VM 'vm9'" || fail "unclear error: $msg"
msg=$(C migrate vm0 pm1 --mode=warp 2>&1) && fail "a bad mode was accepted"
echo "$msg" | grep -q "invalid migration mode 'warp'" || fail "unclear error: $msg"
C vms | grep -q '^vm0 *pm0 *running' || fail "vm0 moved after bad input"
C vms | grep -q '^vm1 *pm0 *running' || fail "vm1 is not running"

# The guest's memory survived both moves.
grep -h "PP memverify bad" "$run"/state/run/vm0/*/serial.log && fail "memverify saw a bad page"
# A pass over every page after the moves (the guest may still have been
# booting during them: three guests share pm0's one CPU under TCG).
for _ in $(seq 1 60); do
    grep -q "PP memverify pass" "$run"/state/run/vm0/job4/serial.log && break
    sleep 0.5
done
grep -q "PP memverify pass" "$run"/state/run/vm0/job4/serial.log || fail "memverify did not run after the moves"

# The database holds the timeline.
C history --since=0 | grep -q "move-start *vm0" || fail "no move-start event in history"
csv=$(C export --csv --since=0)
echo "$csv" | grep -q '^host,.*,pm1,pm1,' || fail "no host samples in export"
echo "$csv" | grep -q '^vm,.*,vm1,pm0,' || fail "no VM samples in export"
echo "$csv" | grep -q '^event:move-phase,.*done: switchover' || fail "no completed move in export"

# Cancel: a pre-copy move of 768 MiB over the 1 Gbit/s link takes seconds;
# cancelled after one, the guest stays on the source, running.  Only once
# the guest has filled its 768 MiB (three guests share pm0's CPU under
# TCG: the fill can still run here, and a move of zero pages ends at once).
wait_fill "$run"/state/run/vm2/boot/serial.log vm2 768
jobid() { tr -d ' \n' | sed 's/.*"id":\([0-9]*\).*/\1/'; }
id=$(C migrate vm2 pm1 --mode=precopy --json | jobid)
sleep 1
C cancel "$id" | tee /dev/stderr | grep -q " cancelled " || fail "job $id not cancelled"
# cancel answers at once, while the driver still stops the migration:
# wait for the job to end (cancelled), then the guest is on the source.
st=
for _ in $(seq 1 60); do
    st=$(C jobs --json | python3 -c '
import json, sys
for j in json.load(sys.stdin):
    if j["id"] == int(sys.argv[1]):
        print(j["state"])' "$id")
    case $st in cancelled|failed|broken|done) break ;; esac
    sleep 0.5
done
[ "$st" = cancelled ] || fail "job $id ended '$st', not cancelled"
C vms | grep -q '^vm2 *pm0 *running' || { C vms; fail "vm2 not running on pm0 after the cancel"; }
msg=$(C cancel "$id" 2>&1) && fail "cancelled twice"
echo "$msg" | grep -q "is already cancelled" || fail "unclear error: $msg"
# A post-copy move cannot be cancelled once it switched.
id=$(C migrate vm2 pm1 --mode=postcopy --json | jobid)
for _ in $(seq 1 100); do
    # the state column (the mode column says postcopy from the start)
    case $(job_state "$id") in postcopy|completing|done) break ;; esac
    sleep 0.05
done
msg=$(C cancel "$id" 2>&1) && fail "a switched post-copy move was cancelled"
echo "$msg" | grep -q -e "cannot go back" -e "is already done" || fail "unclear error: $msg"
for _ in $(seq 1 200); do C jobs | grep -q "^$id .* done " && break; sleep 0.1; done
C vms | grep -q '^vm2 *pm1 *running' || fail "vm2 not running on pm1"

# A VM whose QEMU dies is marked lost; the daemon carries on.
pid=$(C vms --json | tr -d ' \n' | sed 's/},{/}\n{/g' | grep '"name":"vm1"' | sed 's/.*"pid":\([0-9]*\).*/\1/')
[ -n "$pid" ] && [ "$pid" -gt 0 ] || fail "no pid for vm1"
kill -9 "$pid"
for _ in $(seq 1 50); do
    C vms | grep -q '^vm1 .* lost' && break
    sleep 0.1
done
C vms | grep -q '^vm1 .* lost' || fail "vm1 not marked lost after its QEMU died"
C history --since=0 | grep -q "vm-lost *vm1" || fail "no vm-lost event"
C vms | grep -q '^vm0 *pm0 *running' || fail "vm0 affected by vm1's death"
msg=$(C migrate vm1 pm1 2>&1) && fail "a lost VM was moved"
echo "$msg" | grep -q "not running" || fail "unclear error: $msg"

stop_daemon "$cfg"
ip netns list | grep -q "pp-it20-" && fail "namespaces left behind"
pgrep -f "$run/state/run" > /dev/null && fail "QEMU processes left behind"
echo "all good"
