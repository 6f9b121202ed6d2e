#!/bin/bash
# Fault injection on the shaped link during post-copy (local driver): the
# link between the hosts is cut CUTS times (default 3) at random moments
# of a post-copy move: both veths go down and the kernel drops the
# migration's TCP connections on both hosts (ss -K, as a peer's reset or
# TCP's own give-up would), then the link comes back after 1-3 s.  Each
# cut pauses the post-copy on both sides; the daemon recovers it by
# itself on a new channel.  The move ends done, the guest runs exactly
# once, and memverify checks every page.  Prints the cuts made during
# post-copy, the recoveries, and the longest pause (from the channel
# break to the recovery: how long a vCPU touching a page still on the
# source waits at most).  PP_LINK_CUTS and PP_LINK_SEED repeat a run.
. "$(dirname "$0")/lib.sh"
need_root
command -v ss > /dev/null || skip "needs ss (iproute2)"
inst=it28
run=$PP_BUILD/tests/run/28
state=$run/state
cuts=${PP_LINK_CUTS:-3}
seed=${PP_LINK_SEED:-$$}
RANDOM=$seed
rm -rf "$run"; mkdir -p "$run"
cfg=$run/cluster.ini
DAEMON_PID=
trap '[ -n "$DAEMON_PID" ] && kill -9 "$DAEMON_PID" 2>/dev/null; wait 2>/dev/null; kill_instance "$state" "$inst"' EXIT
C() { "$CONSOLIDATOR" "$@" -c "$cfg"; }
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
workload = memverify --mib=384 --pass-ms=3000
END
serial() { cat "$state"/run/vm0/*/serial.log; }
sw=pp-$inst-sw

start_daemon "$cfg" "$run/daemon.log"
for _ in $(seq 1 150); do
    serial | grep -q "PP memverify pass" && break
    sleep 0.2
done
serial | grep -q "PP memverify pass" || fail "memverify never passed before the move"
echo "seed $seed, $cuts cuts"

id=$(C migrate vm0 pm1 --mode=postcopy --json | job_id)
wait_phase "$id" postcopy
made=0
for i in $(seq 1 "$cuts"); do
    sleep "$((RANDOM % 3 + 1)).$((RANDOM % 10))"
    phase=$(job_state "$id")
    case $phase in
    postcopy|paused) ;;
    *) echo "cut $i: the move is $phase: no more cuts"; break ;;
    esac
    down=$((RANDOM % 3 + 1))
    ip -n "$sw" link set h-pm0 down
    ip -n "$sw" link set h-pm1 down
    # (ss -K also reports sockets it cannot destroy: not an error here)
    ip netns exec "pp-$inst-pm0" ss -K state established > /dev/null 2>&1
    ip netns exec "pp-$inst-pm1" ss -K state established > /dev/null 2>&1
    made=$((made + 1))
    echo "cut $i at phase $phase: link down for $down s"
    sleep "$down"
    ip -n "$sw" link set h-pm0 up
    ip -n "$sw" link set h-pm1 up
done
[ $made -ge 1 ] || fail "no cut happened during post-copy (the move was too fast)"
wait_done "$id" 300
pauses=$(C history --since=0 | grep -c "move-phase.*-> pm1: paused")
recovered=$(C history --since=0 | grep -c "move-phase.*postcopy: recovered")
echo "cuts during post-copy: $made, pauses: $pauses, recoveries: $recovered"
[ "$pauses" -ge 1 ] || fail "no cut paused the post-copy"
[ "$recovered" = "$pauses" ] || fail "$pauses pauses but $recovered recoveries"
C vms | grep -q '^vm0 *pm1 *running' || fail "vm0 not running on pm1"
[ "$(qemu_count "$state" vm0)" = 1 ] || fail "$(qemu_count "$state" vm0) copies of vm0 run"
sleep 4   # a whole memverify pass after the move
serial | grep "PP memverify bad" && fail "memverify saw a bad page"
serial | tail -n 50 | grep -q "PP memverify pass" || fail "memverify did not pass after the move"
# The longest pause: a vCPU that touches a page still on the source waits
# at least this long.
longest=$(C history --since=0 | sed -n 's/.*recovered after \([0-9.]*\) s.*/\1/p' |
          sort -n | tail -n1)
echo "link-cuts: seed=$seed cuts=$made pauses=$pauses recovered=$recovered longest_pause_s=$longest"
stop_daemon "$cfg"
echo PASS
