#!/bin/bash
# A "QEMU" that speaks QMP with nulls and wrong types everywhere
# (tests/data/hostile-qemu): null statuses, byte counts as strings,
# thread ids as null, MIGRATION events with a numeric status, error
# replies with a null desc, and now and then an event with a null name
# (a protocol error that closes the connection).  The daemon must not
# crash, must say what is wrong, must keep the VM (its process runs, so
# it is neither lost nor free), and a move to such a QEMU fails with the
# guest left on its source and no second process.
. "$(dirname "$0")/lib.sh"
need_root
inst=it31
run=$PP_BUILD/tests/run/31
state=$run/state
rm -rf "$run"; mkdir -p "$run"
cfg=$run/cluster.ini
DAEMON_PID=
trap '[ -n "$DAEMON_PID" ] && kill -9 "$DAEMON_PID" 2>/dev/null; wait 2>/dev/null; kill_instance "$state" "$inst"' EXIT
C() { "$CONSOLIDATOR" "$@" -c "$cfg"; }
write_cluster_config "$cfg" "$inst" "$state"
sed -i "s|^qemu = .*|qemu = $PP_TOP/tests/data/hostile-qemu|" "$cfg"
cat >> "$cfg" <<END
autopilot = false

[host pm0]
cpus = 0

[host pm1]
cpus = 1

[vm vm0]
memory = 128
host = pm0
END
start_daemon "$cfg" "$run/daemon.log"
sleep 3
C vms | grep -q '^vm0 *pm0 *running' || { C vms; fail "vm0 is not running on pm0"; }

# Moves, until one is accepted (the monitor may be between connections):
# each ends failed, the guest stays on pm0, nothing else runs.
moved=0
for _ in $(seq 1 10); do
    if out=$(C migrate vm0 pm1 --mode=precopy --json 2>&1); then
        id=$(echo "$out" | job_id)
        for _ in $(seq 1 100); do
            case $(job_state "$id") in failed|cancelled|broken|done) break ;; esac
            sleep 0.2
        done
        st=$(job_state "$id")
        [ "$st" = failed ] || fail "job $id against a hostile QEMU ended '$st', not failed"
        moved=1
        break
    fi
    echo "migrate refused: $out"
    sleep 2
done
[ $moved = 1 ] || fail "no move was ever accepted"
sleep 1
C vms | grep -q '^vm0 *pm0 *running' || { C vms; fail "vm0 is not running on pm0 after the failed move"; }
[ "$(qemu_count "$state" vm0)" = 1 ] || fail "$(qemu_count "$state" vm0) processes of vm0"

# What was said about it: protocol errors, reconnections; no crash.
grep -q "protocol-error vm0: .*member 'status' is an integer" "$run/daemon.log" ||
    fail "the wrongly typed status was not reported"
grep -q "malformed QMP message" "$run/daemon.log" ||
    fail "no malformed message was reported"
if grep -q "monitor connection broke" "$run/daemon.log"; then
    grep -q "monitor-reconnected vm0\|monitor cannot be reached\|not reconnected" \
        "$run/daemon.log" || fail "a broken monitor connection was not handled"
fi
grep -c "protocol-error\|malformed QMP" "$run/daemon.log" | sed 's/^/protocol errors reported: /'
kill -0 "$DAEMON_PID" || fail "the daemon died"
C status > /dev/null || fail "the daemon does not answer"
stop_daemon "$cfg"
[ "$(qemu_count "$state" vm0)" = 0 ] || fail "vm0's process survived stop --vms"
echo PASS
