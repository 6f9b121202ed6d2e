#!/bin/bash
# [host] host_work_cpus: the local driver keeps a VM's vCPU threads on the
# host's cpus and moves QEMU's other threads (main loop, migration, I/O)
# to the host-work CPUs, as the paper's hosts ran host work on a core of
# its own.  pm0 = {cpus 0, work 1}, pm1 = {cpus 1, work 0}: the VM's
# threads on pm0, its migration threads while a post-copy move runs, and
# the destination's threads after it (pm1's sets) are checked.
. "$(dirname "$0")/lib.sh"
need_root
[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs"
run=$PP_BUILD/tests/run/36
rm -rf "$run"; mkdir -p "$run"
cfg=$run/cluster.ini
write_cluster_config "$cfg" it36 "$run/state"
cat >> "$cfg" <<END
autopilot = false
link_rate = 200mbit

[host pm0]
cpus = 0
host_work_cpus = 1

[host pm1]
cpus = 1
host_work_cpus = 0

[vm vm0]
memory = 384
host = pm0
workload = memverify --mib=160 --pass-ms=2000
END
DAEMON_PID=
trap '[ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null; wait 2>/dev/null; kill_instance "$run/state" it36' EXIT
start_daemon "$cfg" "$run/daemon.log"
C() { "$CONSOLIDATOR" "$@" -c "$cfg"; }
pid_of() { cut -d' ' -f1 "$run/state/run/vm0/$1/qemu.pid"; }
# "TID NAME CPUS" for every thread of QEMU $1
threads() {
    for t in /proc/"$1"/task/*; do
        printf '%s %s %s\n' "${t##*/}" "$(tr ' ' _ < "$t/comm")" \
            "$(awk '/^Cpus_allowed_list/ { print $2 }' "$t/status")"
    done 2>/dev/null
}
# check PID VCPU_CPUS WORK_CPUS WHERE: every vCPU thread on the first,
# every other on the second
check() {
    local out nv=0 nw=0
    out=$(threads "$1")
    echo "$out" | sed "s/^/# $4: /"
    while read -r tid name cpus; do
        if [[ $name =~ ^CPU_[0-9]+/ ]]; then
            [ "$cpus" = "$2" ] || fail "$4: vCPU thread $tid ($name) on CPUs $cpus, not $2"
            nv=$((nv + 1))
        else
            [ "$cpus" = "$3" ] || fail "$4: thread $tid ($name) on CPUs $cpus, not $3"
            nw=$((nw + 1))
        fi
    done <<< "$out"
    [ "$nv" -ge 1 ] && [ "$nw" -ge 1 ] || fail "$4: $nv vCPU and $nw other threads"
}
# placed within a sampling pass or two of the monitor's answer
wait_placed() { # PID VCPU_CPUS WORK_CPUS
    for _ in $(seq 1 50); do
        threads "$1" | awk -v v="$2" -v w="$3" '
            { want = ($2 ~ /^CPU_[0-9]+\//) ? v : w; if ($3 != want) bad = 1 }
            END { exit bad }' && return 0
        sleep 0.2
    done
}
for _ in $(seq 1 300); do
    grep -aq "PP memverify pass" "$run"/state/run/vm0/boot/serial.log 2>/dev/null && break
    sleep 0.2
done
src=$(pid_of boot)
wait_placed "$src" 0 1
check "$src" 0 1 "vm0 on pm0"

id=$(C migrate vm0 pm1 --mode=postcopy --json | job_id)
# While it runs: the source's migration threads were started by its main
# thread, so they begin on pm0's host-work CPU.
seen=
for _ in $(seq 1 200); do
    m=$(threads "$src" | awk '$2 ~ /^mig\/src/')
    if [ -n "$m" ]; then
        echo "$m" | sed 's/^/# source during the move: /'
        echo "$m" | awk '$3 != "1" { exit 1 }' || fail "a source migration thread is not on CPU 1: $m"
        seen=1
        break
    fi
    sleep 0.05
done
[ -n "$seen" ] || echo "# (the move ended before a source migration thread was seen)"
wait_done "$id"
dst=$(pid_of "job$id")
wait_placed "$dst" 1 0
check "$dst" 1 0 "vm0 on pm1"
C vms | grep -q '^vm0 *pm1 *running' || fail "vm0 not running on pm1"
grep -a "PP memverify bad" "$run"/state/run/vm0/*/serial.log && fail "memverify saw a bad page"
stop_daemon "$cfg"
echo PASS
