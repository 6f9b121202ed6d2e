#!/bin/bash
# Restart without loss, local driver: the daemon is SIGKILLed while idle,
# while a move starts, during a pre-copy move and during a post-copy move,
# and stopped without
# its VMs; every time the next daemon adopts the QEMUs that kept running
# (same pids), carries the unfinished move on to 'done', and every VM runs
# exactly once; memverify checks the moved guest's memory.  A second
# daemon on the same state directory is refused.
. "$(dirname "$0")/lib.sh"
need_root
run=$PP_BUILD/tests/run/22
state=$run/state
rm -rf "$run"; mkdir -p "$run"
cfg=$run/cluster.ini
write_cluster_config "$cfg" it22 "$state"
cat >> "$cfg" <<END
autopilot = false

[host pm0]
cpus = 0

[host pm1]
cpus = 1

[vm vm0]
memory = 768
host = pm0
workload = memverify --mib=512 --pass-ms=4000

[vm vm1]
memory = 1024
host = pm1
fill = 768
END
DAEMON_PID=
trap '[ -n "$DAEMON_PID" ] && kill -9 "$DAEMON_PID" 2>/dev/null; wait 2>/dev/null; kill_instance "$state" it22' EXIT
C() { "$CONSOLIDATOR" "$@" -c "$cfg"; }
pid_of() { C vms --json | tr -d ' \n' | sed 's/},{/}\n{/g' | grep "\"name\":\"$1\"" | sed 's/.*"pid":\([0-9]*\).*/\1/'; }
once() { # VM: exactly one QEMU of it runs
    n=$(qemu_count "$state" "$1")
    [ "$n" = 1 ] || fail "$n QEMUs of $1 run"
}

start_daemon "$cfg" "$run/daemon1.log"
sleep 6   # let the guests boot (vm1's fill is awaited before step 2)
p0=$(pid_of vm0); p1=$(pid_of vm1)
[ -n "$p0" ] && [ "$p0" -gt 0 ] && [ -n "$p1" ] && [ "$p1" -gt 0 ] || fail "no pids"

# One instance per state directory.
msg=$("$CONSOLIDATOR" run -c "$cfg" 2>&1) && fail "a second daemon started"
echo "$msg" | grep -q "another consolidator runs on state directory" ||
    fail "unclear error: $msg"

# 1. Killed while idle: the guests do not notice.
kill_daemon
kill -0 "$p0" && kill -0 "$p1" || fail "a VM died with the daemon"
start_daemon "$cfg" "$run/daemon2.log"
[ "$(pid_of vm0)" = "$p0" ] && [ "$(pid_of vm1)" = "$p1" ] ||
    fail "the VMs were not adopted (pids $(pid_of vm0) $(pid_of vm1), were $p0 $p1)"
C vms | grep -q '^vm0 *pm0 *running' || fail "vm0 not running on pm0"
C vms | grep -q '^vm1 *pm1 *running' || fail "vm1 not running on pm1"
grep -q "vm-adopted vm0" "$run/daemon2.log" || fail "no vm-adopted event"
once vm0; once vm1

# 1b. Killed while a move starts (its destination QEMU booting, which the
# daemon no longer waits for): the next daemon ends the move failed and
# the guest stays where it was, once.
id=$(C migrate vm1 pm0 --mode=precopy --json | job_id)
kill_daemon
start_daemon "$cfg" "$run/daemon2b.log"
for _ in $(seq 1 50); do
    [ "$(job_state "$id")" = failed ] && break
    sleep 0.2
done
[ "$(job_state "$id")" = failed ] || fail "a move killed while starting is '$(job_state "$id")'"
C vms | grep -q '^vm1 *pm1 *running' || fail "vm1 not running on pm1"
[ "$(pid_of vm1)" = "$p1" ] || fail "vm1's QEMU changed"
once vm1

# 2. Killed during a pre-copy move of 768 MiB (seconds over the shaped
# link): the next daemon carries it on to the end.  Only once the guest
# has filled its 768 MiB: on a loaded machine the fill can take longer
# than the steps above, and a move of a guest still mostly zero pages
# ends before the next daemon is up.
wait_fill "$state"/run/vm1/boot/serial.log vm1 768
id=$(C migrate vm1 pm0 --mode=precopy --json | job_id)
wait_phase "$id" precopy
sleep 1
kill_daemon
start_daemon "$cfg" "$run/daemon3.log"
grep -q "move-adopted vm1" "$run/daemon3.log" || fail "the pre-copy move was not adopted"
wait_done "$id"
C vms | grep -q '^vm1 *pm0 *running' || fail "vm1 not running on pm0"
once vm1

# 3. Killed after a post-copy switch: the guest already runs on the
# destination and must never run on the source again.
id=$(C migrate vm0 pm1 --mode=postcopy --json | job_id)
wait_phase "$id" postcopy
kill_daemon
start_daemon "$cfg" "$run/daemon4.log"
wait_done "$id"
C vms | grep -q '^vm0 *pm1 *running' || fail "vm0 not running on pm1"
once vm0
sleep 5   # a memverify pass (4 s) over every page after the move
grep -h "PP memverify bad" "$state"/run/vm0/*/serial.log && fail "memverify saw a bad page"
grep -q "PP memverify pass" "$state/run/vm0/job$id/serial.log" ||
    fail "memverify did not pass on the destination"

# 4. Stopped without its VMs: they run on, and are adopted again.
p0=$(pid_of vm0); p1=$(pid_of vm1)
stop_daemon "$cfg" --keep-vms
kill -0 "$p0" && kill -0 "$p1" || fail "a VM stopped with the daemon"
ip netns list | grep -q "pp-it22-pm0" || fail "the network went with the daemon"
start_daemon "$cfg" "$run/daemon5.log"
[ "$(pid_of vm0)" = "$p0" ] && [ "$(pid_of vm1)" = "$p1" ] || fail "not adopted after a stop"
C jobs --json | grep -q '"state": "\(starting\|precopy\|postcopy\|completing\)"' &&
    fail "a job is still in flight"
C history --since=0 | grep -q "abandoned" && fail "a move was abandoned"

# 5. Stopped with its VMs: nothing is left.
stop_daemon "$cfg"
ip netns list | grep -q "pp-it22-" && fail "namespaces left behind"
pgrep -f "$state/run" > /dev/null && fail "QEMU processes left behind"
echo "all good"
