#!/bin/bash
# QEMU as an unprivileged user (qemu_user, local driver) under seccomp
# (sandbox, on by default): refused at start, with what to change, while
# the user cannot use userfaultfd (post-copy needs it); once it may, the
# VM's QEMUs run as that user (source and destination), a post-copy move
# completes and memverify checks every page.  /dev/userfaultfd's group
# and mode are changed for the test and put back.
. "$(dirname "$0")/lib.sh"
need_root
[ -c /dev/userfaultfd ] || skip "no /dev/userfaultfd on this kernel"
inst=it30
run=$PP_BUILD/tests/run/30
state=$run/state
rm -rf "$run"; mkdir -p "$run"
chmod 755 "$run"
cfg=$run/cluster.ini
uffd_mode=$(stat -c %a /dev/userfaultfd)
uffd_group=$(stat -c %g /dev/userfaultfd)
DAEMON_PID=
trap '[ -n "$DAEMON_PID" ] && kill -9 "$DAEMON_PID" 2>/dev/null; wait 2>/dev/null; chgrp "$uffd_group" /dev/userfaultfd; chmod "$uffd_mode" /dev/userfaultfd; kill_instance "$state" "$inst"' EXIT
C() { "$CONSOLIDATOR" "$@" -c "$cfg"; }
write_cluster_config "$cfg" "$inst" "$state"
cat >> "$cfg" <<END
autopilot = false
link_rate = 500mbit
qemu_user = nobody

[host pm0]
cpus = 0

[host pm1]
cpus = 1

[vm vm0]
memory = 384
host = pm0
workload = memverify --mib=128 --pass-ms=2000
END

# Without userfaultfd for nobody: refused before anything starts.
chgrp root /dev/userfaultfd; chmod 600 /dev/userfaultfd
if [ "$(sysctl -n vm.unprivileged_userfaultfd 2>/dev/null)" != 1 ]; then
    msg=$(C run 2>&1) && fail "the daemon started with a qemu_user that cannot use userfaultfd"
    echo "$msg" | grep -q "qemu_user: user 'nobody' cannot use userfaultfd" ||
        fail "unclear refusal: $msg"
    [ -e "$state/run/vm0" ] && fail "a VM was started before the refusal"
fi

chgrp nogroup /dev/userfaultfd; chmod 660 /dev/userfaultfd
start_daemon "$cfg" "$run/daemon.log"
serial() { cat "$state"/run/vm0/*/serial.log 2>/dev/null; }
for _ in $(seq 1 150); do
    serial | grep -q "PP memverify pass" && break
    sleep 0.2
done
serial | grep -q "PP memverify pass" || fail "memverify never passed (QEMU as nobody)"
uid_of() { awk '/^Uid:/ { print $2 }' "/proc/$1/status"; }
src=$(cut -d' ' -f1 "$state/run/vm0/boot/qemu.pid")
[ "$(uid_of "$src")" = 65534 ] || fail "QEMU runs as uid $(uid_of "$src"), not nobody"
grep -q -- "-sandbox on" "/proc/$src/cmdline" 2>/dev/null ||
    tr '\0' ' ' < "/proc/$src/cmdline" | grep -q -- "-sandbox on" ||
    fail "QEMU was not started under seccomp"
id=$(C migrate vm0 pm1 --mode=postcopy --json | job_id)
wait_phase "$id" postcopy
dst=$(cut -d' ' -f1 "$state/run/vm0/job$id/qemu.pid")
[ "$(uid_of "$dst")" = 65534 ] || fail "the destination runs as uid $(uid_of "$dst")"
wait_done "$id" 120
[ "$(qemu_count "$state" vm0)" = 1 ] || fail "$(qemu_count "$state" vm0) copies of vm0"
sleep 3
serial | grep "PP memverify bad" && fail "memverify saw a bad page"
serial | tail -n 20 | grep -q "PP memverify pass" || fail "memverify did not pass after the move"
stop_daemon "$cfg"
echo PASS
