#!/bin/bash
# Post-copy pause and recovery through the consolidator (local driver, or
# libvirt with PP_TEST_DRIVER=libvirt): a post-copy move over a slow link
# is paused on request (`consolidator pause`: the channel closes, both
# QEMUs wait in postcopy-paused) and recovered (`consolidator recover`:
# a new channel); paused again, the daemon is SIGKILLed, and the next
# daemon finds the move paused and recovers it by itself.  The move ends
# done, the guest runs exactly once, and memverify checks every page.
. "$(dirname "$0")/lib.sh"
need_root
driver=${PP_TEST_DRIVER:-local}
n=25; [ "$driver" = libvirt ] && n=26
inst=it$n
run=$PP_BUILD/tests/run/$n
state=$run/state
rm -rf "$run"; mkdir -p "$run"
cfg=$run/cluster.ini
DAEMON_PID=
cleanup() {
    [ -n "$DAEMON_PID" ] && kill -9 "$DAEMON_PID" 2>/dev/null
    wait 2>/dev/null
    if [ "$driver" = libvirt ]; then
        "$PP_TOP/scripts/pp-libvirt" down "$inst" 2>/dev/null || true
    else
        kill_instance "$state" "$inst"
    fi
}
trap cleanup EXIT
C() { "$CONSOLIDATOR" "$@" -c "$cfg"; }
wl="memverify --mib=384 --pass-ms=4000"
if [ "$driver" = libvirt ]; then
    need_libvirtd
    cat > "$cfg" <<END
[consolidator]
driver = libvirt
name = $inst
state_dir = $state
autopilot = false
link_rate = 150mbit

END
    LV_RATE=150mbit lv_hosts "$inst" "$cfg" pm0 pm1
    U0=$("$PP_TOP/scripts/pp-libvirt" uri "$inst" pm0)
    U1=$("$PP_TOP/scripts/pp-libvirt" uri "$inst" pm1)
    lv_define "$run" vm0 "$U0" 0 "$wl" 512
else
    write_cluster_config "$cfg" "$inst" "$state"
    cat >> "$cfg" <<END
autopilot = false
link_rate = 150mbit

[host pm0]
cpus = 0

[host pm1]
cpus = 1

[vm vm0]
memory = 512
host = pm0
workload = $wl
END
fi
serial_logs() {
    if [ "$driver" = libvirt ]; then
        cat "$run/vm0.serial"
    else
        cat "$state"/run/vm0/*/serial.log
    fi
}
vm_count() {
    if [ "$driver" = libvirt ]; then
        for u in "$U0" "$U1"; do
            virsh -q -c "$u" list --state-running --name
        done | grep -cx vm0
    else
        qemu_count "$state" vm0
    fi
}

start_daemon "$cfg" "$run/daemon1.log"
for _ in $(seq 1 150); do
    serial_logs | grep -q "PP memverify pass" && break
    sleep 0.2
done
serial_logs | grep -q "PP memverify pass" || fail "memverify never passed before the move"

# Pausing needs a post-copy: refused before the switch and for no job.
msg=$(C pause 999 2>&1) && fail "pause of an unknown job worked"
echo "$msg" | grep -q "no job 999" || fail "unclear error: $msg"

id=$(C migrate vm0 pm1 --mode=postcopy --json | job_id)
wait_phase "$id" postcopy
sleep 1
C pause "$id" > /dev/null || fail "pause refused"
wait_phase "$id" paused
msg=$(C cancel "$id" 2>&1) && fail "a paused post-copy was cancelled"
sleep 2
# Paused on request: nothing recovers it behind the operator's back.
[ "$(job_state "$id")" = paused ] || fail "recovered without a request"
C recover "$id" > /dev/null || fail "recover refused"
wait_phase "$id" postcopy

# Paused again, and the daemon dies: the next one finds the move paused
# and recovers it by itself.
sleep 1
C pause "$id" > /dev/null || fail "second pause refused"
wait_phase "$id" paused
kill_daemon
start_daemon "$cfg" "$run/daemon2.log"
grep -q "move-adopted vm0" "$run/daemon2.log" || fail "the paused move was not adopted"
wait_done "$id" 180
grep -q "move-recover vm0" "$run/daemon2.log" || fail "no recovery after the restart"
C vms | grep -q '^vm0 *pm1 *running' || fail "vm0 not running on pm1"
[ "$(vm_count)" = 1 ] || fail "$(vm_count) copies of vm0 run"
[ "$(C history --since=0 | grep -c "move-phase.*postcopy: recovered")" = 2 ] ||
    fail "not both recoveries are in the history"
sleep 5   # a memverify pass (4 s) over every page after the move
serial_logs | grep "PP memverify bad" && fail "memverify saw a bad page"
serial_logs | tail -n 50 | grep -q "PP memverify pass" || fail "memverify did not pass after the move"
echo "all good"
